"""What a killed migration without a transaction (``-- transactional: false``) leaves behind, found and
removed before it runs again.

yoyo records such a migration only after its last statement, and each statement commits on its own: a run
killed during ``CREATE INDEX CONCURRENTLY`` leaves an invalid index of that name, one killed after the build
but before yoyo's record a valid one, and either way the next run fails on "already exists" (Panoramax's own
``flask db upgrade`` too). The history still calls the migration pending, so the index is that migration's
own, half-built or built by a run that never recorded it: it is dropped (concurrently: the table's writes go
on) and built again, which ends in the state an uninterrupted run leaves. The plan's replay does the same on
its scratch copy, so it traces what production will run.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from ops import queries
from ops.plan import vet

FILE = "leftovers"


def interrupted_indexes(conn: psycopg.Connection, statements: Iterable[str]) -> list[tuple[str | None, str, bool]]:
    """The indexes that ``statements`` (a pending migration's) build concurrently and that exist already:
    (schema or None, name, valid)."""
    found = []
    for text in statements:
        target = vet.concurrent_index(text)
        if target is None:
            continue
        schema, name = target
        row = conn.execute(queries.statement(FILE, "index_state"), {"schema": schema, "name": name}).fetchone()
        if row is not None:
            found.append((schema, name, bool(row[0])))
    return found


def drop_interrupted_indexes(conn: psycopg.Connection, statements: Iterable[str]) -> list[str]:
    """Drop what ``interrupted_indexes`` finds (``conn`` in autocommit); returns one description per index."""
    dropped = []
    for schema, name, valid in interrupted_indexes(conn, statements):
        index = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        conn.execute(sql.SQL(queries.statement(FILE, "drop_index")).format(index=index))
        dropped.append(describe(name, valid))
    return dropped


def describe(name: str, valid: bool) -> str:
    return (f"index {name} ({'built' if valid else 'half-built, invalid'}) left by an interrupted run: dropped "
            "concurrently, then built again")  # fmt: skip
