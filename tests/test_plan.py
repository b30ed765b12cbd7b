"""``ops db plan``: the pending migrations of both kinds of database, their true locks and rewrites (checked
against applying them with Panoramax's own runner), production only read, and no scratch database left
behind, whatever kills the plan."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ops.localdb import LocalCluster
from ops.plan import source
from ops.schema.files import default_migrations_dir
from scripts import panoramax
from tests.conftest import (
    _create_database,
    _drop_database,
    database_dump,
    make_role,
    repetitions,
    start_ops,
    with_pending,
    write_migrations,
)
from tests.factories import make_account, make_sequence, walk
from tests.storage_helpers import env

PNX210 = "plan_pnx210_template"
INDEX_MIGRATION = {
    "0100_test-index.sql": "-- depends: 0005_sequence_geometry\nCREATE INDEX pictures_ts_test ON pictures (ts);\n",
    "0100_test-index.rollback.sql": "DROP INDEX pictures_ts_test;\n",
}
WRITE_COUNTERS = "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"


def scratch_databases(url: str) -> list[str]:
    """The scratch databases of plans of this database (named after its oid; other tests' are not ours: a
    killed plan's CREATE DATABASE may still end after the test that killed it)."""
    with psycopg.connect(url) as c:
        oid = c.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        return [r[0] for r in c.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                        (f"ops_plan_scratch_{oid}_%",))]  # fmt: skip


def write_counters(url: str) -> int:
    time.sleep(1.0)  # other sessions flush their statistics within a second (and at their end)
    with psycopg.connect(url) as fresh:
        return fresh.execute(WRITE_COUNTERS).fetchone()[0]


@pytest.fixture(scope="module")
def pnx210_template(cluster: LocalCluster, admin_url: str) -> Iterator[str]:
    """A database built by geovisio 2.10.0's migrations (its sdist, fetched with pip), with three small
    sequences (some pictures hidden, which a 2.15.1 migration rewrites), analyzed."""
    folder = source.from_version("2.10.0", panoramax.CACHE)
    _drop_database(admin_url, PNX210)
    _create_database(admin_url, PNX210, "template1")
    url = cluster.url(PNX210)
    assert panoramax.build(url, folder) == 88  # 2.10.0 holds 88 migrations
    with psycopg.connect(url, autocommit=True) as c:
        account = make_account(c)
        for i in range(3):
            make_sequence(c, account, walk(2.0 + i * 0.001, 48.0, 8, seed=i))
        c.execute("UPDATE pictures SET status = 'hidden' WHERE id IN (SELECT id FROM pictures ORDER BY id LIMIT 3)")
        c.execute("VACUUM ANALYZE")
    yield PNX210
    _drop_database(admin_url, PNX210)


@pytest.fixture
def pnx210_url(new_database: Callable[[str], str], pnx210_template: str) -> str:
    return new_database(pnx210_template)


@pytest.fixture(scope="module")
def target_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """geovisio 2.15.1's migrations (the wheel the other tests use)."""
    return panoramax.migrations_dir(tmp_path_factory.mktemp("pnx2151"))


@pytest.fixture
def ops_pending(ops_db_url: str, tmp_path: Path) -> tuple[str, Path]:
    """An ops-built database with one pending test migration: an index on pictures built without
    CONCURRENTLY, and the pictures to build it on."""
    with psycopg.connect(ops_db_url, autocommit=True) as c:
        account = make_account(c)
        for i in range(4):
            make_sequence(c, account, walk(3.0 + i * 0.01, 45.0, 25, seed=i))
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    return ops_db_url, write_migrations(folder, INDEX_MIGRATION)


def plan_json(ops: Callable[..., object], url: str, *args: str, **extra: str) -> tuple[int, dict, str]:
    result = ops("db", "plan", "--json", *args, env=env(url, **{"OPS_CACHE_DIR": str(panoramax.CACHE), **extra}))
    data = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, data, result.stderr


# --- a Panoramax-managed database: 2.10.0 -> 2.15.1 ---------------------------------------------------------


def test_the_plan_lists_what_yoyo_would_apply_and_takes_the_locks_applying_takes(
    ops, pnx210_url, target_folder, new_database, pnx210_template
):
    from yoyo import get_backend, read_migrations

    before, written = database_dump(pnx210_url), write_counters(pnx210_url)
    code, plan, stderr = plan_json(ops, pnx210_url, "--panoramax", str(panoramax.wheel()))
    assert code == 1, stderr  # warnings: queries on columns the upgrade adds, before they have statistics
    assert database_dump(pnx210_url) == before and write_counters(pnx210_url) == written  # only read
    assert scratch_databases(pnx210_url) == []

    backend = get_backend(pnx210_url.replace("postgresql://", "postgresql+psycopg://", 1))
    to_apply = [m.id for m in backend.to_apply(read_migrations(str(target_folder)))]
    backend.connection.close()
    assert [m["id"] for m in plan["migrations"]] == to_apply and len(to_apply) == 14

    visibility = next(m for m in plan["migrations"] if m["id"] == "20250902_01_k5UTq-visibility-status")
    assert {"table": "pictures", "blocks": "reads and writes", "mode": "ACCESS EXCLUSIVE"}.items() <= next(
        b for b in visibility["blocked"] if b["table"] == "pictures"
    ).items()
    assert any(w["migration"] == "20251127_01_S6Ci8-pictures-grid-visibility" and "ANALYZE" in " ".join(w["fixes"])
               for w in plan["warnings"])  # fmt: skip

    # the same migrations applied for real, by yoyo as flask db upgrade does, observed statement by statement
    copy = new_database(pnx210_template)
    applied = {m.id: m for m in panoramax.apply_observed(copy, target_folder)}
    assert list(applied) == to_apply
    for m in plan["migrations"]:
        real = applied[m["id"]].statements
        assert len(real) == len(m["statements"]), m["id"]
        for planned, measured in zip(m["statements"], real, strict=True):
            where = (m["id"], planned["number"])
            planned_locks = {(lk["table"], lk["mode"]) for lk in planned["locks"] if lk["existing"]}
            real_locks = {(lk.production, lk.as_dict()["mode"]) for lk in measured.locks if lk.production}
            assert planned_locks == real_locks, where
            assert {t["name"] for t in planned["effects"]["rewritten"] if t["existing"]} == {
                t.name for t in measured.effects.rewritten if t.production
            }, where


def test_a_python_migration_is_listed_as_not_traced(ops, cluster, admin_url, new_database):
    """A database of geovisio 2.10.0 stopped before its one Python migration, planned against 2.10.0."""
    from yoyo import get_backend, read_migrations

    folder = source.from_version("2.10.0", panoramax.CACHE)
    url = new_database("template1")
    backend = get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))
    every = backend.to_apply(read_migrations(str(folder)))
    first_python = next(i for i, m in enumerate(every) if m.path.endswith(".py"))
    with backend.lock():
        backend.apply_migrations(every[:first_python])
    backend.connection.close()

    code, plan, _stderr = plan_json(ops, url, "--panoramax", "2.10.0")
    assert code == 1, (plan.get("errors"), [m["error"] for m in plan.get("migrations", []) if m["error"]])
    python = plan["migrations"][0]
    assert python["id"] == "20221201_02_ZG8AR-camera-information" and "Python" in python["not_traced"]
    assert any(w["migration"] == python["id"] for w in plan["warnings"])
    assert len(plan["migrations"]) == len(every) - first_python  # the ones after it are traced


# --- an ops-built database ------------------------------------------------------------------------------


def test_an_index_built_without_concurrently_is_a_warning_with_the_safe_form(ops, ops_pending):
    url, folder = ops_pending
    extra = {"OPS_MIGRATIONS_DIR": str(folder)}
    code, plan, stderr = plan_json(ops, url, **extra)
    assert code == 0, stderr  # 100 pictures: far below the default 5 s
    [migration] = plan["migrations"]
    [statement] = migration["statements"]
    assert statement["locks"][0] | {"existing": True} == {
        "relation": "pictures",
        "table": "pictures",
        "mode": "SHARE",
        "existing": True,
        "blocks": "writes",
    }
    assert statement["effects"]["indexes_built"][0]["table"] == "pictures"

    code, plan, stderr = plan_json(ops, url, "--max-lock", "0", **extra)
    assert code == 1, stderr
    [warning] = plan["warnings"]
    assert "pictures" in warning["message"] and any("CONCURRENTLY" in f for f in warning["fixes"])

    dry = ops("db", "upgrade", "--dry-run", env=env(url, **extra))
    assert dry.exit_code == 0 and "locks: SHARE pictures" in dry.stdout
    assert "blocks writes on pictures" in dry.stdout
    assert "pictures_ts_test" not in database_dump(url)  # a dry run


def test_a_role_without_createdb_is_told_to_use_scratch_url_which_is_emptied(ops, ops_pending, new_database):
    url, folder = ops_pending
    role = make_role(url, "GRANT CONNECT ON DATABASE {db} TO {role}; GRANT USAGE ON SCHEMA public TO {role}; "
                          "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")  # fmt: skip
    as_role = url.replace("postgres@", f"{role}@")
    extra = {"OPS_MIGRATIONS_DIR": str(folder)}
    result = ops("db", "plan", env=env(as_role, **extra))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("error: this role may not create databases")

    scratch = new_database("template1")
    code, plan, stderr = plan_json(ops, as_role, "--scratch-url", scratch, **extra)
    assert code == 0 and plan["migrations"][0]["statements"][0]["locks"], stderr
    with psycopg.connect(scratch) as c:  # emptied again, left in place
        assert c.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()[0] == 0

    with psycopg.connect(scratch, autocommit=True) as c:
        c.execute("CREATE TABLE precious (id int)")
    result = ops("db", "plan", "--scratch-url", scratch, env=env(as_role, **extra))
    assert result.exit_code == 2 and "is not empty" in result.stderr
    with psycopg.connect(scratch) as c:
        assert c.execute("SELECT to_regclass('precious') IS NOT NULL").fetchone()[0]


def test_usage_errors_are_one_line_and_exit_2(ops, ops_pending, pnx_url, tmp_path):
    url, _folder = ops_pending
    (tmp_path / "empty").mkdir()
    cases = [
        (url, ["--panoramax", "2.15.1"], "plans a Panoramax-managed database"),
        (pnx_url, [], "--panoramax"),
        (pnx_url, ["--panoramax", "not-a-version"], "neither a folder"),
        (pnx_url, ["--panoramax", str(tmp_path / "empty")], "holds no migration"),
    ]
    for db, args, message in cases:
        result = ops("db", "plan", *args, env=env(db, **{"OPS_CACHE_DIR": str(tmp_path / "cache")}))
        assert result.exit_code == 2 and result.stdout == "", (args, result.stdout)
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and message in line, (args, line)


# --- nothing left behind ------------------------------------------------------------------------------


def test_no_scratch_database_survives_a_kill_at_any_point(ops, ops_pending):
    url, folder = ops_pending
    extra = {"OPS_MIGRATIONS_DIR": str(folder)}
    before = database_dump(url)
    started = time.monotonic()
    code, _plan, _err = plan_json(ops, url, **extra)
    whole = time.monotonic() - started
    assert code == 0
    rng = random.Random(22)
    points = sorted(rng.uniform(0.3, whole + 0.5) for _ in range(repetitions(20, 8)))
    left_by_kills = 0
    for delay in points:  # SIGKILL: nothing runs after it; the next plan drops what it left
        proc = start_ops("db", "plan", env=env(url, **extra))
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
        left_by_kills += len(scratch_databases(url))
    assert left_by_kills >= len(points) // 4, "too few kills landed while a scratch database existed"
    # a killed plan's CREATE DATABASE, or the DROP DATABASE of its end, goes on on the server after the kill
    with psycopg.connect(url) as c:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE (query ILIKE 'CREATE DATABASE%%' "
                "OR query ILIKE 'DROP DATABASE%%') AND state = 'active'"
            ).fetchone()[0]
        ):
            time.sleep(0.1)
    left = scratch_databases(url)
    result = ops("db", "plan", env=env(url, **extra))
    assert result.exit_code == 0
    assert (f"dropped {len(left)} scratch database(s)" in result.stdout) == bool(left)
    assert scratch_databases(url) == []
    assert database_dump(url) == before


def _default_signals() -> None:
    """In the child: Ctrl-C as a terminal delivers it (a test run in the background inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_plan_drops_its_scratch_database(ops_pending, sig):
    url, folder = ops_pending
    proc = start_ops("db", "plan", env=env(url, **{"OPS_MIGRATIONS_DIR": str(folder)}), preexec_fn=_default_signals)
    deadline = time.monotonic() + 60
    while not scratch_databases(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scratch_databases(url)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted"
    assert scratch_databases(url) == []


def test_a_running_plan_keeps_its_scratch_database_when_another_plan_starts(ops, ops_pending):
    url, folder = ops_pending
    extra = {"OPS_MIGRATIONS_DIR": str(folder)}
    first = start_ops("db", "plan", env=env(url, **extra))
    deadline = time.monotonic() + 60
    while not scratch_databases(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    running = scratch_databases(url)
    assert running
    second = ops("db", "plan", env=env(url, **extra))
    assert second.exit_code == 0 and "left by an interrupted plan" not in second.stdout
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "blocks writes on pictures" in out
    assert scratch_databases(url) == []


def test_a_locked_table_ends_the_plan_within_its_lock_timeout_and_leaves_nothing(ops_pending):
    url, folder = ops_pending
    before = database_dump(url)
    with psycopg.connect(url) as locker:
        locker.execute("LOCK pictures IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        started = time.monotonic()
        proc = start_ops("--read-lock-timeout", "2", "db", "plan", env=env(url, OPS_MIGRATIONS_DIR=str(folder)))
        _out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
        assert scratch_databases(url) == []
    assert proc.returncode == 3 and took < 30, (proc.returncode, took)  # could not check
    assert err.strip().splitlines()[-1].startswith("error: ") and "timeout" in err
    assert database_dump(url) == before


def test_a_btree_on_a_key_in_table_order_is_estimated_from_the_in_order_rate(ops, ops_db_url, tmp_path):
    """an index on a key the table is stored in (a capture time of pictures inserted as they come) sorts
    presorted rows: its estimate comes from production's correlation, not the random-order rate (2.5x over
    at 1M pictures before)"""
    with psycopg.connect(ops_db_url, autocommit=True) as c:
        c.execute("CREATE TABLE measures AS SELECT g AS n, md5(g::text)::uuid AS id FROM generate_series(1, 300000) g")
        c.execute("ANALYZE measures")
    folder = with_pending(tmp_path / "migrations", "0100_two-indexes",
                          "CREATE INDEX measures_n ON measures (n);\nCREATE INDEX measures_id ON measures (id);\n",
                          "DROP INDEX measures_n;\nDROP INDEX measures_id;\n")  # fmt: skip
    code, plan, err = plan_json(ops, ops_db_url, OPS_MIGRATIONS_DIR=str(folder))
    assert code == 0, err
    ordered, random_order = (st["estimate"] for st in plan["migrations"][0]["statements"])
    assert any("n correlation 1.00" in b for b in ordered["basis"]), ordered
    assert any("id correlation" in b for b in random_order["basis"]), random_order
    assert 0 < ordered["seconds"] < random_order["seconds"], (ordered, random_order)
