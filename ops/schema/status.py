"""The schema's state, read-only, and the guard that maintenance commands (and applications) call first.

On an ops-managed database: every migration as applied, pending, modified or missing. On a
Panoramax-managed one: what each maintenance command needs (``capabilities``) and what is missing.
Reading never imports yoyo nor writes: file names, checksums, catalogs and the bookkeeping tables are enough.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg

from ops.errors import SchemaPending
from ops.schema import bookkeeping, capabilities, kind, views
from ops.schema.files import default_migrations_dir, migration_files, views_dir_for
from ops.schema.kind import Detected
from ops.schema.needs import Needs


class MigrationState(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    MODIFIED = "modified"  # its file changed since it was applied
    MISSING = "missing"  # applied, its file gone


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    state: MigrationState
    applied_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": str(self.state),
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
        }


@dataclass
class SchemaStatus:
    """Every ops migration's state and the counts per state (ops-managed); on a Panoramax-managed
    database, what each maintenance command lacks."""

    migrations: list[MigrationStatus] = field(default_factory=list)
    detected: Detected = field(default_factory=lambda: Detected(kind.Kind.EMPTY))
    lacking: dict[str, list[str]] = field(default_factory=dict)  # command -> what it lacks (Panoramax)
    views: list[str] = field(default_factory=list)  # how the views differ from their files (ops-managed)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.migrations:
            counts[m.state] = counts.get(m.state, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def up_to_date(self) -> bool:
        """Every command can run: migrations all applied (ops), or nothing lacking (Panoramax)."""
        if self.detected.panoramax:
            return not any(self.lacking.values())
        return all(m.state == MigrationState.APPLIED for m in self.migrations) and not self.views

    def problems(self) -> str:
        """What keeps the schema from being current: ``"2 pending, 1 modified"`` or what commands lack."""
        if self.detected.panoramax:
            return "; ".join(f"{cmd} lacks {', '.join(what)}" for cmd, what in self.lacking.items() if what)
        states = [f"{n} {state}" for state, n in self.counts.items() if state != MigrationState.APPLIED]
        return ", ".join(states + self.views)

    def as_dict(self) -> dict[str, Any]:
        data = {**self.detected.as_dict(), "up_to_date": self.up_to_date}
        if self.detected.panoramax:
            data["commands"] = {cmd: {"ready": not what, "lacks": what} for cmd, what in self.lacking.items()}
        else:
            data["counts"] = self.counts
            data["migrations"] = [m.as_dict() for m in self.migrations]
            data["views_out_of_sync"] = self.views
        return data


def _migration_states(conn: psycopg.Connection, directory: Path, detected: Detected) -> list[MigrationStatus]:
    files = migration_files(directory)
    applied = {a.id: a for a in bookkeeping.applied_migrations(conn, detected.history_table)}
    states = []
    for f in files:
        a = applied.pop(f.id, None)
        if a is None:
            states.append(MigrationStatus(f.id, MigrationState.PENDING))
        elif a.checksum is not None and a.checksum != f.checksum():
            states.append(MigrationStatus(f.id, MigrationState.MODIFIED, a.applied_at))
        else:
            states.append(MigrationStatus(f.id, MigrationState.APPLIED, a.applied_at))
    return states + [MigrationStatus(a.id, MigrationState.MISSING, a.applied_at) for a in applied.values()]


def migration_status(
    conn: psycopg.Connection, directory: Path | None = None, needs: Mapping[str, Needs] | None = None
) -> SchemaStatus:
    """The state of the schema, for ``ops db status``; on a Panoramax-managed database, what each command of
    ``needs`` (command -> what it uses) lacks."""
    detected = kind.detect(conn)
    if detected.panoramax:
        lacking = {command: capabilities.missing(conn, one) for command, one in (needs or {}).items()}
        return SchemaStatus(detected=detected, lacking=lacking)
    directory = directory or default_migrations_dir()
    states = _migration_states(conn, directory, detected)
    return SchemaStatus(states, detected, views=views.out_of_sync(conn, views_dir_for(directory)))


def pending_migration_ids(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    detected = kind.detect(conn)
    states = _migration_states(conn, directory or default_migrations_dir(), detected)
    return [m.id for m in states if m.state == MigrationState.PENDING]


def ensure_schema_current(
    conn: psycopg.Connection,
    directory: Path | None = None,
    needs: Needs | None = None,
    *,
    what: str = "the ops maintenance commands",
    views_in_sync: bool = False,
) -> Detected:
    """The guard: an application, and every ops command that needs the schema, calls it first.

    ops-managed: no migration may be pending, and with ``views_in_sync`` every materialized view is as its
    file defines it. Panoramax-managed: what ``what`` uses (``needs``) must be present. Returns what the
    database is, for commands that differ by kind."""
    detected = kind.detect(conn)
    if detected.panoramax and needs is not None:
        lacking = capabilities.missing(conn, needs)
        if lacking:
            raise SchemaPending(
                f"this Panoramax-managed database lacks what {what} needs: {', '.join(lacking)} "
                "(an older Panoramax release? Upgrade it with Panoramax's own `flask db upgrade`)"
            )
    if detected.panoramax:
        return detected
    pending = [m.id for m in _migration_states(conn, directory or default_migrations_dir(), detected)
               if m.state == MigrationState.PENDING]  # fmt: skip
    if pending:
        raise SchemaPending(
            f"database schema needs an update: {len(pending)} pending migration(s): "
            f"{', '.join(pending)}. Run: ops db upgrade"
        )
    if views_in_sync:
        problems = views.out_of_sync(conn, views_dir_for(directory or default_migrations_dir()))
        if problems:
            raise SchemaPending(f"the materialized views are not as sql/views defines them ({'; '.join(problems)}). "
                                "Run: ops db upgrade")  # fmt: skip
    return detected
