"""The check of a database against what maintenance commands need (``ops.schema.needs``): the tables and
columns, enum labels and functions it lacks. On a Panoramax-managed database the guard checks these instead
of a migration id, so an older Panoramax release is told exactly what it lacks.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ops import db, queries
from ops.schema.needs import Needs

FILE = "capabilities"


def missing(conn: psycopg.Connection, needs: Needs) -> list[str]:
    """What of ``needs`` the database lacks, each as ``table x`` / ``column x.y`` / ``enum label t 'v'`` /
    ``function f()``; empty when everything is there."""
    present: dict[str, set[str]] = {}
    for table, column in conn.execute(queries.statement(FILE, "columns"), {"tables": list(needs.columns)}).fetchall():
        present.setdefault(table, set()).add(column)
    labels: dict[str, set[str]] = {}
    for type_name, label in conn.execute(queries.statement(FILE, "enum_labels"), {"types": list(needs.enum_labels)}):
        labels.setdefault(type_name, set()).add(label)
    functions = {r[0] for r in conn.execute(queries.statement(FILE, "functions"), {"names": list(needs.functions)})}
    lacking: list[str] = []
    for table, columns in sorted(needs.columns.items()):
        if table not in present:
            lacking.append(f"table {table}")
        else:
            lacking += [f"column {table}.{c}" for c in columns if c not in present[table]]
    for type_name, wanted in sorted(needs.enum_labels.items()):
        lacking += [
            f"enum label {type_name} '{label}'" for label in wanted if label not in labels.get(type_name, set())
        ]
    lacking += [f"function {f}()" for f in needs.functions if f not in functions]
    return lacking


def one_delete_job_per_picture(conn: psycopg.Connection) -> bool:
    """job_queue has its unique index on picture_to_delete_id (Panoramax 2.10 and later, ops)."""
    return bool(db.scalar(conn, queries.statement(FILE, "one_delete_job_per_picture")))


# Columns that some schemas lack (ops's own; Panoramax releases before them), read where present and NULL
# elsewhere: placeholder -> (table, column, alias in the statements, type). Naming a column is cheap where
# reading the whole row as JSON to look for it is not (to_jsonb of a sequence converts its geometry).
OPTIONAL = {
    "s_current_sort": ("sequences", "current_sort", "s", "text"),
    "s_upload_set_id": ("sequences", "upload_set_id", "s", "uuid"),
    "u_sort_method": ("upload_sets", "sort_method", "u", "text"),
    "u_relative_heading": ("upload_sets", "relative_heading", "u", "text"),
}


def optional_columns(conn: psycopg.Connection) -> dict[str, sql.Composable]:
    """Each placeholder of ``OPTIONAL`` as ``alias.column::type`` where the database has the column, else
    ``NULL::type`` (for ``queries.composed``'s ``columns``)."""
    tables = sorted({table for table, *_ in OPTIONAL.values()})
    present = {tuple(r) for r in conn.execute(queries.statement(FILE, "columns"), {"tables": tables}).fetchall()}
    return {
        name: sql.SQL("{}.{}::{}").format(sql.Identifier(alias), sql.Identifier(column), sql.SQL(kind))
        if (table, column) in present else sql.SQL("NULL::{}").format(sql.SQL(kind))
        for name, (table, column, alias, kind) in OPTIONAL.items()
    }  # fmt: skip


# md5 of the source of the sequence-geometry functions whose rule sequence_derived.sql's set-based statement
# gives byte for byte (the line in rank order, split where pictures are more than 75 m apart; the extent of
# the pictures): ops's own (migration 0005) and Panoramax's (20240813_01 and 20240229_01, unchanged in every
# release since 2.8). Any other body (a later Panoramax rule) is called per sequence instead.
SEQUENCE_RULES = {
    "compute_sequence_geom": {"85dd6945158637640cbb2675414017c9", "b5f4491712b27dd4e5f4f3b123f88b14"},
    "compute_sequence_bbox": {"9bffba4b94015e8ee7f4e3b9325e36ae", "c5d6c81a44ad9e63e5b542bf056f8973"},
}


def sequence_rule_known(conn: psycopg.Connection) -> bool:
    """Whether the database's compute_sequence_geom and compute_sequence_bbox are bodies ops knows
    (``SEQUENCE_RULES``), so their rule may be computed set-based for many sequences at once."""
    bodies: dict[str, str] = dict(conn.execute(queries.statement(FILE, "sequence_rule")).fetchall())
    return all(bodies.get(name, "") in known for name, known in SEQUENCE_RULES.items())
