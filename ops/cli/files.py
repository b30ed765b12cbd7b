"""``ops cleanup``, ``ops storage orphans`` and ``ops worker``: everything that deletes picture files."""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from typing import Any
from uuid import UUID

import click

from ops.cli.common import SEQUENCE_ID, confirm_or_refuse, emit, expand_ids, open_storage, progress, settings
from ops.cli.common import database as open_database
from ops.cli.options import DURATION, batch_size_option, dry_run_option, json_option, refresh_cron_option, yes_option
from ops.errors import FilesNotDeleted, StorageError, StorageUnavailable

log = logging.getLogger("ops")


def _counts(title: str, counts: dict[str, int]) -> str:
    return f"{title}: " + ", ".join(f"{name} {n}" for name, n in counts.items())


@click.command()
@click.argument("sequence_ids", nargs=-1, type=SEQUENCE_ID)
@click.option(
    "--full", is_flag=True, help="Database entries, cached derivates, original pictures and tmp files (the default)."
)
@click.option(
    "--database",
    is_flag=True,
    help="Delete database entries (sequences, their pictures, queued jobs, emptied upload sets). Alone, it touches "
    "no file: they become orphans (see ops storage orphans).",
)
@click.option("--cache", is_flag=True, help="Delete cached derivates (thumb, sd, tiles…) of the pictures.")
@click.option("--permanent-pictures", is_flag=True, help="Delete the original pictures.")
@click.option(
    "--enqueue-only",
    is_flag=True,
    help="When rows and files both go: delete the rows and queue the file deletions for ops worker, then stop.",
)
@dry_run_option
@yes_option
@batch_size_option(1000, "Pictures")
@json_option
@click.pass_context
def cleanup(
    ctx: click.Context,
    sequence_ids: tuple[UUID | str, ...],
    full: bool,
    database: bool,
    cache: bool,
    permanent_pictures: bool,
    enqueue_only: bool,
    dry_run: bool,
    yes: bool,
    batch_size: int,
    as_json: bool,
) -> None:
    """Delete sequences and their pictures: database entries and/or files (no flag: everything).

    With ids, only those sequences and the pictures no other sequence holds (- reads ids from stdin, one
    per line); without ids, the whole instance (asks first; --yes when not on a terminal). Accounts and
    tokens are never deleted.

    \b
    ops cleanup 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --dry-run
    ops cleanup 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --cache
    ops cleanup --database --yes
    ops cleanup - --enqueue-only < sequence-ids.txt
    """
    from ops.cleanup import CleanupPlan
    from ops.cleanup import cleanup as run_cleanup

    plan = CleanupPlan.from_flags(
        expand_ids(sequence_ids) or None, full=full, database=database, cache=cache, permanent=permanent_pictures
    )
    what = ", ".join((["database entries"] if plan.database else []) + [f"{k} files" for k in plan.kinds])
    if plan.seq_ids is None and not dry_run and not yes:
        confirm_or_refuse(
            f"Delete the WHOLE instance ({what})?",
            f"no sequence id: this deletes the whole instance ({what}); add --yes to confirm",
        )
    store = open_storage(ctx) if plan.kinds else None
    with open_database(ctx, "cleanup", read_only=dry_run) as conn:
        result = run_cleanup(
            conn, store, plan, dry_run=dry_run, enqueue_only=enqueue_only, batch_size=batch_size, log=log.info
        )
    prefix = "would delete" if dry_run else "deleted"
    lines = [_counts(f"{prefix} rows", result.rows) if plan.database else "database: untouched"]
    if result.files_queued_for_worker:
        lines.append(f"queued the file deletions of {result.files_queued_for_worker} pictures for ops worker")
    else:
        lines.append(_counts(f"{prefix} files", result.files) if plan.kinds else "files: untouched")
    if any(result.files_already_gone.values()):
        lines.append(_counts("files already gone (not counted as deleted)", result.files_already_gone))
    if result.other_delete_jobs_waiting and plan.seq_ids is not None:
        lines.append(f"{result.other_delete_jobs_waiting} other delete jobs wait in the queue for ops worker "
                     "(a cleanup of named sequences deletes only their files)")  # fmt: skip
    if result.other_files_kept:
        lines.append(_counts(f"{'would keep' if dry_run else 'kept'} files of no deleted picture (see ops storage "
                             "orphans)", result.other_files_kept))  # fmt: skip
    emit(result.as_dict(), as_json, lines)
    if result.storage_unavailable:
        log.warning(f"warning: storage unavailable: {result.storage_unavailable}; the delete jobs left keep their "
                    "attempts and wait in the queue for ops worker")  # fmt: skip
    if result.pictures_with_files_not_deleted:
        for why in result.not_deleted_examples:
            log.warning(f"  not deleted: {why}")
        if result.delete_jobs and result.delete_jobs.given_up:
            where = "their jobs failed for good (see ops jobs list --failed; ops jobs retry once the cause is fixed)"
        elif result.delete_jobs:
            where = "ops worker retries them (see ops jobs list)"
        else:
            where = "see ops storage orphans"
        raise FilesNotDeleted(f"the files of {result.pictures_with_files_not_deleted} pictures could not be deleted "
                              f"(first ones above): {where}")  # fmt: skip
    if result.storage_unavailable and not dry_run:
        raise FilesNotDeleted("the storage stopped answering before every file was deleted: the delete jobs left "
                              "wait for ops worker (see ops jobs list)")  # fmt: skip


@click.group()
def storage() -> None:
    """Picture storage checks: files without rows (orphans), rows without files (check).

    \b
    ops storage check
    ops storage orphans
    """


@storage.command()
@click.option("--delete", "delete_them", is_flag=True, help="Delete the orphan files (default: only list them).")
@click.option(
    "--min-age",
    type=DURATION,
    default="1h",
    show_default=True,
    help="Leave files younger than this (an upload may write its file before its row).",
)
@json_option
@click.pass_context
def orphans(ctx: click.Context, delete_them: bool, min_age: timedelta, as_json: bool) -> None:
    """Find files in permanent, derivates and tmp whose picture has no row and no pending delete job.

    Files outside the storage layout, links to folders and special files are never touched (counted,
    with the reason); a link where a file is expected is removed itself, never its target.

    \b
    ops storage orphans
    ops storage orphans --delete --min-age 1d --json
    """
    from ops.storage_orphans import find_orphans

    store = open_storage(ctx)
    with open_database(ctx, "storage orphans", read_only=not delete_them) as conn:
        report = find_orphans(conn, store, delete=delete_them, min_age_s=min_age.total_seconds(), log=log.debug)
    lines = [
        f"{kind}: {report.orphan_files[kind]} orphan files ({report.orphan_bytes[kind]} bytes) "
        f"of {report.orphan_pictures[kind]} pictures"
        + (f", {report.removed_files[kind]} deleted ({report.removed_bytes[kind]} bytes)" if delete_them else "")
        for kind in report.orphan_files
    ]
    lines += [f"  {path}" for path in report.examples]
    kept = ", ".join(f"{n} {why}" for why, n in report.kept.items())
    lines += [
        f"left alone: {report.skipped_too_recent} too recent, {report.unrecognized_files} outside the storage layout"
        + (f", {kept}" if kept else "")
    ]
    lines += [f"  kept {path}" for path in report.kept_examples]
    emit(report.as_dict(), as_json, lines)
    failed = sum(report.not_deleted.values())
    if failed:
        for why in report.not_deleted_examples:
            log.warning(f"  not deleted: {why}")
        raise FilesNotDeleted(f"{failed} orphan files could not be deleted (first ones above; see not_deleted in "
                              "--json)")  # fmt: skip


@storage.command("check")
@click.option("--sequence", "sequence_ids", multiple=True, type=SEQUENCE_ID, help="Only this sequence (repeatable).")
@click.option("--verify", is_flag=True, help="Also read each original and compare it with its recorded MD5.")
@json_option
@click.pass_context
def check_command(ctx: click.Context, sequence_ids: tuple[UUID | str, ...], verify: bool, as_json: bool) -> None:
    """Find picture rows whose original is gone (per status), and those missing derivates (regenerable).

    With --verify, each original is read (a few in parallel; on S3 its ETag when it is the MD5) and compared
    with original_content_md5. Exit 1 when a ready picture has no original or an original changed.

    \b
    ops storage check
    ops storage check --sequence 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --verify --json
    """
    from ops import storage_check as check
    from ops.errors import StorageCheckFailed

    store = open_storage(ctx)
    ids = expand_ids(sequence_ids) or None
    with open_database(ctx, "storage check") as conn:
        if ids:
            from ops.sequences import check_sequences_exist

            check_sequences_exist(conn, ids)
        with progress(check.count(conn, ids), "checking pictures") as step:
            result = check.check(conn, store, seq_ids=ids, verify=verify, progress=step)
    missing = ", ".join(f"{status} {n}" for status, n in sorted(result.originals_missing.items())) or "none"
    lines = [
        f"{result.pictures} pictures checked",
        f"originals missing: {missing}",
        f"derivates missing (regenerable): {result.derivates_missing}",
    ]
    if verify:
        lines.append(f"verified {result.verified} originals: {result.md5_mismatch} differ from their MD5, "
                     f"{result.md5_unrecorded} have no MD5 recorded")  # fmt: skip
    lines.append(f"originals unreadable: {result.unreadable}")
    lines += result.unreadable_examples + result.examples + result.derivates_missing_examples
    emit(result.as_dict(), as_json, lines)
    if not result.ok:
        raise StorageCheckFailed(
            f"{result.ready_without_original} ready pictures have no original, "
            f"{result.unreadable} originals cannot be read, {result.md5_mismatch} originals differ from their MD5"
        )


@click.command()
@click.option("--once", is_flag=True, help="Drain the queue, then exit (cron, tests).")
@batch_size_option(1000, "Delete jobs")
@click.option(
    "--nb-retries",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    envvar="PICTURE_PROCESS_NB_RETRIES",
    help="Attempts before a failing job leaves the queue [env: PICTURE_PROCESS_NB_RETRIES].",
)
@refresh_cron_option
@json_option
@click.pass_context
def worker(ctx: click.Context, once: bool, batch_size: int, nb_retries: int, refresh_cron: str, as_json: bool) -> None:
    """The background worker: deletes the files of queued delete jobs and refreshes the views on schedule.

    Run one or more (any machine); SIGTERM or SIGINT ends the current batch (one waiting on S3 is left for
    the next run, its jobs untouched) and exits 0.

    \b
    ops worker
    ops worker --once --json
    """
    from ops import db, jobs
    from ops import storage as storage_module
    from ops.schema import status

    jobs.validate_cron(refresh_cron)
    current = settings(ctx)
    store = storage_module.from_settings(current)
    url = current.require_db_url()
    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        if not stopping:
            log.info("stopping: the current batch ends now (a batch waiting on the storage is left for the next run)")
        stopping.append(signum)
        store.abandon()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def connect() -> Any:
        conn = db.connect(url, autocommit=True, connect_timeout_s=current.connect_timeout, jit=current.jit,
                          server_settings=db.write_settings(current.write_lock_timeout))  # fmt: skip
        status.ensure_schema_current(conn, command="worker")
        return conn

    try:
        try:
            store.check()
        except StorageError as e:  # a long-running worker waits for the storage (unmounted too), --once says so
            if once:
                raise
            log.warning(f"storage unavailable at start: {e}; file deletions wait for it")
        options = jobs.WorkerOptions(batch_size, nb_retries, refresh_cron, once)
        if not once:
            log.info("ops worker started")
        total = jobs.run_worker(connect, store, options, should_stop=lambda: bool(stopping), log=log.info)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    emit(
        total.as_dict(),
        as_json,
        [f"{total.jobs} delete jobs: {total.done} done, {total.retried_later} to retry, {total.given_up} given up",
         _counts("files deleted", total.deletion.files)]
        + ([_counts("files already gone", total.deletion.already_gone)] if any(total.deletion.already_gone.values())
           else []),
    )  # fmt: skip
    if total.storage_unavailable and not stopping:  # stopped: the batch left for the next run lost nothing
        raise StorageUnavailable(f"{total.storage_unavailable}; the jobs left keep their attempts")
    if once and (total.given_up or total.retried_later):
        raise FilesNotDeleted(f"{total.given_up + total.retried_later} delete jobs failed ({total.given_up} given up, "
                              f"{total.retried_later} to retry): see ops jobs list --failed")  # fmt: skip
