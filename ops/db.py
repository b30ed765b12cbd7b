"""Database connections, advisory locks and the watch on sessions that block a migration.

Every connection ops opens carries ``application_name = ops@<hostname>`` so that operators can see it in
``pg_stat_activity``. Connection errors become one line with the URL's password masked.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ops import queries
from ops.config import application_name, mask_url, scrub, url_secrets
from ops.errors import DatabaseUnavailable, LockTimeout, OpsError, WaitTimeout

CONNECT_TIMEOUT_S = 10
# Every ops session: PostgreSQL's JIT compiles a plan whose estimated cost passes jit_above_cost, and
# Panoramax's per-sequence SQL functions (compute_sequence_geom: ST_DumpSegments x geography lengths) are
# costed that high, so every call paid ~170 ms of compilation for ~1 ms of work (200x; see docs/performance.md,
# and docs/panoramax.md). Set as a connection option, like the timeouts: no statement or trigger of the session can
# bring it back. The server's own setting, for Panoramax's API, is the operator's choice (ops db status says).
SESSION_SETTINGS: dict[str, str | int] = {"jit": "off"}


def jit_setting(jit: bool | None) -> dict[str, str | int]:
    """The session's JIT option: off (ops's default), on (to measure its cost), None (the server's own)."""
    return {} if jit is None else {"jit": "on" if jit else "off"}


Query = str | sql.SQL | sql.Composed
Params = Sequence[Any] | Mapping[str, Any] | None


def postgres_options(settings: dict[str, str | int]) -> str:
    """Render server settings as a libpq ``options`` value (``-c name=value ...``)."""
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def connect(
    url: str,
    *,
    autocommit: bool = False,
    server_settings: dict[str, str | int] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    jit: bool | None = False,
) -> psycopg.Connection:
    """Open a psycopg connection, turning any failure into one masked line. ``connect_timeout_s`` bounds the
    whole connection (TCP, TLS, authentication; libpq counts whole seconds, at least 2). ``jit``: let the
    server JIT-compile this session's statements (off by default, SESSION_SETTINGS; None: as the server says)."""
    kwargs: dict[str, Any] = {
        "autocommit": autocommit,
        "application_name": application_name(),
        "connect_timeout": max(2, math.ceil(connect_timeout_s)),
        "options": postgres_options({**jit_setting(jit), **(server_settings or {})}),
    }
    try:  # options the URL itself carries (?options=-c search_path=…) come first: ours win where both set one
        given = psycopg.conninfo.conninfo_to_dict(url).get("options")
    except psycopg.Error:
        given = None  # psycopg.connect reports the malformed URL below
    if given:
        kwargs["options"] = f"{given} {kwargs['options']}"
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.Error as e:
        reason = " ".join(str(e).split())
        raise DatabaseUnavailable(f"cannot connect to {mask_url(url)}: {scrub(reason, url_secrets(url))}") from None


def read_only_settings(lock_timeout_s: float, statement_timeout_s: float) -> dict[str, str | int]:
    """Server settings of a session that only looks: read-only transactions, and bounded waits (0: none)."""
    return {
        "default_transaction_read_only": "on",
        "lock_timeout": f"{round(lock_timeout_s * 1000)}ms",
        "statement_timeout": f"{round(statement_timeout_s * 1000)}ms",
    }


class DeadlineCursor(psycopg.Cursor[Any]):
    """A cursor refusing to start a statement once its connection's deadline (``ops_deadline``, monotonic
    seconds) has passed: a command's whole database work is bounded, not only each statement."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if deadline_passed(self.connection):
            raise psycopg.errors.QueryCanceled("the command's deadline passed")
        return super().execute(query, params, **kwargs)


def bound_by_deadline(conn: psycopg.Connection, seconds: float) -> threading.Timer:
    """From ``seconds`` on: the statement in flight is cancelled and no further one starts. The timer
    returned is running; cancel it when the work is done."""
    conn.ops_deadline = time.monotonic() + seconds  # type: ignore[attr-defined]
    conn.cursor_factory = DeadlineCursor
    timer = threading.Timer(seconds, conn.cancel_safe)
    timer.daemon = True
    timer.start()
    return timer


def deadline_passed(conn: psycopg.Connection) -> bool:
    deadline = getattr(conn, "ops_deadline", None)
    return deadline is not None and time.monotonic() >= deadline - 0.05


def write_settings(lock_timeout_s: float) -> dict[str, str | int]:
    """Server settings of a session that writes: a bounded wait for locks (0: none), so that a command
    behind another session's lock fails naming it instead of waiting forever."""
    return {"lock_timeout": f"{round(lock_timeout_s * 1000)}ms"}


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


def lock_holder(conn: psycopg.Connection, key: int) -> LockHolder | None:
    """Who holds the session-level advisory lock ``key`` (a signed bigint), if anyone visible."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(queries.statement("sessions", "advisory_holder"),
                       {"classid": unsigned >> 32, "objid": unsigned & 0xFFFFFFFF}).fetchone()  # fmt: skip
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


def strong_lock_holders(conn: psycopg.Connection) -> list[str]:
    """Who holds a strong lock on a table of this database, as ``job_queue (ACCESS EXCLUSIVE) by pid 42 (psql,
    from local socket, since …)``: what a statement that timed out on a lock most likely waited for. Empty
    when it cannot be read (the connection is broken, or the role may not read the catalogs)."""
    try:
        rows = conn.execute(queries.statement("sessions", "strong_locks")).fetchall()
    except psycopg.Error:
        return []
    found = []
    for relation, mode, pid, app, addr, since in rows:
        holder = LockHolder(pid, app or "", addr, since)
        readable_mode = " ".join(re.findall("[A-Z][a-z]+", mode.removesuffix("Lock"))).upper()
        found.append(f"{relation} ({readable_mode}) by {holder.describe()}")
    return found


def explain(conn: psycopg.Connection, error: psycopg.Error, what: str) -> OpsError | None:
    """The operator's message for a database error that is no bug of ops: a lock wait or a statement that
    exceeded the session's timeouts (naming who holds the locks), a missing privilege, a lost connection.
    None for anything else."""
    settings = {"lock_timeout": "", "statement_timeout": ""}
    if isinstance(error, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        for name in settings:
            try:
                settings[name] = str(scalar(conn, "SELECT current_setting(%s)", (name,)))
            except psycopg.Error:
                settings[name] = "?"
    if isinstance(error, psycopg.errors.LockNotAvailable):
        holders = strong_lock_holders(conn)
        who = "; held: " + "; ".join(holders) if holders else ""
        return WaitTimeout(
            f"{what} waited longer than lock_timeout ({settings['lock_timeout']}) for a lock{who} "
            "(OPS_READ_LOCK_TIMEOUT sets the wait of read-only commands)"
        )
    if isinstance(error, psycopg.errors.QueryCanceled):
        holders = strong_lock_holders(conn)
        who = "; strong locks held: " + "; ".join(holders) if holders else ""
        return WaitTimeout(
            f"{what}: a statement ran longer than statement_timeout ({settings['statement_timeout']}){who} "
            "(OPS_READ_STATEMENT_TIMEOUT sets it for read-only commands)"
        )
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        message = error.diag.message_primary or str(error).strip()
        return DatabaseUnavailable(
            f"{what}: the database role lacks a privilege: {' '.join(message.split())} "
            "(see docs/commands.md, Monitoring role, for the grants of read-only commands)"
        )
    if isinstance(error, psycopg.OperationalError) and conn.closed:
        return DatabaseUnavailable(f"{what}: the connection to the database was lost: {' '.join(str(error).split())}")
    return None


class BlockerWatch:
    """Watches, from a spare connection, which sessions block a given backend.

    Used while a migration runs: when it fails on ``lock_timeout`` the last seen blockers can be named.
    """

    def __init__(self, conn: psycopg.Connection, pid: int, interval_s: float = 0.2, app: str | None = None) -> None:
        self._conn = conn
        self._pid = pid
        self._app = app  # instead of the pid: the sessions of this application_name (a library's connections)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.last_blockers: list[LockHolder] = []

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._app is None:
                    rows = self._conn.execute(queries.statement("sessions", "blockers"), {"pid": self._pid}).fetchall()
                else:
                    rows = self._conn.execute(
                        queries.statement("sessions", "blockers_of_app"), {"app": self._app}
                    ).fetchall()
            except psycopg.Error:  # the watch is advisory only
                return
            if rows:
                self.last_blockers = [LockHolder(*row) for row in rows]

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
