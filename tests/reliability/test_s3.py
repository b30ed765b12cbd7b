"""S3-backed instances under faults (moto over HTTP; a frozen S3 is a socket on 127.0.0.1 that accepts and
never answers): every command is bounded in time, a storage-wide outage or a revoked key costs no job an
attempt, and the worker picks up once S3 answers again."""

from __future__ import annotations

import json
import signal
import time
from uuid import UUID

import psycopg
import pytest

from ops.storage import picture_key
from tests.reliability.conftest import run_ops, start_ops
from tests.reliability.faults import FaultProxy, TcpServer
from tests.storage_helpers import prepared_sequence, s3_store

pytestmark = pytest.mark.category("fault")
FAST = {"OPS_S3_CONNECT_TIMEOUT": "1", "OPS_S3_READ_TIMEOUT": "1", "OPS_S3_DEADLINE": "2", "AWS_MAX_ATTEMPTS": "2"}
BOUND = 2 + 1 + 1 + 4  # the deadline, plus one attempt (connect + read), plus process start and margin


def frozen_env(db_url: str, server: TcpServer) -> dict[str, str]:
    return {"DB_URL": db_url, "FS_URL": f"s3://pics/g?endpoint_url=http://127.0.0.1:{server.port}", **FAST}


def test_a_frozen_s3_never_hangs_a_command(scenario, conn, db_url, s3):
    """S3 accepting connections and never answering: cleanup --enqueue-only, worker --once, storage check and
    orphans give up within their S3 deadline (exit 1, naming the timeouts); health answers CRITICAL within its
    --timeout; a long-running worker starts, waits for S3, and stops on SIGTERM with exit 0"""
    store = s3_store(s3)
    seq, _pics = prepared_sequence(conn, store, 3)
    server = TcpServer("silent")
    env = frozen_env(db_url, server)
    try:
        for args in (["cleanup", str(seq), "--enqueue-only"], ["worker", "--once"], ["storage", "check"],
                     ["storage", "orphans"]):  # fmt: skip
            started = time.monotonic()
            result = run_ops(*args, env=env, timeout=120)
            elapsed = time.monotonic() - started
            ok = result.returncode == 1 and elapsed < BOUND and "S3 did not answer" in result.stderr
            scenario.run(ok, f"{args}: exit {result.returncode} in {elapsed:.1f} s: {result.stderr[-300:]}")
        started = time.monotonic()
        health = run_ops("health", "--timeout", "5", env=env, timeout=120)
        elapsed = time.monotonic() - started
        scenario.run(health.returncode == 2 and elapsed < 5 + 3 and "CRITICAL storage_permanent" in health.stdout,
                     f"health: exit {health.returncode} in {elapsed:.1f} s: {health.stdout[:300]}")  # fmt: skip
        worker = start_ops("worker", env=env)
        time.sleep(BOUND)
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=BOUND + 10)
        scenario.run(worker.returncode == 0 and "storage unavailable at start" in err,
                     f"worker: exit {worker.returncode}: {err[-400:]}")  # fmt: skip
        assert conn.execute("SELECT count(*) FROM pictures").fetchone()[0] == 3  # the cleanup deleted no row
    finally:
        server.close()
    assert scenario.failures == 0, scenario.notes


@pytest.mark.parametrize("mode", ["403", "drop"])
def test_an_outage_costs_no_job_an_attempt(scenario, conn, db_url, s3, mode):
    """a running ops worker while S3 refuses every request (a revoked key) / drops every DeleteObjects: the delete
    jobs queued meanwhile keep 0 attempts spent (the worker pauses, with backoff); once S3 answers, the worker
    deletes every file and gives up none"""
    store = s3_store(s3)
    proxy = FaultProxy(s3)
    env = {"DB_URL": db_url, "FS_URL": f"s3://{store.bucket}/geovisio?endpoint_url={proxy.url}", **FAST}
    try:
        seq, pics = prepared_sequence(conn, store, 5)
        worker = start_ops("worker", "--nb-retries", "2", env=env)
        time.sleep(2)
        proxy.mode = mode
        assert run_ops("cleanup", str(seq), "--database", env={"DB_URL": db_url}).returncode == 0
        conn.execute("INSERT INTO job_queue (task, picture_to_delete_id, args) SELECT 'delete', id, "
                     "'{\"files\": [\"derivates\", \"permanent\", \"tmp\"]}' FROM unnest(%s::uuid[]) AS p (id)",
                     ([p.id for p in pics],))  # fmt: skip
        time.sleep(12)  # several batches tried: the first at once, then after pauses of 5 s and 10 s
        attempts = conn.execute("SELECT count(*), max(nb_errors) FROM job_queue").fetchone()
        scenario.run(attempts == (5, 0) and proxy.seen.get(mode, 0) >= 2,
                     f"during the outage: queue {attempts}, {proxy.seen} faulty answers")  # fmt: skip
        proxy.mode = "pass"
        deadline = time.monotonic() + 60
        while conn.execute("SELECT count(*) FROM job_queue").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=30)
        history = conn.execute("SELECT count(*) FILTER (WHERE error IS NOT NULL), count(*) FROM job_history").fetchone()
        scenario.run(worker.returncode == 0 and store.files() == set() and history == (0, 5)
                     and "pausing file deletions" in err,
                     f"after: exit {worker.returncode}, history {history}, left {store.files()}: {err[-400:]}")  # fmt: skip
    finally:
        proxy.close()
    assert scenario.failures == 0, scenario.notes


def test_each_job_gets_its_own_object_s_error(scenario, conn, db_url, s3):
    """one picture's original refused by a bucket policy among five in one DeleteObjects batch: that job alone
    fails, at once (a refusal is no transient error), its error naming its own key; the four others are done"""
    store = s3_store(s3)
    seq, pics = prepared_sequence(conn, store, 5)
    env = {"DB_URL": db_url, **store.env}
    assert run_ops("cleanup", str(seq), "--enqueue-only", env=env).returncode == 0
    refused = f"{store.prefix}permanent/{picture_key(pics[2].id)}"
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                 "Resource": f"arn:aws:s3:::{store.bucket}/{refused}"}  # fmt: skip
    store.client.put_bucket_policy(Bucket=store.bucket, Policy=json.dumps({"Statement": [statement]}))
    result = run_ops("worker", "--once", "--json", env=env)
    summary = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    errors = conn.execute("SELECT picture_to_delete_id, error FROM job_history WHERE error IS NOT NULL").fetchall()
    ok = (result.returncode == 1 and summary.get("done") == 4 and summary.get("given_up") == 1 and len(errors) == 1
          and errors[0][0] == pics[2].id and refused in errors[0][1] and "AccessDenied" in errors[0][1])  # fmt: skip
    scenario.run(ok, f"{summary} {errors}")
    assert scenario.failures == 0, scenario.notes


def test_whole_instance_cleanup_deletes_only_the_pictures_files(scenario, ops, conn, db_url, s3):
    """ops cleanup --yes on S3 holding, besides the pictures' files, notes, .jpg.bak, .jpeg, upper-case keys,
    folder markers and a seconds-old layout-shaped file of no picture: the dry run counts the pictures' files
    only, the cleanup deletes them only, and every other key stays, counted"""
    store = s3_store(s3)
    prepared_sequence(conn, store, 4)
    key = picture_key(prepared_sequence(conn, store, 2, lon=3.0, name="bob")[1][0].id)
    strangers = {"permanent/notes.txt", f"permanent/{key}.bak", f"permanent/{key[:-4]}.jpeg",
                 f"permanent/{key.upper()}", "permanent/43/", "derivates/", "tmp/upload-in-progress.part",
                 "permanent/00/00/00/01/1111-4222-8333-444455556666.jpg"}  # fmt: skip
    for k in strangers:
        store.client.put_object(Bucket=store.bucket, Key=store.prefix + k, Body=b"" if k.endswith("/") else b"x")
    env = {"DB_URL": db_url, **store.env}
    dry = ops("cleanup", "--yes", "--dry-run", "--json", env=env)
    counted = json.loads(dry.stdout) if dry.exit_code == 0 else {}
    scenario.run(counted.get("files") == {"permanent": 6, "derivates": 24, "tmp": 6},
                 f"dry run: {dry.stdout[:400]} {dry.stderr[-300:]}")  # fmt: skip
    done = ops("cleanup", "--yes", "--json", env=env)
    summary = json.loads(done.stdout) if done.exit_code == 0 else {}
    ok = (store.files() == strangers and summary.get("files") == {"permanent": 6, "derivates": 24, "tmp": 6}
          and sum(summary.get("other_files_kept", {}).values()) == len(strangers))  # fmt: skip
    scenario.run(ok, f"left {store.files() ^ strangers}: {done.stdout[:400]} {done.stderr[-300:]}")
    with psycopg.connect(db_url) as c:
        scenario.run(c.execute("SELECT count(*) FROM pictures").fetchone()[0] == 0, "pictures left")
    assert scenario.failures == 0, scenario.notes


def test_storage_check_and_health_on_a_wrong_prefix(scenario, ops, conn, db_url, s3):
    """FS_URL pointing at an empty prefix of the right bucket: storage check counts originals and derivatives
    missing, naming pictures; health is CRITICAL, not ok"""
    store = s3_store(s3)
    prepared_sequence(conn, store, 3)
    conn.execute("UPDATE pictures SET status = 'ready'")
    env = {"DB_URL": db_url, "FS_URL": f"s3://{store.bucket}/wrong-prefix"}
    check = ops("storage", "check", "--json", env=env)
    report = json.loads(check.stdout) if check.stdout.startswith("{") else {}
    scenario.run(check.exit_code == 1 and report.get("originals_missing") == {"ready": 3}
                 and report.get("derivates_missing") == 3 and len(report.get("derivates_missing_examples", [])) == 3,
                 f"check: {check.stdout[:400]}")  # fmt: skip
    health = ops("health", env=env)
    scenario.run(health.exit_code == 2 and "holds no file while the database has ready pictures" in health.stdout,
                 f"health: {health.stdout[:400]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


WAVES = {"OPS_S3_CONNECT_TIMEOUT": "1", "OPS_S3_READ_TIMEOUT": "2", "OPS_S3_DEADLINE": "6", "AWS_MAX_ATTEMPTS": "5"}
# the deadline, one attempt (connect + read), process start (slower beside other test workers)
WAVES_BOUND = 6 + 1 + 2 + 3


def _frozen_mid_run(conn, db_url, s3, pictures: int) -> tuple[FaultProxy, dict[str, str], UUID]:
    """An instance whose S3 answers the proof of the location, then freezes (a proxy on 127.0.0.1)."""
    store = s3_store(s3)
    prepared_sequence(conn, store, 2, lon=2.0, name="bob")  # stays: the proof's ready pictures
    seq, _pics = prepared_sequence(conn, store, pictures)
    proxy = FaultProxy(s3, freeze_after=25)  # the proof lists one key per sampled picture: it passes
    return proxy, {"DB_URL": db_url, "FS_URL": f"s3://{store.bucket}/geovisio?endpoint_url={proxy.url}", **FAST}, seq


def test_parallel_calls_share_one_deadline(scenario, conn, db_url, s3):
    """S3 freezing after the proof, 40 pictures (more listings than threads): a worker batch and a cleanup give
    up within the deadline plus one attempt, not one deadline per wave of parallel calls"""
    proxy, env, seq = _frozen_mid_run(conn, db_url, s3, 60)
    env |= WAVES  # a deadline several read timeouts long: a second wave would double it
    conn.execute("UPDATE pictures SET original_content_md5 = md5('x')::uuid")  # --verify reads each original
    try:
        for args in (["storage", "check", "--verify"], ["cleanup", str(seq), "--enqueue-only"], ["worker", "--once"]):
            if args[0] == "cleanup":
                assert run_ops(*args, env=env).returncode == 0
                continue
            proxy.seen.clear()
            proxy.mode = "freeze"
            proxy.freeze_after = 25 if args[0] == "worker" else 4  # past the proof / the check's listings
            started = time.monotonic()
            result = run_ops(*args, env=env, timeout=120)
            elapsed = time.monotonic() - started
            scenario.run(result.returncode == 1 and elapsed < WAVES_BOUND, f"{args}: exit {result.returncode} in "
                         f"{elapsed:.1f} s (bound {WAVES_BOUND} s): {result.stderr[-300:]}")  # fmt: skip
            proxy.mode = "pass"
        with psycopg.connect(db_url) as c:  # nothing lost: every job queued, no attempt counted
            jobs = c.execute("SELECT count(*), max(nb_errors) FROM job_queue WHERE task = 'delete'").fetchone()
        scenario.run(jobs == (60, 0), f"jobs {jobs}")
    finally:
        proxy.close()
    assert scenario.failures == 0, scenario.notes


def test_sigterm_ends_a_frozen_batch_within_the_deadline_with_exit_0(scenario, conn, db_url, s3):
    """a worker whose batch waits on a frozen S3: SIGTERM ends it within one read timeout, exit 0, the batch's
    jobs queued for the next run with their attempts untouched"""
    proxy, env, seq = _frozen_mid_run(conn, db_url, s3, 40)
    slow = {**env, "OPS_S3_READ_TIMEOUT": "3", "OPS_S3_DEADLINE": "30"}
    try:
        assert run_ops("cleanup", str(seq), "--enqueue-only", env=env).returncode == 0
        proxy.mode = "freeze"
        worker = start_ops("worker", env=slow)
        time.sleep(4)  # the batch is waiting on S3
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=60)
        elapsed = time.monotonic() - stopped_at
        with psycopg.connect(db_url) as c:
            jobs = c.execute("SELECT count(*), max(nb_errors) FROM job_queue WHERE task = 'delete'").fetchone()
        scenario.run(worker.returncode == 0 and elapsed < 3 + 1 + 4 and jobs == (40, 0),
                     f"exit {worker.returncode} {elapsed:.1f} s after SIGTERM, jobs {jobs}: {err[-300:]}")  # fmt: skip
    finally:
        proxy.close()
    assert scenario.failures == 0, scenario.notes
