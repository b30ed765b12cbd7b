"""Every --dry-run changes nothing, anywhere (database dump and file tree compared), and counts its own selection."""

from __future__ import annotations

import json

import pytest

from tests.conftest import database_dump, every_command, file_tree
from tests.factories import make_account, make_sequence, walk
from tests.storage_helpers import env, local_store, prepared_sequence

# --- 1. a dry run changes nothing, anywhere ------------------------------------------------------------


def dry_runs(s1: str, s2: str) -> dict[tuple[str, ...], list[list[str]]]:
    """Every command that has --dry-run, with the invocations that make it do real work."""
    return {
        ("cleanup",): [[s2, "--dry-run"], ["--dry-run"], [s2, "--database", "--cache", "--dry-run"],
                       [s2, "--database", "--permanent-pictures", "--dry-run"], ["--cache", "--dry-run"],
                       [s2, "--database", "--dry-run", "--json"]],
        ("db", "upgrade"): [["--dry-run"]],
        ("db", "rollback"): [["--dry-run"], ["--all", "--dry-run"]],
        ("jobs", "retry"): [["--failed", "--dry-run"]],
        ("jobs", "prune"): [["--older-than", "1s", "--dry-run"], ["--older-than", "1s", "--include-failures",
                                                                  "--dry-run"]],
        ("user",): [["alice", "--delete-data", "--dry-run"], ["alice", "--set-role", "admin", "--dry-run"],
                    ["zoe", "--create", "--set-role", "admin", "--dry-run"]],
        ("sequences", "reorder"): [["--dry-run"], [s1, "--dry-run"]],
        ("set-sequences-heading",): [["--dry-run"], [s2, "--overwrite", "--value", "90", "--dry-run"]],
        ("doctor",): [["--fix", "--dry-run"], ["--fix", "--dry-run", "--sequence", s2, "--json"]],
    }  # fmt: skip


def test_every_command_with_dry_run_is_exercised():
    from ops.cli import cli

    with_dry_run = {path for path, command in every_command(cli) if any(p.name == "dry_run" for p in command.params)}
    assert with_dry_run == set(dry_runs("s1", "s2"))


@pytest.fixture
def busy_instance(ops, conn, db_url, tmp_path):
    """Two sequences with every file on disk; S1 cleaned with --enqueue-only (its delete jobs pending), a
    failed job in the history, a shuffled order, prepare jobs left by Panoramax's trigger on S2."""
    store = local_store(tmp_path / "storage")
    s1, _ = prepared_sequence(conn, store, 6, name="alice")
    pics = walk(3.0, 1.0, 4)[::-1]  # out of order
    s2 = make_sequence(conn, make_account(conn, "bob"), pics)
    for p in pics:
        store.add_picture(p.id)
    assert ops("cleanup", str(s1), "--enqueue-only", env=env(db_url, store)).exit_code == 0
    s3, _ = prepared_sequence(conn, store, 2, lon=5.0, name="alice")
    conn.execute("INSERT INTO job_history (job_id, job_task, picture_to_delete_id, started_at, finished_at, error) "
                 "VALUES (gen_random_uuid(), 'delete', gen_random_uuid(), now() - interval '1 day', "
                 "now() - interval '1 day', 'boom')")  # fmt: skip
    return store, str(s3), str(s2)


def test_a_dry_run_changes_nothing_anywhere(ops, conn, db_url, busy_instance):
    store, s1, s2 = busy_instance
    queued = conn.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0]
    assert queued == 6
    for path, invocations in dry_runs(s1, s2).items():
        for args in invocations:
            db_before, files_before = database_dump(db_url), file_tree(store.root)
            result = ops(*path, *args, env=env(db_url, store))
            assert result.exit_code in (0, 1), (path, args, result.stderr)
            assert "Traceback" not in result.stdout + result.stderr and "unexpected" not in result.stderr, (
                path,
                args,
                result.stderr,
            )
            assert file_tree(store.root) == files_before, (path, args)
            assert database_dump(db_url) == db_before, (path, args)


def test_a_dry_run_counts_its_selection_only(ops, conn, db_url, busy_instance):
    store, _s1, s2 = busy_instance
    result = ops("cleanup", s2, "--dry-run", "--json", env=env(db_url, store))
    summary = json.loads(result.stdout)
    assert summary["files"] == {"permanent": 4, "derivates": 16, "tmp": 4}  # S2's own 4 pictures
    assert summary["delete_jobs"] is None and summary["finished_earlier_delete_jobs"] == 0
    assert conn.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0] == 6
