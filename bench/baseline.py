"""The baseline side of a paired benchmark, run as a process like ops's side:

    DB_URL=... python -m bench.baseline NAME [--param KEY=VALUE]... [--imports MODULE,...] [--stream]

It imports the modules the ops command imports (``--imports``), so that both sides pay the same interpreter
and import start-up, connects with DB_URL, and runs ``bench/sql/NAME.sql`` in one transaction. The name
``reorder_chosen_baseline`` runs reorder_baseline.sql ranked by ops's own rule (users' chosen orders); the name
``doctor_bare`` runs ops doctor's own check statements (``sql/queries/doctor.sql``) bare instead: one after
the other in one transaction, no per-check transaction, timeout, deadline or report; a statement the
database cannot run (a table or column it lacks) is skipped, as doctor marks its check not applicable. With
``--stream`` the last statement is a query whose rows are read through a server-side cursor and dropped.
What is left between the two sides is the work: ops's schema checks, batching and reporting against the
least hand-written SQL that gives the same result.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

SQL = Path(__file__).parent / "sql"
COMMON_IMPORTS = ("click", "psycopg", "ops.cli", "ops.cli.common", "ops.db", "ops.schema.status")


def statements(name: str) -> list[str]:
    import sqlparse

    text = (SQL / f"{name}.sql").read_text()
    return [s for s in (p.strip().rstrip(";") for p in sqlparse.split(text)) if s and not _only_comments(s)]


def _only_comments(statement: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in statement.splitlines())


DOCTOR_BARE = "doctor_bare"
ORDERED = "{ordered}"  # reorder_baseline.sql's placeholder for its ranking rule
REORDER = "reorder_baseline"
CHOSEN = "reorder_chosen_baseline"  # reorder_baseline.sql ranked by ops's own rule, users' chosen orders first
CAPTURE_ORDER = "reorder_capture_order"  # reorder_baseline.sql's rule on ops's own database: capture time


def _with_capture_order(todo: list[str]) -> list[object]:
    """``todo`` with the capture-time ranking rule composed in place of ``{ordered}``."""
    from psycopg import sql

    (rule,) = statements(CAPTURE_ORDER)
    return [sql.SQL(s).format(ordered=sql.SQL(rule)) if ORDERED in s else s for s in todo]


def _with_users_choices(conn: object, todo: list[str]) -> tuple[list[object], dict[str, object]]:
    """``todo`` with ops sequences reorder's own ranking rule (the order users chose through Panoramax, else
    capture time) composed in place of ``{ordered}``, and its parameters for every sequence not deleted, the
    choices read by ops's own statement: the same ranks as ops, in one transaction."""
    import psycopg
    from psycopg import sql

    from ops import queries, sequences
    from ops.schema import capabilities

    assert isinstance(conn, psycopg.Connection)
    columns = capabilities.optional_columns(conn)
    ids = [r[0] for r in conn.execute("SELECT id FROM sequences WHERE status <> 'deleted' ORDER BY id")]
    params = sequences.order_params(conn, ids, columns)
    ordered = queries.composed(sequences.RANKS, "ordered", columns)
    composed: list[object] = [sql.SQL(s).format(ordered=ordered) if ORDERED in s else s for s in todo]
    return composed, params


def _doctor_bare(conn: object) -> None:
    """Every check statement of ops doctor, bare (the floor of ``ops doctor``)."""
    from datetime import timedelta

    import psycopg

    from ops import doctor, queries

    assert isinstance(conn, psycopg.Connection)
    params = {
        "seq_ids": None,
        "stuck_after": timedelta(hours=24),
        "shown": doctor.SHOWN,
        "idle_after": doctor.IDLE_AFTER,
    }
    for statement in queries.named(doctor.FILE).values():
        try:
            with conn.transaction():
                conn.execute(statement, params).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedFunction):
            pass  # not applicable here, as doctor says


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--imports", default="", help="comma-separated modules the ops command imports")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args(argv)
    for module in (*COMMON_IMPORTS, *filter(None, args.imports.split(","))):
        importlib.import_module(module)
    import psycopg

    params = dict(p.split("=", 1) for p in args.param) or None
    todo = [] if args.name == DOCTOR_BARE else statements(REORDER if args.name == CHOSEN else args.name)
    # JIT off, as in ops's sessions (ops.db.SESSION_SETTINGS): the pair compares the work; its cost is
    # measured by the JIT pairs of the bench (ops --jit against ops)
    with psycopg.connect(os.environ["DB_URL"], options="-c jit=off") as conn:
        if args.name == DOCTOR_BARE:
            _doctor_bare(conn)
        if args.name == CHOSEN:
            todo, params = _with_users_choices(conn, todo)  # type: ignore[assignment]
        elif any(ORDERED in s for s in todo):
            todo = _with_capture_order(todo)  # type: ignore[assignment]
        for statement in todo[:-1] if args.stream else todo:
            conn.execute(statement, params)
        if args.stream:
            with conn.cursor(name="baseline") as cur:
                cur.itersize = 10_000
                cur.execute(todo[-1], params)
                for _row in cur:
                    pass
        conn.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
