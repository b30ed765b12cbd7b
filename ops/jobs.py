"""What operators see and do with the job queue (``ops jobs``): counts per task and state, the jobs one by
one, failed jobs sent back to the queue, finished history pruned. Works on both kinds of database, with
every task of Panoramax's queue (prepare, delete, dispatch, finalize, read_metadata, transfer)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ops import db, queries
from ops.report import Log, silent

EPOCH = datetime(1970, 1, 1).astimezone()


def _start(conn: psycopg.Connection, since: timedelta | None) -> datetime:
    """The start of the period ``since`` by the database's clock (the beginning of time when None)."""
    return db.scalar(conn, "SELECT now() - %s::interval", (since,)) if since else EPOCH


@dataclass
class TaskCounts:
    task: str
    queued: int = 0
    waiting_retry: int = 0
    next_retry_at: datetime | None = None
    processing: int = 0
    oldest_ready_age_s: float | None = None
    failed_24h: int = 0
    failed: int = 0


@dataclass
class QueueSummary:
    tasks: list[TaskCounts] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return sum(t.queued for t in self.tasks)

    @property
    def failed_24h(self) -> int:
        return sum(t.failed_24h for t in self.tasks)

    @property
    def oldest_ready_age_s(self) -> float | None:
        ages = [t.oldest_ready_age_s for t in self.tasks if t.oldest_ready_age_s is not None]
        return max(ages) if ages else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tasks": [asdict(t) for t in self.tasks],
            "queued": self.queued,
            "failed_24h": self.failed_24h,
            "oldest_ready_age_s": self.oldest_ready_age_s,
        }


def summary(conn: psycopg.Connection, *, all_failures: bool = True) -> QueueSummary:
    """Counts per task: queued (ready now), waiting for a retry, being processed, failed in the last 24 h and
    (``all_failures``) in all. Read-only and lock-free."""
    counts: dict[str, TaskCounts] = {}
    for task, queued, waiting, next_at, processing, age in conn.execute(queries.statement("jobs_view", "summary")):
        counts[task] = TaskCounts(task, queued, waiting, next_at, processing, age)
    recent = conn.execute(
        queries.statement("jobs_view", "failures"), {"since": db.scalar(conn, "SELECT now() - interval '24 hours'")}
    )
    for task, n in recent.fetchall():
        counts.setdefault(task, TaskCounts(task)).failed_24h = n
    if all_failures:
        for task, n in conn.execute(queries.statement("jobs_view", "failures"), {"since": EPOCH}).fetchall():
            counts.setdefault(task, TaskCounts(task)).failed = n
    return QueueSummary(sorted(counts.values(), key=lambda t: t.task))


@dataclass(frozen=True)
class JobLine:
    id: UUID
    task: str
    target_kind: str
    target: UUID
    attempts_failed: int
    last_error: str | None
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "id": str(self.id), "target": str(self.target), "at": self.at.isoformat()}

    @property
    def error_line(self) -> str:
        return (self.last_error or "").strip().splitlines()[0] if self.last_error and self.last_error.strip() else ""


@dataclass
class JobList:
    jobs: list[JobLine]
    total: int  # how many match, the limit aside

    @property
    def more(self) -> int:
        return self.total - len(self.jobs)

    def as_dict(self) -> dict[str, Any]:
        return {"jobs": [j.as_dict() for j in self.jobs], "total": self.total, "more": self.more}


def list_jobs(
    conn: psycopg.Connection, *, task: str | None, failed: bool, since: timedelta | None, limit: int | None
) -> JobList:
    """Queued jobs (oldest first), or with ``failed`` the jobs that failed and left the queue (newest first);
    at most ``limit`` (None: all), and how many there are in all."""
    start = _start(conn, since)
    name = "list_failed" if failed else "list_queued"
    rows = conn.execute(queries.statement("jobs_view", name), {"task": task, "since": start, "limit": limit})
    found = rows.fetchall()
    return JobList([JobLine(*row[:-1]) for row in found], int(found[0][-1]) if found else 0)


@dataclass
class RetryResult:
    dry_run: bool
    requeued: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # job id -> why

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def skipped_by_reason(self) -> dict[str, list[str]]:
        """The skipped jobs grouped by why, most frequent reason first."""
        groups: dict[str, list[str]] = {}
        for job, why in self.skipped.items():
            groups.setdefault(why, []).append(job)
        return dict(sorted(groups.items(), key=lambda item: -len(item[1])))


# pg_advisory_xact_lock key that serialises retries: b"opsretry" as an integer.
RETRY_LOCK_KEY = int.from_bytes(b"opsretry", "big")


def retry(
    conn: psycopg.Connection,
    ids: list[UUID],
    *,
    all_failed: bool = False,
    task: str | None = None,
    since: timedelta | None = None,
    dry_run: bool = False,
) -> RetryResult:
    """Put failed jobs back in the queue (under their own id, so their history goes on), once per target,
    where it still makes sense; each skipped job with the reason. The decision and the insert are one
    statement, and retries run one at a time: two retries, or a retry and a worker, never make a job that
    has since succeeded run again. A dry run only reads."""
    result = RetryResult(dry_run)
    params = {"ids": ids, "all_failed": all_failed, "task": task, "since": _start(conn, since)}
    judge = queries.statement("jobs_view", "retry_candidates")
    if dry_run:
        rows = [(r[0], r[7], r[7] is None) for r in conn.execute(judge, params).fetchall()]
    else:
        requeue = sql.SQL(queries.statement("jobs_view", "requeue_judged")).format(judged=sql.SQL(judge))
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (RETRY_LOCK_KEY,))
            rows = conn.execute(requeue, params).fetchall()
    found = {r[0] for r in rows}
    result.skipped = {str(job_id): "no such job in the history" for job_id in ids if job_id not in found}
    for job_id, reason, queued in rows:
        if queued:
            result.requeued.append(str(job_id))
        else:
            result.skipped[str(job_id)] = reason or "another job of its target is queued"
    return result


@dataclass
class PruneResult:
    dry_run: bool
    history_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune(
    conn: psycopg.Connection,
    older_than: timedelta,
    *,
    include_failures: bool = False,
    dry_run: bool = False,
    batch_size: int = 10_000,
    log: Log = silent,
) -> PruneResult:
    """Delete finished history older than ``older_than``, a batch per transaction; failures stay unless
    ``include_failures``; the history of jobs still queued always stays."""
    params = {
        "before": db.scalar(conn, "SELECT now() - %s::interval", (older_than,)),
        "include_failures": include_failures,
        "batch_size": batch_size,
    }
    if dry_run:
        return PruneResult(True, int(db.scalar(conn, queries.statement("jobs_view", "prunable"), params)))
    result = PruneResult(False)
    while True:
        with conn.transaction():
            deleted = conn.execute(queries.statement("jobs_view", "prune_batch"), params).rowcount
        if not deleted:
            return result
        result.history_rows += deleted
        log(f"pruned {result.history_rows} history rows so far")
