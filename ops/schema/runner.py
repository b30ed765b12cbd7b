"""``ops db upgrade`` and ``ops db rollback``: under the migration lock, run the migrations, then bring the
materialized views in line with them.

The lock is a session-level advisory lock polled on a dedicated autocommit connection (never yoyo's lock
row, which a crashed process leaves behind): one runner applies, the others wait and find nothing to do.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ops import db
from ops.errors import MigrationError, NotOpsManaged
from ops.report import Log, silent
from ops.schema import bookkeeping, kind, migrations, views, yoyo_adapter
from ops.schema.files import default_migrations_dir, views_dir_for
from ops.schema.migrations import RunOptions
from ops.schema.yoyo_adapter import PlannedMigration

# pg_try_advisory_lock key of the migration runner: b"opsmigr" as an integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"opsmigr", "big")


@dataclass
class RunResult:
    done: list[tuple[str, float]] = field(default_factory=list)  # (id, seconds)
    cleaned_bookkeeping: bool = False
    moved_history: bool = False


def require_ops_managed(conn: psycopg.Connection) -> kind.Detected:
    """Refuse a Panoramax-managed database: its schema is Panoramax's to change."""
    detected = kind.detect(conn)
    if detected.panoramax:
        raise NotOpsManaged(
            f"this is a {detected.describe()}: its schema is upgraded by Panoramax (`flask db upgrade`), "
            "not by ops; the maintenance commands work on it as it is (nothing was changed)"
        )
    return detected


def plan_upgrade(conn: psycopg.Connection, directory: Path | None = None) -> list[PlannedMigration]:
    """What ``ops db upgrade`` would apply (read-only: ``--dry-run``)."""
    detected = require_ops_managed(conn)
    return migrations.plan_upgrade(conn, directory or default_migrations_dir(), detected.history_table)


def plan_rollback(
    conn: psycopg.Connection, directory: Path | None = None, *, everything: bool = False
) -> list[PlannedMigration]:
    """What ``ops db rollback`` would undo (read-only: ``--dry-run``)."""
    detected = require_ops_managed(conn)
    return migrations.plan_rollback(
        conn, directory or default_migrations_dir(), detected.history_table, everything=everything
    )


def _ops_history(lock_conn: psycopg.Connection, options: RunOptions, report: Log) -> bool:
    """Under the lock: refuse a Panoramax database; move a history an older ops kept in yoyo's default
    tables to ops's own (one transaction). Says whether it moved one."""
    detected = require_ops_managed(lock_conn)
    if not detected.legacy_history:
        return False
    lock_conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(options.ddl_lock_timeout_s * 1000)}ms",))
    try:
        bookkeeping.move_legacy_history(lock_conn)
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"moving ops's history out of {bookkeeping.YOYO_HISTORY_TABLE} gave up after a lock timeout of "
            f"{options.ddl_lock_timeout_s:g} s (a session is reading its tables); nothing was moved"
        ) from None
    finally:
        lock_conn.execute("RESET lock_timeout")
    report(f"moved ops's migration history from {bookkeeping.YOYO_HISTORY_TABLE} to {bookkeeping.HISTORY_TABLE}")
    return True


def _report_waiting(report: Log) -> Callable[[db.LockHolder | None], None]:
    def on_wait(holder: db.LockHolder | None) -> None:
        who = holder.describe() if holder else "another session"
        report(f"waiting for the migration lock, held by {who}")

    return on_wait


@contextlib.contextmanager
def migration_lock(url: str, options: RunOptions, log: Log) -> Iterator[psycopg.Connection]:
    """The runner's lock: a session advisory lock on a dedicated autocommit connection."""
    with db.connect(url, autocommit=True) as conn:
        with db.advisory_lock(
            conn,
            MIGRATION_LOCK_KEY,
            what="the migration lock",
            timeout_s=options.lock_timeout_s,
            on_wait=_report_waiting(log),
        ):
            yield conn


def _run_plan(
    url: str, lock_conn: psycopg.Connection, plan: list[PlannedMigration], options: RunOptions, report: Log
) -> list[tuple[str, float]]:
    done: list[tuple[str, float]] = []
    if not plan:
        return done
    backend = yoyo_adapter.open_backend(url, int(options.ddl_lock_timeout_s * 1000))
    verb = "applied" if plan[0].direction == "apply" else "rolled back"
    try:
        for m in plan:
            started = time.monotonic()
            migrations.run(backend, lock_conn, m, options.retry_backoff_s)
            elapsed = time.monotonic() - started
            done.append((m.id, elapsed))
            report(f"{verb} {m.id} ({elapsed:.2f} s)")
    finally:
        backend.connection.close()
    return done


def upgrade(
    url: str,
    directory: Path | None = None,
    *,
    options: RunOptions | None = None,
    report: Log = silent,
    log: Log = silent,
) -> RunResult:
    """Apply every pending migration, each in its own transaction (unless ``-- transactional: false``),
    then, under the same lock, bring the materialized views of ``views/`` (beside the migrations) in sync.
    """
    directory = directory or default_migrations_dir()
    options = options or RunOptions()
    with migration_lock(url, options, log) as lock_conn:
        moved = _ops_history(lock_conn, options, report)
        db.require_postgis(lock_conn)
        plan = migrations.plan_upgrade(lock_conn, directory, bookkeeping.HISTORY_TABLE)
        result = RunResult(_run_plan(url, lock_conn, plan, options, report), moved_history=moved)
        views.sync(lock_conn, views_dir_for(directory), report=report)
    return result


def rollback(
    url: str,
    directory: Path | None = None,
    *,
    everything: bool = False,
    options: RunOptions | None = None,
    report: Log = silent,
    log: Log = silent,
) -> RunResult:
    """Roll back the most recently applied migration, or all of them (then drop the bookkeeping too).

    Views depend on the tables: they are dropped first, and after a partial rollback re-created where
    their tables still exist.
    """
    directory = directory or default_migrations_dir()
    options = options or RunOptions()
    with migration_lock(url, options, log) as lock_conn:
        moved = _ops_history(lock_conn, options, report)
        plan = migrations.plan_rollback(lock_conn, directory, bookkeeping.HISTORY_TABLE, everything=everything)
        if plan or everything:
            views.drop_all(lock_conn, keep_bookkeeping=not everything)
        result = RunResult(_run_plan(url, lock_conn, plan, options, report), moved_history=moved)
        if everything and not bookkeeping.applied_migrations(lock_conn, bookkeeping.HISTORY_TABLE):
            bookkeeping.drop_all(lock_conn)
            result.cleaned_bookkeeping = True
        elif plan:
            views.sync_tolerant(lock_conn, views_dir_for(directory), report=report, log=log)
    return result
