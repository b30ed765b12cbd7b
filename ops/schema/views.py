"""Materialized views of ``sql/views/``: repeatable definitions kept in sync by ``ops db upgrade``.

Each file ``<name>.sql`` creates the materialized view ``<name>`` and its indexes. ``ops_views`` keeps each
view's checksum (a changed file means drop and re-create) and its last refresh (see ``ops.refresh``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ops import db, queries
from ops.report import Log, silent
from ops.schema import bookkeeping
from ops.schema.files import ViewFile, view_files


def matview_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = %s", (name,)
    ).fetchone()
    return row is not None


def _drop(conn: psycopg.Connection, name: str) -> None:
    conn.execute(queries.identified("ddl", "drop_view", view=name))


def count_rows(conn: psycopg.Connection, name: str) -> int:
    return int(db.scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))))


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _known(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(queries.statement("bookkeeping", "known_views")).fetchall())


def _sync_one(conn: psycopg.Connection, view: ViewFile, known: dict[str, str]) -> str | None:
    """Create or re-create one view if its file changed or it is missing; say which it did."""
    checksum = view.checksum()
    if known.get(view.name) == checksum and matview_exists(conn, view.name):
        return None
    _drop(conn, view.name)
    started = time.monotonic()
    conn.execute(view.sql())
    duration_ms = int((time.monotonic() - started) * 1000)
    populated = bool(
        db.scalar(
            conn,
            "SELECT ispopulated FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = %s",
            (view.name,),
        )
    )
    conn.execute(
        queries.statement("bookkeeping", "record_view"),
        {
            "name": view.name,
            "checksum": checksum,
            "populated": populated,
            "duration_ms": duration_ms if populated else None,  # WITH NO DATA: never refreshed yet
            "nb_rows": count_rows(conn, view.name) if populated else None,
        },
    )
    return "re-created" if view.name in known else "created"


def sync(conn: psycopg.Connection, directory: Path | None, report: Log = silent) -> SyncResult:
    """Create missing views, re-create changed ones, drop those whose file is gone (one transaction)."""
    files = view_files(directory)
    result = SyncResult()
    if not files and not bookkeeping.views_table_exists(conn):
        return result
    with conn.transaction():
        bookkeeping.ensure_views_table(conn)
        known = _known(conn)
        for view in files:
            done = _sync_one(conn, view, known)
            if done:
                (result.recreated if done == "re-created" else result.created).append(view.name)
                report(f"{done} view {view.name}")
        for name in sorted(set(known) - {v.name for v in files}):
            _drop(conn, name)
            conn.execute(queries.statement("bookkeeping", "forget_view"), {"name": name})
            result.dropped.append(name)
            report(f"dropped view {name} (its file is gone)")
    return result


def sync_tolerant(conn: psycopg.Connection, directory: Path | None, report: Log = silent, log: Log = silent) -> None:
    """Re-create views after a partial rollback; a view whose tables are gone is left out, with a warning."""
    files = view_files(directory)
    if not files:
        return
    with conn.transaction():
        bookkeeping.ensure_views_table(conn)
    for view in files:
        try:
            with conn.transaction():
                done = _sync_one(conn, view, _known(conn))
            if done:
                report(f"{done} view {view.name}")
        except psycopg.Error as e:  # the view needs something rolled back; upgrade brings it back
            log(f"view {view.name} not re-created: {' '.join(str(e).split())}")


def drop_all(conn: psycopg.Connection, *, keep_bookkeeping: bool = False) -> list[str]:
    """Drop every view ops created (before a rollback)."""
    if not bookkeeping.views_table_exists(conn):
        return []
    with conn.transaction():
        names = list(_known(conn))
        for name in names:
            _drop(conn, name)
        if keep_bookkeeping:
            conn.execute(queries.statement("bookkeeping", "forget_all_views"))
        else:
            conn.execute(queries.identified("ddl", "drop_table", table=bookkeeping.VIEWS_TABLE))
    return names


def out_of_sync(conn: psycopg.Connection, directory: Path | None) -> list[str]:
    """What differs between the view files and the database (a killed upgrade, a hand-made change):
    empty when every view exists as its file defines it."""
    files = view_files(directory)
    known = _known(conn) if bookkeeping.views_table_exists(conn) else {}
    problems = []
    for view in files:
        if not matview_exists(conn, view.name):
            problems.append(f"view {view.name} is missing")
        elif known.get(view.name) != view.checksum():
            problems.append(f"view {view.name} differs from its file")
    problems += [f"view {name} has no file any more" for name in sorted(set(known) - {v.name for v in files})]
    return problems


@dataclass(frozen=True)
class ViewStatus:
    name: str
    populated: bool
    refreshed_at: datetime | None
    refresh_duration_ms: int | None
    nb_rows: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "populated": self.populated,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "refresh_duration_ms": self.refresh_duration_ms,
            "nb_rows": self.nb_rows,
        }


def view_status(conn: psycopg.Connection) -> list[ViewStatus]:
    if not bookkeeping.views_table_exists(conn):
        return []
    return [ViewStatus(*row) for row in conn.execute(queries.statement("bookkeeping", "view_status")).fetchall()]
