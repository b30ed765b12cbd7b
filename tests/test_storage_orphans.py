"""`ops storage orphans`: files without rows, found and removed."""

from __future__ import annotations

import json

from tests.storage_helpers import env, local_store


def test_orphans_are_found_and_removed(ops, conn, db_url, store, instance):
    i = instance
    ops("cleanup", str(i["seq1"]), "--database", env=env(db_url, store))
    store.write("permanent/README.txt")  # outside the layout: never touched
    listed = ops("storage", "orphans", "--min-age", "0", "--json", env=env(db_url, store))
    assert listed.exit_code == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["orphan_files"] == {"permanent": 2, "derivates": 8, "tmp": 2}
    assert report["orphan_pictures"] == {"permanent": 2, "derivates": 2, "tmp": 2}
    assert report["unrecognized_files"] == 1
    recent = json.loads(ops("storage", "orphans", "--json", env=env(db_url, store)).stdout)
    assert recent["orphan_files"] == {"permanent": 0, "derivates": 0, "tmp": 0}  # all younger than an hour
    assert recent["skipped_too_recent"] == 12  # the orphans' files only: the pictures' own are no orphans
    deleted = ops("storage", "orphans", "--delete", "--min-age", "0", "--json", env=env(db_url, store))
    assert json.loads(deleted.stdout)["removed_files"] == {"permanent": 2, "derivates": 8, "tmp": 2}
    assert store.files() == i["files"][i["shared"]] | i["files"][i["c"]] | {"permanent/README.txt"}


def test_pending_delete_job_protects_files_from_orphan_removal(ops, conn, db_url, store, instance):
    i = instance
    ops("cleanup", str(i["seq1"]), "--enqueue-only", env=env(db_url, store))
    report = json.loads(ops("storage", "orphans", "--min-age", "0", "--json", env=env(db_url, store)).stdout)
    assert report["orphan_files"] == {"permanent": 0, "derivates": 0, "tmp": 0}


def test_orphans_take_a_duration_and_say_their_summary_once(ops, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    orphan = "permanent/00/00/00/01/1111-4222-8333-444455556666.jpg"
    store.write(orphan)
    result = ops("storage", "orphans", "--min-age", "0s", env=env(db_url, store))
    assert result.exit_code == 0 and f"  {orphan}" in result.stdout
    assert "orphan files" not in result.stderr
    assert ops("storage", "orphans", "--min-age", "1d", env=env(db_url, store)).exit_code == 0
