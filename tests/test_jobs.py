"""`ops jobs` (counts, list, retry, prune) on both kinds of database."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from tests.factories import make_account, make_sequence, walk
from tests.storage_helpers import deny_deletion, env, local_store, prepared_sequence, s3_store


@pytest.fixture
def failed_jobs(ops, conn, db_url, s3):
    """Three delete jobs given up after a real failing deletion (a bucket refusing DeleteObject)."""
    store = s3_store(s3)
    seq, pics = prepared_sequence(conn, store, 3)
    env = {"DB_URL": db_url, **store.env}
    assert ops("cleanup", str(seq), "--enqueue-only", env=env).exit_code == 0
    deny_deletion(store)
    worker = ops("worker", "--once", "--nb-retries", "1", "--json", env=env)
    assert worker.exit_code == 1 and "3 delete jobs failed (3 given up" in worker.stderr, worker.stderr
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
    cut = ops("jobs", "list", "--failed", "--limit", "2", env=env)  # never a silent cut
    assert cut.stdout.splitlines()[-1] == "… and 1 more (3 in all): --limit N or --all to see them"
    data = json.loads(ops("jobs", "list", "--failed", "--limit", "2", "--json", env=env).stdout)
    assert (len(data["jobs"]), data["total"], data["more"]) == (2, 3, 1)
    assert len(json.loads(ops("jobs", "list", "--failed", "--all", "--json", env=env).stdout)["jobs"]) == 3
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


def test_unknown_ids_and_empty_lists_say_so(ops, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    unknown = "00000000-0000-4000-8000-000000000001"
    check = ops("storage", "check", "--sequence", unknown, env=env(db_url, store))
    assert check.exit_code == 1 and f"no such sequence: {unknown}" in check.stderr
    empty = ops("jobs", "list", "--task", "dispatch", env=env(db_url))
    assert empty.exit_code == 0 and empty.stdout == "no dispatch job queued\n"
    failed = ops("jobs", "list", "--failed", "--since", "1h", env=env(db_url))
    assert failed.exit_code == 0 and failed.stdout == "no failed job left the queue in the last 1h\n"
