"""``ops cleanup``: delete sequences and their pictures (rows, derived files, originals), per sequence or the
whole instance; the files by ``ops.cleanup`` itself or queued for ``ops worker``."""

from __future__ import annotations

import logging
from uuid import UUID

import click

from ops.cli.common import (
    SEQUENCE_ID,
    confirm_or_refuse,
    counts_line,
    emit,
    expand_ids,
    open_storage,
)
from ops.cli.common import database as open_database  # (--database is an option of cleanup)
from ops.cli.options import batch_size_option, dry_run_option, json_option, yes_option
from ops.cli.registry import specified
from ops.errors import FilesNotDeleted
from ops.schema.needs import DELETE_JOBS, SEQUENCE_TARGETS, Needs
from ops.settings import CLEANUP_BATCH

log = logging.getLogger("ops")


@specified("ops.cleanup:cleanup",
           SEQUENCE_TARGETS | DELETE_JOBS | Needs({"pictures": ("upload_set_id",), "upload_sets": ("id",)}),
           writes=True, sql=("cleanup_select", "cleanup_delete", "cleanup_all_counts", "cleanup_all_delete", "storage_check",
                             "jobs_enqueue_delete", "capabilities", "cleaned_earlier", "sequence_links",
                             "sequence_targets", "panoramax_refresh", "jobs_claim", "jobs_finish"))  # fmt: skip
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
@batch_size_option(CLEANUP_BATCH)
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
    with open_database(ctx, read_only=dry_run) as conn:
        result = run_cleanup(
            conn, store, plan, dry_run=dry_run, enqueue_only=enqueue_only, batch_size=batch_size, log=log.info
        )
    prefix = "would delete" if dry_run else "deleted"
    lines = [counts_line(f"{prefix} rows", result.rows) if plan.database else "database: untouched"]
    if result.files_queued_for_worker:
        lines.append(f"queued the file deletions of {result.files_queued_for_worker} pictures for ops worker")
    else:
        lines.append(counts_line(f"{prefix} files", result.files) if plan.kinds else "files: untouched")
    if any(result.files_already_gone.values()):
        lines.append(counts_line("files already gone (not counted as deleted)", result.files_already_gone))
    if result.other_delete_jobs_waiting and plan.seq_ids is not None:
        lines.append(f"{result.other_delete_jobs_waiting} other delete jobs wait in the queue for ops worker "
                     "(a cleanup of named sequences deletes only their files)")  # fmt: skip
    if result.other_files_kept:
        lines.append(counts_line(f"{'would keep' if dry_run else 'kept'} files of no deleted picture (see ops storage "
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


COMMANDS = (cleanup,)
