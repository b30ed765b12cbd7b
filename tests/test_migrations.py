"""The migration runner, through the CLI, against a real PostgreSQL + PostGIS."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ops.errors import SchemaPending
from ops.localdb import find_bindir
from ops.schema import bookkeeping, files, runner, status
from tests.conftest import start_ops, write_migrations

PACKAGED = files.default_migrations_dir()
BOOKKEEPING_EXCLUDES = [f"--exclude-table={t}" for t in bookkeeping.BOOKKEEPING_TABLES]


def schema_dump(url: str, *extra: str) -> str:
    out = subprocess.run(
        [str(find_bindir() / "pg_dump"), "--schema-only", "--no-owner", *extra, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))
    )


def applied_ids(url: str) -> list[str]:
    with psycopg.connect(url) as c:
        if c.execute("SELECT to_regclass('ops_yoyo_migration')").fetchone()[0] is None:
            return []
        return [r[0] for r in c.execute("SELECT migration_id FROM ops_yoyo_migration ORDER BY applied_at_utc")]


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as c:
        return c.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def test_upgrade_creates_schema_and_reports_each_migration(ops, empty_db_url):
    result = ops("db", "upgrade", env={"DB_URL": empty_db_url})
    assert result.exit_code == 0, result.stderr
    ids = [f.id for f in files.migration_files(PACKAGED)]
    for mid in ids:
        assert f"applied {mid} (" in result.stdout
    assert result.stdout.strip().endswith("database is up to date")
    assert applied_ids(empty_db_url) == ids
    with psycopg.connect(empty_db_url) as c:
        default = c.execute("SELECT name, role::text FROM accounts WHERE is_default").fetchall()
        assert default == [("Default account", "admin")]
        tokens = c.execute(
            "SELECT description FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE a.is_default"
        ).fetchall()
        assert tokens == [("default token",)]
        geom_type = c.execute(
            "SELECT type FROM geometry_columns WHERE f_table_name = 'sequences' AND f_geometry_column = 'geom'"
        ).fetchone()
        assert geom_type == ("MULTILINESTRING",)
    again = ops("db", "upgrade", env={"DB_URL": empty_db_url})
    assert again.exit_code == 0
    assert again.stdout.strip() == "nothing to apply: database is up to date"


def test_no_trigger_deletes_files_when_pictures_go(ops_conn):
    triggers = ops_conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'pictures'::regclass AND NOT tgisinternal"
    ).fetchall()
    assert triggers == []


def test_new_account_gets_one_default_token(ops_conn):
    account = ops_conn.execute("INSERT INTO accounts (name) VALUES ('alice') RETURNING id").fetchone()[0]
    rows = ops_conn.execute("SELECT description FROM tokens WHERE account_id = %s", (account,)).fetchall()
    assert rows == [("default token",)]


def test_job_queue_allows_one_target_and_one_job_per_target(ops_conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        ops_conn.execute("INSERT INTO job_queue (task) VALUES ('delete')")
    ops_conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    pid = ops_conn.execute("SELECT picture_to_delete_id FROM job_queue").fetchone()[0]
    with pytest.raises(psycopg.errors.UniqueViolation):
        ops_conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', %s)", (pid,))


def test_dry_run_lists_statements_and_changes_nothing(ops, empty_db_url):
    before = schema_dump(empty_db_url)
    result = ops("db", "upgrade", "--dry-run", env={"DB_URL": empty_db_url})
    assert result.exit_code == 0, result.stderr
    assert "would apply 0001_extensions (3 statement(s), in a transaction)" in result.stdout
    assert "CREATE EXTENSION IF NOT EXISTS postgis;" in result.stdout
    assert schema_dump(empty_db_url) == before
    assert not table_exists(empty_db_url, "ops_yoyo_migration")


def test_status_json_and_check(ops, empty_db_url):
    pending = ops("db", "status", "--check", "--json", env={"DB_URL": empty_db_url})
    assert pending.exit_code == 1
    data = json.loads(pending.stdout)
    assert data["up_to_date"] is False
    assert {m["state"] for m in data["migrations"]} == {"pending"}
    assert "database schema is not current" in pending.stderr
    ops("db", "upgrade", env={"DB_URL": empty_db_url})
    ok = ops("db", "status", "--check", "--json", env={"DB_URL": empty_db_url})
    assert ok.exit_code == 0
    data = json.loads(ok.stdout)
    assert data["up_to_date"] is True
    assert all(m["state"] == "applied" and m["applied_at"] for m in data["migrations"])


def test_status_shows_modified_and_missing_files(ops, empty_db_url, tmp_path):
    folder = write_migrations(tmp_path / "m", {
        "0001_a.sql": "CREATE TABLE a (id int);\n", "0001_a.rollback.sql": "DROP TABLE a;\n",
        "0002_b.sql": "CREATE TABLE b (id int);\n", "0002_b.rollback.sql": "DROP TABLE b;\n",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    assert ops("db", "--migrations-dir", str(folder), "upgrade", env=env).exit_code == 0
    # Line ends and trailing blanks do not count as a change.
    (folder / "0001_a.sql").write_bytes(b"CREATE TABLE a (id int);   \r\n\r\n")
    assert ops("db", "--migrations-dir", str(folder), "status", "--check", env=env).exit_code == 0
    (folder / "0001_a.sql").write_text("CREATE TABLE a (id bigint);\n")
    (folder / "0002_b.sql").unlink()
    result = ops("db", "--migrations-dir", str(folder), "status", "--check", "--json", env=env)
    assert result.exit_code == 1
    states = {m["id"]: m["state"] for m in json.loads(result.stdout)["migrations"]}
    assert states == {"0001_a": "modified", "0002_b": "missing"}


def test_pending_schema_guard(empty_db_url, ops_db_url):
    with psycopg.connect(empty_db_url) as c:
        with pytest.raises(SchemaPending) as err:
            status.ensure_schema_current(c)
    ids = [f.id for f in files.migration_files(PACKAGED)]
    assert str(err.value) == (
        f"database schema needs an update: {len(ids)} pending migration(s): {', '.join(ids)}. Run: ops db upgrade"
    )
    with psycopg.connect(ops_db_url) as c:
        status.ensure_schema_current(c)  # up to date: no error


def test_rollback_undoes_the_most_recently_applied(ops, empty_db_url, tmp_path):
    folder = write_migrations(tmp_path / "m", {
        "0001_a.sql": "CREATE TABLE a (id int);", "0001_a.rollback.sql": "DROP TABLE a;",
        "0003_c.sql": "CREATE TABLE c (id int);", "0003_c.rollback.sql": "DROP TABLE c;",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    ops("db", "--migrations-dir", str(folder), "upgrade", env=env)
    write_migrations(folder, {"0002_b.sql": "CREATE TABLE b (id int);", "0002_b.rollback.sql": "DROP TABLE b;"})
    ops("db", "--migrations-dir", str(folder), "upgrade", env=env)
    assert applied_ids(empty_db_url) == ["0001_a", "0003_c", "0002_b"]
    result = ops("db", "--migrations-dir", str(folder), "rollback", env=env)
    assert result.exit_code == 0, result.stderr
    assert "rolled back 0002_b" in result.stdout
    assert applied_ids(empty_db_url) == ["0001_a", "0003_c"]
    assert not table_exists(empty_db_url, "b") and table_exists(empty_db_url, "c")


def test_rollback_all_needs_confirmation_when_not_interactive(ops, ops_db_url):
    before = applied_ids(ops_db_url)
    result = ops("db", "rollback", "--all", env={"DB_URL": ops_db_url})
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert applied_ids(ops_db_url) == before


def test_rollback_all_dry_run_changes_nothing(ops, ops_db_url):
    before = schema_dump(ops_db_url)
    result = ops("db", "rollback", "--all", "--dry-run", env={"DB_URL": ops_db_url})
    assert result.exit_code == 0
    assert "would roll back 0004_job_queue" in result.stdout
    assert schema_dump(ops_db_url) == before


@pytest.mark.parametrize("postgis_before", [False, True])
def test_rollback_all_leaves_the_database_as_before(ops, empty_db_url, postgis_before):
    if postgis_before:
        with psycopg.connect(empty_db_url, autocommit=True) as c:
            c.execute("CREATE EXTENSION postgis")
    before = schema_dump(empty_db_url)
    env = {"DB_URL": empty_db_url}
    assert ops("db", "upgrade", env=env).exit_code == 0
    result = ops("db", "rollback", "--all", "--yes", env=env)
    assert result.exit_code == 0, result.stderr
    assert schema_dump(empty_db_url) == before
    with psycopg.connect(empty_db_url) as c:
        has_postgis = c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()[0]
    assert has_postgis == (1 if postgis_before else 0)
    # and the cycle works again
    assert ops("db", "upgrade", env=env).exit_code == 0
    assert ops("db", "status", "--check", env=env).exit_code == 0


def test_each_migration_rolls_back_to_the_schema_before_it(ops, empty_db_url, tmp_path):
    """Generic check: for each migration, pg_dump before apply == pg_dump after apply + rollback."""
    folder = tmp_path / "subset"
    folder.mkdir()
    env = {"DB_URL": empty_db_url}
    for f in files.migration_files(PACKAGED):
        shutil.copy(f.path, folder)
        shutil.copy(f.rollback_path, folder)
        before = schema_dump(empty_db_url, *BOOKKEEPING_EXCLUDES)
        assert ops("db", "--migrations-dir", str(folder), "upgrade", env=env).exit_code == 0
        assert schema_dump(empty_db_url, *BOOKKEEPING_EXCLUDES) != before, f"{f.id} changed nothing"
        result = ops("db", "--migrations-dir", str(folder), "rollback", env=env)
        assert result.exit_code == 0, result.stderr
        assert schema_dump(empty_db_url, *BOOKKEEPING_EXCLUDES) == before, f"rollback of {f.id} left something"
        assert ops("db", "--migrations-dir", str(folder), "upgrade", env=env).exit_code == 0


def test_every_migration_has_a_rollback():
    for f in files.migration_files(PACKAGED):
        assert f.rollback_path.is_file(), f"{f.id} has no {f.rollback_path.name}"
        assert f.rollback_path.read_text().strip(), f"{f.rollback_path.name} is empty"


def test_failing_migration_keeps_earlier_ones_and_nothing_of_itself(ops, empty_db_url, tmp_path):
    folder = write_migrations(tmp_path / "m", {
        "0001_ok.sql": "CREATE TABLE ok (id int);", "0001_ok.rollback.sql": "DROP TABLE ok;",
        "0002_bad.sql": "CREATE TABLE half (id int);\nSELECT 1 / 0;\nCREATE TABLE never (id int);",
        "0002_bad.rollback.sql": "DROP TABLE never;\nDROP TABLE half;",
    })  # fmt: skip
    result = ops("db", "--migrations-dir", str(folder), "upgrade", env={"DB_URL": empty_db_url})
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: migration 0002_bad failed at statement 2 (SQLSTATE 22012): division by zero; "
        "nothing of this migration was kept"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert applied_ids(empty_db_url) == ["0001_ok"]
    assert table_exists(empty_db_url, "ok") and not table_exists(empty_db_url, "half")


def test_non_transactional_migration_runs_create_index_concurrently(ops, empty_db_url, tmp_path):
    folder = write_migrations(tmp_path / "m", {
        "0001_t.sql": "CREATE TABLE t (id int);", "0001_t.rollback.sql": "DROP TABLE t;",
        "0002_idx.sql": "-- transactional: false\n-- depends: 0001_t\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);",
        "0002_idx.rollback.sql": "DROP INDEX CONCURRENTLY t_id_idx;",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    result = ops("db", "--migrations-dir", str(folder), "upgrade", env=env)
    assert result.exit_code == 0, result.stderr
    assert table_exists(empty_db_url, "t_id_idx")
    assert ops("db", "--migrations-dir", str(folder), "rollback", env=env).exit_code == 0
    assert not table_exists(empty_db_url, "t_id_idx")


def _ddl_setup(ops, url: str, tmp_path: Path) -> Path:
    folder = write_migrations(
        tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (id int);", "0001_t.rollback.sql": "DROP TABLE t;"}
    )
    assert ops("db", "--migrations-dir", str(folder), "upgrade", env={"DB_URL": url}).exit_code == 0
    # RESET cannot drop the lock_timeout: it is a connection option.
    return write_migrations(folder, {
        "0002_col.sql": "RESET lock_timeout;\nALTER TABLE t ADD COLUMN x int;",
        "0002_col.rollback.sql": "ALTER TABLE t DROP COLUMN x;",
    })  # fmt: skip


def test_ddl_lock_timeout_retries_then_names_the_blocker(ops, empty_db_url, tmp_path):
    folder = _ddl_setup(ops, empty_db_url, tmp_path)
    with psycopg.connect(empty_db_url, application_name="long-report") as blocker:
        blocker.execute("SELECT count(*) FROM t")  # holds ACCESS SHARE until the transaction ends
        blocker_pid = blocker.info.backend_pid
        result = ops(
            "db", "--migrations-dir", str(folder), "upgrade", "--ddl-lock-timeout", "0.3", env={"DB_URL": empty_db_url}
        )
    assert result.exit_code == 1
    assert "migration 0002_col failed at statement 2 (SQLSTATE 55P03)" in result.stderr
    assert f"blocked by pid {blocker_pid} (long-report" in result.stderr
    assert applied_ids(empty_db_url) == ["0001_t"]


def test_ddl_lock_released_during_retries_lets_the_migration_pass(ops, empty_db_url, tmp_path):
    folder = _ddl_setup(ops, empty_db_url, tmp_path)
    blocker = psycopg.connect(empty_db_url)
    blocker.execute("SELECT count(*) FROM t")
    release = threading.Timer(0.8, blocker.close)
    release.start()
    result = ops(
        "db", "--migrations-dir", str(folder), "upgrade", "--ddl-lock-timeout", "0.3", env={"DB_URL": empty_db_url}
    )
    release.join()
    assert result.exit_code == 0, result.stderr
    assert applied_ids(empty_db_url) == ["0001_t", "0002_col"]


def test_waiting_for_the_lock_names_its_holder_then_gives_up(ops, empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True, application_name="other-deploy") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (runner.MIGRATION_LOCK_KEY,))
        result = ops("db", "upgrade", "--lock-timeout", "1", env={"DB_URL": empty_db_url})
        pid = holder.info.backend_pid
    assert result.exit_code == 1
    assert f"waiting for the migration lock, held by pid {pid} (other-deploy, from 127.0.0.1" in result.stderr
    assert "gave up after 1 s" in result.stderr
    assert applied_ids(empty_db_url) == []


def test_two_concurrent_upgrades_apply_each_migration_once(empty_db_url, tmp_path):
    folder = write_migrations(tmp_path / "m", {
        "0001_slow.sql": "CREATE TABLE slow (id int);\nSELECT pg_sleep(1);", "0001_slow.rollback.sql": "DROP TABLE slow;",
        "0002_next.sql": "CREATE TABLE next (id int);", "0002_next.rollback.sql": "DROP TABLE next;",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    procs = [start_ops("db", "--migrations-dir", str(folder), "upgrade", env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdouts = sorted(o[0] for o in outputs)
    assert "nothing to apply" in stdouts[1] and "applied 0001_slow" in stdouts[0]
    with psycopg.connect(empty_db_url) as c:
        counts = c.execute(
            "SELECT migration_id, count(*) FROM ops_yoyo_log WHERE operation = 'apply' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert counts == [("0001_slow", 1), ("0002_next", 1)]


def test_killed_runner_leaves_no_stale_lock(empty_db_url, tmp_path):
    slow = write_migrations(tmp_path / "slow", {
        "0001_t.sql": "CREATE TABLE t (id int);\nSELECT pg_sleep(60);", "0001_t.rollback.sql": "DROP TABLE t;",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    proc = start_ops("db", "--migrations-dir", str(slow), "upgrade", env=env)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        for _ in range(300):
            if c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
            ).fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the migration never started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    quick = write_migrations(
        tmp_path / "quick", {"0001_t.sql": "CREATE TABLE t (id int);", "0001_t.rollback.sql": "DROP TABLE t;"}
    )
    rerun = start_ops(
        "db", "--migrations-dir", str(quick), "upgrade", "--lock-timeout", "30", "--ddl-lock-timeout", "30", env=env
    )
    out, err = rerun.communicate(timeout=90)
    assert rerun.returncode == 0, err
    assert "applied 0001_t" in out
    assert applied_ids(empty_db_url) == ["0001_t"]


def as_built_by_ops_before_0_2(url: str) -> None:
    """a development build of ops before 0.1.0 kept its history in yoyo's default tables: put it back there."""
    with psycopg.connect(url, autocommit=True) as c:
        for old, new in bookkeeping.LEGACY_RENAMES:
            c.execute(f"ALTER TABLE {new} RENAME TO {old}")
        c.execute("CREATE TABLE yoyo_lock (locked int DEFAULT 1 PRIMARY KEY, ctime timestamp, pid int NOT NULL)")


def history_rows(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as c:
        return c.execute(f"SELECT migration_hash, migration_id, applied_at_utc FROM {table} ORDER BY 2").fetchall()


def test_history_kept_in_yoyo_tables_moves_to_ops_tables_once(ops, ops_db_url):
    before = history_rows(ops_db_url, "ops_yoyo_migration")
    as_built_by_ops_before_0_2(ops_db_url)
    status = ops("db", "status", "--check", env={"DB_URL": ops_db_url})
    assert status.exit_code == 0 and "up to date" in status.stdout  # read where it is
    assert ops("sequences", "reorder", env={"DB_URL": ops_db_url}).exit_code == 0  # the guard reads it too
    moved = ops("db", "upgrade", env={"DB_URL": ops_db_url})
    assert moved.exit_code == 0, moved.stderr
    assert "moved ops's migration history from _yoyo_migration to ops_yoyo_migration" in moved.stdout
    assert history_rows(ops_db_url, "ops_yoyo_migration") == before
    for table in bookkeeping.YOYO_TABLES:
        assert not table_exists(ops_db_url, table)
    again = ops("db", "upgrade", env={"DB_URL": ops_db_url})
    assert again.exit_code == 0 and "moved" not in again.stdout  # idempotent
    assert history_rows(ops_db_url, "ops_yoyo_migration") == before


def test_history_move_is_atomic(ops, ops_db_url):
    as_built_by_ops_before_0_2(ops_db_url)
    with psycopg.connect(ops_db_url) as blocker:
        blocker.execute("SELECT * FROM _yoyo_log LIMIT 1")  # holds a lock the rename of _yoyo_log waits for
        failed = ops("db", "upgrade", "--ddl-lock-timeout", "0.2", env={"DB_URL": ops_db_url})
    assert failed.exit_code == 1 and "lock timeout" in failed.stderr
    # the first rename (_yoyo_migration) was rolled back with the one that timed out
    assert table_exists(ops_db_url, "_yoyo_migration") and not table_exists(ops_db_url, "ops_yoyo_migration")
    assert ops("db", "upgrade", env={"DB_URL": ops_db_url}).exit_code == 0
    assert table_exists(ops_db_url, "ops_yoyo_migration") and not table_exists(ops_db_url, "_yoyo_migration")
