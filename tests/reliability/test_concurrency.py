"""Several ops processes at once on one database: each promise holds whatever the interleaving."""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg
import pytest

from bench.generate import generate
from ops.storage import picture_key
from tests.factories import prepared
from tests.reliability.conftest import run_ops, start_ops
from tests.storage_helpers import local_store

pytestmark = pytest.mark.category("concurrency")


def test_four_upgrades_at_once_apply_each_migration_once(scenario, new_database):
    """4 × ops db upgrade started together on an empty database"""
    for _ in range(3):
        url = new_database("template1")
        procs = [start_ops("db", "upgrade", env={"DB_URL": url}) for _ in range(4)]
        codes = [p.wait(timeout=120) for p in procs]
        with psycopg.connect(url) as c:
            applied = c.execute("SELECT migration_id, count(*) FROM ops_yoyo_log WHERE operation = 'apply' GROUP BY 1")
            once = all(n == 1 for _, n in applied.fetchall())
        scenario.run(codes == [0, 0, 0, 0] and once, f"exit codes {codes}, applied once: {once}")
    assert scenario.failures == 0, scenario.notes


def test_four_workers_process_ten_thousand_jobs_exactly_once(scenario, db_url, tmp_path):
    """4 × ops worker --once on 10,000 delete jobs: each job done exactly once, every file gone"""
    store = local_store(tmp_path)
    with psycopg.connect(db_url, autocommit=True) as c:
        ids = [uuid.uuid4() for _ in range(10_000)]
        with c.cursor().copy("COPY job_queue (task, picture_to_delete_id, args) FROM STDIN") as copy:
            for pic in ids:
                copy.write_row(("delete", pic, json.dumps({"files": ["permanent"]})))
    for pic in ids[::50]:
        store.write(f"permanent/{picture_key(pic)}")
    procs = [
        start_ops("worker", "--once", "--batch-size", "100", env={"DB_URL": db_url, **store.env}) for _ in range(4)
    ]
    codes = [p.wait(timeout=600) for p in procs]
    with psycopg.connect(db_url) as c:
        per_job = c.execute("SELECT count(*), count(DISTINCT job_id) FROM job_history").fetchone()
        left = c.execute("SELECT count(*) FROM job_queue").fetchone()[0]
    scenario.run(codes == [0] * 4 and per_job == (10_000, 10_000) and left == 0 and store.files() == set(),
                 f"codes {codes}, history {per_job}, left {left}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


def test_two_refreshes_at_once_never_both_refresh_one_view(scenario, ops_db_url):
    """2 × ops refresh together: each view refreshed by one, skipped (not an error) by the other"""
    with psycopg.connect(ops_db_url, autocommit=True) as c:
        generate(c, 20_000, 200, seed=2, log=False)
    for _ in range(5):
        procs = [start_ops("refresh", "--json", env={"DB_URL": ops_db_url}) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        codes = [p.returncode for p in procs]
        states = [o["state"] for out, _ in outs if out.strip() for o in json.loads(out)]
        scenario.run(codes == [0, 0] and "failed" not in states, f"codes {codes}, states {states}")
    assert scenario.failures == 0, scenario.notes


def test_overlapping_cleanups_never_strand_a_shared_picture(scenario, db_url, tmp_path):
    """ops cleanup S1 and ops cleanup S5 together, S1 and S5 sharing pictures: nothing stranded"""
    for run in range(6):
        store = local_store(tmp_path / str(run))
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute("DELETE FROM job_history")
            account = c.execute("INSERT INTO accounts (name) VALUES ('x') RETURNING id").fetchone()[0]
            from tests.factories import make_sequence, walk

            a, b, shared, other = walk(1.0 + run, 1.0, 4)
            s1 = make_sequence(c, account, [a, shared, other])
            s5 = make_sequence(c, account, [b, shared, other])
            prepared(c)
        for p in (a, b, shared, other):
            store.add_picture(p.id)
        procs = [start_ops("cleanup", str(s), env={"DB_URL": db_url, **store.env}) for s in (s1, s5)]
        codes = [p.wait(timeout=120) for p in procs]
        with psycopg.connect(db_url) as c:
            left = c.execute("SELECT count(*) FROM pictures WHERE id = ANY(%s)", ([a.id, b.id, shared.id, other.id],))
            stranded = left.fetchone()[0]
        scenario.run(codes == [0, 0] and stranded == 0 and store.files() == set(), f"codes {codes}, left {stranded}")
    assert scenario.failures == 0, scenario.notes


def test_reorder_and_headings_while_pictures_are_inserted(scenario, db_url):
    """ops sequences reorder and set-sequences-heading while another session keeps adding pictures"""
    with psycopg.connect(db_url, autocommit=True) as c:
        generate(c, 3000, 30, seed=5, log=False)
        prepared(c)
        seqs = [r[0] for r in c.execute("SELECT id FROM sequences")]
        account = c.execute("SELECT id FROM accounts LIMIT 1").fetchone()[0]
    stop = threading.Event()

    def insert() -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            n = 0
            while not stop.is_set():
                seq = seqs[n % len(seqs)]
                pic = c.execute(
                    "INSERT INTO pictures (ts, geom, account_id, metadata) VALUES (now() - interval '1 year',"
                    " ST_SetSRID(ST_MakePoint(5, 45), 4326), %s, '{}') RETURNING id",
                    (account,),
                ).fetchone()[0]
                c.execute("INSERT INTO sequences_pictures (seq_id, rank, pic_id) SELECT %s, max(rank) + 1, %s"
                          " FROM sequences_pictures WHERE seq_id = %s", (seq, pic, seq))  # fmt: skip
                n += 1
                time.sleep(0.005)

    writer = threading.Thread(target=insert)
    writer.start()
    try:
        for args in (["sequences", "reorder", "--batch-size", "3"], ["set-sequences-heading", "--batch-size", "3"]) * 3:
            done = run_ops(*args, env={"DB_URL": db_url})
            scenario.run(done.returncode == 0, done.stderr.strip()[-300:])
    finally:
        stop.set()
        writer.join()
    final = run_ops("sequences", "reorder", "--json", env={"DB_URL": db_url})
    with psycopg.connect(db_url) as c:
        gaps = c.execute(
            "SELECT count(*) FROM (SELECT seq_id, rank, row_number() OVER (PARTITION BY seq_id ORDER BY rank) AS n"
            " FROM sequences_pictures) x WHERE rank <> n"
        ).fetchone()[0]
    scenario.run(final.returncode == 0 and gaps == 0, f"ranks not 1..n after a quiet run: {gaps}")
    assert scenario.failures == 0, scenario.notes


def _waiting_on_a_lock(url: str, application: str) -> bool:
    with psycopg.connect(url) as c:
        return bool(c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s "
                              "AND wait_event_type = 'Lock'", (application,)).fetchone()[0])  # fmt: skip


def test_a_retry_never_reruns_a_job_that_succeeded_meanwhile(scenario, db_url):
    """ops jobs retry --failed held before it writes to the queue while, in between, another retry and a worker
    re-queue and finish the same 40 failed jobs (a session holding job_queue in SHARE mode, then committing their
    success): the held retry queues none of them again"""
    for _ in range(3):
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute("DELETE FROM job_history")
            job_ids = [uuid.uuid4() for _ in range(40)]
            c.execute("INSERT INTO job_history (job_id, job_task, picture_to_delete_id, started_at, finished_at, error) "
                      "SELECT j, 'delete', gen_random_uuid(), now() - interval '1 hour', now() - interval '1 hour', "
                      "'S3 unreachable' FROM unnest(%s::uuid[]) AS j", (job_ids,))  # fmt: skip
        with psycopg.connect(db_url) as other:  # the other retry and the worker, as one interleaved session
            other.execute("LOCK TABLE job_queue IN SHARE MODE")  # reads go on, writes to the queue wait
            held = start_ops("jobs", "retry", "--failed", "--json", env={"DB_URL": db_url})
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(db_url, "ops@%") and time.monotonic() < deadline:
                time.sleep(0.1)
            other.execute("INSERT INTO job_history (job_id, job_task, picture_to_delete_id, started_at, finished_at) "
                          "SELECT job_id, job_task, picture_to_delete_id, now(), now() FROM job_history")  # fmt: skip
        out, err = held.communicate(timeout=60)
        result = json.loads(out) if held.returncode == 0 else {}
        with psycopg.connect(db_url) as c:
            queued = c.execute("SELECT count(*) FROM job_queue").fetchone()[0]
        scenario.run(held.returncode == 0 and result["requeued"] == [] and queued == 0,
                     f"exit {held.returncode}, requeued {len(result.get('requeued', []))}, queued {queued}: {err[-300:]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes
