"""``ops jobs``: the job queue seen by an operator (counts, list, retry, prune)."""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

import click

from ops.cli.common import UuidType, database, emit
from ops.cli.options import DURATION, dry_run_option, json_option
from ops.cli.registry import specified
from ops.schema.needs import HISTORY, Needs
from ops.settings import MAX_BATCH
from ops.tasks import TASKS

log = logging.getLogger("ops")
SHOWN = 10
task_option = click.option("--task", type=click.Choice(TASKS), help="Only jobs of this task.")
since_option = click.option("--since", type=DURATION, help="Only jobs of this last period (24h, 7d…).")
NEEDS = HISTORY | Needs({"pictures": ("id",), "sequences": ("id",), "upload_sets": ("id",)})


def _age(seconds: float | None) -> str:
    from ops.durations import describe

    return "-" if seconds is None else describe(seconds)


@specified(
    "ops.jobs:summary",
    NEEDS,
    writes=False,
    sql=("jobs_view",),
    not_benched="the queue's summary: one aggregate over the queue, which a working instance keeps short",
)
@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def jobs(ctx: click.Context, as_json: bool) -> None:
    """Counts of the job queue per task: queued (ready now), waiting for a retry (with the next attempt),
    being processed, failed in the last 24 h and in all, and the age of the oldest ready job.

    \b
    ops jobs
    ops jobs --json
    ops jobs list --failed --since 24h
    """
    if ctx.invoked_subcommand is not None:
        return
    from ops import jobs as core

    with database(ctx) as conn:
        result = core.summary(conn)
    lines = [f"{'task':<14} {'queued':>7} {'retry':>7} {'running':>8} {'failed 24h':>11} {'failed':>7}  oldest ready"]
    for t in result.tasks:
        retry = f"{t.waiting_retry}" + (f" (next {t.next_retry_at:%H:%M:%S})" if t.next_retry_at else "")
        lines.append(f"{t.task:<14} {t.queued:>7} {retry:>7} {t.processing:>8} {t.failed_24h:>11} {t.failed:>7}  "
                     f"{_age(t.oldest_ready_age_s)}")  # fmt: skip
    if not result.tasks:
        lines = ["the queue is empty and no job failed"]
    emit(result.as_dict(), as_json, lines)


@specified(
    "ops.jobs:list_jobs", NEEDS, writes=False, sql=("jobs_view",), not_benched="a page of the queue (--limit), by index"
)
@jobs.command("list")
@task_option
@click.option("--failed", is_flag=True, help="Failed jobs that left the queue (newest first), not queued ones.")
@since_option
@click.option(
    "--limit", type=click.IntRange(1, MAX_BATCH), default=50, show_default=True, help="At most this many jobs."
)
@click.option("--all", "show_all", is_flag=True, help="Every job, however many (no --limit).")
@json_option
@click.pass_context
def list_command(
    ctx: click.Context, task: str | None, failed: bool, since: timedelta | None, limit: int, show_all: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """One line per job: id, task, target, failed attempts, first line of its last error, when; then how many
    there are in all when more than shown. --json: {"jobs": […], "total": N, "more": M}.

    \b
    ops jobs list
    ops jobs list --failed --task delete --since 7d --json
    ops jobs list --all
    """
    from ops import jobs as core

    with database(ctx) as conn:
        found = core.list_jobs(conn, task=task, failed=failed, since=since, limit=None if show_all else limit)
    lines = [
        f"{j.id}  {j.task:<13} {j.target_kind} {j.target}  attempts failed: {j.attempts_failed}  "
        f"{j.at:%Y-%m-%d %H:%M:%S}  {j.error_line}".rstrip()
        for j in found.jobs
    ]
    if not lines:
        what = f"{task} job" if task else "job"
        period = f" in the last {_age(since.total_seconds())}" if since else ""
        lines = [f"no failed {what} left the queue{period}" if failed else f"no {what} queued{period}"]
    elif found.more:
        lines.append(f"… and {found.more:,} more ({found.total:,} in all): --limit N or --all to see them")
    emit(found.as_dict(), as_json, lines)


@specified(
    "ops.jobs:retry",
    NEEDS,
    writes=True,
    sql=("jobs_view",),
    not_benched="one statement per failed job named or selected",
)
@jobs.command()
@click.argument("job_ids", nargs=-1, type=UuidType("job"))
@click.option("--failed", "all_failed", is_flag=True, help="Every failed job (of --task, --since).")
@task_option
@since_option
@dry_run_option
@json_option
@click.pass_context
def retry(
    ctx: click.Context,
    job_ids: tuple[UUID, ...],
    all_failed: bool,
    task: str | None,
    since: timedelta | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Put failed jobs back in the queue, once per target, where it still makes sense (a delete job whose
    picture is in the database again is not, and says so). Running it again changes nothing.

    \b
    ops jobs retry 3f0c2a1e-5b7d-4c9e-8f10-2a3b4c5d6e7f
    ops jobs retry --failed --task delete --since 24h --dry-run
    """
    from ops import jobs as core

    if not job_ids and not all_failed:
        raise click.UsageError("give job ids, or --failed")
    if job_ids and (all_failed or task or since):
        raise click.UsageError("give job ids or --failed [--task] [--since], not both")
    ids = [i for i in job_ids if isinstance(i, UUID)]
    with database(ctx, read_only=dry_run) as conn:
        result = core.retry(conn, ids, all_failed=all_failed, task=task, since=since, dry_run=dry_run)
    verb = "would queue again" if dry_run else "queued again"
    lines = [f"{verb}: {job}" for job in result.requeued]
    for why, skipped in result.skipped_by_reason().items():
        shown = ", ".join(skipped[:SHOWN]) + (f" and {len(skipped) - SHOWN} more" if len(skipped) > SHOWN else "")
        lines.append(f"not queued, {why}: {len(skipped)} ({shown})")
    lines.append(f"{len(result.requeued)} {verb}, {len(result.skipped)} left as they are")
    emit(result.as_dict(), as_json, lines)


@specified(
    "ops.jobs:prune",
    NEEDS,
    writes=True,
    sql=("jobs_view",),
    not_benched="deletes history in batches like cleanup; not measured yet",
)
@jobs.command()
@click.option("--older-than", type=DURATION, required=True, help="Prune history older than this (30d…).")
@click.option("--include-failures", is_flag=True, help="Also prune failed jobs' history (kept by default).")
@dry_run_option
@json_option
@click.pass_context
def prune(ctx: click.Context, older_than: timedelta, include_failures: bool, dry_run: bool, as_json: bool) -> None:
    """Delete finished job history older than --older-than, in batches; failures stay unless
    --include-failures, and the history of jobs still queued always stays.

    \b
    ops jobs prune --older-than 30d --dry-run
    ops jobs prune --older-than 90d --include-failures
    """
    from ops import jobs as core

    with database(ctx, read_only=dry_run) as conn:
        result = core.prune(conn, older_than, include_failures=include_failures, dry_run=dry_run, log=log.info)
    verb = "would delete" if dry_run else "deleted"
    emit(result.as_dict(), as_json, [f"{verb} {result.history_rows} job history rows"])


COMMANDS = (jobs,)
