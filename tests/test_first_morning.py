"""An operator's first morning (issue: a `--dry-run` that deleted files, sequences left without geometry, a
map keeping deleted pictures, and the rough edges a first real user hit), each as the operator met it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, database_dump, every_command, file_tree
from tests.factories import is_panoramax, make_account, make_sequence, walk
from tests.storage_helpers import local_store, prepared_sequence


def env(url: str, store=None, **more: str) -> dict[str, str]:
    return {"DB_URL": url, "FLASK_SECRET_KEY": "k" * 40, **(store.env if store else {}), **more}


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


# --- 2. sequences get their geometry ----------------------------------------------------------------------


def stored(conn, seq):
    return conn.execute("SELECT ST_AsText(geom), bbox::text, nb_pictures, min_picture_ts FROM sequences "
                        "WHERE id = %s", (seq,)).fetchone()  # fmt: skip


def test_reorder_computes_missing_and_stale_fields_of_sequences_in_order(ops, conn, db_url):
    account = make_account(conn)
    in_order = [make_sequence(conn, account, walk(1.0 + i, 1.0, 5, seed=i)) for i in range(3)]
    conn.execute("UPDATE sequences SET geom = NULL, bbox = NULL")  # as Panoramax leaves them before finalize
    stale = in_order[2]
    first = ops("sequences", "reorder", str(in_order[0]), "--json", env=env(db_url))
    assert json.loads(first.stdout)["recomputed"] == [str(in_order[0])]  # named: recomputed though in order
    assert stored(conn, in_order[0])[0].startswith("MULTILINESTRING") and stored(conn, in_order[1])[0] is None
    whole = ops("sequences", "reorder", "--json", env=env(db_url))
    summary = json.loads(whole.stdout)
    assert summary["reordered"] == [] and set(summary["recomputed"]) == {str(s) for s in in_order[1:]}
    assert all(stored(conn, s)[0].startswith("MULTILINESTRING") and stored(conn, s)[1] for s in in_order)
    right = stored(conn, stale)
    conn.execute("UPDATE sequences SET nb_pictures = 99, geom = ST_Multi(ST_MakeLine(ST_MakePoint(0, 0), "
                 "ST_MakePoint(0, 0.0001))) WHERE id = %s", (stale,))  # fmt: skip
    again = json.loads(ops("sequences", "reorder", "--json", env=env(db_url)).stdout)
    assert again["recomputed"] == [str(stale)] and stored(conn, stale) == right
    assert json.loads(ops("sequences", "reorder", "--json", env=env(db_url)).stdout)["recomputed"] == []


# --- 3. the map forgets deleted pictures ------------------------------------------------------------------


def grid(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT ST_AsText(geom), nb_pictures FROM pictures_aggregate_grid").fetchall())


@pytest.mark.parametrize("how", ["cleanup", "delete-data"])
def test_the_map_forgets_deleted_pictures_on_the_next_refresh(ops, conn, db_url, tmp_path, how):
    if not is_panoramax(conn):
        pytest.skip("Panoramax's aggregate grid: ops's own views are refreshed whole")
    store = local_store(tmp_path / "storage")
    prepared_sequence(conn, store, 3, lon=1.0, name="alice")
    gone, _ = prepared_sequence(conn, store, 4, lon=7.0, name="bob")
    assert ops("refresh", "--full", env=env(db_url)).exit_code == 0
    assert sorted(grid(conn).values()) == [3, 4]
    args = ["cleanup", str(gone)] if how == "cleanup" else ["user", "bob", "--delete-data", "--wait"]
    assert ops(*args, env=env(db_url, store)).exit_code == 0
    refreshed = ops("refresh", env=env(db_url))
    assert refreshed.exit_code == 0 and "1 emptied cells removed" in refreshed.stdout, refreshed.stdout
    assert list(grid(conn).values()) == [3]


# --- 4. reorder and headings say what they changed, and have a dry run ---------------------------------


def test_headings_list_the_sequences_they_change_and_leave_deleted_ones(ops, conn, db_url):
    account = make_account(conn)
    moving = make_sequence(conn, account, walk(1.0, 1.0, 4))
    deleted = make_sequence(conn, account, walk(2.0, 1.0, 4), status="deleted")
    dry = ops("set-sequences-heading", str(moving), str(deleted), "--dry-run", env=env(db_url))
    assert f"sequences that would change: 1 ({moving})" in dry.stdout
    assert f"deleted sequences left as they are: 1 ({deleted})" in dry.stdout and "no movement" in dry.stdout
    assert conn.execute("SELECT count(*) FROM pictures WHERE heading IS NOT NULL").fetchone()[0] == 0
    done = json.loads(ops("set-sequences-heading", str(moving), str(deleted), "--json", env=env(db_url)).stdout)
    assert done["changed"] == [str(moving)] and done["skipped_deleted"] == [str(deleted)]
    assert done["sequences_without_azimuth"] == 0


# --- 5. monitoring conventions ----------------------------------------------------------------------------


def test_the_nagios_first_line_is_the_overall_state_with_perfdata(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id, ts) "
                 "SELECT 'delete', gen_random_uuid(), now() - interval '50 minutes' FROM generate_series(1, 3)")  # fmt: skip
    result = ops("health", "--queue-warning", "2", "--age-warning", "40m", env=env(db_url, store))
    first, *rest = result.stdout.splitlines()
    assert result.exit_code == 1 and first.startswith("OPS HEALTH WARNING - queue: ")
    assert re.search(r"\| database_time=[\d.]+ms;;;0; queued=\d+;2;10000;0; oldest_job=\d+s;2400;21600;0;", first)
    assert any(line.startswith("WARNING  oldest_job: oldest ready job waits for 50m") for line in rest), rest


def test_the_readme_refresh_cron_and_health_agree():
    """The README's crontab refreshes on the schedule it tells health to judge by."""
    readme = (REPO / "README.md").read_text()
    schedule = re.search(r"^PICTURE_PROCESS_REFRESH_CRON=(.+)$", readme, re.MULTILINE)
    cron_line = re.search(r"^(\S+ \S+ \S+ \S+ \S+) +cd /srv/ops && \.venv/bin/ops -q refresh$", readme, re.MULTILINE)
    assert schedule and cron_line and schedule.group(1).strip("'\"") == cron_line.group(1)


# --- 6. rough edges ---------------------------------------------------------------------------------------


def test_orphans_take_a_duration_and_say_their_summary_once(ops, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    orphan = "permanent/00/00/00/01/1111-4222-8333-444455556666.jpg"
    store.write(orphan)
    result = ops("storage", "orphans", "--min-age", "0s", env=env(db_url, store))
    assert result.exit_code == 0 and f"  {orphan}" in result.stdout
    assert "orphan files" not in result.stderr
    assert ops("storage", "orphans", "--min-age", "1d", env=env(db_url, store)).exit_code == 0


def test_unknown_ids_and_empty_lists_say_so(ops, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    unknown = "00000000-0000-4000-8000-000000000001"
    check = ops("storage", "check", "--sequence", unknown, env=env(db_url, store))
    assert check.exit_code == 1 and f"no such sequence: {unknown}" in check.stderr
    empty = ops("jobs", "list", "--task", "dispatch", env=env(db_url))
    assert empty.exit_code == 0 and empty.stdout == "no dispatch job queued\n"
    failed = ops("jobs", "list", "--failed", "--since", "1h", env=env(db_url))
    assert failed.exit_code == 0 and failed.stdout == "no failed job left the queue in the last 1h\n"


def test_delete_data_speaks_in_the_past_once_done(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    prepared_sequence(conn, store, 2, name="carol")
    dry = ops("user", "carol", "--delete-data", "--dry-run", env=env(db_url))
    assert "would mark 1 sequences deleted" in dry.stdout
    done = ops("user", "carol", "--delete-data", env=env(db_url))
    assert done.stdout.startswith("marked 1 sequences deleted\ndeleted 2 pictures and queued 2 file deletion jobs")


def test_quiet_prints_nothing_when_all_went_well(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
    else:
        assert ops("refresh", env=env(db_url)).exit_code == 0
    for args in (["refresh"], ["sequences", "reorder"], ["health"], ["db", "status"]):
        result = ops("-q", *args, env=env(db_url, store))
        assert result.exit_code == 0 and result.stdout == "" and result.stderr == "", (
            args,
            result.stdout,
            result.stderr,
        )
    assert json.loads(ops("-q", "jobs", "--json", env=env(db_url)).stdout)["queued"] >= 0
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    warned = ops("-q", "health", "--queue-warning", "1", env=env(db_url, store))
    assert warned.exit_code == 1 and warned.stdout.startswith("OPS HEALTH WARNING")


def test_env_file_elsewhere(ops_db_url, tmp_path):
    import subprocess
    import sys

    settings = tmp_path / "settings" / "ops.env"
    settings.parent.mkdir()
    settings.write_text(f"DB_URL={ops_db_url}\n")
    for args, extra in ((["--env-file", str(settings)], {}), ([], {"OPS_ENV_FILE": str(settings)})):
        proc = subprocess.run([sys.executable, "-m", "ops", *args, "db", "status", "--check"], cwd=tmp_path,
                              capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **extra})  # fmt: skip
        assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stderr
    missing = subprocess.run([sys.executable, "-m", "ops", "--env-file", str(tmp_path / "nope.env"), "db", "status"],
                             capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "is not a file" in missing.stderr


def test_the_quiet_flag_and_env_file_are_documented():
    text = Path(REPO / "README.md").read_text()
    assert "--env-file" in text and "`-q/--quiet`" in text and "OPS_ENV_FILE" in text
