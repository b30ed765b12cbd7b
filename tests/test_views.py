"""Materialized views: kept in sync by `ops db upgrade`, refreshed by `ops refresh`."""

from __future__ import annotations

import json
import shutil

import psycopg

from ops import refresh
from tests.factories import Pic, make_account, make_sequence
from tests.test_migrations import PACKAGED


def test_upgrade_creates_the_views_and_status_lists_them(ops, ops_db_url):
    result = ops("db", "status", "--json", env={"DB_URL": ops_db_url})
    names = [v["name"] for v in json.loads(result.stdout)["views"]]
    assert names == ["accounts_stats", "pictures_grid"]
    text = ops("db", "status", env={"DB_URL": ops_db_url}).stdout
    assert "view pictures_grid: refreshed " in text


def test_refresh_counts_pictures_per_cell_and_per_account(ops, ops_conn, ops_db_url):
    alice = make_account(ops_conn, "alice")
    bob = make_account(ops_conn, "bob")
    make_sequence(ops_conn, alice, [Pic(2.01, 48.01), Pic(2.02, 48.02, type="equirectangular"), Pic(2.15, 48.01)])
    make_sequence(ops_conn, alice, [Pic(2.03, 48.03, status="preparing")])
    gone = make_sequence(ops_conn, bob, [Pic(-1.51, 47.21)])
    ops_conn.execute("UPDATE sequences SET status = 'deleted' WHERE id = %s", (gone,))
    result = ops("refresh", env={"DB_URL": ops_db_url})
    assert result.exit_code == 0, result.stderr
    assert "refreshed pictures_grid concurrently in " in result.stdout
    cells = ops_conn.execute(
        "SELECT cell_x, cell_y, nb_pictures, nb_360_pictures FROM pictures_grid ORDER BY 1, 2"
    ).fetchall()
    assert cells == [(-16, 472, 1, 0), (20, 480, 2, 1), (21, 480, 1, 0)]
    inside = ops_conn.execute(
        "SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(2.01, 48.01), 4326)) FROM pictures_grid WHERE cell_x = 20"
    ).fetchone()[0]
    assert inside
    stats = dict(
        (name, (s, p)) for name, s, p in ops_conn.execute("SELECT name, nb_sequences, nb_pictures FROM accounts_stats")
    )
    assert stats["alice"] == (2, 4) and stats["bob"] == (0, 0) and stats["Default account"] == (0, 0)
    refreshed = ops_conn.execute(
        "SELECT nb_rows, refresh_duration_ms IS NOT NULL FROM ops_views WHERE name = 'pictures_grid'"
    ).fetchone()
    assert refreshed == (3, True)


def test_a_refresh_running_elsewhere_is_reported_as_skipped(ops, ops_conn, ops_db_url):
    before = ops_conn.execute("SELECT refreshed_at FROM ops_views WHERE name = 'pictures_grid'").fetchone()[0]
    with psycopg.connect(ops_db_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (refresh.view_lock_key("pictures_grid"),))
        result = ops("refresh", "--json", env={"DB_URL": ops_db_url})
        pid = other.info.backend_pid
    assert result.exit_code == 0
    outcomes = {o["view"]: o for o in json.loads(result.stdout)}
    assert outcomes["pictures_grid"]["state"] == "skipped"
    assert outcomes["pictures_grid"]["message"] == f"a refresh is already running (pid {pid})"
    assert outcomes["accounts_stats"]["state"] == "refreshed"
    after = ops_conn.execute("SELECT refreshed_at FROM ops_views WHERE name = 'pictures_grid'").fetchone()[0]
    assert after == before
    text = ops("db", "refresh", "--view", "pictures_grid", env={"DB_URL": ops_db_url})
    assert text.stdout.startswith("refreshed pictures_grid")


def custom_sql(tmp_path, view_files: dict[str, str]):
    """A copy of the packaged migrations with our own views beside them."""
    root = tmp_path / "sql"
    shutil.copytree(PACKAGED, root / "migrations")
    (root / "views").mkdir()
    for name, text in view_files.items():
        (root / "views" / name).write_text(text)
    return root


def test_changed_view_is_recreated_and_removed_one_dropped(ops, empty_db_url, tmp_path):
    root = custom_sql(tmp_path, {
        "v_one.sql": "CREATE MATERIALIZED VIEW v_one AS SELECT 1 AS id;",
        "v_two.sql": "CREATE MATERIALIZED VIEW v_two AS SELECT 2 AS id;",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    args = ["db", "--migrations-dir", str(root / "migrations"), "upgrade"]
    first = ops(*args, env=env)
    assert "created view v_one" in first.stdout and "created view v_two" in first.stdout
    (root / "views" / "v_one.sql").write_text("CREATE MATERIALIZED VIEW v_one AS SELECT 10 AS id;")
    (root / "views" / "v_two.sql").unlink()
    second = ops(*args, env=env)
    assert "re-created view v_one" in second.stdout and "dropped view v_two" in second.stdout
    third = ops(*args, env=env)
    assert "view" not in third.stdout
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT id FROM v_one").fetchone() == (10,)
        assert c.execute("SELECT to_regclass('v_two')").fetchone() == (None,)


def test_unpopulated_view_is_refreshed_plainly_and_failures_name_the_view(ops, empty_db_url, tmp_path):
    root = custom_sql(tmp_path, {
        "lazy.sql": "CREATE MATERIALIZED VIEW lazy AS SELECT 1 AS id WITH NO DATA;\nCREATE UNIQUE INDEX lazy_id ON lazy (id);",
        "zboom.sql": "CREATE MATERIALIZED VIEW zboom AS SELECT 1 / (SELECT count(*)::int FROM job_queue) AS x WITH NO DATA;",
    })  # fmt: skip
    env = {"DB_URL": empty_db_url}
    assert ops("db", "--migrations-dir", str(root / "migrations"), "upgrade", env=env).exit_code == 0
    result = ops("db", "--migrations-dir", str(root / "migrations"), "refresh", env=env)
    assert result.exit_code == 1
    assert "refreshed lazy plainly" in result.stdout
    assert "error: refresh of zboom failed: division by zero" in result.stderr
    again = ops("db", "--migrations-dir", str(root / "migrations"), "refresh", "--view", "lazy", env=env)
    assert again.exit_code == 0 and "refreshed lazy concurrently" in again.stdout


def test_rollback_of_one_migration_keeps_views_that_still_can_exist(ops, ops_db_url):
    env = {"DB_URL": ops_db_url}
    assert ops("db", "rollback", env=env).exit_code == 0  # 0004_job_queue: no view needs it
    with psycopg.connect(ops_db_url) as c:
        names = [r[0] for r in c.execute("SELECT matviewname FROM pg_matviews ORDER BY 1")]
    assert names == ["accounts_stats", "pictures_grid"]
    assert ops("db", "upgrade", env=env).exit_code == 0
    assert ops("db", "status", "--check", env=env).exit_code == 0
