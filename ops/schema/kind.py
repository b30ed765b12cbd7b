"""Which kind of database this is, recognised from the database itself (no flag to remember).

* **ops-managed**: built by ``ops db upgrade``; its history is in ops's own tables (or, built by an older
  ops, still in yoyo's default ``_yoyo_migration``: moved by the next upgrade).
* **Panoramax-managed**: built by Panoramax's migrations; ``_yoyo_migration`` is Panoramax's history,
  read here only to recognise the database and report its version, never written.
* **empty**: nothing of either; ``ops db upgrade`` builds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg

from ops import db, queries
from ops.schema import bookkeeping, releases

# Panoramax's migration ids: YYYYMMDD_NN_<5 random characters>-<slug>.
PANORAMAX_ID = re.compile(r"^\d{8}_\d{2}_[A-Za-z0-9]{5}-")


class Kind(StrEnum):
    EMPTY = "empty"
    OPS = "ops-managed"
    PANORAMAX = "panoramax-managed"


@dataclass(frozen=True)
class Detected:
    kind: Kind
    history_table: str | None = None  # where ops's own history is read from
    panoramax_migrations: int = 0
    panoramax_latest: str | None = None
    panoramax_latest_at: datetime | None = None
    foreign_ids: list[str] = field(default_factory=list)  # non-Panoramax ids in Panoramax's history
    panoramax_release: str | None = None  # the release whose migrations its history holds, when ops knows it

    @property
    def legacy_history(self) -> bool:
        """ops's history is still in yoyo's default table (a database built by an older ops)."""
        return self.kind is Kind.OPS and self.history_table == bookkeeping.YOYO_HISTORY_TABLE

    @property
    def panoramax(self) -> bool:
        return self.kind is Kind.PANORAMAX

    def describe(self) -> str:
        if self.kind is not Kind.PANORAMAX:
            return f"{self.kind.value} database"
        if not self.panoramax_migrations:
            return "Panoramax-managed database (no yoyo history: built before Panoramax used yoyo)"
        at = f" ({self.panoramax_latest_at:%Y-%m-%d %H:%M:%S})" if self.panoramax_latest_at else ""
        built = (
            f"built by Panoramax {self.panoramax_release}"
            if self.panoramax_release
            else "no release ops knows ends there (newer than it knows, or partly upgraded)"
        )
        return (
            f"Panoramax-managed database: {self.panoramax_migrations} Panoramax migrations applied, "
            f"latest {self.panoramax_latest}{at}: {built}"
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value}
        if self.kind is Kind.PANORAMAX:
            data["panoramax"] = {
                "migrations": self.panoramax_migrations,
                "latest": self.panoramax_latest,
                "latest_applied_at": self.panoramax_latest_at.isoformat() if self.panoramax_latest_at else None,
                "foreign_ids": self.foreign_ids,
                "release": self.panoramax_release,
            }
        return data


def detect(conn: psycopg.Connection) -> Detected:
    """Recognise the kind of database (read-only: a few catalog lookups and, when present, the ids of
    ``_yoyo_migration``)."""
    if db.table_exists(conn, bookkeeping.HISTORY_TABLE):
        return Detected(Kind.OPS, bookkeeping.HISTORY_TABLE)
    has_pictures = db.table_exists(conn, "pictures")
    if db.table_exists(conn, bookkeeping.YOYO_HISTORY_TABLE):
        rows = conn.execute(queries.statement("capabilities", "panoramax_history")).fetchall()
        panoramax = [(mid, at) for mid, at in rows if PANORAMAX_ID.match(mid)]
        built_by_ops = db.table_exists(conn, bookkeeping.MIGRATIONS_TABLE)
        if panoramax or (has_pictures and not built_by_ops):
            latest = panoramax[-1] if panoramax else (None, None)
            foreign = [mid for mid, _ in rows if not PANORAMAX_ID.match(mid)]
            release = releases.built_by(max(mid for mid, _ in panoramax), len(panoramax)) if panoramax else None
            return Detected(Kind.PANORAMAX, None, len(panoramax), latest[0], latest[1], foreign, release)
        return Detected(Kind.OPS, bookkeeping.YOYO_HISTORY_TABLE)
    if has_pictures:
        return Detected(Kind.PANORAMAX)
    return Detected(Kind.EMPTY)
