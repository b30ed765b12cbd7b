"""``ops health``: one read-only pass over what a monitoring system watches, with the exit codes of a
Nagios-style check (0 ok, 1 warning, 2 critical) and the node_exporter textfile format for Prometheus.

Checks: the database answers; its schema is what the commands need (the guard's answer); the queue's depth
and the age of its oldest ready job; jobs failed in the last 24 h; the last refresh against the refresh
cron; each storage area answers one listing call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from ops import db, job_admin, jobs, refresh
from ops.errors import OpsError
from ops.schema import status
from ops.storage import Storage

STATES = ("ok", "warning", "critical")


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


@dataclass
class Check:
    name: str
    state: str
    message: str
    value: float | None = None


@dataclass
class Metric:
    name: str
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class HealthReport:
    checks: list[Check] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)

    @property
    def state(self) -> str:
        return STATES[max((STATES.index(c.state) for c in self.checks), default=0)]

    @property
    def exit_code(self) -> int:
        return STATES.index(self.state)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "checks": [asdict(c) for c in self.checks]}

    def prometheus(self) -> str:
        """The node_exporter textfile format: every metric a gauge, with its HELP and TYPE once."""
        lines: list[str] = []
        seen: set[str] = set()
        metrics = [*self.metrics, Metric("ops_health_status", "0 ok, 1 warning, 2 critical", self.exit_code)]
        first = {m.name: i for i, m in reversed(list(enumerate(metrics)))}
        for m in sorted(metrics, key=lambda m: first[m.name]):  # a family's samples together, as the format wants
            if m.name not in seen:
                lines += [f"# HELP {m.name} {m.help}", f"# TYPE {m.name} gauge"]
                seen.add(m.name)
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(m.labels.items()))
            value = "NaN" if math.isnan(m.value) else repr(float(m.value))
            lines.append(f"{m.name}{{{labels}}} {value}" if labels else f"{m.name} {value}")
        return "\n".join(lines) + "\n"


def _level(value: float, warning: float, critical: float) -> str:
    return "critical" if value >= critical else "warning" if value >= warning else "ok"


def _database(report: HealthReport, conn: psycopg.Connection, limits: Thresholds) -> None:
    try:
        status.ensure_schema_current(conn)
        report.checks.append(Check("schema", "ok", "what the commands need is there"))
        report.metrics.append(Metric("ops_schema_ready", "1 when every command finds the schema it needs", 1))
    except OpsError as e:
        report.checks.append(Check("schema", "critical", str(e)))
        report.metrics.append(Metric("ops_schema_ready", "1 when every command finds the schema it needs", 0))
        return
    queue = job_admin.summary(conn, all_failures=False)
    for t in queue.tasks:
        labels = {"task": t.task}
        report.metrics += [
            Metric("ops_jobs_queued", "jobs ready to run", t.queued, labels),
            Metric("ops_jobs_waiting_retry", "jobs waiting for their next attempt", t.waiting_retry, labels),
            Metric("ops_jobs_processing", "jobs a worker holds", t.processing, labels),
            Metric("ops_jobs_failed_24h", "jobs given up in the last 24 h", t.failed_24h, labels),
        ]
    age = queue.oldest_ready_age_s or 0.0
    report.metrics.append(Metric("ops_jobs_oldest_ready_age_seconds", "age of the oldest ready job", age))
    report.checks += [
        Check("queue", _level(queue.queued, limits.queue_warning, limits.queue_critical),
              f"{queue.queued} jobs ready", queue.queued),
        Check("oldest job", _level(age, limits.age_warning_s, limits.age_critical_s),
              f"oldest ready job waits for {age:.0f} s", age),
        Check("failures", _level(queue.failed_24h, limits.failures_warning, limits.failures_critical),
              f"{queue.failed_24h} jobs failed in the last 24 h", queue.failed_24h),
    ]  # fmt: skip
    now: datetime = db.scalar(conn, "SELECT now()")
    last = refresh.last_refresh(conn)
    if last is None:
        report.checks.append(Check("refresh", "warning", "never refreshed"))
        report.metrics.append(Metric("ops_refresh_age_seconds", "time since the last refresh", float("nan")))
        return
    age_s = (now - last).total_seconds()
    overdue = (now - jobs.next_refresh(limits.refresh_cron, last, now)).total_seconds()
    state = _level(overdue, limits.refresh_grace_s, limits.refresh_critical_s) if overdue > 0 else "ok"
    report.checks.append(Check("refresh", state, f"last refresh {age_s:.0f} s ago (cron {limits.refresh_cron})", age_s))
    report.metrics.append(Metric("ops_refresh_age_seconds", "time since the last refresh", age_s))


def _storage(report: HealthReport, storage: Storage) -> None:
    for kind, area in storage.areas.items():
        started = time.monotonic()
        try:
            area.check()
            next(iter(area.list_files()), None)  # one listing call
            ok = True
            message = f"{area.describe()} answers ({(time.monotonic() - started) * 1000:.0f} ms)"
        except OpsError as e:
            ok, message = False, str(e)
        report.checks.append(Check(f"storage {kind}", "ok" if ok else "critical", message))
        report.metrics.append(Metric("ops_storage_up", "1 when the storage area answers", int(ok), {"area": kind}))


def run(
    connect: Callable[[], psycopg.Connection], storage: Callable[[], Storage] | None, limits: Thresholds
) -> HealthReport:
    """Every check, read-only. ``storage`` None: no storage configured (not checked)."""
    report = HealthReport()
    started = time.monotonic()
    try:
        conn = connect()
    except OpsError as e:
        report.checks.append(Check("database", "critical", str(e)))
        report.metrics.append(Metric("ops_database_up", "1 when the database answers", 0))
    else:
        with conn:
            conn.read_only = True
            elapsed = (time.monotonic() - started) * 1000
            report.checks.append(Check("database", "ok", f"answers ({elapsed:.0f} ms)", elapsed))
            report.metrics.append(Metric("ops_database_up", "1 when the database answers", 1))
            _database(report, conn, limits)
    if storage is None:
        report.checks.append(Check("storage", "ok", "not configured: not checked"))
    else:
        try:
            _storage(report, storage())
        except OpsError as e:
            report.checks.append(Check("storage", "critical", str(e)))
    return report
