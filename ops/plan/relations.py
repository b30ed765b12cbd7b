"""What the replay of a migration reads of the relations: a snapshot of the scratch database's tables and
indexes (names, files, validated constraints, columns), and what one statement changed between two
snapshots (rewritten, truncated, created, dropped, renamed, validated, indexes built, columns added), named
as in production. ``ops.plan.trace`` takes the snapshots around each statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from ops import queries


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # r p m (tables, materialized views), i I (indexes)
    filenode: int
    method: str | None  # an index's access method (btree, gist…)
    table_oid: int | None  # an index's table
    validated: tuple[str, ...]
    not_null: tuple[str, ...]
    columns: tuple[str, ...]
    first_key: str | None = None  # an index's first key column (None: an expression)
    narrow_key: bool = False  # that column's type is passed by value (a number, a time)

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def is_index(self) -> bool:
        return self.kind in ("i", "I")


def snapshot(conn: psycopg.Connection) -> dict[int, Relation]:
    rows = conn.execute(queries.statement("plan", "relations")).fetchall()
    return {
        r[0]: Relation(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            tuple(r[7] or ()),
            tuple(r[8] or ()),
            tuple(r[9] or ()),
            r[10],
            bool(r[11]),
        )
        for r in rows
    }


@dataclass(frozen=True)
class Touched:
    """A relation a statement changed: its name now, and its name in production (None: a new one)."""

    name: str
    production: str | None
    method: str | None = None  # an index's access method
    table: str | None = None  # an index's table, in production (None: a new table)
    key: str | None = None  # an index's first key column (None: an expression)
    narrow_key: bool = False  # that column's type is passed by value (a number, a time)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "existing": self.production is not None}
        if self.method:
            data |= {"method": self.method, "table": self.table}
        return data


@dataclass
class Effects:
    """What one statement did to the relations."""

    rewritten: list[Touched] = field(default_factory=list)
    truncated: list[Touched] = field(default_factory=list)
    created: list[Touched] = field(default_factory=list)
    dropped: list[Touched] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    validated: list[tuple[Touched, str]] = field(default_factory=list)  # (table, constraint or NOT NULL column)
    indexes_built: list[Touched] = field(default_factory=list)  # new indexes on tables that existed before
    added_columns: list[tuple[Touched, str]] = field(default_factory=list)  # (table, column)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rewritten": [t.as_dict() for t in self.rewritten], "truncated": [t.as_dict() for t in self.truncated],
            "created": [t.name for t in self.created], "dropped": [t.name for t in self.dropped],
            "renamed": [list(r) for r in self.renamed],
            "validated": [{"table": t.name, "what": what} for t, what in self.validated],
            "indexes_built": [t.as_dict() for t in self.indexes_built],
            "added_columns": [{"table": t.name, "column": c} for t, c in self.added_columns],
        }  # fmt: skip


def effects(before: dict[int, Relation], after: dict[int, Relation], initial: dict[int, Relation], tag: str) -> Effects:
    """What changed between two snapshots of the relations (``initial``: the relations of production)."""

    def touched(rel: Relation) -> Touched:
        prod = initial.get(rel.oid)
        if not rel.is_index:
            return Touched(rel.qualified, prod.qualified if prod else None)
        table = initial.get(rel.table_oid or 0)
        return Touched(rel.qualified, prod.qualified if prod else None, rel.method or "btree",
                       table.qualified if table else None, rel.first_key, rel.narrow_key)  # fmt: skip

    out = Effects()
    truncate = tag.startswith("TRUNCATE")
    for oid, rel in after.items():
        old = before.get(oid)
        if old is None:
            out.created.append(touched(rel))
            if rel.is_index and rel.table_oid in before:
                out.indexes_built.append(touched(rel))
            continue
        if old.name != rel.name or old.schema != rel.schema:
            out.renamed.append((old.qualified, rel.qualified))
        if old.filenode and rel.filenode and old.filenode != rel.filenode:
            (out.truncated if truncate else out.rewritten).append(touched(rel))
        news = sorted(set(rel.validated) - set(old.validated))
        news += [f"NOT NULL {c}" for c in sorted(set(rel.not_null) - set(old.not_null))]
        out.validated += [(touched(rel), what) for what in news]
        out.added_columns += [(touched(rel), c) for c in rel.columns if c not in old.columns]
    out.dropped = [touched(rel) for oid, rel in before.items() if oid not in after]
    return out
