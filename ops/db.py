"""Database connections, advisory locks and the watch on sessions that block a migration.

Every connection ops opens carries ``application_name = ops@<hostname>`` so that operators can see it in
``pg_stat_activity``. Connection errors become one line with the URL's password masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ops.config import application_name, mask_url, scrub, url_secrets
from ops.errors import DatabaseUnavailable, LockTimeout

CONNECT_TIMEOUT_S = 10
Query = str | sql.SQL | sql.Composed
Params = Sequence[Any] | Mapping[str, Any] | None


def postgres_options(settings: dict[str, str | int]) -> str:
    """Render server settings as a libpq ``options`` value (``-c name=value ...``)."""
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def connect(
    url: str, *, autocommit: bool = False, server_settings: dict[str, str | int] | None = None
) -> psycopg.Connection:
    """Open a psycopg connection, turning any failure into one masked line."""
    kwargs: dict[str, Any] = {
        "autocommit": autocommit,
        "application_name": application_name(),
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    if server_settings:
        kwargs["options"] = postgres_options(server_settings)
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.Error as e:
        reason = " ".join(str(e).split())
        raise DatabaseUnavailable(f"cannot connect to {mask_url(url)}: {scrub(reason, url_secrets(url))}") from None


def one(conn: psycopg.Connection, query: Query, params: Params = None) -> tuple[Any, ...]:
    """The one row of a query that always returns one (an aggregate, a ``RETURNING`` of a known row)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return tuple(row)


def scalar(conn: psycopg.Connection, query: Query, params: Params = None) -> Any:
    """The first value of the one row of a query (``SELECT count(*) …``)."""
    return one(conn, query, params)[0]


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    return bool(scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (name,)))


def server_major_version(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


def require_postgis(conn: psycopg.Connection) -> None:
    """Fail with the package to install when the server cannot create the postgis extension."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
    if row is None:
        ver = server_major_version(conn)
        raise DatabaseUnavailable(f"PostGIS is not available on this server: install postgresql-{ver}-postgis-3")


@dataclass(frozen=True)
class LockHolder:
    """A session holding an advisory lock, as ``pg_stat_activity`` shows it."""

    pid: int
    application_name: str
    client_addr: str | None
    since: datetime | None
    query: str = ""

    def describe(self) -> str:
        where = self.client_addr or "local socket"
        since = self.since.isoformat(timespec="seconds") if self.since else "unknown time"
        app = self.application_name or "no application_name"
        return f"pid {self.pid} ({app}, from {where}, since {since})"


HOLDER_SQL = """
SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %(classid)s::bigint::oid AND l.objid = %(objid)s::bigint::oid AND l.objsubid = 1
  AND a.pid <> pg_backend_pid()
LIMIT 1
"""


def lock_holder(conn: psycopg.Connection, key: int) -> LockHolder | None:
    """Who holds the session-level advisory lock ``key`` (a signed bigint), if anyone visible."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(HOLDER_SQL, {"classid": unsigned >> 32, "objid": unsigned & 0xFFFFFFFF}).fetchone()
    return LockHolder(*row) if row else None


def try_advisory_lock(conn: psycopg.Connection, key: int) -> bool:
    return bool(scalar(conn, "SELECT pg_try_advisory_lock(%s)", (key,)))


def advisory_unlock(conn: psycopg.Connection, key: int) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def advisory_lock(
    conn: psycopg.Connection,
    key: int,
    *,
    what: str,
    timeout_s: float,
    poll_s: float = 0.5,
    on_wait: Callable[[LockHolder | None], None] | None = None,
) -> Iterator[None]:
    """Hold a session-level advisory lock on the autocommit connection ``conn``.

    Polls ``pg_try_advisory_lock`` (never a blocking wait, which could deadlock with
    ``CREATE INDEX CONCURRENTLY`` run by the holder). The lock dies with the session, so a killed
    process leaves no stale lock.
    """
    started = time.monotonic()
    told = False
    while not try_advisory_lock(conn, key):
        holder = lock_holder(conn, key)
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        if time.monotonic() - started >= timeout_s:
            who = holder.describe() if holder else "another session"
            raise LockTimeout(f"{what} is held by {who}; gave up after {timeout_s:g} s (see --lock-timeout)")
        time.sleep(poll_s)
    try:
        yield
    finally:
        if not conn.closed:
            advisory_unlock(conn, key)


BLOCKERS_SQL = """
SELECT a.pid, a.application_name, a.client_addr::text, a.xact_start, left(a.query, 200)
FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(%s))
"""


class BlockerWatch:
    """Watches, from a spare connection, which sessions block a given backend.

    Used while a migration runs: when it fails on ``lock_timeout`` the last seen blockers can be named.
    """

    def __init__(self, conn: psycopg.Connection, pid: int, interval_s: float = 0.2) -> None:
        self._conn = conn
        self._pid = pid
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.last_blockers: list[LockHolder] = []

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                rows = self._conn.execute(BLOCKERS_SQL, (self._pid,)).fetchall()
            except Exception:  # the watch is advisory only
                return
            if rows:
                self.last_blockers = [LockHolder(*row) for row in rows]

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
