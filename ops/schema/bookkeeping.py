"""What the database records about ops's schema: ops's own history tables (yoyo's layout under ops's
names), the checksums of applied files and the views' state.

ops never writes yoyo's default tables (``_yoyo_migration``, ``_yoyo_log``, ``_yoyo_version``,
``yoyo_lock``): on a database built by Panoramax they hold Panoramax's history. A database built by an
older ops kept its history there; ``move_legacy_history`` moves it to ops's tables, in one transaction.
The table names are spelled here only; the DDL of ops's extra tables is in ``sql/queries/bookkeeping.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from ops import db, queries

# ops's history, in yoyo's layout (yoyo's backend takes these names).
HISTORY_TABLE = "ops_yoyo_migration"
LOG_TABLE = "ops_yoyo_log"
VERSION_TABLE = "ops_yoyo_version"
# yoyo's defaults: Panoramax's history (or, on a database built by a development build of ops before 0.1.0, ops's own).
YOYO_HISTORY_TABLE = "_yoyo_migration"
YOYO_TABLES = (YOYO_HISTORY_TABLE, "_yoyo_log", "_yoyo_version", "yoyo_lock")
LEGACY_RENAMES = ((YOYO_HISTORY_TABLE, HISTORY_TABLE), ("_yoyo_log", LOG_TABLE), ("_yoyo_version", VERSION_TABLE))
MIGRATIONS_TABLE = "ops_migrations"
VIEWS_TABLE = "ops_views"
BOOKKEEPING_TABLES = (HISTORY_TABLE, LOG_TABLE, VERSION_TABLE, MIGRATIONS_TABLE, VIEWS_TABLE)


def ensure_migrations_table(conn: psycopg.Connection) -> None:
    conn.execute(queries.statement("bookkeeping", MIGRATIONS_TABLE))


def ensure_views_table(conn: psycopg.Connection) -> None:
    conn.execute(queries.statement("bookkeeping", VIEWS_TABLE))


def record_applied(conn: psycopg.Connection, migration_id: str, checksum: str, duration_ms: int) -> None:
    conn.execute(
        queries.statement("bookkeeping", "record_applied"),
        {"id": migration_id, "checksum": checksum, "duration_ms": duration_ms},
    )


def forget_applied(conn: psycopg.Connection, migration_id: str) -> None:
    conn.execute(queries.statement("bookkeeping", "forget_applied"), {"id": migration_id})


def views_table_exists(conn: psycopg.Connection) -> bool:
    return db.table_exists(conn, VIEWS_TABLE)


@dataclass(frozen=True)
class AppliedMigration:
    id: str
    applied_at: datetime
    checksum: str | None


def applied_migrations(conn: psycopg.Connection, table: str | None) -> list[AppliedMigration]:
    """Migrations applied by ops, in the order they were applied, as recorded in ``table`` (ops's
    history table, or ``_yoyo_migration`` for a database built by an older ops; None: nothing applied),
    with the checksum recorded at apply time."""
    if table is None or not db.table_exists(conn, table):
        return []
    checksum = (
        sql.SQL("(SELECT o.checksum FROM {} o WHERE o.migration_id = y.migration_id)").format(
            sql.Identifier(MIGRATIONS_TABLE)
        )
        if db.table_exists(conn, MIGRATIONS_TABLE)
        else sql.SQL("NULL")
    )
    query = sql.SQL(
        "SELECT y.migration_id, y.applied_at_utc, {} FROM {} y ORDER BY y.applied_at_utc, y.migration_id"
    ).format(checksum, sql.Identifier(table))
    return [AppliedMigration(*row) for row in conn.execute(query).fetchall()]


def move_legacy_history(conn: psycopg.Connection) -> None:
    """Move a history that an older ops kept in yoyo's default tables to ops's own, in one transaction
    (renames keep every row; yoyo's lock table, never used by ops, goes). ``conn``: autocommit."""
    with conn.transaction():
        for old, new in LEGACY_RENAMES:
            if db.table_exists(conn, old):
                conn.execute(queries.identified("ddl", "rename_table", old=old, new=new))
        conn.execute(queries.identified("ddl", "drop_table", table="yoyo_lock"))


def drop_all(conn: psycopg.Connection) -> None:
    """Drop ops's bookkeeping tables (once nothing is applied). yoyo's default tables are never touched."""
    with conn.transaction():
        for table in BOOKKEEPING_TABLES:
            conn.execute(queries.identified("ddl", "drop_table", table=table))
