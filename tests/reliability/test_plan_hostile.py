"""``ops db plan`` vets migrations that are not ops's to trust: each hostile or careless form, replayed by a
plan, leaves production's rows and schema, its database settings, the cluster's roles and databases exactly
as they were, and the plan names the migration it did not trace (exit 1: a warning)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.conftest import database_dump, make_role, with_pending
from tests.factories import make_account, make_sequence, walk
from tests.storage_helpers import env

pytestmark = pytest.mark.category("hostile migrations")
REFUSED = "was refused to the replay's role"

CLUSTER_STATE = """
SELECT (SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles),
       (SELECT string_agg(datname || ':' || datistemplate::text || ':' || datallowconn::text, ',' ORDER BY datname)
        FROM pg_database WHERE datname NOT LIKE 'ops\\_plan\\_scratch\\_%%' AND datname !~ '^(scratch_)?t[0-9]+_[0-9]+$'),
       (SELECT coalesce(string_agg(array_to_string(setconfig, ';'), ',' ORDER BY setdatabase, setrole), '')
        FROM pg_db_role_setting),
       (SELECT coalesce(string_agg(coalesce(description, ''), ',' ORDER BY objoid), '') FROM pg_shdescription)
"""


def cluster_state(url: str) -> tuple:
    with psycopg.connect(url) as c:
        return c.execute(CLUSTER_STATE).fetchone()


@pytest.fixture
def production(ops_db_url: str) -> str:
    with psycopg.connect(ops_db_url, autocommit=True) as c:
        account = make_account(c)
        for i in range(2):
            make_sequence(c, account, walk(3.0 + i * 0.01, 45.0, 6, seed=i))
    return ops_db_url


def hostile_forms(database: str) -> dict[str, tuple[str, str]]:
    """name -> (migration text, what the plan must say of it)."""
    return {
        "split-disagreement": (
            "UPDATE pictures SET status = status WHERE 'x\\' <> ''; COMMIT; BEGIN READ WRITE; "
            "DROP TABLE sequences_pictures CASCADE; SELECT '';\n",
            "PostgreSQL reads 5 statements",
        ),
        "drop-production": (
            f"-- transactional: false\nDROP DATABASE IF EXISTS {database} WITH (FORCE);\n",
            "drops a database",
        ),
        "database-settings-and-role": (
            f"ALTER DATABASE {database} SET work_mem = '1MB';\nCREATE ROLE hostile_role_a;\n",
            "changes a database's settings",
        ),
        "dynamic-role-in-do": (
            "DO $$ BEGIN EXECUTE 'CREATE ' || 'ROLE hostile_role_b'; END $$;\n",
            "wrote to the cluster's shared catalogs",
        ),
        "dynamic-database-setting": (
            f"DO $$ BEGIN EXECUTE 'ALTER ' || 'DATABASE {database} SET work_mem = ''2MB'''; END $$;\n",
            "wrote to the cluster's shared catalogs",
        ),
        "dynamic-outside-transaction": (
            f"-- transactional: false\nDO $$ BEGIN EXECUTE 'COMMENT ON ' || 'DATABASE {database} IS ''x'''; END $$;\n",
            "wrote to the cluster's shared catalogs",
        ),
        "copy-program": ("COPY pictures (id) FROM PROGRAM 'true';\n", "copies to or from a program"),
        "terminate-sessions": (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid();\n",
            "calls pg_terminate_backend()",
        ),
        "alter-system": ("-- transactional: false\nALTER SYSTEM SET work_mem = '1MB';\n", "ALTER SYSTEM"),
        "savepoint-games": ("SAVEPOINT a;\nRELEASE SAVEPOINT a;\n", "controls the transaction"),
        "role-switch": ("SELECT set_config('role', 'postgres', false);\n", "changes the session's role"),
    }


# Forms neither the vetting nor the shared-catalog check foresee: only the replay's own role stops them (a
# cluster-wide statistics reset, superuser-only), so they are planned on the confined route alone.
UNFORESEEN = {"reset-server-statistics": ("SELECT pg_stat_reset_shared('bgwriter');\n", REFUSED)}


def server_statistics_reset(url: str) -> object:
    with psycopg.connect(url) as c:
        return c.execute("SELECT stats_reset FROM pg_stat_bgwriter").fetchone()[0]


@pytest.mark.parametrize("route", ["confined", "unconfined"])
def test_no_hostile_migration_reaches_production_or_its_server(scenario, ops, production, tmp_path, route,
                                                               admin_url, cluster):  # fmt: skip
    """a planned migration that drops, alters or reaches beyond its database changes nothing of production:
    replayed as a role of its own (the scratch database ops creates), the forms the vetting cannot see
    (dynamic SQL) are refused by PostgreSQL itself; replayed unconfined (a superuser's --scratch-url), by the
    check of the shared catalogs"""
    from tests.conftest import _create_database, _drop_database

    database = production.rsplit("/", 1)[1]
    dump, state, statistics = database_dump(production), cluster_state(production), server_statistics_reset(production)
    forms = hostile_forms(database) | (UNFORESEEN if route == "confined" else {})
    scratch = f"scratch_{database}"
    options = ["--scratch-url", cluster.url(scratch)] if route == "unconfined" else []
    for name, (text, said) in forms.items():
        if route == "confined" and said.startswith("wrote to the cluster's shared catalogs"):
            said = REFUSED  # PostgreSQL refuses the role before anything is written
        folder = with_pending(tmp_path / name, "0100_hostile", text, "SELECT 1;\n")
        _drop_database(admin_url, scratch)
        _create_database(admin_url, scratch, "template0")
        result = ops("db", "plan", "--json", *options, env=env(production, OPS_MIGRATIONS_DIR=str(folder)))
        plan = json.loads(result.stdout) if result.stdout.strip() else {}
        [migration] = plan.get("migrations") or [{}]
        not_traced = migration.get("not_traced") or ""
        unchanged = (database_dump(production) == dump and cluster_state(production) == state
                     and server_statistics_reset(production) == statistics)  # fmt: skip
        ok = (
            result.exit_code == 1
            and said in not_traced
            and unchanged
            and plan.get("replay_confined") == (route == "confined")
            and any("was not traced" in w["message"] for w in plan["warnings"])
        )
        scenario.run(ok, f"{name}: exit {result.exit_code}, not traced: {not_traced!r}, unchanged: {unchanged}, "
                         f"{result.stderr.strip()[-200:]}")  # fmt: skip
    _drop_database(admin_url, scratch)
    assert scenario.failures == 0, scenario.notes


def test_the_explicit_transaction_of_a_panoramax_style_migration_is_still_traced(ops, production, tmp_path):
    """BEGIN; … COMMIT; as statements of their own in a -- transactional: false migration (as Panoramax
    writes some) are traced, not refused"""
    folder = with_pending(tmp_path / "migrations", "0100_block",
                          "-- transactional: false\nBEGIN;\nALTER TABLE pictures ADD COLUMN plan_test int;\nCOMMIT;\n",
                          "ALTER TABLE pictures DROP COLUMN plan_test;\n")  # fmt: skip
    result = ops("db", "plan", "--json", env=env(production, OPS_MIGRATIONS_DIR=str(folder)))
    [migration] = json.loads(result.stdout)["migrations"]
    assert migration["not_traced"] is None and migration["error"] is None, result.stderr
    [added] = [s for s in migration["statements"] if s["effects"]["added_columns"]]
    assert added["effects"]["added_columns"] == [{"table": "pictures", "column": "plan_test"}]


def _pending_index(production: str, tmp_path: Path) -> Path:
    return with_pending(tmp_path / "migrations", "0100_test-index", "CREATE INDEX pictures_ts_test ON pictures (ts);\n",
                        "DROP INDEX pictures_ts_test;\n")  # fmt: skip


def test_scratch_url_refuses_system_databases_and_production(scenario, ops, production, tmp_path, cluster):
    """--scratch-url template1, postgres or production itself: refused with one line, nothing changed"""
    folder = _pending_index(production, tmp_path)
    template1 = cluster.url("template1")
    before = {name: database_dump(cluster.url(name)) for name in ("template1", "postgres")}
    for target, said in ((template1, "template database template1"), (cluster.url("postgres"), "system database"),
                         (production, "is the database being planned")):  # fmt: skip
        result = ops("db", "plan", "--scratch-url", target, env=env(production, OPS_MIGRATIONS_DIR=str(folder)))
        lines = result.stderr.strip().splitlines()
        scenario.run(result.exit_code == 2 and said in lines[-1] and lines[-1].startswith("error: "),
                     f"{target}: {result.exit_code} {lines[-1:]}")  # fmt: skip
    after = {name: database_dump(cluster.url(name)) for name in ("template1", "postgres")}
    scenario.run(after == before, "template1 or postgres changed")
    assert scenario.failures == 0, scenario.notes


def test_no_createdb_route_with_postgis_made_by_a_dba_and_a_killed_plans_scratch_reclaimed(
    scenario, ops, production, tmp_path, admin_url, cluster
):
    """a role without CREATEDB plans into a database a DBA made with PostGIS, also after a killed plan left it
    filled; PostGIS stays"""
    from tests.conftest import _create_database, _drop_database

    folder = _pending_index(production, tmp_path)
    role = make_role(production, "GRANT CONNECT ON DATABASE {db} TO {role}; GRANT USAGE ON SCHEMA public TO {role}; "
                                 "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")  # fmt: skip
    name = f"scratch_{role}"
    _drop_database(admin_url, name)
    _create_database(admin_url, name, "template0")
    scratch = cluster.url(name)
    try:
        with psycopg.connect(scratch, autocommit=True) as c:  # what the DBA does, as documented
            c.execute(f'ALTER DATABASE "{name}" OWNER TO "{role}"')
            c.execute(f'ALTER SCHEMA public OWNER TO "{role}"')
            c.execute("CREATE EXTENSION postgis")
        as_role = production.replace("postgres@", f"{role}@")
        scratch_as_role = scratch.replace("postgres@", f"{role}@")
        for attempt in ("first", "after a killed plan"):
            result = ops("db", "plan", "--json", "--scratch-url", scratch_as_role,
                         env=env(as_role, OPS_MIGRATIONS_DIR=str(folder)))  # fmt: skip
            plan = json.loads(result.stdout) if result.stdout.strip() else {}
            locks = plan.get("migrations", [{}])[0].get("statements", [{}])[0].get("locks") if plan else None
            with psycopg.connect(scratch) as c:
                postgis = c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()[0]
                tables = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                                   "('pg_catalog', 'information_schema')").fetchone()[0]  # fmt: skip
            scenario.run(result.exit_code == 0 and bool(locks) and postgis == 1 and tables == 1,
                         f"{attempt}: exit {result.exit_code}, locks {locks}, postgis {postgis}, tables {tables} "
                         f"(spatial_ref_sys only), {result.stderr.strip().splitlines()[-1:]}")  # fmt: skip
            assert scenario.failures == 0, scenario.notes
            with psycopg.connect(scratch_as_role, autocommit=True) as c:  # what a plan killed midway leaves
                c.execute("CREATE SCHEMA ops_plan_in_use")
                c.execute('COMMENT ON SCHEMA ops_plan_in_use IS \'{"postgis": "public", "plpgsql": "pg_catalog"}\'')
                c.execute("CREATE TABLE public.pictures (id int)")
                c.execute("CREATE FUNCTION public.leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    finally:
        _drop_database(admin_url, name)
    assert scenario.failures == 0, scenario.notes


def test_a_killed_plans_scratch_database_goes_even_when_there_is_nothing_to_plan(ops, production, admin_url):
    """a scratch database whose creator is gone is dropped by the next plan, also one with nothing to trace"""
    from tests.conftest import _create_database

    with psycopg.connect(production) as c:
        oid = c.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
    leftover = f"ops_plan_scratch_{oid}_deadbeef"
    _create_database(admin_url, leftover, "template0")
    with psycopg.connect(admin_url, autocommit=True) as c:  # the role its replay ran as, with its grant
        c.execute(f"CREATE ROLE {leftover} NOLOGIN")
        c.execute(f"GRANT SET ON PARAMETER session_replication_role TO {leftover}")
    result = ops("db", "plan", "--json", env=env(production))
    plan = json.loads(result.stdout)
    assert result.exit_code == 0 and plan["migrations"] == [] and plan["leftovers_dropped"] == [leftover]
    with psycopg.connect(admin_url) as c:
        assert c.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (leftover,)).fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (leftover,)).fetchone()[0] == 0
