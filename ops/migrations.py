"""The migration runner: plan, upgrade, rollback and status of ``sql/migrations/``, on yoyo's Python API.

yoyo parses the files (statements, ``-- depends:``, ``-- transactional:``), sorts them topologically and
keeps its bookkeeping tables (``_yoyo_migration``, ``_yoyo_log``), so a database stays readable by yoyo and
by Panoramax. ops adds what yoyo lacks:

* a session-level advisory lock polled on a dedicated autocommit connection (never yoyo's lock row);
* each transactional migration and its bookkeeping rows committed in the same transaction;
* ``lock_timeout`` as a connection option, with retries when a DDL statement cannot get its lock;
* a SHA-256 of each applied file (``ops_migrations``), so edited or vanished files show in ``status``;
* rollback in the order migrations were applied, and ``rollback --all`` that leaves nothing behind.

``status`` and the pending-schema guard only read (file names, hashes and two small tables); they never
import yoyo nor write to the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ops import db
from ops.errors import MigrationError, SchemaPending
from ops.report import Report, silent

if TYPE_CHECKING:
    import psycopg

YOYO_MIGRATION_TABLE = "_yoyo_migration"
BOOKKEEPING_TABLES = ("ops_migrations", "ops_views", "_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")
# pg_try_advisory_lock key of the migration runner: b"opsmigr" as an integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"opsmigr", "big")
LOCK_NOT_AVAILABLE = "55P03"
DDL_RETRIES = 3
CLIENT_CHECK_INTERVAL_MS = 2000


def default_migrations_dir() -> Path:
    """The ``sql/migrations`` folder shipped inside the installed package."""
    return Path(str(resources.files("ops.sql") / "migrations"))


def views_dir_for(migrations_dir: Path) -> Path:
    """Views live next to the migrations: ``sql/views`` beside ``sql/migrations``."""
    return migrations_dir.parent / "views"


def normalized_checksum(text: str) -> str:
    """SHA-256 of a file's content with LF line ends and trailing whitespace stripped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).rstrip("\n").encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationFile:
    """One migration on disk: ``<id>.sql`` and its ``<id>.rollback.sql``."""

    id: str
    path: Path

    @property
    def rollback_path(self) -> Path:
        return self.path.with_name(f"{self.id}.rollback.sql")

    def checksum(self) -> str:
        return normalized_checksum(self.path.read_text(encoding="utf-8"))


def migration_files(directory: Path) -> list[MigrationFile]:
    """The migrations of ``directory`` in file-name order (their NNNN prefix)."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist")
    files = [
        MigrationFile(p.name[: -len(".sql")], p)
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(".sql") and not p.name.endswith(".rollback.sql")
    ]
    return sorted(files, key=lambda f: f.id)


# --- reading what the database holds (read-only) -------------------------------------------------


@dataclass(frozen=True)
class AppliedMigration:
    id: str
    applied_at: datetime
    checksum: str | None


def applied_migrations(conn: psycopg.Connection) -> list[AppliedMigration]:
    """Applied migrations in the order they were applied (yoyo's table), with our checksum if recorded."""
    if not db.table_exists(conn, YOYO_MIGRATION_TABLE):
        return []
    if db.table_exists(conn, "ops_migrations"):
        sql = (
            "SELECT y.migration_id, y.applied_at_utc, o.checksum FROM _yoyo_migration y "
            "LEFT JOIN ops_migrations o ON o.migration_id = y.migration_id "
            "ORDER BY y.applied_at_utc, y.migration_id"
        )
    else:
        sql = "SELECT migration_id, applied_at_utc, NULL FROM _yoyo_migration ORDER BY applied_at_utc, migration_id"
    return [AppliedMigration(*row) for row in conn.execute(sql).fetchall()]


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    state: str  # applied | pending | modified | missing
    applied_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
        }


def migration_status(conn: psycopg.Connection, directory: Path) -> list[MigrationStatus]:
    """Every migration as applied, pending, modified (file changed since applied) or missing (file gone)."""
    files = migration_files(directory)
    applied = {a.id: a for a in applied_migrations(conn)}
    result = []
    for f in files:
        a = applied.pop(f.id, None)
        if a is None:
            result.append(MigrationStatus(f.id, "pending"))
        elif a.checksum is not None and a.checksum != f.checksum():
            result.append(MigrationStatus(f.id, "modified", a.applied_at))
        else:
            result.append(MigrationStatus(f.id, "applied", a.applied_at))
    result += [MigrationStatus(a.id, "missing", a.applied_at) for a in applied.values()]
    return result


def pending_migration_ids(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    directory = directory or default_migrations_dir()
    applied = {a.id for a in applied_migrations(conn)}
    return [f.id for f in migration_files(directory) if f.id not in applied]


def ensure_schema_current(conn: psycopg.Connection, directory: Path | None = None) -> None:
    """The pending-schema guard: an application (and every ops command needing the schema) calls it first."""
    pending = pending_migration_ids(conn, directory)
    if pending:
        raise SchemaPending(
            f"database schema needs an update: {len(pending)} pending migration(s): "
            f"{', '.join(pending)}. Run: ops db upgrade"
        )


# --- plans: yoyo parses and sorts ------------------------------------------------------------------


@dataclass
class PlannedMigration:
    """A migration as yoyo reads it, ready to run in one direction."""

    id: str
    transactional: bool
    statements: list[str]
    checksum: str
    yoyo: Any = field(repr=False)


def _read_yoyo(directory: Path) -> Any:
    """yoyo's MigrationList for ``directory``, every migration loaded right away.

    Loading at once resolves ``-- depends:`` against this very folder (yoyo keeps a process-global
    registry of migrations by id).
    """
    from yoyo import read_migrations

    migration_files(directory)  # clear error when the folder is missing
    migrations = read_migrations(str(directory))
    for m in migrations:
        m.load()
    return migrations


def _planned(m: Any, direction: str) -> PlannedMigration:
    from yoyo.migrations import read_sql_migration

    path = Path(m.path)
    if direction == "apply":
        _, _, statements = read_sql_migration(str(path))
    else:
        rollback = path.with_name(f"{m.id}.rollback.sql")
        if not rollback.is_file():
            raise MigrationError(f"cannot roll back {m.id}: {rollback.name} does not exist")
        _, _, statements = read_sql_migration(str(rollback))
    return PlannedMigration(m.id, bool(m.use_transactions), statements, MigrationFile(m.id, path).checksum(), m)


def plan_upgrade(conn: psycopg.Connection, directory: Path) -> list[PlannedMigration]:
    """Pending migrations in dependency order."""
    from yoyo.migrations import topological_sort

    migrations = _read_yoyo(directory)
    applied = {a.id for a in applied_migrations(conn)}
    return [_planned(m, "apply") for m in topological_sort(m for m in migrations if m.id not in applied)]


def plan_rollback(conn: psycopg.Connection, directory: Path, *, everything: bool) -> list[PlannedMigration]:
    """Applied migrations to undo, most recently applied first (by time applied, not file order)."""
    migrations = {m.id: m for m in _read_yoyo(directory)}
    applied = [a.id for a in applied_migrations(conn)]
    chosen = list(reversed(applied)) if everything else applied[-1:]
    missing = [mid for mid in chosen if mid not in migrations]
    if missing:
        raise MigrationError(
            f"cannot roll back {', '.join(missing)}: applied in the database but the file is missing from {directory}"
        )
    return [_planned(migrations[mid], "rollback") for mid in chosen]


# --- running ----------------------------------------------------------------------------------------


def _yoyo_url(url: str, ddl_lock_timeout_ms: int) -> str:
    """Our URL in yoyo's form, its connection options carrying ``lock_timeout`` (a ``RESET`` cannot drop it)."""
    parts = urlsplit(url)
    args = dict(parse_qsl(parts.query))
    ours = db.postgres_options(
        {"lock_timeout": ddl_lock_timeout_ms, "client_connection_check_interval": CLIENT_CHECK_INTERVAL_MS}
    )
    args["options"] = f"{args['options']} {ours}" if args.get("options") else ours
    args["application_name"] = db.application_name()
    args["connect_timeout"] = str(db.CONNECT_TIMEOUT_S)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(args), ""))


def _open_backend(url: str, ddl_lock_timeout_ms: int) -> Any:
    from yoyo.backends import PostgresqlPsycopgBackend
    from yoyo.connections import parse_uri

    class OpsBackend(PostgresqlPsycopgBackend):  # type: ignore[misc]
        """yoyo's psycopg backend, minus its lock row: ops holds an advisory lock instead."""

        @contextlib.contextmanager
        def lock(self, timeout: int = 10) -> Iterator[None]:
            yield

    backend = OpsBackend(parse_uri(_yoyo_url(url, ddl_lock_timeout_ms)), YOYO_MIGRATION_TABLE)
    with contextlib.redirect_stdout(io.StringIO()):
        backend.init_database()
        backend.ensure_internal_schema_updated()
    backend.execute(
        "CREATE TABLE IF NOT EXISTS ops_migrations ("
        " migration_id text PRIMARY KEY, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer)"
    )
    return backend


class _StatementFailed(Exception):
    def __init__(self, number: int, error: Exception) -> None:
        super().__init__(str(error))
        self.number = number
        self.error = error


def _execute_all(backend: Any, statements: list[str]) -> None:
    # yoyo's own step runner prints rows of a SELECT on stdout; results belong to us, so run them here.
    with backend.connection.cursor() as cur:
        for number, statement in enumerate(statements, start=1):
            try:
                cur.execute(statement)
            except Exception as e:  # psycopg.Error, imported lazily
                raise _StatementFailed(number, e) from e


def _record(backend: Any, m: PlannedMigration, direction: str, duration_ms: int) -> None:
    if direction == "apply":
        backend.log_migration(m.yoyo, "apply")
        backend.mark_one(m.yoyo, log=False)
        backend.connection.execute(
            "INSERT INTO ops_migrations (migration_id, checksum, duration_ms) VALUES (%s, %s, %s) "
            "ON CONFLICT (migration_id) DO UPDATE SET checksum = EXCLUDED.checksum, "
            "applied_at = now(), duration_ms = EXCLUDED.duration_ms",
            (m.id, m.checksum, duration_ms),
        )
    else:
        backend.log_migration(m.yoyo, "rollback")
        backend.unmark_one(m.yoyo, log=False)
        backend.connection.execute("DELETE FROM ops_migrations WHERE migration_id = %s", (m.id,))


def _run_once(backend: Any, m: PlannedMigration, direction: str) -> None:
    started = time.monotonic()
    if m.transactional:
        with backend.transaction():
            _execute_all(backend, m.statements)
            _record(backend, m, direction, int((time.monotonic() - started) * 1000))
    else:
        _execute_all(backend, m.statements)
        with backend.transaction():
            _record(backend, m, direction, int((time.monotonic() - started) * 1000))


def _failure_message(
    m: PlannedMigration, direction: str, failed: _StatementFailed, blockers: list[db.LockHolder]
) -> str:
    error = failed.error
    sqlstate = getattr(error, "sqlstate", None) or "?????"
    diag = getattr(error, "diag", None)
    server_message = (diag.message_primary if diag is not None else None) or str(error).strip().splitlines()[0]
    verb = "migration" if direction == "apply" else "rollback of"
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


def _run_with_retries(
    backend: Any, watch_conn: psycopg.Connection, m: PlannedMigration, direction: str, backoff_s: float
) -> None:
    pid = backend.connection.info.backend_pid
    attempt = 0
    while True:
        with db.BlockerWatch(watch_conn, pid) as watch:
            try:
                _run_once(backend, m, direction)
                return
            except _StatementFailed as failed:
                sqlstate = getattr(failed.error, "sqlstate", None)
                if sqlstate == LOCK_NOT_AVAILABLE and m.transactional and attempt < DDL_RETRIES:
                    attempt += 1
                    time.sleep(backoff_s * 2 ** (attempt - 1))
                    continue
                raise MigrationError(_failure_message(m, direction, failed, watch.last_blockers)) from failed.error


@dataclass
class RunOptions:
    lock_timeout_s: float = 300.0
    ddl_lock_timeout_s: float = 10.0
    retry_backoff_s: float = 0.5


@dataclass
class RunResult:
    done: list[tuple[str, float]] = field(default_factory=list)  # (id, seconds)
    cleaned_bookkeeping: bool = False


def _report_waiting(report: Report) -> Callable[[db.LockHolder | None], None]:
    def on_wait(holder: db.LockHolder | None) -> None:
        who = holder.describe() if holder else "another session"
        report(f"waiting for the migration lock, held by {who}")

    return on_wait


@contextlib.contextmanager
def migration_lock(url: str, options: RunOptions, log: Report) -> Iterator[psycopg.Connection]:
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


def upgrade(
    url: str,
    directory: Path | None = None,
    *,
    options: RunOptions | None = None,
    report: Report = silent,
    log: Report = silent,
) -> RunResult:
    """Apply every pending migration, each in its own transaction (unless ``-- transactional: false``),
    then, under the same lock, bring the materialized views of ``views/`` (beside the migrations) in sync.
    """
    from ops import views

    directory = directory or default_migrations_dir()
    options = options or RunOptions()
    result = RunResult()
    with migration_lock(url, options, log) as lock_conn:
        db.require_postgis(lock_conn)
        plan = plan_upgrade(lock_conn, directory)
        if plan:
            backend = _open_backend(url, int(options.ddl_lock_timeout_s * 1000))
            try:
                for m in plan:
                    started = time.monotonic()
                    _run_with_retries(backend, lock_conn, m, "apply", options.retry_backoff_s)
                    elapsed = time.monotonic() - started
                    result.done.append((m.id, elapsed))
                    report(f"applied {m.id} ({elapsed:.2f} s)")
            finally:
                backend.connection.close()
        views.sync(lock_conn, views_dir_for(directory), report=report)
    return result


def rollback(
    url: str,
    directory: Path | None = None,
    *,
    everything: bool = False,
    options: RunOptions | None = None,
    report: Report = silent,
    log: Report = silent,
) -> RunResult:
    """Roll back the most recently applied migration, or all of them (then drop the bookkeeping too).

    Views depend on the tables: they are dropped first, and after a partial rollback re-created where
    their tables still exist.
    """
    from ops import views

    directory = directory or default_migrations_dir()
    options = options or RunOptions()
    result = RunResult()
    with migration_lock(url, options, log) as lock_conn:
        plan = plan_rollback(lock_conn, directory, everything=everything)
        if plan or everything:
            views.drop_all(lock_conn, keep_bookkeeping=not everything)
        if plan:
            backend = _open_backend(url, int(options.ddl_lock_timeout_s * 1000))
            try:
                for m in plan:
                    started = time.monotonic()
                    _run_with_retries(backend, lock_conn, m, "rollback", options.retry_backoff_s)
                    elapsed = time.monotonic() - started
                    result.done.append((m.id, elapsed))
                    report(f"rolled back {m.id} ({elapsed:.2f} s)")
            finally:
                backend.connection.close()
        if everything and not applied_migrations(lock_conn):
            drop_bookkeeping(lock_conn)
            result.cleaned_bookkeeping = True
        elif plan:
            views.sync_tolerant(lock_conn, views_dir_for(directory), report=report, log=log)
    return result


def drop_bookkeeping(conn: psycopg.Connection) -> None:
    """Drop yoyo's and ops' bookkeeping tables (once nothing is applied)."""
    from psycopg import sql

    with conn.transaction():
        for table in BOOKKEEPING_TABLES:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
