"""The worker (``ops worker``): claim ``delete`` jobs in batches, delete their files, keep a history.

A ``delete`` job names a picture that is no longer in the database (``picture_to_delete_id``) and the kinds
of file to remove (``args.files``: permanent, derivates, tmp). Jobs are claimed with ``FOR UPDATE SKIP
LOCKED``, so any number of workers on any number of machines never take the same job. A failure counts in
``nb_errors`` and the job is retried later with backoff; past the retry limit it leaves the queue, its error
kept in ``job_history``. The worker also refreshes the materialized views on a cron schedule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from croniter import croniter

from ops import db, queries, refresh
from ops.errors import DatabaseUnavailable, StorageUnavailable, UsageError
from ops.report import Log, silent
from ops.settings import NB_RETRIES, REFRESH_CRON, WORKER_BATCH
from ops.storage import KINDS, DeleteResult, Storage
from ops.storage.layout import lasting
from ops.storage_check import prove_location

HAS_WARNING = (
    "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('job_history') AND attname = 'warning')"
)

IDLE_SLEEP_S = 1.0
STORAGE_PAUSE_S = 5.0
STORAGE_PAUSE_MAX_S = 300.0


@dataclass
class Job:
    id: UUID
    picture_id: UUID
    args: dict[str, Any]  # as queued: kept whole in job_history (a re-run of a cleanup reads it there)
    nb_errors: int
    picture_exists: bool
    error: str | None = None
    warning: str | None = None

    @property
    def kinds(self) -> list[str]:
        """The kinds of file to delete: ``args.files``, or every kind (Panoramax's jobs name none)."""
        files = self.args.get("files")
        return [k for k in KINDS if k in files] if files else list(KINDS)


@dataclass
class BatchResult:
    jobs: int = 0
    done: int = 0
    retried_later: int = 0
    given_up: int = 0
    files_kept_picture_in_database: int = 0
    storage_unavailable: str | None = None  # why the storage did not answer: the jobs left wait, untouched
    deletion: DeleteResult = field(default_factory=DeleteResult)
    failed_job_ids: list[UUID] = field(default_factory=list, repr=False)

    def add(self, other: BatchResult) -> None:
        self.jobs += other.jobs
        self.done += other.done
        self.retried_later += other.retried_later
        self.given_up += other.given_up
        self.files_kept_picture_in_database += other.files_kept_picture_in_database
        self.storage_unavailable = other.storage_unavailable or self.storage_unavailable
        self.deletion.add(other.deletion)

    def as_dict(self) -> dict[str, Any]:
        """The counts, and the files deleted per kind (``files_deleted``)."""
        data: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("deletion", "failed_job_ids")
        }
        data["files_deleted"] = dict(self.deletion.files)
        data["files_already_gone"] = dict(self.deletion.already_gone)
        return data


def claim(
    conn: psycopg.Connection, batch_size: int, exclude: list[UUID] | None = None, sequences: list[UUID] | None = None
) -> list[Job]:
    """Claim due delete jobs (but those of ``exclude``; only those a cleanup of ``sequences`` queued when
    given); call inside the transaction that will finish them."""
    exclude = exclude or []
    named = [str(s) for s in sequences] if sequences is not None else None
    params = {"batch_size": batch_size, "exclude": exclude, "sequences": named}
    rows = conn.execute(queries.load("jobs_claim"), params).fetchall()
    return [Job(r[0], r[1], r[2] if isinstance(r[2], dict) else {}, r[3], r[4]) for r in rows]


def delete_files(storage: Storage, jobs: list[Job]) -> DeleteResult:
    """Delete the files the jobs name, kind by kind. Every deletion of picture files goes through the storage's
    ``delete_pictures`` (``delete_keys`` for orphans), from three callers: here (the queue's delete jobs),
    ``ops.cleanup`` (a cleanup that deletes the files itself) and ``ops.storage_orphans``."""
    wanted = {kind: [j.picture_id for j in jobs if kind in j.kinds and not j.picture_exists] for kind in KINDS}
    return storage.delete_pictures(wanted)


def _finish(
    conn: psycopg.Connection, jobs: list[Job], started_at: datetime, nb_retries: int, result: BatchResult
) -> None:
    remove, retry = [], []
    for job in jobs:
        if job.error is None:
            remove.append(job.id)
        elif job.nb_errors + 1 >= nb_retries or lasting(job.error):  # a permission: no retry fixes it
            remove.append(job.id)
            result.given_up += 1
        else:
            retry.append(job.id)
            result.retried_later += 1
        if job.error is not None:
            result.failed_job_ids.append(job.id)
    result.done = len(jobs) - result.retried_later - result.given_up
    # job_history.warning came with Panoramax 2.9; before it, a warning (files kept: the picture is in the
    # database again) is only in the batch's counts (files_kept_picture_in_database)
    with_warning = db.scalar(conn, HAS_WARNING)
    conn.execute(
        queries.statement("jobs_finish", "history" if with_warning else "history_without_warning"),
        {
            "started_at": started_at,
            "job_ids": [j.id for j in jobs],
            "picture_ids": [j.picture_id for j in jobs],
            "args": [json.dumps(j.args, default=str) for j in jobs],
            "errors": [j.error for j in jobs],
            "warnings": [j.warning for j in jobs],
        },
    )
    conn.execute(queries.statement("jobs_finish", "remove"), {"remove_ids": remove})
    if retry:
        conn.execute(queries.statement("jobs_finish", "retry"), {"retry_ids": retry})


def process_batch(
    conn: psycopg.Connection,
    storage: Storage,
    batch_size: int,
    nb_retries: int,
    exclude: list[UUID] | None = None,
    sequences: list[UUID] | None = None,
) -> BatchResult:
    """Claim one batch, delete its files and record the outcome, in one transaction (conn: autocommit).
    Jobs of ``exclude`` (already attempted by the caller) are not claimed. A file that cannot be deleted
    fails its own job (counted against its retries); a storage that does not answer at all fails no job:
    the claim is rolled back, the jobs keep their attempts, and the result says why."""
    result = BatchResult()
    try:
        with conn.transaction():
            started_at = datetime.now(UTC)
            jobs = claim(conn, batch_size, exclude, sequences)
            if not jobs:
                return result
            prove_location(conn, storage)  # else the claim is rolled back: the jobs keep their attempts
            result.jobs = len(jobs)
            for job in jobs:
                if job.picture_exists:
                    job.warning = f"picture {job.picture_id} is in the database again: its files were kept"
                    result.files_kept_picture_in_database += 1
            result.deletion = delete_files(storage, jobs)
            for job in jobs:
                job.error = result.deletion.failed.get(job.picture_id)
            _finish(conn, jobs, started_at, nb_retries, result)
    except StorageUnavailable as e:
        return BatchResult(storage_unavailable=str(e))
    return result


def drain(
    conn: psycopg.Connection,
    storage: Storage,
    *,
    batch_size: int = WORKER_BATCH.default,
    nb_retries: int = NB_RETRIES.default,
    should_stop: Callable[[], bool] = lambda: False,
    log: Log = silent,
    total: BatchResult | None = None,
    sequences: list[UUID] | None = None,
) -> BatchResult:
    """Process batches until no job is due (or ``should_stop``); one log line per batch. A job that fails
    is attempted once per drain (its retry waits for a later one), so the counts are of distinct jobs.
    Each finished batch is added to ``total`` at once: a caller keeps the counts of the batches done
    before a lost connection."""
    total = total if total is not None else BatchResult()
    failed: list[UUID] = []
    while not should_stop():
        started = time.monotonic()
        batch = process_batch(conn, storage, batch_size, nb_retries, failed, sequences)
        if batch.storage_unavailable:
            total.storage_unavailable = batch.storage_unavailable
            log(f"storage unavailable: {batch.storage_unavailable}; the jobs keep their attempts")
            break
        if batch.jobs == 0:
            break
        failed += batch.failed_job_ids
        total.add(batch)
        files = sum(batch.deletion.files.values())
        log(
            f"batch: {batch.jobs} delete jobs, {files} files deleted, {batch.retried_later} to retry, "
            f"{batch.given_up} given up, in {time.monotonic() - started:.2f} s"
        )
    return total


# --- periodic refresh ---------------------------------------------------------------------------------


def validate_cron(expression: str) -> str:
    """A cron expression that is valid and fires (``0 0 30 2 *``, February 30th, never does)."""
    if not croniter.is_valid(expression):
        raise UsageError(f"PICTURE_PROCESS_REFRESH_CRON should be a valid cron syntax, got '{expression}'")
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except ValueError:  # CroniterBadDateError (a ValueError): its search gives up on dates that never come
        raise UsageError(f"PICTURE_PROCESS_REFRESH_CRON {expression!r} never fires: no such date") from None
    return expression


def next_refresh(cron: str, last: datetime | None, now: datetime) -> datetime:
    """The cron's next time after the last refresh; now when there was none."""
    if last is None:
        return now
    after: datetime = croniter(cron, last).get_next(datetime)
    return after


@dataclass
class WorkerOptions:
    batch_size: int = WORKER_BATCH.default
    nb_retries: int = NB_RETRIES.default
    refresh_cron: str = REFRESH_CRON.default
    once: bool = False


def run_worker(
    connect: Callable[[], psycopg.Connection],
    storage: Storage,
    options: WorkerOptions,
    *,
    should_stop: Callable[[], bool],
    log: Log = silent,
) -> BatchResult:
    """The worker loop: drain the queue, refresh the views when the schedule says so, sleep when idle.

    With ``once`` it drains the queue and returns. A lost database connection is re-opened with backoff; a
    storage that does not answer pauses the draining with backoff (STORAGE_PAUSE_S, doubling up to
    STORAGE_PAUSE_MAX_S), the jobs keeping their attempts, while refreshes go on.
    """
    validate_cron(options.refresh_cron)
    total = BatchResult()
    conn = connect()
    scheduled: datetime | None = None
    failures = 0
    storage_pauses = 0
    resume_at = 0.0
    try:
        while not should_stop():
            try:
                if time.monotonic() >= resume_at:
                    total.storage_unavailable = None
                    drain(conn, storage, batch_size=options.batch_size, nb_retries=options.nb_retries,
                          should_stop=should_stop, log=log, total=total)  # fmt: skip
                    if total.storage_unavailable and not options.once:
                        pause = min(STORAGE_PAUSE_MAX_S, STORAGE_PAUSE_S * 2.0**storage_pauses)
                        storage_pauses += 1
                        resume_at = time.monotonic() + pause
                        log(f"pausing file deletions for {pause:.0f} s")
                    elif not total.storage_unavailable:
                        storage_pauses = 0
                if options.once:
                    break
                now = db.scalar(conn, "SELECT now()")  # the database's clock, not ours
                if scheduled is None:
                    scheduled = next_refresh(options.refresh_cron, refresh.last_refresh(conn), now)
                if now >= scheduled:
                    for o in refresh.refresh(conn):
                        log(f"refresh {o.view}: {o.state} {o.message}".rstrip())
                    scheduled = next_refresh(options.refresh_cron, max(now, refresh.last_refresh(conn) or now), now)
                    log(f"next views refresh at {scheduled.isoformat(timespec='seconds')}")
                failures = 0
            except psycopg.OperationalError as e:
                log(f"database connection lost ({' '.join(str(e).split())})")
                conn.close()
                while not should_stop():
                    failures += 1
                    wait = min(60.0, 2.0**failures)
                    log(f"reconnecting in {wait:.0f} s")
                    _sleep(wait, should_stop)
                    try:
                        conn = connect()
                        break
                    except DatabaseUnavailable as again:
                        log(str(again))
                continue
            _sleep(IDLE_SLEEP_S, should_stop)
    finally:
        conn.close()
    return total


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not should_stop():
        time.sleep(0.1)
