"""`ops worker`: delete jobs, retries, a storage that does not answer, the refresh schedule."""

from __future__ import annotations

import signal
import time
from uuid import uuid4

import pytest

from ops import storage, worker
from ops.settings import Settings
from tests.conftest import start_ops
from tests.factories import is_panoramax, rows
from tests.storage_helpers import deny_deletion, env, local_store, s3_store


def test_worker_keeps_files_of_a_picture_back_in_the_database(ops, conn, db_url, store, instance):
    i = instance
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', %s)", (i["c"],))
    result = ops("worker", "--once", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    assert i["files"][i["c"]] <= store.files()
    warning = conn.execute("SELECT warning FROM job_history WHERE picture_to_delete_id = %s", (i["c"],)).fetchone()[0]
    assert "in the database again" in warning


def test_two_workers_do_each_job_once(db_url, conn, tmp_path):
    store = local_store(tmp_path)
    ids = [uuid4() for _ in range(1000)]
    for pic_id in ids:
        store.write(f"permanent/{storage.picture_key(pic_id)}")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO job_queue (task, picture_to_delete_id, args) VALUES ('delete', %s, '{\"files\": [\"permanent\"]}')",
            [(i,) for i in ids],
        )
    procs = [start_ops("worker", "--once", "--batch-size", "25", env={"DB_URL": db_url, **store.env}) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert conn.execute("SELECT count(*), count(DISTINCT picture_to_delete_id) FROM job_history").fetchone() == (
        1000,
        1000,
    )
    assert rows(conn, "job_queue") == 0
    assert store.files() == set()
    per_worker = [int(o[0].split(" delete jobs")[0]) for o in outs]
    assert sum(per_worker) == 1000


def test_failing_jobs_are_retried_with_backoff_then_given_up(conn, db_url, s3):
    """A file S3 fails to delete for a transient reason (InternalError per key) fails its own job: retried
    later with backoff, then given up."""
    from tests.reliability.faults import FaultProxy

    store = s3_store(s3)
    pic = uuid4()
    store.add_picture(pic)
    proxy = FaultProxy(s3)
    proxy.mode = "keyerror"
    try:
        bucket = storage.from_settings(Settings(fs_url=f"s3://{store.bucket}/geovisio?endpoint_url={proxy.url}"))
        conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', %s)", (pic,))
        first = worker.process_batch(conn, bucket, 10, nb_retries=2)
        assert (first.jobs, first.retried_later, first.given_up) == (1, 1, 0)
        nb_errors, later = conn.execute("SELECT nb_errors, to_do_after_ts > now() FROM job_queue").fetchone()
        assert nb_errors == 1 and later
        assert worker.process_batch(conn, bucket, 10, nb_retries=2).jobs == 0  # not due yet
        conn.execute("UPDATE job_queue SET to_do_after_ts = now() - interval '1 second'")
        second = worker.process_batch(conn, bucket, 10, nb_retries=2)
        assert (second.jobs, second.given_up) == (1, 1)
    finally:
        proxy.close()
    assert rows(conn, "job_queue") == 0
    errors = [r[0] for r in conn.execute("SELECT error FROM job_history ORDER BY started_at")]
    assert len(errors) == 2 and all("InternalError" in e for e in errors)


def test_a_refused_deletion_fails_its_job_at_once(conn, db_url, s3):
    """S3 refusing a deletion (AccessDenied) is no transient error: the job fails at once, no retry."""
    store = s3_store(s3)
    pic = uuid4()
    store.add_picture(pic)
    deny_deletion(store)
    bucket = storage.from_settings(Settings(fs_url=store.env["FS_URL"]))
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', %s)", (pic,))
    first = worker.process_batch(conn, bucket, 10, nb_retries=5)
    assert (first.jobs, first.retried_later, first.given_up) == (1, 0, 1) and rows(conn, "job_queue") == 0
    assert "AccessDenied" in conn.execute("SELECT error FROM job_history").fetchone()[0]


def test_a_storage_that_does_not_answer_costs_no_job_an_attempt(conn, db_url, s3):
    broken = storage.from_settings(Settings(fs_url=f"s3://missing-bucket/x?endpoint_url={s3}"))
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', %s)", (uuid4(),))
    for _ in range(3):
        batch = worker.process_batch(conn, broken, 10, nb_retries=2)
        assert batch.jobs == 0 and "missing-bucket" in (batch.storage_unavailable or "")
    assert conn.execute("SELECT nb_errors, to_do_after_ts FROM job_queue").fetchone() == (0, None)
    assert rows(conn, "job_history") == 0


def test_worker_refresh_schedule():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert worker.next_refresh("0 2 * * *", None, now) == now
    assert worker.next_refresh("59 23 * * *", datetime(2026, 11, 28, 9, 0, tzinfo=UTC), now) == datetime(
        2026, 11, 28, 23, 59, tzinfo=UTC
    )


def test_worker_refreshes_views_when_due_and_rejects_bad_cron(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path)
    bad = ops("worker", "--once", "--refresh-cron", "every day", env={"DB_URL": db_url, **store.env})
    assert bad.exit_code == 2
    assert "PICTURE_PROCESS_REFRESH_CRON should be a valid cron syntax, got 'every day'" in bad.stderr
    table, refreshed = (
        ("refresh_database", "pictures_aggregate_grid") if is_panoramax(conn) else ("ops_views", "pictures_grid")
    )
    conn.execute(f"UPDATE {table} SET refreshed_at = now() - interval '2 days'")
    proc = start_ops("worker", env={"DB_URL": db_url, **store.env})
    try:
        for _ in range(100):
            if conn.execute(f"SELECT bool_and(refreshed_at > now() - interval '1 minute') FROM {table}").fetchone()[0]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the worker did not refresh the views")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"refresh {refreshed}: refreshed" in err
    assert "stopping: the current batch ends now" in err
