"""A storage location that is not the instance's (an area on a volume that did not mount, an empty bucket, a
prefix typo, something that is not S3 answering 200 with an HTML page) is refused before any row goes: every
deleting command and the worker exit non-zero with one line saying so, and rows, jobs and the real files
stay as they were."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from tests.factories import rows
from tests.reliability.faults import FaultProxy
from tests.storage_helpers import Store, env, local_store, prepared_sequence, s3_store

pytestmark = pytest.mark.category("fault")
TABLES = ("pictures", "sequences", "job_queue")


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as c:
        return {t: rows(c, t) for t in TABLES}


def deleting_commands(seq: str) -> list[tuple[str, ...]]:
    return [
        ("cleanup", seq),
        ("cleanup", "--yes"),
        ("cleanup", seq, "--dry-run"),
        ("user", "bob", "--delete-data", "--wait"),
        ("worker", "--once"),
        ("storage", "orphans", "--delete", "--min-age", "0s"),
    ]


def refused_everywhere(scenario, ops, db_url: str, real: Store, wrong_env: dict[str, str], seq: str, what: str) -> None:
    before_rows, before_files = counts(db_url), real.files()
    for command in deleting_commands(seq):
        result = ops(*command, env=env(db_url, **wrong_env))
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        said = errors and ("holds none of" in errors[-1] or "holds no file" in errors[-1] or "not S3" in errors[-1])
        unchanged = counts(db_url) == before_rows and real.files() == before_files
        scenario.run(result.exit_code != 0 and bool(said) and unchanged,
                     f"{what}: {' '.join(command)}: exit {result.exit_code}, {errors[-1:]}, rows "
                     f"{counts(db_url)} vs {before_rows}, files kept: {real.files() == before_files}")  # fmt: skip


def _instance(conn, store: Store) -> str:
    seq, _pics = prepared_sequence(conn, store, 3)
    prepared_sequence(conn, store, 2, lon=2.0, name="bob")
    # a delete job queued by an earlier deletion, its picture's files still there
    _s, [gone, *_] = prepared_sequence(conn, store, 2, lon=3.0, name="carol")
    conn.execute("DELETE FROM sequences_pictures WHERE pic_id = %s", (gone.id,))
    conn.execute("DELETE FROM pictures WHERE id = %s", (gone.id,))
    conn.execute(
        "INSERT INTO job_queue (picture_to_delete_id, task) SELECT %s, 'delete' WHERE NOT EXISTS "
        "(SELECT 1 FROM job_queue WHERE picture_to_delete_id = %s)",
        (gone.id, gone.id),
    )  # Panoramax's trigger queues one
    return str(seq)


def test_local_areas_that_did_not_mount_are_refused(scenario, ops, conn, db_url, tmp_path):
    """FS_URL at a root whose permanent/, derivates/ and tmp/ exist but are empty (volumes that did not
    mount), and FS_*_URL at empty folders: every deleting command refuses, nothing changes"""
    real = local_store(tmp_path / "real")
    seq = _instance(conn, real)
    empty = tmp_path / "unmounted"
    for area in ("permanent", "derivates", "tmp"):
        (empty / area).mkdir(parents=True)
    refused_everywhere(scenario, ops, db_url, real, {"FS_URL": str(empty)}, seq, "empty areas under FS_URL")
    separate = {"FS_PERMANENT_URL": str(empty / "permanent"), "FS_DERIVATES_URL": str(real.root / "derivates"),
                "FS_TMP_URL": str(real.root / "tmp")}  # fmt: skip
    refused_everywhere(scenario, ops, db_url, real, separate, seq, "an empty FS_PERMANENT_URL")
    assert scenario.failures == 0, scenario.notes

    # the right location: the same commands work (the proof does not refuse a real instance)
    result = ops("cleanup", seq, env=env(db_url, real))
    assert result.exit_code == 0, result.stderr
    shutil.rmtree(empty)


def test_s3_locations_that_are_not_the_instance_s_are_refused(scenario, ops, conn, db_url, s3):
    """FS_URL at an existing empty bucket, at a prefix typo, and through a proxy answering every request 200
    with an HTML page: every deleting command refuses, nothing changes"""
    real = s3_store(s3)
    seq = _instance(conn, real)
    s3_store(s3, bucket="empty-bucket")
    refused_everywhere(scenario, ops, db_url, real, {"FS_URL": "s3://empty-bucket/geovisio"}, seq, "an empty bucket")
    refused_everywhere(scenario, ops, db_url, real, {"FS_URL": f"s3://{real.bucket}/geovisi"}, seq, "a prefix typo")
    proxy = FaultProxy(s3)
    proxy.mode = "html"
    try:
        html = {"FS_URL": f"s3://{real.bucket}/geovisio?endpoint_url={proxy.url}", "AWS_ENDPOINT_URL": proxy.url}
        refused_everywhere(scenario, ops, db_url, real, html, seq, "an HTML page answering 200")
    finally:
        proxy.close()
    assert scenario.failures == 0, scenario.notes
    result = ops("cleanup", seq, env=env(db_url, real))
    assert result.exit_code == 0, result.stderr
