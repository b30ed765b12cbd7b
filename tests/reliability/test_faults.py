"""Faults under the commands that delete: S3 answering 500 or dropping connections (a proxy in front of
moto), a database backend terminated mid-batch, the database restarted under the worker. Whatever
happens, no row points at a deleted file, and a later run finishes the work."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import boto3
import psycopg
import pytest

from ops.localdb import LocalCluster
from ops.schema import runner
from ops.storage import derivates_folder, picture_key
from tests.factories import make_account, make_sequence, prepared, walk
from tests.reliability.conftest import run_ops, start_ops
from tests.reliability.faults import FaultProxy
from tests.storage_helpers import local_store, prepared_sequence

pytestmark = pytest.mark.category("fault")


def rows_point_at_files(url: str, files: set[str]) -> bool:
    """Every picture row still has its original (the dangerous direction never happens)."""
    with psycopg.connect(url) as c:
        ids = [r[0] for r in c.execute("SELECT id FROM pictures")]
    return all(f"permanent/{picture_key(i)}" in files for i in ids)


@pytest.mark.parametrize("mode", ["500", "drop"])
def test_s3_faults_leave_rows_consistent_and_a_later_run_finishes(scenario, db_url, s3, mode, monkeypatch):
    """ops cleanup while S3 answers 500 / drops connections to every DeleteObjects (a storage-wide failure:
    the jobs stay queued with their attempts, the cleanup exits 1), then ops worker once it heals"""
    proxy = FaultProxy(s3)
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1")
    client.create_bucket(Bucket="pics")
    env = {"DB_URL": db_url, "FS_URL": f"s3://pics/g?endpoint_url={proxy.url}", "AWS_MAX_ATTEMPTS": "2"}
    try:
        for run in range(3):
            with psycopg.connect(db_url, autocommit=True) as c:
                account = make_account(c, f"u{run}")
                pics = walk(1.0 + run, 1.0, 6)
                seq = make_sequence(c, account, pics)
                prepared(c)
            for p in pics:
                for key in (f"permanent/{picture_key(p.id)}", f"derivates/{derivates_folder(p.id)}/sd.jpg"):
                    client.put_object(Bucket="pics", Key=f"g/{key}", Body=b"x")
            proxy.mode = mode
            failed = run_ops("cleanup", str(seq), "--json", env=env)
            summary = json.loads(failed.stdout) if failed.stdout.startswith("{") else {}
            listed = {o["Key"][2:] for o in client.list_objects_v2(Bucket="pics").get("Contents", [])}
            with psycopg.connect(db_url) as c:
                waiting = c.execute("SELECT count(*), max(nb_errors) FROM job_queue").fetchone()
            ok = (failed.returncode == 1 and summary["storage_unavailable"] and waiting == (6, 0)
                  and summary["delete_jobs"]["jobs"] == 0 and rows_point_at_files(db_url, listed)
                  and "storage unavailable" in failed.stderr)  # fmt: skip
            proxy.mode = "pass"
            healed = run_ops("worker", "--once", env=env)
            listed = {o["Key"][2:] for o in client.list_objects_v2(Bucket="pics").get("Contents", [])}
            ok = ok and healed.returncode == 0 and listed == set()
            scenario.run(ok, f"{failed.stderr.strip()[-200:]} {summary} {healed.stderr.strip()[-200:]}")
    finally:
        proxy.close()
    scenario.detail += f" ({proxy.seen.get(mode, 0)} faulty answers)"
    assert scenario.failures == 0, scenario.notes


def test_backend_terminated_mid_cleanup_then_rerun(scenario, db_url, tmp_path):
    """ops cleanup (batches of 1 delete job) whose database session is terminated mid-way, then run again"""
    for run in range(5):
        store = local_store(tmp_path / str(run))
        with psycopg.connect(db_url, autocommit=True) as c:
            seq, pics = prepared_sequence(c, store, 40, lon=1.0 + run, name=f"t{run}")
        proc = start_ops("cleanup", str(seq), "--batch-size", "1", env={"DB_URL": db_url, **store.env})
        time.sleep(0.6 + 0.1 * run)
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'ops@%%'")
        _out, err = proc.communicate(timeout=120)
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        one_line = proc.returncode == 0 or (len(errors) == 1 and "Traceback" not in err)
        consistent = rows_point_at_files(db_url, store.files())
        rerun = run_ops("cleanup", str(seq), env={"DB_URL": db_url, **store.env})
        left = {f for f in store.files() if any(str(p.id)[9:] in f for p in pics)}
        scenario.run(one_line and consistent and rerun.returncode == 0 and left == set(),
                     f"rc {proc.returncode} {err.strip()[-200:]} / rerun {rerun.stderr.strip()[-200:]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


def test_database_restarted_under_the_worker(scenario):
    """ops worker running while its PostgreSQL server restarts: it reconnects and finishes the queue"""
    base = Path(tempfile.mkdtemp(prefix="ops-restart-", dir="/tmp"))
    base.chmod(0o755)
    cluster = LocalCluster(base / "pg", fast=True)
    url = cluster.start()
    try:
        runner.upgrade(url)
        store = local_store(base / "files")
        with psycopg.connect(url, autocommit=True) as c:
            account = make_account(c)
            pics = walk(1.0, 1.0, 60)
            seq = make_sequence(c, account, pics)
        for p in pics:
            store.add_picture(p.id)
        assert run_ops("cleanup", str(seq), "--enqueue-only", env={"DB_URL": url, **store.env}).returncode == 0
        worker = start_ops("worker", "--batch-size", "1", "--json", env={"DB_URL": url, **store.env})
        time.sleep(1.0)
        restart = threading.Thread(target=lambda: (cluster.stop(), time.sleep(1.0), cluster.start()))
        restart.start()
        restart.join()
        deadline = time.monotonic() + 90
        left = -1
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(url) as c:
                    left = c.execute("SELECT count(*) FROM job_queue").fetchone()[0]
            except psycopg.OperationalError:
                left = -1
            if left == 0:
                break
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
        with psycopg.connect(url) as c:
            history = c.execute("SELECT count(DISTINCT job_id) FROM job_history WHERE error IS NULL").fetchone()[0]
        ok = worker.returncode == 0 and left == 0 and store.files() == set() and json.loads(out)["done"] == history
        scenario.run(ok, f"rc {worker.returncode}, left {left}, {err.strip()[-300:]}")
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    assert scenario.failures == 0, scenario.notes
