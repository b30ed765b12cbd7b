"""Migration plans (what to apply or roll back, in which order) and running one migration safely.

Safety beyond yoyo: ``lock_timeout`` on every statement (set by the adapter as a connection option), a
migration that timed out on a lock retried with backoff, and a failure message naming the migration, the
statement, the SQLSTATE and the sessions that blocked it. Rollback goes by time applied, not file order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ops import db
from ops.errors import MigrationError
from ops.schema import bookkeeping, yoyo_adapter
from ops.schema.yoyo_adapter import OpsBackend, PlannedMigration, StatementFailed

LOCK_NOT_AVAILABLE = "55P03"
DDL_RETRIES = 3


@dataclass
class RunOptions:
    lock_timeout_s: float = 300.0
    ddl_lock_timeout_s: float = 10.0
    retry_backoff_s: float = 0.5


def plan_upgrade(conn: psycopg.Connection, directory: Path, history_table: str | None) -> list[PlannedMigration]:
    """Pending migrations in dependency order (``history_table``: where ops's history is read from)."""
    applied = {a.id for a in bookkeeping.applied_migrations(conn, history_table)}
    pending = [m for m in yoyo_adapter.read_all(directory) if m.id not in applied]
    return [yoyo_adapter.planned(m, "apply") for m in yoyo_adapter.in_dependency_order(pending)]


def plan_rollback(
    conn: psycopg.Connection, directory: Path, history_table: str | None, *, everything: bool
) -> list[PlannedMigration]:
    """Applied migrations to undo, most recently applied first (by time applied, not file order)."""
    migrations = {m.id: m for m in yoyo_adapter.read_all(directory)}
    applied = [a.id for a in bookkeeping.applied_migrations(conn, history_table)]
    chosen = list(reversed(applied)) if everything else applied[-1:]
    missing = [mid for mid in chosen if mid not in migrations]
    if missing:
        raise MigrationError(
            f"cannot roll back {', '.join(missing)}: applied in the database but the file is missing from {directory}"
        )
    return [yoyo_adapter.planned(migrations[mid], "rollback") for mid in chosen]


def _failure_message(m: PlannedMigration, failed: StatementFailed, blockers: list[db.LockHolder]) -> str:
    error = failed.error
    sqlstate = error.sqlstate or "?????"
    server_message = error.diag.message_primary or str(error).strip().splitlines()[0]
    verb = "migration" if m.direction == "apply" else "rollback of"
    message = f"{verb} {m.id} failed at statement {failed.number} (SQLSTATE {sqlstate}): {server_message}"
    if sqlstate == LOCK_NOT_AVAILABLE:
        message += f" after {DDL_RETRIES} retries"
        if blockers:
            message += "; blocked by " + ", ".join(b.describe() for b in blockers)
    if m.transactional:
        message += "; nothing of this migration was kept"
    elif failed.number > 1:
        message += f"; statements 1-{failed.number - 1} were committed (-- transactional: false)"
    return message


def run(backend: OpsBackend, watch_conn: psycopg.Connection, m: PlannedMigration, backoff_s: float) -> None:
    """Run one planned migration; a lock timeout is retried ``DDL_RETRIES`` times with backoff, while
    ``watch_conn`` (a spare connection) watches who blocks it."""
    pid = backend.connection.info.backend_pid
    attempt = 0
    while True:
        with db.BlockerWatch(watch_conn, pid) as watch:
            try:
                yoyo_adapter.run_once(backend, m)
                return
            except StatementFailed as failed:
                if failed.error.sqlstate == LOCK_NOT_AVAILABLE and m.transactional and attempt < DDL_RETRIES:
                    attempt += 1
                    time.sleep(backoff_s * 2 ** (attempt - 1))
                    continue
                raise MigrationError(_failure_message(m, failed, watch.last_blockers)) from failed.error
