"""What each maintenance command uses of the schema: tables and columns, enum labels, functions.

On a Panoramax-managed database the guard checks these instead of a migration id, so an older Panoramax
release is told exactly what it lacks. Kept next to nothing else on purpose: read it beside the SQL of
``sql/queries`` when a statement starts using a new column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

JOB_COLUMNS = ("id", "task", "args", "ts", "nb_errors", "to_do_after_ts", "picture_id", "sequence_id",
               "picture_to_delete_id")  # fmt: skip
HISTORY_COLUMNS = ("job_id", "picture_to_delete_id", "job_task", "args", "started_at", "finished_at", "error",
                   "warning")  # fmt: skip


@dataclass(frozen=True)
class Needs:
    """Tables with the columns used, enum types with the labels used, functions called."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    enum_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    functions: tuple[str, ...] = ()

    def __or__(self, other: Needs) -> Needs:
        def merged(a: dict[str, tuple[str, ...]], b: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
            return {k: tuple(dict.fromkeys(a.get(k, ()) + b.get(k, ()))) for k in {**a, **b}}

        return Needs(
            merged(self.columns, other.columns),
            merged(self.enum_labels, other.enum_labels),
            tuple(dict.fromkeys(self.functions + other.functions)),
        )


SEQUENCE_TARGETS = Needs(
    {"sequences": ("id", "status", "account_id"), "sequences_pictures": ("seq_id", "rank", "pic_id")},
    {"sequence_status": ("deleted",)},
)
DELETE_JOBS = Needs(
    {"job_queue": JOB_COLUMNS, "job_history": HISTORY_COLUMNS, "pictures": ("id",)}, {"job_type": ("delete",)}
)

HISTORY = Needs(
    {"job_queue": (*JOB_COLUMNS, "upload_set_id"),
     "job_history": (*HISTORY_COLUMNS, "id", "picture_id", "upload_set_id", "sequence_id")},
)  # fmt: skip

COMMANDS: dict[str, Needs] = {
    "sequences reorder": SEQUENCE_TARGETS
    | Needs(
        {
            "sequences": ("geom", "bbox", "min_picture_ts", "max_picture_ts", "nb_pictures", "updated_at"),
            "pictures": ("id", "ts", "metadata", "geom"),
        },
        functions=("compute_sequence_geom", "compute_sequence_bbox"),
    ),
    "set-sequences-heading": SEQUENCE_TARGETS | Needs({"pictures": ("id", "geom", "heading", "heading_computed")}),
    "cleanup": SEQUENCE_TARGETS | DELETE_JOBS | Needs({"pictures": ("upload_set_id",), "upload_sets": ("id",)}),
    "refresh": Needs({"refresh_database": ("refreshed_at",)}),
    "default-account-tokens get": Needs(
        {"accounts": ("id", "is_default"), "tokens": ("id", "account_id", "generated_at")}
    ),
    "tokens verify": Needs({"accounts": ("id", "name"), "tokens": ("id", "account_id")}),
    "user": DELETE_JOBS
    | Needs(
        {
            "accounts": ("id", "name", "role", "is_default", "created_at"),
            "sequences": ("account_id", "status", "updated_at"),
            "pictures": ("account_id",),
            "upload_sets": ("id", "account_id"),
            "tokens": ("account_id",),
        },
        {"account_role": ("admin", "user"), "sequence_status": ("deleted",)},
    ),
    "worker": DELETE_JOBS,
    "jobs": HISTORY | Needs({"pictures": ("id",), "sequences": ("id",), "upload_sets": ("id",)}),
    "storage check": Needs(
        {"pictures": ("id", "status", "original_content_md5"), "sequences_pictures": ("seq_id", "pic_id")}
    ),
    "storage orphans": Needs({"pictures": ("id",), "job_queue": ("picture_to_delete_id",)}),
}

COLUMNS_SQL = """
SELECT c.relname, a.attname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%(tables)s)
"""
LABELS_SQL = """
SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
WHERE t.typname = ANY(%(types)s)
"""
FUNCTIONS_SQL = "SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY(%(names)s)"


def missing(conn: psycopg.Connection, needs: Needs) -> list[str]:
    """What of ``needs`` the database lacks, each as ``table x`` / ``column x.y`` / ``enum label t 'v'`` /
    ``function f()``; empty when everything is there."""
    present: dict[str, set[str]] = {}
    for table, column in conn.execute(COLUMNS_SQL, {"tables": list(needs.columns)}).fetchall():
        present.setdefault(table, set()).add(column)
    labels: dict[str, set[str]] = {}
    for type_name, label in conn.execute(LABELS_SQL, {"types": list(needs.enum_labels)}).fetchall():
        labels.setdefault(type_name, set()).add(label)
    functions = {r[0] for r in conn.execute(FUNCTIONS_SQL, {"names": list(needs.functions)}).fetchall()}
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
