"""``ops refresh`` / ``ops db refresh``: what the map and statistics read, brought up to date (cron, the
worker's schedule).

On an ops-managed database, the materialized views of ``sql/views``: a view is refreshed ``CONCURRENTLY``
when it is populated and has a usable unique index (readers are never blocked), plainly otherwise; a
per-view advisory lock lets one refresh of a view run at a time across all machines. On a
Panoramax-managed database, what Panoramax's ``db refresh`` does: its aggregate grid, under the lock of
``refresh_database``'s row (older releases: the ``pictures_grid`` view). Either way, a refresh running
elsewhere is reported as skipped, never as refreshed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import psycopg

from ops import db, queries
from ops.errors import RefreshFailed, UsageError
from ops.schema import kind, views

GRID = "pictures_aggregate_grid"


class RefreshRunning(Exception):
    """Another session holds refresh_database's row: its refresh is running (or its caller died and the
    server session ends at its lock or statement timeout, giving the row back)."""


LEGACY_GRID = "pictures_grid"


def view_lock_key(name: str) -> int:
    """The advisory-lock key of a view's refresh: 63 bits of SHA-256 of its name (stable across machines)."""
    return int.from_bytes(hashlib.sha256(f"ops.view.{name}".encode()).digest()[:8], "big") >> 1


class RefreshState(StrEnum):
    REFRESHED = "refreshed"
    SKIPPED = "skipped"  # another session is refreshing it
    FAILED = "failed"


@dataclass
class RefreshOutcome:
    view: str
    state: RefreshState
    concurrently: bool = False
    duration_s: float = 0.0
    nb_rows: int = 0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": str(self.state), "duration_s": round(self.duration_s, 3)}


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
    key = view_lock_key(name)
    if not db.try_advisory_lock(conn, key):
        holder = db.lock_holder(conn, key)
        who = f"pid {holder.pid}" if holder else "another session"
        return RefreshOutcome(name, RefreshState.SKIPPED, message=f"a refresh is already running ({who})")
    try:
        concurrently = _can_refresh_concurrently(conn, name)
        statement = queries.identified(
            "ddl", "refresh_view_concurrently" if concurrently else "refresh_view", view=name
        )
        started = time.monotonic()
        conn.execute(statement)
        duration = time.monotonic() - started
        nb_rows = views.count_rows(conn, name)
        conn.execute(
            queries.statement("bookkeeping", "record_refresh"),
            {"name": name, "duration_ms": int(duration * 1000), "nb_rows": nb_rows},
        )
        return RefreshOutcome(name, RefreshState.REFRESHED, concurrently, duration, nb_rows)
    except psycopg.Error as e:  # reported per view, the others still refresh
        message = e.diag.message_primary or str(e).strip()
        return RefreshOutcome(name, RefreshState.FAILED, message=" ".join(message.split()))
    finally:
        db.advisory_unlock(conn, key)


def _panoramax_refresh(conn: psycopg.Connection, full: bool) -> RefreshOutcome:
    """Panoramax's refresh: its aggregate grid (expired cells, or all with ``full``), or on releases before
    the grid its ``pictures_grid`` view, under the NOWAIT lock of ``refresh_database``'s row."""
    has_grid = bool(db.scalar(conn, "SELECT to_regprocedure('compute_pictures_aggregate_grid_expired()') IS NOT NULL"))
    name = GRID if has_grid else LEGACY_GRID
    if not has_grid and not views.matview_exists(conn, LEGACY_GRID):
        return RefreshOutcome(
            name, RefreshState.FAILED, message="neither Panoramax's aggregate grid nor pictures_grid exists"
        )
    started = time.monotonic()
    emptied = 0
    try:
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")
            try:
                with conn.transaction():  # a savepoint: after a refusal, the holder can still be read
                    conn.execute(queries.statement("panoramax_refresh", "lock"))
            except psycopg.errors.LockNotAvailable:
                holder = conn.execute(queries.statement("panoramax_refresh", "holder")).fetchone()
                who = f" by pid {holder[0]}, since {holder[1]:%Y-%m-%d %H:%M:%S %Z}" if holder else ""
                raise RefreshRunning(f"a refresh is already running (refresh_database is locked{who})") from None
            conn.execute(queries.statement("panoramax_refresh", "mark"))
            if not has_grid:
                conn.execute(queries.identified("ddl", "refresh_view_concurrently", view=LEGACY_GRID))
                cells = views.count_rows(conn, LEGACY_GRID)
            elif full:
                conn.execute(queries.statement("panoramax_refresh", "full"))
                conn.execute(queries.statement("panoramax_refresh", "forget_expired"))
                cells = int(db.scalar(conn, queries.statement("panoramax_refresh", "count_cells")))
            else:
                dropped = conn.execute(queries.statement("panoramax_refresh", "drop_expired_cells")).rowcount
                cells = int(db.scalar(conn, queries.statement("panoramax_refresh", "expired")))
                emptied = max(0, dropped - cells)
    except RefreshRunning as e:
        return RefreshOutcome(name, RefreshState.SKIPPED, message=str(e))
    except psycopg.errors.LockNotAvailable as e:  # lock_timeout: another session holds the grid
        explained = db.explain(conn, e, "refresh")
        return RefreshOutcome(name, RefreshState.FAILED, message=str(explained) if explained else str(e).strip())
    except psycopg.Error as e:
        message = e.diag.message_primary or str(e).strip()
        return RefreshOutcome(name, RefreshState.FAILED, message=" ".join(message.split()))
    if full and has_grid:
        done = "all cells rebuilt"
    elif has_grid:
        done = "expired cells updated" + (f", {emptied} emptied cells removed" if emptied else "")
    else:
        done = "view refreshed"
    return RefreshOutcome(name, RefreshState.REFRESHED, has_grid is False, time.monotonic() - started, cells, done)


def has_expiring_grid(conn: psycopg.Connection) -> bool:
    """A Panoramax aggregate grid with its expired-cells list (Panoramax 2.13 and later)."""
    return bool(db.scalar(conn, "SELECT to_regclass('pictures_aggregate_grid_expired') IS NOT NULL "
                                "AND to_regprocedure('pic_to_grid(geometry)') IS NOT NULL"))  # fmt: skip


def expire_cells_of_deleted(conn: psycopg.Connection, pic_ids: list[UUID] | None = None) -> None:
    """Before pictures are deleted (same transaction): expire their grid cells, so that the next refresh
    sees them gone. ``pic_ids`` None: the pictures of the temporary table cleanup_pictures. Nothing where
    there is no such grid (ops's views are refreshed whole)."""
    if not has_expiring_grid(conn):
        return
    if pic_ids is None:
        conn.execute(queries.statement("panoramax_refresh", "expire_selection"))
    else:
        conn.execute(queries.statement("panoramax_refresh", "expire_pictures"), {"pic_ids": pic_ids})


def refresh(
    conn: psycopg.Connection,
    only: str | None = None,
    report: Callable[[RefreshOutcome], None] | None = None,
    *,
    full: bool = False,
) -> list[RefreshOutcome]:
    """Refresh every view (or ``only``), CONCURRENTLY when populated with a unique index, plainly otherwise;
    on a Panoramax-managed database, its grid (``full``: the whole grid rather than its expired cells).

    ``conn`` must be in autocommit mode: each refresh is its own transaction and holds only its own lock.
    """
    if kind.detect(conn).panoramax:
        if only is not None:
            raise UsageError("--view names a view of ops; a Panoramax database has its map grid only")
        outcome = _panoramax_refresh(conn, full)
        if report is not None:
            report(outcome)
        return [outcome]
    names = [v.name for v in views.view_status(conn)]
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


def raise_on_failure(outcomes: list[RefreshOutcome]) -> None:
    """RefreshFailed naming every view that failed, if any did."""
    bad = [o for o in outcomes if o.state == RefreshState.FAILED]
    if bad:
        raise RefreshFailed("; ".join(f"refresh of {o.view} failed: {o.message}" for o in bad))


def last_refresh(conn: psycopg.Connection) -> datetime | None:
    """The oldest last-refresh time among the views (None if one was never refreshed or none exists); on
    a Panoramax-managed database, ``refresh_database.refreshed_at``."""
    if kind.detect(conn).panoramax:
        last: datetime | None = db.scalar(conn, queries.statement("panoramax_refresh", "last_refresh"))
        return last
    states = views.view_status(conn)
    if not states or any(s.refreshed_at is None for s in states):
        return None
    return min(s.refreshed_at for s in states if s.refreshed_at is not None)
