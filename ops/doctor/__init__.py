"""``ops doctor``: what is wrong with an instance, found in one read-only pass, each finding with a stable code,
a severity, a count, the first ids, a hint and the fix (the ops command with those ids, or the SQL an operator
would run where no command exists), in the form of Django's check framework.

Every check is one row of ``ops.doctor.checks`` and one statement (``sql/queries/doctor.sql`` says what each
costs), run in its own read-only transaction with its own ``statement_timeout``: a check that fails or times
out is reported (exit 3) and the others go on. A check that cannot apply to this kind of database says why.
Memory stays flat: counts and the first ids, never all rows. The codes are documented in docs/commands.md and
never reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from ops import db
from ops.doctor.checks import CHECKS, CODES, FILE, IDLE_AFTER, SHOWN
from ops.doctor.findings import CheckDef, Finding, Fix, Options, Severity, State
from ops.errors import OpsError
from ops.schema import capabilities, kind

__all__ = ["CHECKS", "CODES", "FILE", "IDLE_AFTER", "SHOWN", "DoctorReport", "Finding", "Fix", "FixPlan", "Options",
           "Severity", "State", "fix_plan", "not_run", "run"]  # fmt: skip
WORK_MEM = "64MB"  # per sort or hash of a check: the joins of pictures and ranks spill to disk under the 4MB default
# the node_exporter families of a doctor run: name -> (help, None: the labels are in each sample's key)
FAMILIES: dict[str, tuple[str, None]] = {
    "ops_doctor_findings": ("What each check found (rows, sequences, jobs...); 0 when clean, not applicable or "
                            "skipped; NaN when it could not run.", None),
    "ops_doctor_check_up": ("1 when the check ran (found, clean or not applicable), 0 when it failed or was not "
                            "run.", None),
    "ops_doctor_status": ("The exit code of ops doctor at --fail-level {fail_level}: 0 nothing at that level, 1 a "
                          "finding at it or above, 3 a check could not run.", None),
    "ops_doctor_duration_seconds": ("How long ops doctor took.", None),
    "ops_doctor_last_run_timestamp_seconds": ("When ops doctor last ran to its end (Unix time).", None),
}  # fmt: skip
Labels = tuple[tuple[str, str], ...] | None


@dataclass
class DoctorReport:
    kind: str
    findings: list[Finding] = field(default_factory=list)

    def worst(self) -> Severity | None:
        found = [f.severity for f in self.findings if f.state == State.FOUND]
        return max(found, key=lambda s: s.rank) if found else None

    def exit_code(self, fail_level: Severity) -> int:
        if any(f.state == State.FAILED for f in self.findings):
            return 3  # could not check: UNKNOWN, as health says it
        worst = self.worst()
        return 1 if worst is not None and worst.rank >= fail_level.rank else 0

    def as_dict(self) -> dict[str, Any]:
        worst = self.worst()
        return {"kind": self.kind, "worst": str(worst) if worst else None,
                "findings": [f.as_dict() for f in self.findings]}  # fmt: skip

    def series(self, fail_level: Severity, duration_s: float, finished_at: float) -> dict[str, dict[Labels, float]]:
        """Every series of every check, whether it ran or not (0 where nothing was found or it did not run;
        NaN where it could not run, never a reassuring 0), so that an alert sees a value, never an absence."""
        found: dict[str, float] = {c.code: 0 for c in CHECKS}
        up = {c.code: 0.0 for c in CHECKS}
        for f in self.findings:
            found[f.code] += f.count if f.state == State.FOUND else 0
            up[f.code] = float(f.state != State.FAILED)
            if f.state == State.FAILED:
                found[f.code] = float("nan")
        return {
            "ops_doctor_findings": {(("code", c.code), ("severity", str(c.severity))): found[c.code] for c in CHECKS},
            "ops_doctor_check_up": {(("code", c.code),): up[c.code] for c in CHECKS},
            "ops_doctor_status": {None: float(self.exit_code(fail_level))},
            "ops_doctor_duration_seconds": {None: round(duration_s, 3)},
            "ops_doctor_last_run_timestamp_seconds": {None: round(finished_at, 3)},
        }


def not_run(options: Options, why: str) -> DoctorReport:
    """The report of a doctor that could not reach the database: every check wanted "could not run"."""
    report = DoctorReport("unknown")
    report.findings = [f for c in CHECKS if options.wanted(c.code) for f in c.failed(f"could not run: {why}")]
    return report


def run(
    conn: psycopg.Connection, options: Options, progress: Callable[[str], None] = lambda _code: None
) -> DoctorReport:
    """Every wanted check, each in its own read-only transaction bounded by ``options.statement_timeout_s``.
    ``conn``: an autocommit, read-only session."""
    report = DoctorReport(kind.detect(conn).kind.value)
    for check in CHECKS:
        if not options.wanted(check.code):
            continue
        progress(check.code)
        if options.deadline_at is not None and time.monotonic() > options.deadline_at:
            report.findings += check.failed("not run: the read deadline passed (OPS_READ_DEADLINE)")
            continue
        report.findings += _one(conn, options, check)
    return report


def _one(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    if options.seq_ids is not None and not check.narrowed:
        return check.not_applicable("about the whole instance: not narrowed by --sequence")
    try:
        lacking = capabilities.missing(conn, check.needs) if check.needs.columns or check.needs.functions else []
    except psycopg.Error as e:
        return check.failed(_reason(conn, e))
    if lacking:
        return check.not_applicable(f"this database has no {', '.join(lacking)}")
    if check.storage and options.storage is None:
        return check.not_applicable("the storage is checked with --storage")
    started = time.monotonic()
    try:
        with conn.transaction():
            _bound(conn, options)
            found = check.run(conn, options, check)
    except (psycopg.Error, OpsError) as e:
        return check.failed(_reason(conn, e))
    for f in found:
        f.duration_s = round(time.monotonic() - started, 3)
    return found


def _bound(conn: psycopg.Connection, options: Options) -> None:
    """This transaction's statements end within the check's time (a timeout is that check's failure), and sort
    in memory (this transaction only: no server setting is changed)."""
    conn.execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('work_mem', %s, true)",
        (f"{round(options.statement_timeout_s * 1000)}ms", WORK_MEM),
    )


def _reason(conn: psycopg.Connection, error: Exception) -> str:
    if isinstance(error, psycopg.Error):
        explained = db.explain(conn, error, "ops doctor")
        if explained is not None:
            return str(explained)
    return " ".join(str(error).split())


@dataclass
class FixPlan:
    """What --fix runs: each action with every id it covers (the refresh has none)."""

    actions: dict[Fix, list[UUID]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.actions

    def as_dict(self) -> dict[str, Any]:
        return {str(a): a in self.actions if a == Fix.REFRESH else [str(i) for i in self.actions.get(a, [])]
                for a in Fix}  # fmt: skip


def fix_plan(conn: psycopg.Connection, report: DoctorReport, options: Options) -> FixPlan:
    """The ids every fixable finding covers (all of them, not the first ones: read again, id column only)."""
    plan = FixPlan()
    for code in dict.fromkeys(f.code for f in report.findings if f.state == State.FOUND and f.fixable):
        check = CODES[code]
        assert check.action is not None
        ids = plan.actions.setdefault(check.action, [])
        if check.all_ids is not None:
            with conn.transaction():
                _bound(conn, options)
                ids += check.all_ids(conn, options)
    # an action whose ids are gone meanwhile is left out (a reorder with no id is never "every sequence")
    plan.actions = {a: sorted(set(ids)) for a, ids in plan.actions.items() if ids or a == Fix.REFRESH}
    return plan
