"""``ops doctor``: what is wrong with an instance, found in one read-only pass, each finding with a stable code,
a severity, a count, the first ids, a hint and the fix (the ops command with those ids, or the SQL an operator
would run where no command exists), in the form of Django's check framework.

Every check is one statement (``sql/queries/doctor.sql`` says what each costs), run in its own read-only
transaction with its own ``statement_timeout``: a check that fails or times out is reported (exit 3) and the
others go on. A check that cannot apply to this kind of database says why. Memory stays flat: counts and the
first ids, never all rows. The codes are documented in docs/commands.md and never reused.
(The module is long because the table of checks, their running and their fixes are read together.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ops import db, jobs, queries, refresh, sequences, storage_check
from ops.errors import OpsError
from ops.schema import capabilities, kind, status
from ops.schema.needs import Needs
from ops.storage import Storage

RANKS = "reorder_ranks"  # the intended order of a sequence (ops.sequences)
ORDER_BATCH = 1000

SEVERITIES = ("info", "warning", "error")
SHOWN = 10
FILE = "doctor"
XID_WARNING = 1_000_000_000
IDLE_AFTER = timedelta(minutes=10)  # a session idle in a transaction for longer holds its locks for nothing


@dataclass(frozen=True)
class CheckDef:
    code: str
    severity: str
    title: str  # what is wrong, for people
    hint: str  # one line: why it matters or what causes it
    fix: str  # the command or SQL: {ids} the ids found (space-separated), {ids_sql} (comma-separated), {id} one
    # statement per id
    fixable: bool = False  # --fix runs it (never one that deletes)
    needs: Needs = field(default_factory=Needs)  # what it reads: absent, the check does not apply


def _sql(name: str, note: str = "") -> str:
    """A fix no command makes: the SQL of ``sql/queries/doctor_fixes.sql`` (printed, never run), then a note."""
    text = queries.statement("doctor_fixes", name) + ";"
    return f"{text}  {note}" if note else text


_SEQ = Needs({"sequences": ("id", "status", "geom", "bbox"), "sequences_pictures": ("seq_id", "rank", "pic_id")})
_PIC = Needs({"pictures": ("id", "status", "updated_at"), "job_queue": ("picture_id", "task")})
CHECKS: tuple[CheckDef, ...] = (
    CheckDef("SEQ001", "warning", "sequences whose geometry differs from their pictures in rank order",
             "the map draws them where their pictures are not (an edit, or an interrupted update)",
             "ops sequences reorder {ids}", True, _SEQ | Needs(functions=("compute_sequence_geom",))),
    CheckDef("SEQ002", "warning", "sequences whose bbox, capture times or picture count differ from their pictures",
             "search and statistics read these fields", "ops sequences reorder {ids}", True,
             _SEQ | Needs({"sequences": ("min_picture_ts", "max_picture_ts", "nb_pictures")})),
    CheckDef("SEQ003", "info", "sequences whose ranks have gaps or do not start at 1",
             "left by deleted pictures; harmless for Panoramax. --fix renumbers them in their current order",
             "ops sequences reorder {ids}", True, _SEQ),
    CheckDef("SEQ004", "warning", "ready sequences without any picture", "an empty sequence listed as ready",
             "ops cleanup {ids} --database  (deletes the sequences: run it yourself)", False, _SEQ),
    CheckDef("SEQ005", "info", "sequences that move holding pictures without heading",
             "a heading is computed from the movement", "ops set-sequences-heading {ids}", True,
             _SEQ | Needs({"pictures": ("heading",)})),
    CheckDef("SEQ006", "info", "sequences whose order is not the one their owner chose",
             "their owner sorted them through Panoramax (a collection sort, an upload set's sort method) and the "
             "pictures are in another order: the operator decides; doctor never re-sorts them",
             "ops sequences reorder {ids}  (applies the owner's choice)", False, _SEQ),
    CheckDef("PIC001", "error", "pictures stuck in a processing status with no job queued",
             "nothing will ever finish them (a worker that died, a queue emptied by hand)",
             _sql("pic001"), False, _PIC),
    CheckDef("PIC002", "error", "pictures waiting for deletion with no delete job queued",
             "they and their files will never go",
             _sql("pic002"), False, _PIC | Needs({"job_queue": ("picture_to_delete_id",)})),
    CheckDef("PIC003", "warning", "broken pictures (ids: their last failed jobs)",
             "their last error is below; retry once its cause is fixed",
             "ops jobs retry {ids}", True,
             Needs({"pictures": ("id", "status", "preparing_status"), "job_history": ("picture_id", "job_id", "error")})),
    CheckDef("PIC004", "warning", "pictures in no sequence, their upload finished", "nothing will ever show them",
             _sql("pic004", "(deletes: their files become orphans, see ops storage orphans)"), False,
             Needs({"pictures": ("id", "inserted_at", "upload_set_id"), "upload_sets": ("completed", "dispatched")})),
    CheckDef("JOB001", "warning", "queued jobs whose target is gone", "they fail or do nothing, forever",
             _sql("job001"), False,
             Needs({"job_queue": ("id", "picture_id", "sequence_id", "upload_set_id")})),
    CheckDef("UPL001", "warning", "upload sets completed but never dispatched", "their pictures never get a sequence",
             _sql("upl001"), False,
             Needs({"upload_sets": ("id", "completed", "dispatched", "created_at"), "job_queue": ("upload_set_id",)})),
    CheckDef("UPL002", "info", "upload files naming pictures that are gone (ids: the pictures)",
             "Panoramax's upload bookkeeping keeps them", _sql("upl002"), False, Needs({"files": ("picture_id",)})),
    CheckDef("MAP001", "warning", "the map is not refreshed on schedule",
             "new, moved and deleted pictures do not show on the map", "ops refresh", True),
    CheckDef("DB001", "error", "invalid indexes", "a failed CREATE INDEX CONCURRENTLY: writes pay for it, reads "
             "never use it", _sql("db001")),
    CheckDef("DB002", "error", "the schema is not what the commands need", "migrations pending, modified or missing",
             "ops db upgrade  (Panoramax-managed: Panoramax's own flask db upgrade)"),
    CheckDef("DB003", "warning", "transaction IDs old: autovacuum is not keeping up",
             f"past about 2 billion PostgreSQL stops writes; warned at {XID_WARNING:,}", _sql("db003")),
    CheckDef("DB004", "error", "sessions idle in a transaction for more than 10 minutes, holding locks",
             "they block every migration and cleanup", _sql("db004")),
    CheckDef("DB005", "warning", "the server JIT-compiles the per-sequence geometry function",
             "every call from Panoramax's API pays the compilation", "{ids}"),
    CheckDef("STO001", "error", "the storage holds none of a sample of ready pictures' originals",
             "a volume that did not mount, an empty bucket or a wrong prefix: deleting commands refuse to run "
             "(checked with --storage)", "check FS_URL (or FS_*_URL) and the mounts", False,
             Needs({"pictures": ("id", "status")})),
    CheckDef("STO002", "error", "folders of pictures' files this user may not delete from (ids: the folders)",
             "every deletion there fails: run ops as the files' owner, as Panoramax's image does (uid 1000; "
             "checked with --storage, on a local disk)", "chown the storage to the user ops runs as, or run ops "
             "as the files' owner (the image's OPS_UID/OPS_GID build arguments)", False,
             Needs({"pictures": ("id", "status")})),
    CheckDef("ACC001", "error", "not exactly one default account",
             "anonymous uploads and default-account-tokens need one", _sql("acc001", "(or create one: ops user 'Default account' --create, then set is_default)")),
    CheckDef("ACC002", "error", "the default account has no token", "ops default-account-tokens get fails",
             _sql("acc002")),
)  # fmt: skip
CODES = {c.code: c for c in CHECKS}


@dataclass
class Finding:
    code: str
    severity: str
    title: str
    state: str  # found | clean | not applicable | failed
    count: int = 0
    ids: list[str] = field(default_factory=list)  # the first ones
    detail: str = ""  # the reason of a not applicable or failed check, a group's reason, a date
    hint: str = ""
    fix: str = ""
    fixable: bool = False
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Options:
    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    seq_ids: list[UUID] | None = None
    stuck_after: timedelta = timedelta(hours=24)
    refresh_cron: str = jobs.DEFAULT_REFRESH_CRON
    statement_timeout_s: float = 60.0
    storage: Storage | None = None  # --storage: the storage checks run (bounded by its S3 deadline)
    deadline_at: float | None = None  # time.monotonic() past which no further check starts (OPS_READ_DEADLINE)

    def wanted(self, code: str) -> bool:
        return (not self.only or code in self.only) and code not in self.skip


@dataclass
class DoctorReport:
    kind: str
    findings: list[Finding] = field(default_factory=list)

    def worst(self) -> str | None:
        found = [SEVERITIES.index(f.severity) for f in self.findings if f.state == "found"]
        return SEVERITIES[max(found)] if found else None

    def exit_code(self, fail_level: str) -> int:
        if any(f.state == "failed" for f in self.findings):
            return 3  # could not check: UNKNOWN, as health says it
        worst = self.worst()
        return 1 if worst is not None and SEVERITIES.index(worst) >= SEVERITIES.index(fail_level) else 0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "worst": self.worst(), "findings": [f.as_dict() for f in self.findings]}

    def prometheus(self, fail_level: str, duration_s: float, finished_at: float) -> str:
        """node_exporter's textfile format: every series of every check, whether it ran or not (0 where
        nothing was found or it did not run), so that an alert sees a value, never an absence."""
        found: dict[str, float] = {c.code: 0 for c in CHECKS}
        up = {c.code: 0 for c in CHECKS}
        for f in self.findings:
            found[f.code] += f.count if f.state == "found" else 0
            up[f.code] = int(f.state != "failed")
            if f.state == "failed":
                found[f.code] = math.nan  # not known: never a reassuring 0
        families: dict[str, tuple[str, list[tuple[str, float]]]] = {
            "ops_doctor_findings": ("What each check found (rows, sequences, jobs...); 0 when clean, not "
                                    "applicable or skipped; NaN when it could not run.",
                                    [(f'code="{c.code}",severity="{c.severity}"', found[c.code]) for c in CHECKS]),
            "ops_doctor_check_up": ("1 when the check ran (found, clean or not applicable), 0 when it failed "
                                    "or was not run.", [(f'code="{c.code}"', up[c.code]) for c in CHECKS]),
            "ops_doctor_status": (f"The exit code of ops doctor at --fail-level {fail_level}: 0 nothing at that "
                                  "level, 1 a finding at it or above, 3 a check could not run.",
                                  [("", self.exit_code(fail_level))]),
            "ops_doctor_duration_seconds": ("How long ops doctor took.", [("", round(duration_s, 3))]),
            "ops_doctor_last_run_timestamp_seconds": ("When ops doctor last ran to its end (Unix time).",
                                                      [("", round(finished_at, 3))]),
        }  # fmt: skip
        lines = []
        for name, (help_text, samples) in families.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{{{labels}}} {_number(v)}" if labels else f"{name} {_number(v)}" for labels, v in samples]
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value))


def not_run(options: Options, why: str) -> DoctorReport:
    """The report of a doctor that could not reach the database: every check wanted "could not run"."""
    report = DoctorReport("unknown")
    report.findings = [Finding(c.code, c.severity, c.title, "failed", detail=f"could not run: {why}", hint=c.hint)
                       for c in CHECKS if options.wanted(c.code)]  # fmt: skip
    return report


def _ids_sql(ids: list[str]) -> str:
    return ",".join(ids)


def _finding(check: CheckDef, count: int, ids: list[Any], detail: str = "") -> Finding:
    shown = [str(i) for i in ids[:SHOWN]]
    if "{id}" in check.fix:
        fix = " ".join(check.fix.format(id=i) for i in shown)
    else:
        fix = check.fix.format(ids=" ".join(shown), ids_sql=_ids_sql(shown))
    if count > len(shown) and "{ids}" in check.fix and check.fixable:
        fix += f"  (+{count - len(shown):,} more: ops doctor --fix --only {check.code} fixes them all)"
    return Finding(check.code, check.severity, check.title, "found" if count else "clean", count, shown, detail,
                   check.hint, fix if count else "", check.fixable)  # fmt: skip


def _counted(statement: str) -> Callable[[psycopg.Connection, Options, CheckDef], list[Finding]]:
    """A check whose statement returns (count, first ids)."""

    def run(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
        row = db.one(conn, queries.statement(FILE, statement), _params(options))
        count, ids, detail = (*row, "")[:3]
        return [_finding(check, int(count or 0), list(ids or []), str(detail or ""))]

    return run


def _owner_order(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """SEQ006: the sequences with an order chosen by their owner, compared with that order (a batch at a time)."""
    columns = capabilities.optional_columns(conn)
    owner_chosen = queries.composed(RANKS, "owner_chosen", columns)
    chosen = [r[0] for r in conn.execute(owner_chosen, _params(options)).fetchall()]
    count, ids = 0, list[UUID]()
    statement = queries.composed(RANKS, "contradicting", columns, ordered="ordered")
    for start in range(0, len(chosen), ORDER_BATCH):
        params = {**sequences.order_params(conn, chosen[start : start + ORDER_BATCH], columns), "shown": SHOWN}
        n, first = db.one(conn, statement, params)
        count, ids = count + int(n), ids + list(first or [])
    return [_finding(check, count, sorted(ids)[:SHOWN])]


def _location(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """STO001: the storage is the instance's (what every deleting command proves before it deletes)."""
    assert options.storage is not None
    problem = storage_check.location_problem(conn, options.storage)
    return [_finding(check, 1 if problem else 0, [], problem or "")]


def _writable(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    assert options.storage is not None
    found = storage_check.unwritable(conn, options.storage)
    if found is None:
        return _not_applicable(check, "on S3 only a deletion can tell: a refused one fails its job and exits 1")
    return [_finding(check, len(found), found)]


def _params(options: Options) -> dict[str, Any]:
    return {"seq_ids": options.seq_ids, "stuck_after": options.stuck_after, "shown": SHOWN}


def _broken(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    rows = conn.execute(queries.statement(FILE, "pic_broken"), _params(options)).fetchall()
    if not rows:
        return [_finding(check, 0, [])]
    return [_finding(check, int(n), list(job_ids or []), f"last error: {reason}") for reason, n, job_ids in rows]


def _map(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """The last refresh against the schedule (ops's views, or Panoramax's grid with its expired cells)."""
    now: datetime = db.scalar(conn, "SELECT now()")
    last = refresh.last_refresh(conn)
    due = jobs.next_refresh(options.refresh_cron, last, now)
    detail = f"last refresh {last:%Y-%m-%d %H:%M:%S} UTC" if last else "never refreshed"
    if refresh.has_expiring_grid(conn):
        waiting, oldest = db.one(conn, queries.statement(FILE, "grid_expired"))
        detail += f"; {waiting:,} grid cells waiting" + (f" since {oldest:%Y-%m-%d %H:%M:%S}" if oldest else "")
    overdue = last is None or due < now
    return [_finding(check, 1 if overdue else 0, [], f"{detail}; cron {options.refresh_cron}")]


def _rows(statement: str, keep: Callable[[tuple[Any, ...]], bool], show: Callable[[tuple[Any, ...]], str]) -> Callable[
    [psycopg.Connection, Options, CheckDef], list[Finding]
]:  # fmt: skip
    """A check of the database itself: the rows the statement returns that ``keep`` keeps, shown by ``show``."""

    def run(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
        rows = conn.execute(queries.statement(FILE, statement), {"idle_after": IDLE_AFTER}).fetchall()
        found = [r for r in rows if keep(tuple(r))]
        return [_finding(check, len(found), [show(tuple(r)) for r in found])]

    return run


def _schema(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    state = status.migration_status(conn)
    problems = [] if state.up_to_date else [state.problems()]
    return [_finding(check, len(problems), problems)]


def _default_account(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    defaults, tokens, ids = db.one(conn, queries.statement(FILE, "acc_default"))
    if check.code == "ACC001":
        return [_finding(check, 0 if defaults == 1 else 1, list(ids or []), f"{defaults} default accounts")]
    return [_finding(check, 1 if defaults == 1 and not tokens else 0, list(ids or []))]


RUNNERS: dict[str, Callable[[psycopg.Connection, Options, CheckDef], list[Finding]]] = {
    "SEQ001": _counted("seq_geometry"), "SEQ002": _counted("seq_fields"), "SEQ003": _counted("seq_ranks"),
    "SEQ004": _counted("seq_empty"), "SEQ005": _counted("seq_headings"), "SEQ006": _owner_order,
    "PIC001": _counted("pic_stuck"),
    "PIC002": _counted("pic_waiting_delete"), "PIC003": _broken, "PIC004": _counted("pic_unsequenced"),
    "JOB001": _counted("job_orphan"), "UPL001": _counted("upload_undispatched"),
    "UPL002": _counted("upload_files_lost"), "MAP001": _map,
    "DB001": _rows("db_invalid_indexes", lambda r: True, lambda r: str(r[0])),
    "DB002": _schema,
    "DB003": _rows("db_xid_age", lambda r: int(r[1]) > XID_WARNING, lambda r: str(r[0])),  # XID_WARNING: at run time
    "DB004": _rows("db_idle_in_transaction", lambda r: True, lambda r: str(r[0])),
    "ACC001": _default_account, "ACC002": _default_account, "STO001": _location, "STO002": _writable,
}  # fmt: skip
SEQUENCE_SCOPED = ("SEQ", "PIC001", "PIC002", "PIC003")  # what --sequence narrows; the other checks do not apply


def run(
    conn: psycopg.Connection,
    options: Options,
    jit_report: Callable[[], Any] | None = None,
    progress: Callable[[str], None] = lambda _code: None,
) -> DoctorReport:
    """Every wanted check, each in its own read-only transaction bounded by ``options.statement_timeout_s``.
    ``conn``: an autocommit, read-only session. ``jit_report``: how to measure JIT (DB005), None to skip."""
    detected = kind.detect(conn)
    report = DoctorReport(detected.kind.value)
    for check in CHECKS:
        if not options.wanted(check.code):
            continue
        progress(check.code)
        if options.deadline_at is not None and time.monotonic() > options.deadline_at:
            report.findings.append(Finding(check.code, check.severity, check.title, "failed",
                                           detail="not run: the read deadline passed (OPS_READ_DEADLINE)"))  # fmt: skip
            continue
        report.findings += _one(conn, options, check, detected.panoramax, jit_report)
    return report


def _not_applicable(check: CheckDef, why: str) -> list[Finding]:
    return [Finding(check.code, check.severity, check.title, "not applicable", detail=why, hint=check.hint)]


def _one(conn: psycopg.Connection, options: Options, check: CheckDef, panoramax: bool,
         jit_report: Callable[[], Any] | None) -> list[Finding]:  # fmt: skip
    if options.seq_ids is not None and not check.code.startswith(SEQUENCE_SCOPED):
        return _not_applicable(check, "about the whole instance: not narrowed by --sequence")
    try:
        lacking = capabilities.missing(conn, check.needs) if check.needs.columns or check.needs.functions else []
    except psycopg.Error as e:
        return [Finding(check.code, check.severity, check.title, "failed", detail=_reason(conn, e))]
    if lacking:
        return _not_applicable(check, f"this database has no {', '.join(lacking)}")
    if check.code.startswith("STO") and options.storage is None:
        return _not_applicable(check, "the storage is checked with --storage")
    if check.code == "DB005":
        if not panoramax or jit_report is None:
            return _not_applicable(check, "Panoramax's API sessions only (ops's run without JIT)")
        return _jit(check, jit_report)
    started = time.monotonic()
    try:
        with conn.transaction():
            _bound(conn, options)
            found = RUNNERS[check.code](conn, options, check)
    except (psycopg.Error, OpsError) as e:
        return [Finding(check.code, check.severity, check.title, "failed", detail=_reason(conn, e))]
    for f in found:
        f.duration_s = round(time.monotonic() - started, 3)
    return found


WORK_MEM = "64MB"  # per sort or hash of a check: the joins of pictures and ranks spill to disk under the 4MB default


def _bound(conn: psycopg.Connection, options: Options) -> None:
    """This transaction's statements end within the check's time (a timeout is that check's failure), and sort
    in memory (this transaction only: no server setting is changed)."""
    conn.execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('work_mem', %s, true)",
        (f"{round(options.statement_timeout_s * 1000)}ms", WORK_MEM),
    )


def _jit(check: CheckDef, jit_report: Callable[[], Any]) -> list[Finding]:
    try:
        report = jit_report()
    except (psycopg.Error, OpsError) as e:
        return [Finding(check.code, check.severity, check.title, "failed", detail=" ".join(str(e).split()))]
    if report is None:
        return _not_applicable(check, "no compute_sequence_geom in this database")
    timing = (f"{report.ms_per_call_with_jit} ms per call with JIT, {report.ms_per_call_without_jit} ms without"
              if report.ms_per_call_with_jit is not None else "jit = " + ("on" if report.server_jit else "off"))  # fmt: skip
    finding = _finding(check, 1 if report.costly else 0, [], f"{report.function}(): {timing}")
    finding.fix = f"{report.fix}  (or raise jit_above_cost; ops changes no server setting)" if report.costly else ""
    return [finding]


def _reason(conn: psycopg.Connection, error: Exception) -> str:
    if isinstance(error, psycopg.Error):
        explained = db.explain(conn, error, "ops doctor")
        if explained is not None:
            return str(explained)
    return " ".join(str(error).split())


# --- --fix ---------------------------------------------------------------------------------------------


@dataclass
class FixPlan:
    reorder: list[UUID] = field(default_factory=list)
    headings: list[UUID] = field(default_factory=list)
    retry_jobs: list[UUID] = field(default_factory=list)
    refresh: bool = False

    @property
    def empty(self) -> bool:
        return not (self.reorder or self.headings or self.retry_jobs or self.refresh)

    def as_dict(self) -> dict[str, Any]:
        return {"reorder": [str(i) for i in self.reorder], "headings": [str(i) for i in self.headings],
                "retry_jobs": [str(i) for i in self.retry_jobs], "refresh": self.refresh}  # fmt: skip


def fix_plan(conn: psycopg.Connection, report: DoctorReport, options: Options) -> FixPlan:
    """The ids every fixable finding covers (all of them, not the first ones: read again, id column only)."""
    plan = FixPlan()
    found = {f.code for f in report.findings if f.state == "found" and f.fixable}
    for code, target in (("SEQ001", plan.reorder), ("SEQ002", plan.reorder), ("SEQ003", plan.reorder),
                         ("SEQ005", plan.headings)):  # fmt: skip
        if code in found:
            target += _all_ids(conn, code, options)
    plan.reorder = sorted(set(plan.reorder))
    if "PIC003" in found:
        plan.retry_jobs = sorted(set(_all_ids(conn, "PIC003", options)))
    plan.refresh = "MAP001" in found
    return plan


def _all_ids(conn: psycopg.Connection, code: str, options: Options) -> list[UUID]:
    """Every id a finding covers: its statement with no limit on the ids shown."""
    params = {**_params(options), "shown": None}
    with conn.transaction():
        _bound(conn, options)
        if code == "PIC003":
            rows = conn.execute(queries.statement(FILE, "pic_broken"), params).fetchall()
            return [i for _reason, _n, job_ids in rows for i in (job_ids or [])]
        statement = {"SEQ001": "seq_geometry", "SEQ002": "seq_fields", "SEQ003": "seq_ranks", "SEQ005": "seq_headings"}
        ids = db.one(conn, queries.statement(FILE, statement[code]), params)[1]
    return list(ids or [])
