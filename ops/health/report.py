"""What ``ops health`` reports: each check's state (in Nagios' order), the report, every series of the
node_exporter families (``FAMILIES``), and the thresholds it judges by."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ops import settings
from ops.durations import parse_duration
from ops.settings import global_settings
from ops.storage import KINDS
from ops.tasks import TASKS


class Status(StrEnum):
    """A check's state and the report's, in Nagios' order: the exit code is the index."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def exit_code(self) -> int:
        return list(Status).index(self)


STATES = tuple(Status)
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


def _seconds(setting: settings.Setting) -> float:
    return parse_duration(setting.default).total_seconds()


@dataclass(frozen=True)
class Thresholds:
    queue_warning: int = settings.QUEUE_WARNING.default
    queue_critical: int = settings.QUEUE_CRITICAL.default
    age_warning_s: float = _seconds(settings.AGE_WARNING)
    age_critical_s: float = _seconds(settings.AGE_CRITICAL)
    failures_warning: int = settings.FAILURES_WARNING.default
    failures_critical: int = settings.FAILURES_CRITICAL.default
    refresh_grace_s: float = _seconds(settings.REFRESH_GRACE)  # a refresh overdue by more than this is a warning
    refresh_critical_s: float = _seconds(settings.REFRESH_CRITICAL)
    refresh_cron: str = settings.REFRESH_CRON.default
    timeout_s: float = settings.HEALTH_TIMEOUT.default
    lock_timeout_s: float = global_settings()["read_lock_timeout"].default

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
    state: Status
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
                    self.checks[missing[0]] = Check(missing[0], Status.CRITICAL,
                                                    f"no answer within {timeout_s:g} s ({doing or 'starting'})",
                                                    ran=False)  # fmt: skip
                    for name in missing[1:]:
                        self.checks[name] = Check(name, Status.UNKNOWN, f"not checked: {missing[0]} did not answer in time",
                                                  ran=False)  # fmt: skip
            for name in CHECKS:
                self.checks.setdefault(name, Check(name, Status.UNKNOWN, "not checked", ran=False))
            self.checks = {name: self.checks[name] for name in CHECKS}
            # whether each part answered is known even when it did not answer in time
            self.values.setdefault(("ops_database_up", None), float(self.checks["database"].state == Status.OK))
            for kind in KINDS:
                if self.checks[f"storage_{kind}"].state == Status.CRITICAL:
                    self.values.setdefault(("ops_storage_up", kind), 0.0)

    @property
    def state(self) -> Status:
        """CRITICAL when any check is; else UNKNOWN when any check could not run (never OK unchecked); else
        the worst of OK and WARNING."""
        found = {c.state for c in self.checks.values()}
        for state in (Status.CRITICAL, Status.UNKNOWN, Status.WARNING):
            if state in found:
                return state
        return Status.OK

    @property
    def exit_code(self) -> int:
        return self.state.exit_code

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "duration_s": round(self.duration_s, 3),
            "checks": [
                {"name": c.name, "state": str(c.state), "message": c.message, "value": c.value}
                for c in self.checks.values()
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
            out["ops_check_status"][check.name] = float(Status(check.state).exit_code)
        out["ops_storage_configured"][None] = float(self.storage_configured)
        out["ops_health_status"][None] = float(self.exit_code)
        out["ops_health_duration_seconds"][None] = round(self.duration_s, 3)
        out["ops_health_last_run_timestamp_seconds"][None] = round(self.finished_at, 3)
        return out
