"""``ops health``: one read-only pass over what a monitoring system watches, bounded in time, with the exit
codes and first line of a Nagios plugin (0 ok, 1 warning, 2 critical) and the node_exporter textfile format.
Checks: the database answers; its schema is what the commands need (the guard's answer); the queue's depth,
the age of its oldest ready job, jobs failed in the last 24 h; the last refresh against the refresh cron;
each storage area exists and answers one listing call, and the originals' area is not empty while the
database has ready pictures (a volume that did not mount).

Never a hang, never an absence: the database checks and the storage checks run in two threads, each
database statement is bounded by the session's ``statement_timeout`` and ``lock_timeout``, and whatever has
not answered when ``timeout_s`` is up is reported CRITICAL (the check that was running) or UNKNOWN (those it
kept from running). Every Prometheus series is printed in every case (0 where unknown), with
``ops_check_up`` saying which checks got their reading.

The report is data (``ops.health.report``: its checks, every series of ``FAMILIES``); ``ops.cli.health``
renders it for Nagios and for node_exporter (``ops.cli.prometheus``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from ops import db, jobs, queries, refresh, worker
from ops.durations import describe
from ops.errors import OpsError
from ops.health.report import (
    CHECKS,
    DATABASE_CHECKS,
    FAMILIES,
    LABEL_VALUES,
    STATES,
    STORAGE_CHECKS,
    Check,
    HealthReport,
    Status,
    Thresholds,
)
from ops.schema import status
from ops.schema.needs import Needs
from ops.storage import KINDS, Storage
from ops.tasks import TASKS

__all__ = ["CHECKS", "DATABASE_CHECKS", "FAMILIES", "LABEL_VALUES", "STATES", "STORAGE_CHECKS", "Check",
           "HealthReport", "Status", "Thresholds", "run"]  # fmt: skip


def _level(value: float, warning: float, critical: float) -> Status:
    return Status.CRITICAL if value >= critical else Status.WARNING if value >= warning else Status.OK


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
                report.add(Check(missing[0], Status.CRITICAL, f"the check failed: {type(e).__name__}: {e}", ran=False))
                for name in missing[1:]:
                    report.add(Check(name, Status.UNKNOWN, f"not checked: {missing[0]} failed", ran=False))

    return guarded


def _database_checks(report: HealthReport, connect: Connect, limits: Thresholds, deadline: float, needs: Needs) -> None:
    report.doing("database", "connecting")
    started = time.monotonic()
    remaining = max(0.1, deadline - started)
    try:
        conn = connect(db.read_only_settings(min(limits.lock_timeout_s, remaining), remaining), remaining)
    except OpsError as e:
        report.add(Check("database", Status.CRITICAL, str(e)), ops_database_up=0)
        for name in DATABASE_CHECKS[1:]:
            report.add(Check(name, Status.UNKNOWN, "not checked: the database does not answer", ran=False))
        return
    with conn:
        elapsed_ms = (time.monotonic() - started) * 1000
        report.add(Check("database", Status.OK, f"answers ({elapsed_ms:.0f} ms)", elapsed_ms, "ms"), ops_database_up=1)
        report.doing("database", "reading the schema")
        try:
            status.ensure_schema_current(conn, needs=needs)
        except OpsError as e:
            report.add(Check("schema", Status.CRITICAL, str(e)), ops_schema_ready=0)
            for name in DATABASE_CHECKS[2:]:
                report.add(Check(name, Status.UNKNOWN, "not checked: the schema is not ready", ran=False))
            return
        except psycopg.Error as e:
            report.add(
                Check("schema", Status.CRITICAL, _message(conn, e, "schema check"), ran=False), ops_schema_ready=0
            )
            for name in DATABASE_CHECKS[2:]:
                report.add(Check(name, Status.UNKNOWN, "not checked: the schema could not be read", ran=False))
            return
        report.add(Check("schema", Status.OK, "what the commands need is there", 1.0), ops_schema_ready=1)
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
        queue = jobs.summary(conn, all_failures=False)
    except psycopg.Error as e:
        report.add(Check("queue", Status.CRITICAL, _message(conn, e, "queue check"), ran=False))
        for name in ("oldest_job", "failures"):
            report.add(Check(name, Status.UNKNOWN, "not checked: the queue could not be read", ran=False))
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
        report.add(Check("oldest_job", Status.OK, "no job ready", 0.0, "s", limits.age_warning_s, limits.age_critical_s),
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
        report.add(Check("refresh", Status.CRITICAL, _message(conn, e, "refresh check"), ran=False))
        return
    if last is None:
        report.add(Check("refresh", Status.WARNING, f"never refreshed (cron {limits.refresh_cron})", math.inf, "s"),
                   ops_refresh_age_seconds=math.inf)  # fmt: skip
        return
    age_s = (now - last).total_seconds()
    overdue = (now - worker.next_refresh(limits.refresh_cron, last, now)).total_seconds()
    state = _level(overdue, limits.refresh_grace_s, limits.refresh_critical_s) if overdue > 0 else Status.OK
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
            report.add(Check(name, Status.CRITICAL, r.message, 1.0), **{f"ops_storage_up__{r.kind}": 0})
        elif r.kind == "permanent" and r.empty and report.has_ready_pictures:
            report.add(Check(name, Status.CRITICAL, f"{r.message} but holds no file while the database has ready "
                             "pictures: is the volume mounted?", 1.0), **{f"ops_storage_up__{r.kind}": 0})  # fmt: skip
        else:
            empty = " (empty)" if r.empty else ""
            report.add(Check(name, Status.OK, f"{r.message}{empty} ({r.elapsed_ms:.0f} ms)", 1.0),
                       **{f"ops_storage_up__{r.kind}": 1})  # fmt: skip


def run(connect: Connect, open_storage: Callable[[], Storage] | None, limits: Thresholds, needs: Needs) -> HealthReport:
    """Every check, read-only, answered within ``limits.timeout_s`` whatever fails. ``open_storage`` None:
    no storage configured (not checked). ``needs``: what the maintenance commands use of a Panoramax-managed
    schema (the schema check)."""
    started = time.monotonic()
    deadline = started + limits.timeout_s
    report = HealthReport(storage_configured=open_storage is not None)
    readings: list[AreaReading] = []
    threads = {"database": threading.Thread(target=_guarded(DATABASE_CHECKS, _database_checks), args=(report, connect, limits, deadline, needs),
                                            daemon=True)}  # fmt: skip
    if open_storage is not None:
        threads["storage"] = threading.Thread(target=_guarded(STORAGE_CHECKS, _storage_checks), args=(report, open_storage, readings),
                                              daemon=True)  # fmt: skip
    else:
        for kind in KINDS:
            report.add(Check(f"storage_{kind}", Status.OK, "no storage configured: not checked"))
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    if "storage" in threads and not threads["storage"].is_alive():
        _judge_storage(report, readings)  # has_ready_pictures stays None when the database did not tell
    report.duration_s = time.monotonic() - started
    report.close(limits.timeout_s, [name for name, t in threads.items() if t.is_alive()])
    return report
