"""What the database records about its schema: yoyo's history tables and ops' own (checksums, views).

The table names are spelled here only. The DDL of ops' tables is in ``sql/queries/bookkeeping.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from ops import db, queries

YOYO_MIGRATION_TABLE = "_yoyo_migration"
YOYO_TABLES = (YOYO_MIGRATION_TABLE, "_yoyo_log", "_yoyo_version", "yoyo_lock")
MIGRATIONS_TABLE = "ops_migrations"
VIEWS_TABLE = "ops_views"
BOOKKEEPING_TABLES = (MIGRATIONS_TABLE, VIEWS_TABLE, *YOYO_TABLES)


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


def applied_migrations(conn: psycopg.Connection) -> list[AppliedMigration]:
    """Applied migrations in the order they were applied (yoyo's table), with our checksum if recorded."""
    if not db.table_exists(conn, YOYO_MIGRATION_TABLE):
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
    ).format(checksum, sql.Identifier(YOYO_MIGRATION_TABLE))
    return [AppliedMigration(*row) for row in conn.execute(query).fetchall()]


def drop_all(conn: psycopg.Connection) -> None:
    """Drop yoyo's and ops' bookkeeping tables (once nothing is applied)."""
    with conn.transaction():
        for table in BOOKKEEPING_TABLES:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
