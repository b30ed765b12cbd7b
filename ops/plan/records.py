"""What a plan of ``ops db plan`` is: for each migration its statements (their trace and estimate), the tables
it blocks and for how long, and the plan's warnings; each record with its JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.plan import trace
from ops.plan.bound import Bound
from ops.plan.estimate import Estimate, Rates
from ops.plan.trace import StatementTrace


@dataclass(frozen=True)
class Unanalyzed:
    """A column a query of the upgrade reads before PostgreSQL has statistics on it: added earlier in the
    same upgrade, so the planner guesses its selectivity (and can choose a plan thousands of times slower)."""

    table: str
    column: str
    added_by: str  # "<migration id> #<statement>"
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "added_by": self.added_by, "rows": self.rows}


@dataclass
class StatementPlan:
    trace: StatementTrace
    estimate: Estimate
    unanalyzed: list[Unanalyzed] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The statement on one line, comments dropped, cut at 90 characters."""
        lines = [line for line in self.trace.text.splitlines() if not line.strip().startswith("--")]
        text = " ".join(" ".join(lines).split())
        return text if len(text) <= 90 else text[:89] + "…"

    def as_dict(self) -> dict[str, Any]:
        t = self.trace
        return {
            "number": t.number, "statement": self.summary, "tag": t.tag, "error": t.error,
            "locks": [lock.as_dict() for lock in t.locks], "locks_observed": t.observed,
            "effects": t.effects.as_dict(), "estimate": self.estimate.as_dict(),
            "unanalyzed_columns": [u.as_dict() for u in self.unanalyzed],
        }  # fmt: skip


@dataclass
class Blocked:
    """A table of production that a migration blocks: what of its use, from which statement, how long."""

    table: str
    what: str  # WRITES or READS_AND_WRITES
    mode: str
    statement: int  # the statement that takes the lock
    until: int  # the last statement it is held through (the commit follows)
    seconds: float
    bound: Bound

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "blocks": self.what, "mode": trace.sql_name(self.mode),
                "from_statement": self.statement, "through_statement": self.until,
                "seconds": round(self.seconds, 3), "bound": self.bound}  # fmt: skip


@dataclass
class MigrationPlan:
    id: str
    transactional: bool
    statements: list[StatementPlan] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    not_traced: str | None = None
    error: str | None = None
    interrupted: list[str] = field(default_factory=list)  # on production, left by a killed run: dropped first

    @property
    def seconds(self) -> float:
        return sum(s.estimate.seconds for s in self.statements)

    @property
    def bound(self) -> Bound:
        return bound_of([s.estimate for s in self.statements])

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "transactional": self.transactional, "not_traced": self.not_traced, "error": self.error,
            "interrupted": self.interrupted,
            "estimate": {"seconds": round(self.seconds, 3), "bound": self.bound},
            "blocked": [b.as_dict() for b in self.blocked], "statements": [s.as_dict() for s in self.statements],
        }  # fmt: skip


@dataclass
class PlanWarning:
    migration: str
    statement: int
    message: str
    fixes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"migration": self.migration, "statement": self.statement, "message": self.message, "fixes": self.fixes}


@dataclass
class Plan:
    database: str  # the kind of database, described
    panoramax: bool
    source: str  # where the migrations come from
    migrations: list[MigrationPlan]
    rates: Rates | None
    max_lock_s: float
    scratch: str = ""
    unconfined: str | None = None  # why the replay ran as the plan's own role (None: as one of its own)
    leftovers: list[str] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [f"{m.id}: {m.error}" for m in self.migrations if m.error]

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 1 if self.warnings else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database, "panoramax": self.panoramax, "source": self.source,
            "max_lock_seconds": self.max_lock_s, "scratch_database": self.scratch, "leftovers_dropped": self.leftovers,
            "replay_confined": self.unconfined is None, "replay_unconfined_because": self.unconfined,
            "rates": self.rates.as_dict() if self.rates else None,
            "migrations": [m.as_dict() for m in self.migrations], "warnings": [w.as_dict() for w in self.warnings],
            "errors": self.errors, "wall_seconds": round(self.wall_s, 2), "exit_code": self.exit_code,
        }  # fmt: skip


def bound_of(estimates: list[Estimate]) -> Bound:
    """How a sum of estimates holds: at least when one part is a lower bound, at most when one is an upper
    bound, else about."""
    bounds = {e.bound for e in estimates if e.seconds > 0 or e.bound != Bound.ABOUT}
    if Bound.AT_LEAST in bounds:
        return Bound.AT_LEAST
    return Bound.AT_MOST if Bound.AT_MOST in bounds else Bound.ABOUT
