"""What a doctor check is (``CheckDef``: one row), what it is asked (``Options``) and what it finds
(``Finding``), with the severities, states and fix actions as enums."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import psycopg

from ops.schema.needs import Needs
from ops.settings import REFRESH_CRON
from ops.storage import Storage

SHOWN = 10  # ids shown per finding


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class State(StrEnum):
    FOUND = "found"
    CLEAN = "clean"
    NOT_APPLICABLE = "not applicable"
    FAILED = "failed"


class Fix(StrEnum):
    """What ``ops doctor --fix`` runs for a finding (never a deletion); the value is its key in --json."""

    REORDER = "reorder"  # ops sequences reorder, renumbered in place: no order a user chose changes
    HEADINGS = "headings"  # ops set-sequences-heading
    RETRY = "retry_jobs"  # ops jobs retry
    REFRESH = "refresh"  # ops refresh


@dataclass
class Options:
    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    seq_ids: list[UUID] | None = None
    stuck_after: timedelta = timedelta(hours=24)
    refresh_cron: str = REFRESH_CRON.default
    statement_timeout_s: float = 60.0
    storage: Storage | None = None  # --storage: the storage checks run (bounded by its S3 deadline)
    deadline_at: float | None = None  # time.monotonic() past which no further check starts (OPS_READ_DEADLINE)
    needs: Mapping[str, Needs] = field(default_factory=dict)  # command -> what it uses of a Panoramax schema
    # a session with the server's own JIT setting, as Panoramax's API has it (DB005); None: not measured
    server_session: Callable[[], AbstractContextManager[psycopg.Connection]] | None = None

    def wanted(self, code: str) -> bool:
        return (not self.only or code in self.only) and code not in self.skip

    def params(self) -> dict[str, Any]:
        return {"seq_ids": self.seq_ids, "stuck_after": self.stuck_after, "shown": SHOWN}


@dataclass
class Finding:
    code: str
    severity: Severity
    title: str
    state: State
    count: int = 0
    ids: list[str] = field(default_factory=list)  # the first ones
    detail: str = ""  # the reason of a not applicable or failed check, a group's reason, a date
    hint: str = ""
    fix: str = ""
    fixable: bool = False
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": str(self.severity), "state": str(self.state)}


@dataclass(frozen=True)
class FixSql:
    """A fix no command makes: a statement of ``sql/queries/doctor_fixes.sql`` (printed, never run), then a note."""

    name: str
    note: str = ""

    def text(self) -> str:
        from ops import queries

        text = queries.statement("doctor_fixes", self.name) + ";"
        return f"{text}  {self.note}" if self.note else text


Runner = Callable[[psycopg.Connection, Options, "CheckDef"], list[Finding]]
AllIds = Callable[[psycopg.Connection, Options], list[UUID]]


@dataclass(frozen=True)
class CheckDef:
    """One check: its code (never reused), severity, what is wrong, why it matters, the fix to print
    ({ids}: the ids found, space-separated; {ids_sql}: comma-separated; {id}: one statement per id), how it
    runs, and for --fix its action and every id it covers."""

    code: str
    severity: Severity
    title: str
    hint: str
    fix: str | FixSql
    run: Runner
    action: Fix | None = None
    all_ids: AllIds | None = None  # every id the action covers (its statement with no limit on the ids shown)
    needs: Needs = field(default_factory=Needs)  # what it reads: absent, the check does not apply
    narrowed: bool = False  # --sequence narrows it (the others are about the whole instance)
    storage: bool = False  # reads the storage: runs with --storage only

    @property
    def fixable(self) -> bool:
        return self.action is not None

    def finding(self, count: int, ids: list[Any], detail: str = "") -> Finding:
        shown = [str(i) for i in ids[:SHOWN]]
        if not count:
            return Finding(self.code, self.severity, self.title, State.CLEAN, 0, shown, detail, self.hint, "",
                           self.fixable)  # fmt: skip
        template = self.fix.text() if isinstance(self.fix, FixSql) else self.fix
        if "{id}" in template:
            fix = " ".join(template.format(id=i) for i in shown)
        else:
            fix = template.format(ids=" ".join(shown), ids_sql=",".join(shown))
        if count > len(shown) and "{ids}" in template and self.fixable:
            fix += f"  (+{count - len(shown):,} more: ops doctor --fix --only {self.code} fixes them all)"
        return Finding(self.code, self.severity, self.title, State.FOUND, count, shown, detail, self.hint, fix,
                       self.fixable)  # fmt: skip

    def not_applicable(self, why: str) -> list[Finding]:
        return [Finding(self.code, self.severity, self.title, State.NOT_APPLICABLE, detail=why, hint=self.hint)]

    def failed(self, why: str) -> list[Finding]:
        return [Finding(self.code, self.severity, self.title, State.FAILED, detail=why, hint=self.hint)]
