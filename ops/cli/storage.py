"""``ops storage``: files without rows (``orphans``, which may delete them) and rows without files
(``check``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

import click

from ops.cli.common import SEQUENCE_ID, database, emit, expand_ids, open_storage, progress
from ops.cli.options import json_option, setting_option
from ops.cli.registry import specified
from ops.errors import FilesNotDeleted
from ops.schema.needs import Needs
from ops.settings import ORPHAN_MIN_AGE

log = logging.getLogger("ops")


@click.group()
def storage() -> None:
    """Picture storage checks: files without rows (orphans), rows without files (check).

    \b
    ops storage check
    ops storage orphans
    """


@specified("ops.storage_orphans:find_orphans", Needs({"pictures": ("id",), "job_queue": ("picture_to_delete_id",)}),
           writes=True, sql=("orphans_check", "storage_check"),
           not_benched="lists the storage like storage check (measured); its own row not measured yet")  # fmt: skip
@storage.command()
@click.option("--delete", "delete_them", is_flag=True, help="Delete the orphan files (default: only list them).")
@setting_option(ORPHAN_MIN_AGE, "--min-age")
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
    with database(ctx, read_only=not delete_them) as conn:
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


@specified("ops.storage_check:check",
           Needs({"pictures": ("id", "status", "original_content_md5"), "sequences_pictures": ("seq_id", "pic_id")}),
           writes=False, sql=("storage_check", "sequence_targets"))  # fmt: skip
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
    with database(ctx) as conn:
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


COMMANDS = (storage,)
