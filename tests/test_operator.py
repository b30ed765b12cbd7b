"""The operator's view: `ops jobs` (counts, list, retry, prune), `ops storage check`, `ops health`."""

from __future__ import annotations

import hashlib
import json
import time
from uuid import UUID

import psycopg
import pytest

from ops.storage import derivates_folder, picture_key
from tests.factories import is_panoramax, make_account, make_sequence, walk
from tests.storage_helpers import deny_deletion, local_store, prepared_sequence, s3_store


@pytest.fixture
def failed_jobs(ops, conn, db_url, s3):
    """Three delete jobs given up after a real failing deletion (a bucket refusing DeleteObject)."""
    store = s3_store(s3)
    seq, pics = prepared_sequence(conn, store, 3)
    env = {"DB_URL": db_url, **store.env}
    assert ops("cleanup", str(seq), "--enqueue-only", env=env).exit_code == 0
    deny_deletion(store)
    worker = ops("worker", "--once", "--nb-retries", "1", "--json", env=env)
    assert worker.exit_code == 0, worker.stderr
    assert json.loads(worker.stdout)["given_up"] == 3
    return store, env, pics


def test_jobs_shows_failures_lists_them_and_retries_them_once(ops, conn, failed_jobs):
    store, env, pics = failed_jobs
    summary = json.loads(ops("jobs", "--json", env=env).stdout)
    delete = next(t for t in summary["tasks"] if t["task"] == "delete")
    assert (delete["failed_24h"], delete["failed"], delete["queued"]) == (3, 3, 0)
    listed = ops("jobs", "list", "--failed", "--task", "delete", "--since", "1h", env=env)
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 3
    assert "picture to delete" in listed.stdout and "AccessDenied" in listed.stdout
    dry = json.loads(ops("jobs", "retry", "--failed", "--dry-run", "--json", env=env).stdout)
    assert len(dry["requeued"]) == 3 and conn.execute("SELECT count(*) FROM job_queue").fetchone()[0] == 0
    # one picture is back in the database: its delete job is not queued again
    back = pics[0].id
    conn.execute(
        "INSERT INTO pictures (id, ts, geom, account_id) VALUES (%s, now(), ST_SetSRID(ST_MakePoint(1, 1), 4326),"
        " (SELECT id FROM accounts WHERE is_default))",
        (back,),
    )
    retried = json.loads(ops("jobs", "retry", "--failed", "--json", env=env).stdout)
    assert len(retried["requeued"]) == 2 and list(retried["skipped"].values()) == [
        "its picture is in the database again: its files stay"
    ]
    again = json.loads(ops("jobs", "retry", "--failed", "--json", env=env).stdout)
    assert again["requeued"] == [] and set(again["skipped"].values()) >= {"it is queued already"}
    store.client.delete_bucket_policy(Bucket=store.bucket)
    done = json.loads(ops("worker", "--once", "--json", env=env).stdout)
    assert done["done"] == 2
    after = json.loads(ops("jobs", "--json", env=env).stdout)
    assert sum(t["failed"] for t in after["tasks"]) == 1  # only the job left as it was
    unknown = ops("jobs", "retry", "00000000-0000-0000-0000-000000000001", "--json", env=env)
    assert json.loads(unknown.stdout)["skipped"] == {
        "00000000-0000-0000-0000-000000000001": "no such job in the history"
    }


def test_a_job_a_worker_holds_is_shown_processing_without_waiting_for_it(ops, conn, db_url):
    account = make_account(conn)
    make_sequence(conn, account, walk(1.0, 1.0, 2))
    conn.execute("DELETE FROM job_queue")
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid()), "
                 "('delete', gen_random_uuid())")  # fmt: skip
    with psycopg.connect(db_url) as worker:
        worker.execute("SELECT id FROM job_queue ORDER BY ts LIMIT 1 FOR UPDATE SKIP LOCKED")
        started = time.monotonic()
        result = ops("jobs", "--json", env={"DB_URL": db_url})
        assert time.monotonic() - started < 5
    delete = json.loads(result.stdout)["tasks"][0]
    assert (delete["task"], delete["processing"], delete["queued"]) == ("delete", 1, 1)


def test_prune_keeps_failures_and_queued_jobs_history(ops, conn, failed_jobs):
    _store, env, _pics = failed_jobs
    conn.execute("INSERT INTO job_history (job_id, job_task, picture_to_delete_id, started_at, finished_at)"
                 " SELECT gen_random_uuid(), 'delete', gen_random_uuid(), now() - interval '40 days',"
                 " now() - interval '40 days' FROM generate_series(1, 25)")  # fmt: skip
    conn.execute("UPDATE job_history SET finished_at = now() - interval '40 days'")
    dry = json.loads(ops("jobs", "prune", "--older-than", "30d", "--dry-run", "--json", env=env).stdout)
    assert dry["history_rows"] == 25
    assert conn.execute("SELECT count(*) FROM job_history").fetchone()[0] == 28
    done = json.loads(ops("jobs", "prune", "--older-than", "30d", "--json", env=env).stdout)
    assert done["history_rows"] == 25 and conn.execute("SELECT count(*) FROM job_history").fetchone()[0] == 3
    everything = json.loads(ops("jobs", "prune", "--older-than", "30d", "--include-failures", "--json", env=env).stdout)
    assert everything["history_rows"] == 3
    bad = ops("jobs", "prune", "--older-than", "soon", env=env)
    assert bad.exit_code == 2 and "is not a duration" in bad.stderr


@pytest.fixture
def checked(conn, store):
    """Six ready pictures with all their files and their MD5 recorded."""
    seq, pics = prepared_sequence(conn, store, 6)
    md5 = UUID(hex=hashlib.md5(b"\xff\xd8 picture bytes").hexdigest())  # what storage_helpers writes
    conn.execute("UPDATE pictures SET original_content_md5 = %s, status = 'ready'", (md5,))
    return seq, pics


def remove(store, rel: str) -> None:
    if store.root is not None:
        (store.root / rel).unlink()
    else:
        store.client.delete_object(Bucket=store.bucket, Key=store.prefix + rel)


def test_storage_check_finds_missing_originals_and_derivates_and_corruption(ops, db_url, store, checked):
    seq, pics = checked
    env = {"DB_URL": db_url, **store.env}
    clean = ops("storage", "check", "--verify", "--json", env=env)
    assert clean.exit_code == 0, clean.stderr
    assert json.loads(clean.stdout)["verified"] == 6
    remove(store, f"permanent/{picture_key(pics[0].id)}")
    remove(store, f"derivates/{derivates_folder(pics[1].id)}/sd.jpg")
    store.write(f"permanent/{picture_key(pics[2].id)}", b"\xff\xd8 altered bytes")
    result = ops("storage", "check", "--json", env=env)
    assert result.exit_code == 1 and "1 ready pictures have no original" in result.stderr
    report = json.loads(result.stdout)
    assert report["originals_missing"] == {"ready": 1} and report["derivates_missing"] == 1
    assert report["md5_mismatch"] == 0  # not read without --verify
    verified = json.loads(ops("storage", "check", "--verify", "--json", env=env).stdout)
    assert verified["md5_mismatch"] == 1 and verified["verified"] == 5
    one = json.loads(ops("storage", "check", "--sequence", str(seq), "--json", env=env).stdout)
    assert one["pictures"] == 6 and one["originals_missing"] == {"ready": 1}


def test_health_exit_codes_and_prometheus_output(ops, conn, db_url, empty_db_url, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
    env = {"DB_URL": db_url, **local_store(tmp_path).env}
    ok = ops("health", env=env)
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OPS HEALTH OK - 9 checks ok | database_time=")
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    warning = ops("health", "--queue-warning", "1", "--json", env=env)
    assert warning.exit_code == 1 and json.loads(warning.stdout)["state"] == "warning"
    critical = ops("health", "--queue-warning", "1", "--queue-critical", "1", env=env)
    assert critical.exit_code == 2 and "CRITICAL queue: 1 jobs ready" in critical.stdout
    pending = ops("health", env={"DB_URL": empty_db_url})
    assert pending.exit_code == 2 and "CRITICAL schema" in pending.stdout
    down = ops("health", env={"DB_URL": "postgresql://nobody@127.0.0.1:1/x", "FS_URL": str(tmp_path / "gone")})
    assert down.exit_code == 2 and "CRITICAL database" in down.stdout and "CRITICAL storage_permanent" in down.stdout
    text = ops("health", "--prometheus", env=env).stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["ops_database_up"].samples[0].value == 1
    assert {s.labels["task"]: s.value for s in families["ops_jobs_queued"].samples}["delete"] == 1
    assert {s.labels["area"] for s in families["ops_storage_up"].samples} == {"permanent", "derivates", "tmp"}
    assert families["ops_health_status"].type == "gauge"


def test_health_on_an_empty_queue_and_contradictory_thresholds(ops, conn, db_url, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
        conn.execute("DELETE FROM job_queue")
    env = {"DB_URL": db_url, **local_store(tmp_path).env}
    idle = ops("health", "--age-warning", "0s", "--age-critical", "0s", env=env)
    assert idle.exit_code == 0 and "OK       oldest_job: no job ready" in idle.stdout, idle.stdout
    text = ops("health", "--prometheus", env=env).stdout
    queued = {s.labels["task"]: s.value for f in text_string_to_metric_families(text) if f.name == "ops_jobs_queued"
              for s in f.samples}  # fmt: skip
    assert queued == dict.fromkeys(("prepare", "delete", "dispatch", "finalize", "read_metadata", "transfer"), 0.0)
    for warning, critical in (("--queue-warning", "--queue-critical"), ("--failures-warning", "--failures-critical")):
        refused = ops("health", warning, "100", critical, "1", env=env)
        assert refused.exit_code == 2 and f"{warning} (100) is above {critical} (1)" in refused.stderr
    refused = ops("health", "--age-warning", "2h", "--age-critical", "1h", env=env)
    assert refused.exit_code == 2 and "--age-warning (7200) is above --age-critical (3600)" in refused.stderr


def test_the_job_tasks_are_the_queue_s_enum_labels(conn):
    from ops.tasks import TASKS

    labels = {r[0] for r in conn.execute("SELECT unnest(enum_range(NULL::job_type))::text")}
    assert labels == set(TASKS)


def test_retry_of_every_failure_lists_the_failures_only(ops, conn, db_url):
    conn.execute("INSERT INTO job_history (job_id, job_task, picture_to_delete_id, started_at, finished_at, error) "
                 "SELECT gen_random_uuid(), 'delete', gen_random_uuid(), now() - interval '1 hour', "
                 "now() - interval '1 hour', CASE WHEN n <= 3 THEN 'S3 said no' END FROM generate_series(1, 40) n")  # fmt: skip
    dry = ops("jobs", "retry", "--failed", "--dry-run", env={"DB_URL": db_url})
    lines = dry.stdout.splitlines()
    assert dry.exit_code == 0 and len(lines) == 4 and lines[-1] == "3 would queue again, 0 left as they are"
    assert "succeeded" not in dry.stdout


def test_enqueue_only_says_what_it_queued_and_warns_on_stderr(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path)
    seq, _pics = prepared_sequence(conn, store, 3)
    result = ops("cleanup", str(seq), "--enqueue-only", "--json", env={"DB_URL": db_url, **store.env})
    summary = json.loads(result.stdout)
    assert summary["files_queued_for_worker"] == 3 and summary["rows"]["pictures"] == 3
