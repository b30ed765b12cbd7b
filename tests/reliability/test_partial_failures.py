"""A run that could not delete every file it should is never exit 0: ``storage orphans --delete`` with one
key refused, ``cleanup`` and ``worker --once`` whose deletions S3 refuses. The counts are still printed (and
in ``--json`` under ``not_deleted``), and the files that could go went."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from ops.storage import picture_key
from tests.storage_helpers import deny_deletion, env, prepared_sequence, s3_store

pytestmark = pytest.mark.category("fault")


def _deny_one(store, key: str) -> None:
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                 "Resource": f"arn:aws:s3:::{store.bucket}/{store.prefix}{key}"}  # fmt: skip
    store.client.put_bucket_policy(Bucket=store.bucket, Policy=json.dumps({"Statement": [statement]}))


def test_orphans_delete_with_one_key_refused_exits_1(scenario, ops, conn, db_url, s3):
    """three orphan originals, S3 refusing one: two go, the third is counted under not_deleted, exit 1"""
    store = s3_store(s3)
    prepared_sequence(conn, store, 2)  # the proof's ready pictures
    orphans = [f"permanent/{picture_key(uuid4())}" for _ in range(3)]
    for key in orphans:
        store.write(key)
    _deny_one(store, orphans[0])
    result = ops("storage", "orphans", "--delete", "--min-age", "0s", "--json", env=env(db_url, store))
    report = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    left = {k for k in orphans if k in store.files()}
    scenario.run(result.exit_code == 1 and left == {orphans[0]} and report.get("not_deleted", {}).get("permanent") == 1
                 and report["removed_files"]["permanent"] == 2 and "could not be deleted" in result.stderr,
                 f"exit {result.exit_code}, left {left}, {result.stdout[:300]} {result.stderr[-300:]}")  # fmt: skip
    quiet = ops("-q", "storage", "orphans", "--delete", "--min-age", "0s", env=env(db_url, store))
    scenario.run(
        quiet.exit_code == 1 and "could not be deleted" in quiet.stderr, f"-q: {quiet.exit_code} {quiet.stderr}"
    )
    assert scenario.failures == 0, scenario.notes


def test_cleanup_and_worker_whose_deletions_are_refused_exit_1(scenario, ops, conn, db_url, s3):
    """S3 refusing every DeleteObject: a cleanup of a sequence deletes its rows, its jobs fail at once (a
    refusal is no transient error) and it exits 1; a worker --once on jobs queued by another cleanup fails
    them the same way and exits 1"""
    store = s3_store(s3)
    prepared_sequence(conn, store, 2, lon=2.0, name="bob")  # stays: the proof's ready pictures
    seq, _pics = prepared_sequence(conn, store, 3)
    queued, _more = prepared_sequence(conn, store, 3, lon=3.0, name="carol")
    assert ops("cleanup", str(queued), "--enqueue-only", env=env(db_url, store)).exit_code == 0
    before = store.files()
    deny_deletion(store)
    result = ops("cleanup", str(seq), "--json", env=env(db_url, store))
    summary = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    scenario.run(result.exit_code == 1 and "could not be deleted" in result.stderr and store.files() == before
                 and summary.get("delete_jobs", {}).get("given_up") == 3,
                 f"cleanup: exit {result.exit_code} {summary.get('delete_jobs')} {result.stderr[-300:]}")  # fmt: skip
    worker = ops("worker", "--once", "--json", env=env(db_url, store))
    summary = json.loads(worker.stdout) if worker.stdout.startswith("{") else {}
    scenario.run(worker.exit_code == 1 and summary.get("jobs") == 3 and summary.get("given_up") == 3
                 and "delete jobs failed" in worker.stderr and store.files() == before,
                 f"worker: exit {worker.exit_code} {worker.stdout[:300]} {worker.stderr[-300:]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_count_is_what_was_removed(scenario, ops, conn, db_url, s3, tmp_path, kind):
    """2 of 7 originals already gone: the dry run says 5, the run says 5 deleted and 2 already gone (it said
    7: keys sent, not objects removed)"""
    from tests.storage_helpers import local_store

    store = local_store(tmp_path) if kind == "local" else s3_store(s3)
    prepared_sequence(conn, store, 2, lon=2.0, name="bob")  # stays: the proof's ready pictures
    seq, pics = prepared_sequence(conn, store, 7)
    for pic in pics[:2]:
        gone = f"permanent/{picture_key(pic.id)}"
        if store.root is not None:
            (store.root / gone).unlink()
        else:
            store.client.delete_object(Bucket=store.bucket, Key=store.prefix + gone)
    dry = json.loads(ops("cleanup", str(seq), "--dry-run", "--json", env=env(db_url, store)).stdout)
    done = ops("cleanup", str(seq), "--json", env=env(db_url, store))
    result = json.loads(done.stdout)
    scenario.run(dry["files"]["permanent"] == 5 and result["files"]["permanent"] == 5
                 and result["files_already_gone"].get("permanent") == 2,
                 f"{kind}: dry {dry['files']}, run {result['files']} gone {result.get('files_already_gone')}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes
