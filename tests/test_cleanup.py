"""`ops cleanup` on real storage: local folders and S3 (moto)."""

from __future__ import annotations

import json
import subprocess
from uuid import uuid4

import pytest

from ops import storage
from ops.settings import Settings
from tests.factories import Pic, is_panoramax, make_account, make_sequence, picture_ids, rows
from tests.storage_helpers import DERIVATIVES, env, local_store, prepared_sequence, s3_store


def test_full_cleanup_of_one_sequence_keeps_shared_pictures(ops, conn, db_url, store, instance):
    i = instance
    result = ops("cleanup", str(i["seq1"]), "--json", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == {"sequences": 1, "sequences_pictures": 3, "pictures": 2, "job_queue": 0, "upload_sets": 0}
    assert summary["files"] == {"permanent": 2, "derivates": 8, "tmp": 2}
    assert picture_ids(conn) == {i["shared"], i["c"]}
    assert conn.execute("SELECT id FROM sequences").fetchall() == [(i["seq2"],)]
    assert store.files() == i["files"][i["shared"]] | i["files"][i["c"]]
    assert rows(conn, "job_queue") == 0
    history = conn.execute("SELECT picture_to_delete_id, error FROM job_history ORDER BY 1").fetchall()
    assert sorted(history) == sorted([(i["a"], None), (i["b"], None)])
    if store.kind == "local":  # emptied folders are pruned up to the area root
        left = store.dirs()
        assert {"permanent", "derivates", "tmp"} <= left
        kept = {str(i["shared"])[:2], str(i["c"])[:2]}
        for gone in (i["a"], i["b"]):
            if str(gone)[:2] not in kept:
                assert f"permanent/{str(gone)[:2]}" not in left and f"derivates/{str(gone)[:2]}" not in left


def test_several_ids_select_shared_pictures_too(ops, conn, db_url, store, instance):
    i = instance
    result = ops("cleanup", str(i["seq1"]), str(i["seq2"]), "--json", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"]["pictures"] == 4
    assert picture_ids(conn) == set() and rows(conn, "sequences") == 0
    assert store.files() == set()


def test_database_only_leaves_every_file(ops, conn, db_url, store, instance):
    before = store.files()
    result = ops("cleanup", str(instance["seq1"]), "--database", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    assert "files: untouched" in result.stdout
    assert picture_ids(conn) == {instance["shared"], instance["c"]}
    assert store.files() == before
    assert rows(conn, "job_queue") == 0


def test_database_only_needs_no_storage_settings(ops, conn, db_url, instance):
    result = ops("cleanup", str(instance["seq1"]), "--database", env={"DB_URL": db_url})
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("flag, gone_area", [("--cache", "derivates"), ("--permanent-pictures", "permanent")])
def test_file_flags_delete_only_their_files_and_not_the_database(ops, conn, db_url, store, instance, flag, gone_area):
    i = instance
    before_rows = {t: rows(conn, t) for t in ("sequences", "pictures", "sequences_pictures")}
    result = ops("cleanup", str(i["seq1"]), flag, env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    expected = set().union(*i["files"].values())
    expected -= {f for p in (i["a"], i["b"]) for f in i["files"][p] if f.startswith(gone_area + "/")}
    assert store.files() == expected
    assert {t: rows(conn, t) for t in before_rows} == before_rows


def test_dry_run_counts_and_changes_nothing(ops, conn, db_url, store, instance):
    before = store.files()
    result = ops("cleanup", str(instance["seq1"]), "--dry-run", "--json", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True
    assert summary["rows"]["pictures"] == 2 and summary["files"] == {"permanent": 2, "derivates": 8, "tmp": 2}
    assert store.files() == before and len(picture_ids(conn)) == 4
    assert rows(conn, "job_queue") == 0


def test_whole_instance_needs_yes_then_wipes_everything_but_accounts(ops, conn, db_url, store, instance):
    refused = ops("cleanup", env=env(db_url, store))
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert len(picture_ids(conn)) == 4
    accounts, tokens = rows(conn, "accounts"), rows(conn, "tokens")
    result = ops("cleanup", "--yes", "--json", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"]["pictures"] == 4 and summary["files"]["derivates"] == 16
    assert rows(conn, "pictures") == rows(conn, "sequences") == rows(conn, "sequences_pictures") == 0
    assert (rows(conn, "accounts"), rows(conn, "tokens")) == (accounts, tokens)
    assert store.files() == set()


def test_interrupted_cleanup_finishes_on_rerun_or_by_the_worker(ops, conn, db_url, store, instance):
    i = instance
    # stop right after the commit: rows gone, delete jobs queued, files still there
    first = ops("cleanup", str(i["seq1"]), "--enqueue-only", env=env(db_url, store))
    assert first.exit_code == 0, first.stderr
    assert rows(conn, "job_queue") == 2
    assert i["files"][i["a"]] <= store.files()
    rerun = ops("cleanup", str(i["seq1"]), "--json", env=env(db_url, store))
    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(rerun.stdout)["finished_earlier_delete_jobs"] == 2
    assert store.files() == i["files"][i["shared"]] | i["files"][i["c"]]
    # the same state finished by the worker instead
    second = ops("cleanup", str(i["seq2"]), "--enqueue-only", env=env(db_url, store))
    assert second.exit_code == 0
    worker = ops("worker", "--once", "--json", env=env(db_url, store))
    assert worker.exit_code == 0, worker.stderr
    assert json.loads(worker.stdout)["done"] == 2
    assert store.files() == set() and rows(conn, "job_queue") == 0


def test_a_delete_job_already_queued_for_a_picture_is_merged_not_doubled(ops, conn, db_url, store, instance):
    """A failing job for one of the pictures (its originals only, 3 errors, waiting): the cleanup leaves one
    job for it, naming every kind of file, started afresh."""
    i = instance
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id, args, nb_errors, to_do_after_ts) "
                 "VALUES ('delete', %s, %s, 3, now() + interval '1 hour')",
                 (i["a"], json.dumps({"files": ["permanent"]})))  # fmt: skip
    result = ops("cleanup", str(i["seq1"]), "--enqueue-only", env=env(db_url, store))
    assert result.exit_code == 0, result.stderr
    jobs = conn.execute("SELECT args -> 'files', nb_errors, to_do_after_ts FROM job_queue "
                        "WHERE picture_to_delete_id = %s", (i["a"],)).fetchall()  # fmt: skip
    assert jobs == [(["derivates", "permanent", "tmp"], 0, None)]
    assert rows(conn, "job_queue") == 2


def test_unknown_and_malformed_ids_change_nothing(ops, conn, db_url, store, instance):
    before = store.files()
    assert ops("cleanup", "nope", env=env(db_url, store)).exit_code == 2
    unknown = str(uuid4())
    result = ops("cleanup", str(instance["seq1"]), unknown, env=env(db_url, store))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no such sequence: {unknown} (nothing was changed)"
    assert store.files() == before and len(picture_ids(conn)) == 4


def test_upstream_delete_trigger_does_not_turn_database_cleanup_into_file_deletion(ops, conn, db_url, store, instance):
    if not is_panoramax(conn):  # Panoramax's own trigger is there already; ops's database gets the same
        conn.execute("""
        CREATE FUNCTION ask_for_all_file_deletion_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO job_queue (picture_to_delete_id, task)
            SELECT id, 'delete' FROM old_table ON CONFLICT (picture_to_delete_id) DO NOTHING;
            RETURN NULL;
        END $$;
        CREATE TRIGGER pictures_deletion AFTER DELETE ON pictures REFERENCING OLD TABLE AS old_table
        FOR EACH STATEMENT EXECUTE FUNCTION ask_for_all_file_deletion_after_delete();
        """)  # fmt: skip
    before = store.files()
    assert ops("cleanup", str(instance["seq1"]), "--database", env=env(db_url, store)).exit_code == 0
    assert rows(conn, "job_queue") == 0
    ops("worker", "--once", env=env(db_url, store))
    assert store.files() == before


def test_storage_misconfiguration_is_one_line_without_secrets(ops, db_url, s3, tmp_path):
    cases = [
        ({"FS_URL": str(tmp_path), "FS_TMP_URL": str(tmp_path)}, "set either FS_URL or"),
        ({"FS_PERMANENT_URL": str(tmp_path), "FS_DERIVATES_URL": str(tmp_path)}, "FS_TMP_URL missing"),
        ({}, "no storage configured"),
        ({"FS_URL": f"s3://KEYID:TopSecret99@nope/x?endpoint_url={s3}"}, "S3 bucket 'nope' does not exist"),
        ({"FS_URL": str(tmp_path / "absent")}, "does not exist"),
    ]
    for settings, message in cases:
        result = ops("cleanup", str(uuid4()), "--cache", env={"DB_URL": db_url, **settings})
        assert result.exit_code == 1, (settings, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
        assert "TopSecret99" not in result.stderr + result.stdout


@pytest.mark.slow
def test_s3_deletes_at_most_one_request_per_thousand_keys(ops, conn, db_url, s3):
    store = s3_store(s3)
    account = make_account(conn)
    pics = [Pic(1.0 + i * 1e-5, 1.0) for i in range(1200)]
    seq = make_sequence(conn, account, pics)
    for p in pics:
        store.write(f"permanent/{storage.picture_key(p.id)}")
    result = ops("cleanup", str(seq), "--permanent-pictures", "--json", env={"DB_URL": db_url, **store.env})
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["files"]["permanent"] == 1200
    assert summary["storage_requests"]["DeleteObjects"] == 2
    assert store.files() == set()


def test_local_deletion_in_threads_prunes_every_folder_and_reports_the_one_that_fails(tmp_path):
    """1,500 pictures: every first-level folder is shared by several pictures, deleted by the threads at once.
    One picture's derivates folder is immutable (chattr +i refuses even root): only that picture fails, with
    its reason, and only what the flag protects stays (its tiles/ subfolder is not immutable: it goes)."""
    store = local_store(tmp_path)
    ids = [uuid4() for _ in range(1500)]
    for pic_id in ids:
        store.add_picture(pic_id)
    stuck = ids[700]
    stuck_folder = store.root / "derivates" / storage.derivates_folder(stuck)
    if subprocess.run(["chattr", "+i", str(stuck_folder)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable flag (chattr)")
    try:
        result = storage.from_settings(Settings(fs_url=str(store.root))).delete_pictures(
            {"permanent": ids, "derivates": ids, "tmp": ids}
        )
    finally:
        subprocess.run(["chattr", "-i", str(stuck_folder)], check=True)
    assert list(result.failed) == [stuck]
    assert "derivates" in result.failed[stuck] and "Operation not permitted" in result.failed[stuck]
    assert result.files == {"permanent": 1500, "derivates": 1499 * 4 + 2, "tmp": 1500}
    kept = {d for d in DERIVATIVES if "/" not in d}
    assert store.files() == {f"derivates/{storage.derivates_folder(stuck)}/{d}" for d in kept}
    stuck_parents = {"/".join(f"derivates/{storage.derivates_folder(stuck)}".split("/")[:n]) for n in range(1, 7)}
    assert store.dirs() == {"permanent", "tmp"} | stuck_parents | {f"derivates/{storage.derivates_folder(stuck)}/tiles"}


def test_enqueue_only_says_what_it_queued_and_warns_on_stderr(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path)
    seq, _pics = prepared_sequence(conn, store, 3)
    result = ops("cleanup", str(seq), "--enqueue-only", "--json", env={"DB_URL": db_url, **store.env})
    summary = json.loads(result.stdout)
    assert summary["files_queued_for_worker"] == 3 and summary["rows"]["pictures"] == 3
