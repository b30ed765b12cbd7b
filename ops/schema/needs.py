"""What maintenance commands use of the schema (``Needs``: tables and columns, enum labels, functions) and the
sets several commands share. Each command's needs are in its spec (``ops/commands.py``); read them beside
the SQL of ``sql/queries`` when a statement starts using a new column. Imported when the CLI starts: no
dependency at all (``ops.schema.capabilities`` checks a database against them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

JOB_COLUMNS = ("id", "task", "args", "ts", "nb_errors", "to_do_after_ts", "picture_id", "sequence_id",
               "picture_to_delete_id")  # fmt: skip
# job_history.warning (Panoramax 2.9) is written when it exists, never needed (ops.worker._finish)
HISTORY_COLUMNS = ("job_id", "picture_to_delete_id", "job_task", "args", "started_at", "finished_at", "error")


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


def merged(needs: list[Needs]) -> Needs:
    """Everything that several commands need."""
    total = Needs()
    for one in needs:
        total = total | one
    return total
