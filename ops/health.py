"""``ops health``: one read-only pass over what a monitoring system watches, bounded in time, with the exit
codes and first line of a Nagios plugin (0 ok, 1 warning, 2 critical) and the node_exporter textfile format.
(Long because the checks and the runner that bounds them are one piece: a check added here gets its series
in the same place.)

Checks: the database answers; its schema is what the commands need (the guard's answer); the queue's depth,
the age of its oldest ready job, jobs failed in the last 24 h; the last refresh against the refresh cron;
each storage area exists and answers one listing call, and the originals' area is not empty while the
database has ready pictures (a volume that did not mount).

Never a hang, never an absence: the database checks and the storage checks run in two threads, each
database statement is bounded by the session's ``statement_timeout`` and ``lock_timeout``, and whatever has
not answered when ``timeout_s`` is up is reported CRITICAL (the check that was running) or UNKNOWN (those it
kept from running). Every Prometheus series is printed in every case (0 where unknown), with
``ops_check_up`` saying which checks got their reading.

The report is data (its checks, every series of ``FAMILIES``); ``ops.cli.health`` renders it for Nagios and
for node_exporter (``ops.cli.prometheus``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ops import db, job_admin, jobs, queries, refresh
from ops.durations import describe
from ops.errors import OpsError
from ops.schema import status
from ops.storage import KINDS, Storage
from ops.tasks import TASKS

STATES = ("ok", "warning", "critical", "unknown")  # Nagios' order: the exit code is the index
DATABASE_CHECKS = ("database", "schema", "queue", "oldest_job", "failures", "refresh")
STORAGE_CHECKS = tuple(f"storage_{kind}" for kind in KINDS)
CHECKS = DATABASE_CHECKS + STORAGE_CHECKS

FAMILIES: dict[str, tuple[str, str | None]] = {  # name: (help, label)
    "ops_database_up": ("1 when the database answers", None),
    "ops_schema_ready": ("1 when every command finds the schema it needs", None),
    "ops_jobs_queued": ("jobs ready to run", "task"),
    "ops_jobs_waiting_retry": ("jobs waiting for their next attempt", "task"),
    "ops_jobs_processing": ("jobs a worker holds", "task"),
    "ops_jobs_failed_24h": ("jobs given up in the last 24 h", "task"),
    "ops_jobs_oldest_ready_age_seconds": ("age of the oldest ready job (0: none ready)", None),
    "ops_refresh_age_seconds": ("time since the last refresh (+Inf: never refreshed)", None),
    "ops_storage_configured": ("1 when a storage is configured (FS_URL or FS_*_URL)", None),
    "ops_storage_up": ("1 when the storage area exists and answers", "area"),
    "ops_check_up": ("1 when the check got its reading (0: failed, timed out or not run)", "check"),
    "ops_check_status": ("0 ok, 1 warning, 2 critical, 3 unknown (not checked)", "check"),
    "ops_health_status": ("0 ok, 1 warning, 2 critical, 3 unknown", None),
    "ops_health_duration_seconds": ("how long the health check took", None),
    "ops_health_last_run_timestamp_seconds": (
        "when ops health ran (Unix time): a stale file is a stopped monitor",
        None,
    ),
}
LABEL_VALUES = {"task": TASKS, "area": KINDS, "check": CHECKS}


@dataclass(frozen=True)
class Thresholds:
    queue_warning: int = 1_000
    queue_critical: int = 10_000
    age_warning_s: float = 3600
    age_critical_s: float = 6 * 3600
    failures_warning: int = 1
    failures_critical: int = 100
    refresh_grace_s: float = 3600  # a refresh overdue by more than this is a warning
    refresh_critical_s: float = 86400
    refresh_cron: str = jobs.DEFAULT_REFRESH_CRON
    timeout_s: float = 10.0
    lock_timeout_s: float = 5.0

    def contradictions(self) -> list[str]:
        """Each pair whose warning threshold is above its critical one."""
        pairs = (("--queue-warning", self.queue_warning, "--queue-critical", self.queue_critical),
                 ("--age-warning", self.age_warning_s, "--age-critical", self.age_critical_s),
                 ("--failures-warning", self.failures_warning, "--failures-critical", self.failures_critical),
                 ("--refresh-grace", self.refresh_grace_s, "--refresh-critical", self.refresh_critical_s))  # fmt: skip
        return [f"{w} ({wv:g}) is above {c} ({cv:g})" for w, wv, c, cv in pairs if wv > cv]


@dataclass
class Check:
    name: str
    state: str
    message: str
    value: float | None = None  # the reading (None: not read)
    unit: str = ""  # of the value in the Nagios performance data: "", "s", "ms"
    warning: float | None = None
    critical: float | None = None
    ran: bool = True  # False: the check could not give its verdict (an error, a timeout, not run)


@dataclass
class HealthReport:
    checks: dict[str, Check] = field(default_factory=dict)
    values: dict[tuple[str, str | None], float] = field(default_factory=dict)  # (family, label value)
    storage_configured: bool = False
    has_ready_pictures: bool | None = None
    duration_s: float = 0.0
    finished_at: float = field(default_factory=time.time)  # Unix time, set when the report closes
    running: dict[str, str] = field(default_factory=dict)  # thread -> what it is doing now
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- written by the checking threads -------------------------------------------------------------
    def add(self, check: Check, **metrics: float) -> None:
        """A check's outcome and its series (``name=value`` or ``name__label=value``)."""
        with self.lock:
            if self.closed:  # came after the deadline: the answer was given without it
                return
            self.checks[check.name] = check
            for key, value in metrics.items():
                name, _, label = key.partition("__")
                self.values[(name, label or None)] = float(value)

    def doing(self, thread: str, what: str) -> None:
        with self.lock:
            self.running[thread] = what

    # --- read by the caller --------------------------------------------------------------------------
    def close(self, timeout_s: float, unfinished: list[str]) -> None:
        """Stop taking answers; what did not answer in time becomes CRITICAL (the check that was running
        in each unfinished thread) or UNKNOWN (the checks it kept from running)."""
        with self.lock:
            self.closed = True
            self.finished_at = time.time()
            for thread in unfinished:
                doing = self.running.get(thread, "")
                names = DATABASE_CHECKS if thread == "database" else STORAGE_CHECKS
                missing = [n for n in names if n not in self.checks]
                if missing:
                    self.checks[missing[0]] = Check(missing[0], "critical",
                                                    f"no answer within {timeout_s:g} s ({doing or 'starting'})",
                                                    ran=False)  # fmt: skip
                    for name in missing[1:]:
                        self.checks[name] = Check(name, "unknown", f"not checked: {missing[0]} did not answer in time",
                                                  ran=False)  # fmt: skip
            for name in CHECKS:
                self.checks.setdefault(name, Check(name, "unknown", "not checked", ran=False))
            self.checks = {name: self.checks[name] for name in CHECKS}
            # whether each part answered is known even when it did not answer in time
            self.values.setdefault(("ops_database_up", None), float(self.checks["database"].state == "ok"))
            for kind in KINDS:
                if self.checks[f"storage_{kind}"].state == "critical":
                    self.values.setdefault(("ops_storage_up", kind), 0.0)

    @property
    def state(self) -> str:
        """CRITICAL when any check is; else UNKNOWN when any check could not run (never OK unchecked); else
        the worst of OK and WARNING."""
        found = {c.state for c in self.checks.values()}
        for state in ("critical", "unknown", "warning"):
            if state in found:
                return state
        return "ok"

    @property
    def exit_code(self) -> int:
        return STATES.index(self.state)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "duration_s": round(self.duration_s, 3),
            "checks": [
                {"name": c.name, "state": c.state, "message": c.message, "value": c.value} for c in self.checks.values()
            ],
        }

    def series(self) -> dict[str, dict[str | None, float]]:
        """Every series of every family; NaN where nothing was read (a database that did not answer has no
        queue age, no refresh age, no schema state: never a reassuring 0 that no alert fires on)."""
        out: dict[str, dict[str | None, float]] = {}
        for name, (_help, label) in FAMILIES.items():
            keys: tuple[str | None, ...] = LABEL_VALUES[label] if label else (None,)
            out[name] = {key: self.values.get((name, key), math.nan) for key in keys}
        for check in self.checks.values():
            out["ops_check_up"][check.name] = float(check.ran)
            out["ops_check_status"][check.name] = float(STATES.index(check.state))
        out["ops_storage_configured"][None] = float(self.storage_configured)
        out["ops_health_status"][None] = float(self.exit_code)
        out["ops_health_duration_seconds"][None] = round(self.duration_s, 3)
        out["ops_health_last_run_timestamp_seconds"][None] = round(self.finished_at, 3)
        return out


def _level(value: float, warning: float, critical: float) -> str:
    return "critical" if value >= critical else "warning" if value >= warning else "ok"


def _message(conn: psycopg.Connection | None, error: Exception, what: str) -> str:
    if isinstance(error, psycopg.Error) and conn is not None:
        explained = db.explain(conn, error, what)
        if explained is not None:
            return str(explained)
    if isinstance(error, OpsError):
        return str(error)
    return f"{what}: {type(error).__name__}: {' '.join(str(error).split())}"


# --- the database thread ------------------------------------------------------------------------------

Connect = Callable[[dict[str, str | int], float], psycopg.Connection]


def _guarded(checks: tuple[str, ...], run: Callable[..., None]) -> Callable[..., None]:
    """A checking thread whose unexpected failure is its running check's CRITICAL, never silence."""

    def guarded(report: HealthReport, *args: Any) -> None:
        try:
            run(report, *args)
        except (OpsError, psycopg.Error, OSError, ValueError, ArithmeticError, LookupError, TypeError) as e:
            # a check that fails for any reason says so (an unexpected one: its type names it)
            missing = [n for n in checks if n not in report.checks]
            if missing:
                report.add(Check(missing[0], "critical", f"the check failed: {type(e).__name__}: {e}", ran=False))
                for name in missing[1:]:
                    report.add(Check(name, "unknown", f"not checked: {missing[0]} failed", ran=False))

    return guarded


def _database_checks(report: HealthReport, connect: Connect, limits: Thresholds, deadline: float) -> None:
    report.doing("database", "connecting")
    started = time.monotonic()
    remaining = max(0.1, deadline - started)
    try:
        conn = connect(db.read_only_settings(min(limits.lock_timeout_s, remaining), remaining), remaining)
    except OpsError as e:
        report.add(Check("database", "critical", str(e)), ops_database_up=0)
        for name in DATABASE_CHECKS[1:]:
            report.add(Check(name, "unknown", "not checked: the database does not answer", ran=False))
        return
    with conn:
        elapsed_ms = (time.monotonic() - started) * 1000
        report.add(Check("database", "ok", f"answers ({elapsed_ms:.0f} ms)", elapsed_ms, "ms"), ops_database_up=1)
        report.doing("database", "reading the schema")
        try:
            status.ensure_schema_current(conn)
        except OpsError as e:
            report.add(Check("schema", "critical", str(e)), ops_schema_ready=0)
            for name in DATABASE_CHECKS[2:]:
                report.add(Check(name, "unknown", "not checked: the schema is not ready", ran=False))
            return
        except psycopg.Error as e:
            report.add(Check("schema", "critical", _message(conn, e, "schema check"), ran=False), ops_schema_ready=0)
            for name in DATABASE_CHECKS[2:]:
                report.add(Check(name, "unknown", "not checked: the schema could not be read", ran=False))
            return
        report.add(Check("schema", "ok", "what the commands need is there", 1.0), ops_schema_ready=1)
        _queue_checks(report, conn, limits)
        _refresh_check(report, conn, limits)
        try:
            report.has_ready_pictures = bool(
                db.scalar(conn, queries.statement("storage_check", "ready_pictures_exist"))
            )
        except psycopg.Error:
            report.has_ready_pictures = None


def _queue_checks(report: HealthReport, conn: psycopg.Connection, limits: Thresholds) -> None:
    report.doing("database", "reading the job queue")
    try:
        queue = job_admin.summary(conn, all_failures=False)
    except psycopg.Error as e:
        report.add(Check("queue", "critical", _message(conn, e, "queue check"), ran=False))
        for name in ("oldest_job", "failures"):
            report.add(Check(name, "unknown", "not checked: the queue could not be read", ran=False))
        return
    per_task: dict[str, float] = {f"{family}__{task}": 0 for task in TASKS for family in (
        "ops_jobs_queued", "ops_jobs_waiting_retry", "ops_jobs_processing", "ops_jobs_failed_24h")}  # fmt: skip
    for t in queue.tasks:
        per_task |= {f"ops_jobs_queued__{t.task}": t.queued, f"ops_jobs_waiting_retry__{t.task}": t.waiting_retry,
                     f"ops_jobs_processing__{t.task}": t.processing, f"ops_jobs_failed_24h__{t.task}": t.failed_24h}  # fmt: skip
    report.add(Check("queue", _level(queue.queued, limits.queue_warning, limits.queue_critical),
                     f"{queue.queued} jobs ready", queue.queued, "", limits.queue_warning, limits.queue_critical),
               **per_task)  # fmt: skip
    age = queue.oldest_ready_age_s
    if age is None:
        report.add(Check("oldest_job", "ok", "no job ready", 0.0, "s", limits.age_warning_s, limits.age_critical_s),
                   ops_jobs_oldest_ready_age_seconds=0)  # fmt: skip
    else:
        report.add(Check("oldest_job", _level(age, limits.age_warning_s, limits.age_critical_s),
                         f"oldest ready job waits for {describe(age)}", age, "s", limits.age_warning_s,
                         limits.age_critical_s), ops_jobs_oldest_ready_age_seconds=age)  # fmt: skip
    failed = queue.failed_24h
    report.add(Check("failures", _level(failed, limits.failures_warning, limits.failures_critical),
                     f"{failed} jobs failed in the last 24 h", failed, "", limits.failures_warning,
                     limits.failures_critical))  # fmt: skip


def _refresh_check(report: HealthReport, conn: psycopg.Connection, limits: Thresholds) -> None:
    report.doing("database", "reading the last refresh")
    try:
        now = db.scalar(conn, "SELECT now()")
        last = refresh.last_refresh(conn)
    except psycopg.Error as e:
        report.add(Check("refresh", "critical", _message(conn, e, "refresh check"), ran=False))
        return
    if last is None:
        report.add(Check("refresh", "warning", f"never refreshed (cron {limits.refresh_cron})", math.inf, "s"),
                   ops_refresh_age_seconds=math.inf)  # fmt: skip
        return
    age_s = (now - last).total_seconds()
    overdue = (now - jobs.next_refresh(limits.refresh_cron, last, now)).total_seconds()
    state = _level(overdue, limits.refresh_grace_s, limits.refresh_critical_s) if overdue > 0 else "ok"
    late = f", overdue by {describe(overdue)}" if overdue > 0 else ""
    report.add(Check("refresh", state, f"last refresh {describe(age_s)} ago (cron {limits.refresh_cron}{late})",
                     age_s, "s"), ops_refresh_age_seconds=age_s)  # fmt: skip


# --- the storage thread -------------------------------------------------------------------------------


@dataclass
class AreaReading:
    kind: str
    ok: bool
    message: str
    empty: bool = False
    elapsed_ms: float = 0.0


def _storage_checks(report: HealthReport, open_storage: Callable[[], Storage], readings: list[AreaReading]) -> None:
    report.doing("storage", "opening the storage")
    try:
        storage = open_storage()
    except OpsError as e:
        readings += [AreaReading(kind, False, str(e)) for kind in KINDS]
        return
    for kind, area in storage.areas.items():
        report.doing("storage", f"listing {kind}: {area.describe()}")
        started = time.monotonic()
        try:
            area.check()
            empty = next(iter(area.list_files()), None) is None  # one listing call
            readings.append(AreaReading(kind, True, f"{area.describe()} answers", empty,
                                        (time.monotonic() - started) * 1000))  # fmt: skip
        except OpsError as e:
            readings.append(AreaReading(kind, False, str(e)))
        except OSError as e:
            readings.append(AreaReading(kind, False, f"{area.describe()}: {e.strerror or e}"))


def _judge_storage(report: HealthReport, readings: list[AreaReading]) -> None:
    """The areas' outcomes, once the database said whether ready pictures exist: an empty originals area
    beside ready pictures is the mark of a volume that did not mount."""
    for r in readings:
        name = f"storage_{r.kind}"
        if not r.ok:
            report.add(Check(name, "critical", r.message, 1.0), **{f"ops_storage_up__{r.kind}": 0})
        elif r.kind == "permanent" and r.empty and report.has_ready_pictures:
            report.add(Check(name, "critical", f"{r.message} but holds no file while the database has ready "
                             "pictures: is the volume mounted?", 1.0), **{f"ops_storage_up__{r.kind}": 0})  # fmt: skip
        else:
            empty = " (empty)" if r.empty else ""
            report.add(Check(name, "ok", f"{r.message}{empty} ({r.elapsed_ms:.0f} ms)", 1.0),
                       **{f"ops_storage_up__{r.kind}": 1})  # fmt: skip


def run(connect: Connect, open_storage: Callable[[], Storage] | None, limits: Thresholds) -> HealthReport:
    """Every check, read-only, answered within ``limits.timeout_s`` whatever fails. ``open_storage`` None:
    no storage configured (not checked)."""
    started = time.monotonic()
    deadline = started + limits.timeout_s
    report = HealthReport(storage_configured=open_storage is not None)
    readings: list[AreaReading] = []
    threads = {"database": threading.Thread(target=_guarded(DATABASE_CHECKS, _database_checks), args=(report, connect, limits, deadline),
                                            daemon=True)}  # fmt: skip
    if open_storage is not None:
        threads["storage"] = threading.Thread(target=_guarded(STORAGE_CHECKS, _storage_checks), args=(report, open_storage, readings),
                                              daemon=True)  # fmt: skip
    else:
        for kind in KINDS:
            report.add(Check(f"storage_{kind}", "ok", "no storage configured: not checked"))
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    if "storage" in threads and not threads["storage"].is_alive():
        _judge_storage(report, readings)  # has_ready_pictures stays None when the database did not tell
    report.duration_s = time.monotonic() - started
    report.close(limits.timeout_s, [name for name, t in threads.items() if t.is_alive()])
    return report
