"""Everything yoyo-specific: reading migration files with yoyo's parser, its dependency sort, and a backend
that writes yoyo's history rows in the same transaction as the migration.

yoyo parses the files (statements, ``-- depends:``, ``-- transactional:``), sorts them topologically and
keeps its bookkeeping tables, so a database stays readable by yoyo. ops takes what yoyo lacks elsewhere
(lock, retries, checksums); this module is the only one that imports yoyo.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from yoyo import read_migrations
from yoyo.backends import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri
from yoyo.migrations import read_sql_migration, topological_sort

from ops import db
from ops.errors import MigrationError
from ops.schema import bookkeeping
from ops.schema.files import MigrationFile, migration_files, utf8_text

CLIENT_CHECK_INTERVAL_MS = 2000


@dataclass
class PlannedMigration:
    """A migration as yoyo reads it, ready to run in one direction (``apply`` or ``rollback``)."""

    id: str
    direction: str
    transactional: bool
    statements: list[str]
    checksum: str
    yoyo: Any = field(repr=False)


def read_all(directory: Path) -> list[Any]:
    """yoyo's migrations of ``directory``, every one loaded right away.

    Loading at once resolves ``-- depends:`` against this very folder (yoyo keeps a process-global
    registry of migrations by id)."""
    migration_files(directory)  # a clear error when the folder is missing
    migrations = read_migrations(str(directory))
    for m in migrations:
        m.load()
    return list(migrations)


def in_dependency_order(migrations: list[Any]) -> list[Any]:
    return list(topological_sort(migrations))


def planned(m: Any, direction: str) -> PlannedMigration:
    """The statements of one migration (or of its rollback file), parsed by yoyo."""
    path = Path(m.path)
    source = path
    if direction == "rollback":
        source = path.with_name(f"{m.id}.rollback.sql")
        if not source.is_file():
            raise MigrationError(f"cannot roll back {m.id}: {source.name} does not exist")
    utf8_text(source)  # a file yoyo cannot decode is named, not an unexpected UnicodeDecodeError
    _, _, statements = read_sql_migration(str(source))
    return PlannedMigration(
        m.id, direction, bool(m.use_transactions), list(statements), MigrationFile(m.id, path).checksum(), m
    )


class OpsBackend(PostgresqlPsycopgBackend):
    """yoyo's psycopg backend keeping ops's history in ops's own tables (yoyo's defaults belong to
    Panoramax on its databases), minus its lock row: the runner holds an advisory lock instead."""

    log_table = bookkeeping.LOG_TABLE
    version_table = bookkeeping.VERSION_TABLE

    @contextlib.contextmanager
    def lock(self, timeout: int = 10) -> Iterator[None]:
        yield

    def create_lock_table(self) -> None:
        """No lock table: ops never takes yoyo's lock row."""


def yoyo_url(url: str, ddl_lock_timeout_ms: int, app: str | None = None) -> str:
    """Our URL in yoyo's form, its connection options carrying ``lock_timeout`` (a ``RESET`` cannot drop it)."""
    parts = urlsplit(url)
    args = dict(parse_qsl(parts.query))
    ours = db.postgres_options(
        {**db.SESSION_SETTINGS, "lock_timeout": ddl_lock_timeout_ms,
         "client_connection_check_interval": CLIENT_CHECK_INTERVAL_MS}
    )  # fmt: skip
    args["options"] = f"{args['options']} {ours}" if args.get("options") else ours
    args["application_name"] = app or db.application_name()
    args["connect_timeout"] = str(db.CONNECT_TIMEOUT_S)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(args), ""))


def open_backend(url: str, ddl_lock_timeout_ms: int) -> OpsBackend:
    """A backend on its own connection, its bookkeeping tables created when missing."""
    backend = OpsBackend(parse_uri(yoyo_url(url, ddl_lock_timeout_ms)), bookkeeping.HISTORY_TABLE)
    with contextlib.redirect_stdout(io.StringIO()):  # yoyo prints while it upgrades its own tables
        backend.init_database()
        backend.ensure_internal_schema_updated()
    bookkeeping.ensure_migrations_table(backend.connection)
    return backend


class StatementFailed(Exception):
    """Statement ``number`` (from 1) of a migration failed with ``error``."""

    def __init__(self, number: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.number = number
        self.error = error


def _execute_all(backend: OpsBackend, statements: list[str]) -> None:
    # yoyo's own step runner prints rows of a SELECT on stdout; results belong to us, so run them here.
    with backend.connection.cursor() as cur:
        for number, statement in enumerate(statements, start=1):
            try:
                cur.execute(statement)
            except psycopg.Error as e:
                raise StatementFailed(number, e) from e


def _record(backend: OpsBackend, m: PlannedMigration, duration_ms: int) -> None:
    backend.log_migration(m.yoyo, m.direction)
    if m.direction == "apply":
        backend.mark_one(m.yoyo, log=False)
        bookkeeping.record_applied(backend.connection, m.id, m.checksum, duration_ms)
    else:
        backend.unmark_one(m.yoyo, log=False)
        bookkeeping.forget_applied(backend.connection, m.id)


def run_once(backend: OpsBackend, m: PlannedMigration) -> None:
    """Run one migration and record it: in one transaction, or statement by statement then the record
    (``-- transactional: false``). Raises StatementFailed."""
    started = time.monotonic()
    if m.transactional:
        with backend.transaction():
            _execute_all(backend, m.statements)
            _record(backend, m, int((time.monotonic() - started) * 1000))
    else:
        _execute_all(backend, m.statements)
        with backend.transaction():
            _record(backend, m, int((time.monotonic() - started) * 1000))
