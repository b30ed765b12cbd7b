"""The schema's state, read-only: every migration as applied, pending, modified or missing, and the guard
that maintenance commands (and applications) call before they run.

Reading never imports yoyo nor writes: file names, checksums and the bookkeeping tables are enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from ops.errors import SchemaPending
from ops.schema import bookkeeping
from ops.schema.files import default_migrations_dir, migration_files


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


@dataclass
class SchemaStatus:
    """Every migration's state, and the counts per state."""

    migrations: list[MigrationStatus] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.migrations:
            counts[m.state] = counts.get(m.state, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def up_to_date(self) -> bool:
        return all(m.state == "applied" for m in self.migrations)

    def problems(self) -> str:
        """``"2 pending, 1 modified"``: what keeps the schema from being current."""
        return ", ".join(f"{n} {state}" for state, n in self.counts.items() if state != "applied")

    def as_dict(self) -> dict[str, Any]:
        return {
            "up_to_date": self.up_to_date,
            "counts": self.counts,
            "migrations": [m.as_dict() for m in self.migrations],
        }


def migration_status(conn: psycopg.Connection, directory: Path | None = None) -> SchemaStatus:
    """Every migration as applied, pending, modified (file changed since applied) or missing (file gone)."""
    files = migration_files(directory or default_migrations_dir())
    applied = {a.id: a for a in bookkeeping.applied_migrations(conn)}
    result = SchemaStatus()
    for f in files:
        a = applied.pop(f.id, None)
        if a is None:
            result.migrations.append(MigrationStatus(f.id, "pending"))
        elif a.checksum is not None and a.checksum != f.checksum():
            result.migrations.append(MigrationStatus(f.id, "modified", a.applied_at))
        else:
            result.migrations.append(MigrationStatus(f.id, "applied", a.applied_at))
    result.migrations += [MigrationStatus(a.id, "missing", a.applied_at) for a in applied.values()]
    return result


def pending_migration_ids(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    return [m.id for m in migration_status(conn, directory).migrations if m.state == "pending"]


def ensure_schema_current(conn: psycopg.Connection, directory: Path | None = None) -> None:
    """The pending-schema guard: an application (and every ops command needing the schema) calls it first."""
    pending = pending_migration_ids(conn, directory)
    if pending:
        raise SchemaPending(
            f"database schema needs an update: {len(pending)} pending migration(s): "
            f"{', '.join(pending)}. Run: ops db upgrade"
        )
