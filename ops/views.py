"""Materialized views of ``sql/views/``: repeatable definitions kept in sync by ``ops db upgrade``, and
their refresh (``ops db refresh`` / ``ops refresh``, and the worker's schedule).

Each file ``<name>.sql`` creates the materialized view ``<name>`` and its indexes. ``ops_views`` keeps each
view's checksum (a changed file means drop and re-create), its last refresh time, duration and row count.
A refresh takes a per-view advisory lock: one refresh of a view at a time across all machines; another one
is reported as skipped, never as refreshed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops import db
from ops.errors import OpsError, UsageError
from ops.report import Report, silent

if TYPE_CHECKING:
    import psycopg

BOOKKEEPING_TABLE = "ops_views"


@dataclass(frozen=True)
class ViewFile:
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def checksum(self) -> str:
        from ops.migrations import normalized_checksum

        return normalized_checksum(self.sql())


def view_files(directory: Path | None) -> list[ViewFile]:
    if directory is None or not directory.is_dir():
        return []
    return sorted((ViewFile(p.stem, p) for p in directory.glob("*.sql")), key=lambda v: v.name)


def _bookkeeping_exists(conn: psycopg.Connection) -> bool:
    return db.table_exists(conn, BOOKKEEPING_TABLE)


def _matview_exists(conn: psycopg.Connection, name: str) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = %s", (name,)
        ).fetchone()
    )


def _drop(conn: psycopg.Connection, name: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(sql.Identifier(name)))


@dataclass
class SyncResult:
    created: list[str]
    recreated: list[str]
    dropped: list[str]


def _ensure_bookkeeping(conn: psycopg.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {BOOKKEEPING_TABLE} ("
        " name text PRIMARY KEY, checksum text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
        " refreshed_at timestamptz, refresh_duration_ms integer, nb_rows bigint)"
    )


def _sync_one(conn: psycopg.Connection, view: ViewFile, known: dict[str, str]) -> str | None:
    """Create or re-create one view if its file changed or it is missing; say which it did."""
    checksum = view.checksum()
    if known.get(view.name) == checksum and _matview_exists(conn, view.name):
        return None
    _drop(conn, view.name)
    from psycopg import sql

    started = time.monotonic()
    conn.execute(view.sql())
    duration_ms: int | None = int((time.monotonic() - started) * 1000)
    populated = conn.execute(
        "SELECT ispopulated FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = %s", (view.name,)
    ).fetchone()[0]
    nb_rows = None
    if populated:
        nb_rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(view.name))).fetchone()[0]
    else:
        duration_ms = None  # created WITH NO DATA: never refreshed yet
    conn.execute(
        f"INSERT INTO {BOOKKEEPING_TABLE} (name, checksum, refreshed_at, refresh_duration_ms, nb_rows) "
        "VALUES (%s, %s, CASE WHEN %s THEN now() END, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, created_at = now(), "
        "refreshed_at = EXCLUDED.refreshed_at, refresh_duration_ms = EXCLUDED.refresh_duration_ms, "
        "nb_rows = EXCLUDED.nb_rows",
        (view.name, checksum, populated, duration_ms, nb_rows),
    )
    return "re-created" if view.name in known else "created"


def _known(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(f"SELECT name, checksum FROM {BOOKKEEPING_TABLE}").fetchall())


def sync(conn: psycopg.Connection, directory: Path | None, report: Report = silent) -> SyncResult:
    """Create missing views, re-create changed ones, drop those whose file is gone (one transaction)."""
    files = view_files(directory)
    result = SyncResult([], [], [])
    if not files and not _bookkeeping_exists(conn):
        return result
    with conn.transaction():
        _ensure_bookkeeping(conn)
        known = _known(conn)
        for view in files:
            done = _sync_one(conn, view, known)
            if done:
                (result.recreated if done == "re-created" else result.created).append(view.name)
                report(f"{done} view {view.name}")
        for name in sorted(set(known) - {v.name for v in files}):
            _drop(conn, name)
            conn.execute(f"DELETE FROM {BOOKKEEPING_TABLE} WHERE name = %s", (name,))
            result.dropped.append(name)
            report(f"dropped view {name} (its file is gone)")
    return result


def sync_tolerant(
    conn: psycopg.Connection, directory: Path | None, report: Report = silent, log: Report = silent
) -> None:
    """Re-create views after a partial rollback; a view whose tables are gone is left out, with a warning."""
    files = view_files(directory)
    if not files:
        return
    with conn.transaction():
        _ensure_bookkeeping(conn)
    for view in files:
        try:
            with conn.transaction():
                done = _sync_one(conn, view, _known(conn))
            if done:
                report(f"{done} view {view.name}")
        except Exception as e:  # psycopg.Error: the view needs something rolled back; upgrade brings it back
            log(f"view {view.name} not re-created: {' '.join(str(e).split())}")


def drop_all(conn: psycopg.Connection, *, keep_bookkeeping: bool = False) -> list[str]:
    """Drop every view ops created (before a rollback)."""
    if not _bookkeeping_exists(conn):
        return []
    with conn.transaction():
        names = [r[0] for r in conn.execute(f"SELECT name FROM {BOOKKEEPING_TABLE} ORDER BY name").fetchall()]
        for name in names:
            _drop(conn, name)
        if keep_bookkeeping:
            conn.execute(f"DELETE FROM {BOOKKEEPING_TABLE}")
        else:
            conn.execute(f"DROP TABLE {BOOKKEEPING_TABLE}")
    return names


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
    if not _bookkeeping_exists(conn):
        return []
    rows = conn.execute(
        f"SELECT v.name, coalesce(m.ispopulated, false), v.refreshed_at, v.refresh_duration_ms, v.nb_rows "
        f"FROM {BOOKKEEPING_TABLE} v LEFT JOIN pg_matviews m "
        "ON m.matviewname = v.name AND m.schemaname = current_schema() ORDER BY v.name"
    ).fetchall()
    return [ViewStatus(*row) for row in rows]


def view_lock_key(name: str) -> int:
    """The advisory-lock key of a view's refresh: 63 bits of SHA-256 of its name (stable across machines)."""
    return int.from_bytes(hashlib.sha256(f"ops.view.{name}".encode()).digest()[:8], "big") >> 1


@dataclass
class RefreshOutcome:
    view: str
    state: str  # refreshed | skipped | failed
    concurrently: bool = False
    duration_s: float = 0.0
    nb_rows: int = 0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "state": self.state,
            "concurrently": self.concurrently,
            "duration_s": round(self.duration_s, 3),
            "nb_rows": self.nb_rows,
            "message": self.message,
        }


def _can_refresh_concurrently(conn: psycopg.Connection, name: str) -> bool:
    """Populated, and with a unique index over plain columns and no predicate (PostgreSQL's condition)."""
    row = conn.execute(
        "SELECT m.ispopulated AND EXISTS ("
        "  SELECT 1 FROM pg_index i WHERE i.indrelid = m.matviewname::text::regclass AND i.indisunique AND i.indisvalid"
        "  AND i.indpred IS NULL AND i.indexprs IS NULL)"
        " FROM pg_matviews m WHERE m.matviewname = %(name)s AND m.schemaname = current_schema()",
        {"name": name},
    ).fetchone()
    return bool(row and row[0])


def _refresh_one(conn: psycopg.Connection, name: str) -> RefreshOutcome:
    from psycopg import sql

    key = view_lock_key(name)
    if not db.try_advisory_lock(conn, key):
        holder = db.lock_holder(conn, key)
        who = f"pid {holder.pid}" if holder else "another session"
        return RefreshOutcome(name, "skipped", message=f"a refresh is already running ({who})")
    try:
        concurrently = _can_refresh_concurrently(conn, name)
        statement = sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(
            sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL(""), sql.Identifier(name)
        )
        started = time.monotonic()
        conn.execute(statement)
        duration = time.monotonic() - started
        nb_rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()[0]
        conn.execute(
            f"UPDATE {BOOKKEEPING_TABLE} SET refreshed_at = now(), refresh_duration_ms = %s, nb_rows = %s "
            "WHERE name = %s",
            (int(duration * 1000), nb_rows, name),
        )
        return RefreshOutcome(name, "refreshed", concurrently, duration, nb_rows)
    except Exception as e:  # psycopg.Error: reported per view, the others still refresh
        message = getattr(getattr(e, "diag", None), "message_primary", None) or str(e).strip()
        return RefreshOutcome(name, "failed", message=" ".join(message.split()))
    finally:
        db.advisory_unlock(conn, key)


def refresh(
    conn: psycopg.Connection, only: str | None = None, report: Callable[[RefreshOutcome], None] | None = None
) -> list[RefreshOutcome]:
    """Refresh every view (or ``only``), CONCURRENTLY when populated with a unique index, plainly otherwise.

    ``conn`` must be in autocommit mode: each refresh is its own transaction and holds only its view's lock.
    """
    names = [v.name for v in view_status(conn)]
    if only is not None:
        if only not in names:
            known = ", ".join(names) or "none"
            raise UsageError(f"no such view: {only} (views: {known})")
        names = [only]
    conn.execute("SET statement_timeout = 0")
    outcomes = []
    for name in names:
        outcome = _refresh_one(conn, name)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return outcomes


def failed(outcomes: list[RefreshOutcome]) -> list[RefreshOutcome]:
    return [o for o in outcomes if o.state == "failed"]


def raise_on_failure(outcomes: list[RefreshOutcome]) -> None:
    bad = failed(outcomes)
    if bad:
        raise OpsError("refresh failed for " + "; ".join(f"{o.view}: {o.message}" for o in bad))
