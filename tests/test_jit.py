"""PostgreSQL's JIT stays out of ops's sessions, read back from the server (pg_stat_statements' jit_functions,
with every statement made JIT-worthy by jit_above_cost = 0 on the database), and `ops db status` tells a
Panoramax operator what JIT costs Panoramax's geometry function on this server."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql

from tests.factories import is_panoramax, make_account, make_sequence, walk
from tests.storage_helpers import local_store, prepared_sequence


@pytest.fixture
def jit_counter(admin_url, db_url):
    """A counter of the functions the server JIT-compiled in the test's database, and a database where JIT
    would compile every statement of a session that lets it."""
    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        c.execute(sql.SQL("ALTER DATABASE {} SET jit_above_cost = 0").format(sql.Identifier(name)))
        c.execute(sql.SQL("ALTER DATABASE {} SET jit = on").format(sql.Identifier(name)))
        dbid = c.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]

    def compiled(reset: bool = False) -> int:
        with psycopg.connect(admin_url, autocommit=True) as c:
            if reset:
                c.execute("SELECT pg_stat_statements_reset(0, %s, 0)", (dbid,))
                return 0
            return c.execute("SELECT coalesce(sum(jit_functions), 0) FROM pg_stat_statements WHERE dbid = %s",
                             (dbid,)).fetchone()[0]  # fmt: skip

    return compiled


def test_no_command_session_is_jit_compiled(ops, conn, db_url, tmp_path, jit_counter):
    store = local_store(tmp_path)
    seq, _pics = prepared_sequence(conn, store, 4)
    make_sequence(conn, make_account(conn, "bob"), walk(3.0, 1.0, 5)[::-1])
    env = {"DB_URL": db_url, **store.env}
    commands = [["sequences", "reorder"], ["set-sequences-heading", "--overwrite"], ["refresh"], ["health"],
                ["jobs"], ["jobs", "list"], ["storage", "check", "--verify"], ["storage", "orphans"],
                ["cleanup", str(seq), "--dry-run"], ["user", "bob", "--delete-data"], ["cleanup", str(seq)],
                ["worker", "--once"], ["sequences", "reorder", "--dry-run"]]  # fmt: skip
    if not is_panoramax(conn):
        commands.append(["db", "status"])  # on Panoramax's it measures JIT on purpose (next test)
    for args in commands:
        jit_counter(reset=True)
        result = ops(*args, env=env)
        assert result.exit_code in (0, 1), (args, result.stderr)
        assert jit_counter() == 0, args
    # the control: the same server compiles a command's statements when the session lets it
    jit_counter(reset=True)
    assert ops("--jit", "sequences", "reorder", env=env).exit_code == 0
    assert jit_counter() > 0


def dearer_compilation(admin: psycopg.Connection, database: str) -> None:
    """JIT with inlining and optimisation, as a server tuned for analytics sets it: each compilation costs tens
    of ms more than the call, a gap far from the verdict's threshold even on a machine busy with other tests
    (the bare compilation costs 10-25 ms there, on both sides of MIN_GAP_MS)."""
    for setting in ("jit_optimize_above_cost", "jit_inline_above_cost"):
        admin.execute(sql.SQL("ALTER DATABASE {} SET {} = 0").format(sql.Identifier(database), sql.Identifier(setting)))


def test_db_status_says_what_jit_costs_panoramax_s_function(ops, pnx_url, admin_url):
    with psycopg.connect(pnx_url, autocommit=True) as c:
        for i in range(3):
            make_sequence(c, make_account(c, f"u{i}"), walk(1.0 + i, 1.0, 30))
    name = pnx_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as c:  # a server that JIT-compiles it, as by default
        c.execute(sql.SQL("ALTER DATABASE {} SET jit = on").format(sql.Identifier(name)))
        c.execute(sql.SQL("ALTER DATABASE {} SET jit_above_cost = 100000").format(sql.Identifier(name)))
        dearer_compilation(c, name)
    result = ops("db", "status", "--json", env={"DB_URL": pnx_url})
    report = json.loads(result.stdout)["jit"]
    assert report["function"] == "compute_sequence_geom" and report["server_jit"] is True
    assert report["ms_per_call_with_jit"] > report["ms_per_call_without_jit"] > 0 and report["costly"]
    text = ops("db", "status", env={"DB_URL": pnx_url}).stdout
    assert "compute_sequence_geom()" in text and "ms per call with JIT" in text and "ms without" in text
    assert f'ALTER DATABASE "{name}" SET jit = off' in text
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(sql.SQL("ALTER DATABASE {} SET jit = off").format(sql.Identifier(name)))
    off = json.loads(ops("db", "status", "--json", env={"DB_URL": pnx_url}).stdout)["jit"]
    assert off["server_jit"] is False and off["costly"] is False


@pytest.mark.slow
def test_the_jit_verdict_is_the_same_run_after_run_on_unchanged_data(ops, pnx_url, admin_url):
    """doctor's DB005 flipped on unchanged data (2 runs of 6 warned: 7.5 ms against 0.85): six measurements
    give one verdict, and a compiled call counts as costly only when it is clearly slower"""
    from ops.jit import MIN_GAP_MS, WORTH_SAYING

    with psycopg.connect(pnx_url, autocommit=True) as c:
        for i in range(7):
            make_sequence(c, make_account(c, f"u{i}"), walk(1.0 + i, 1.0, 30))
    name = pnx_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(sql.SQL("ALTER DATABASE {} SET jit = on").format(sql.Identifier(name)))
        c.execute(sql.SQL("ALTER DATABASE {} SET jit_above_cost = 100000").format(sql.Identifier(name)))
        dearer_compilation(c, name)
    reports = [json.loads(ops("db", "status", "--json", env={"DB_URL": pnx_url}).stdout)["jit"] for _ in range(6)]
    assert len({r["costly"] for r in reports}) == 1, [(r["ms_per_call_with_jit"], r["ms_per_call_without_jit"])
                                                       for r in reports]  # fmt: skip
    for r in reports:
        gap = r["ms_per_call_with_jit"] - r["ms_per_call_without_jit"]
        assert r["costly"] == (
            gap >= MIN_GAP_MS and r["ms_per_call_with_jit"] > WORTH_SAYING * r["ms_per_call_without_jit"]
        )
