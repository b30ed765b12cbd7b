"""``ops sequences reorder`` and ``ops set-sequences-heading``."""

from __future__ import annotations

from uuid import UUID

import click

from ops.cli.common import SEQUENCE_ID, database, emit, expand_ids, progress
from ops.cli.options import batch_size_option, dry_run_option, json_option
from ops.cli.registry import specified
from ops.schema.needs import SEQUENCE_TARGETS, Needs
from ops.settings import SEQUENCE_BATCH

batch_option = batch_size_option(SEQUENCE_BATCH)


@click.group()
def sequences() -> None:
    """Sequence upkeep.

    \b
    ops sequences reorder
    """


def _ids_line(what: str, ids: list[UUID], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more (--json lists them all)" if len(ids) > shown else ""
    return f"{what}: {len(ids)}" + (f" ({', '.join(map(str, ids[:shown]))}{more})" if ids else "")


@specified("ops.sequences:reorder", SEQUENCE_TARGETS | Needs(
    {"sequences": ("geom", "bbox", "min_picture_ts", "max_picture_ts", "nb_pictures", "updated_at"),
     "pictures": ("id", "ts", "metadata", "geom")},
    functions=("compute_sequence_geom", "compute_sequence_bbox"),
), writes=True, sql=("sequence_targets", "reorder_ranks", "sequence_derived", "capabilities"))  # fmt: skip
@sequences.command()
@click.argument("sequence_ids", nargs=-1, type=SEQUENCE_ID)
@click.option(
    "--by-capture-time",
    is_flag=True,
    help="Sort the named sequences by capture time even where their owner chose another order (needs ids).",
)
@batch_option
@dry_run_option
@json_option
@click.pass_context
def reorder(
    ctx: click.Context, sequence_ids: tuple[UUID | str, ...], by_capture_time: bool, batch_size: int, dry_run: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Sort the pictures of sequences in their intended order, and recompute what sequences derive from them.

    The intended order is the one the owner chose through Panoramax (the collection's sort, else its upload
    set's sort method, with Panoramax's own rules), else (capture time, original file name, picture id);
    --by-capture-time overrides the owner's choice for the named sequences. Then every sequence examined
    (the named ones, or with no id every sequence not deleted) gets its geometry, bbox, first/last capture
    time and picture count rewritten where they are missing or stale, reordered or not. Nothing already
    right is written; deleted sequences are left as they are. - reads ids from stdin.

    \b
    ops sequences reorder
    ops sequences reorder 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --json
    ops sequences reorder --dry-run
    ops sequences reorder - < sequence-ids.txt
    ops sequences reorder 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --by-capture-time
    """
    from ops import sequences as core

    ids = expand_ids(sequence_ids) or None
    if by_capture_time and not ids:
        raise click.UsageError("--by-capture-time overrides owners' choices for named sequences only: give their ids")
    with database(ctx, read_only=dry_run) as conn:
        with progress(core.targets(conn, ids).count(conn), "reordering sequences") as step:
            result = core.reorder(conn, ids, batch_size=batch_size, dry_run=dry_run, by_capture_time=by_capture_time,
                                  progress=step)  # fmt: skip
    would = "would be " if dry_run else ""
    lines = [f"{result.sequences_examined} sequences examined",
             _ids_line(f"sequences {would}reordered", result.reordered),
             f"{result.pictures_moved} pictures {'would move' if dry_run else 'moved'}",
             _ids_line("sequences kept in the order their owner chose (not re-sorted by capture time)",
                       sorted(result.users_order)),
             _ids_line(f"sequences whose geometry, bbox, times or count {would}rewritten (missing or stale)",
                       result.recomputed)]  # fmt: skip
    if result.skipped_deleted:
        lines.append(_ids_line("deleted sequences left as they are", result.skipped_deleted))
    emit(result.as_dict(), as_json, lines)


@specified("ops.sequences:set_headings",
           SEQUENCE_TARGETS | Needs({"pictures": ("id", "geom", "heading", "heading_computed")}), writes=True,
           sql=("sequence_targets", "headings", "capabilities"))  # fmt: skip
@click.command("set-sequences-heading")
@click.argument("sequence_ids", nargs=-1, type=SEQUENCE_ID)
@click.option(
    "--value",
    type=click.IntRange(-359, 359),
    default=None,
    metavar="DEGREES",
    help="Camera direction relative to movement, from -359 to 359 (90 = looking right). Default: the relative "
    "heading the owner set through Panoramax (the sequence's, else its upload set's), else 0.",
)
@click.option("--overwrite", is_flag=True, help="Also replace headings that came from the pictures' own metadata.")
@batch_option
@dry_run_option
@json_option
@click.pass_context
def set_sequences_heading(
    ctx: click.Context,
    sequence_ids: tuple[UUID | str, ...],
    value: int | None,
    overwrite: bool,
    batch_size: int,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Set picture headings from the movement path (geodesic azimuth to the next position) plus a relative heading.

    The relative heading is --value, else the one the owner set through Panoramax (the sequence's, else its
    upload set's), else 0. Which pictures change, as Panoramax decides: with --overwrite, or when the owner set
    a relative heading and no --value is given, every one; otherwise only missing headings (none, previously
    computed, or 0 when no --value is given): a heading set by hand is kept. No id: every sequence not
    deleted; deleted sequences are left as they are.

    \b
    ops set-sequences-heading --value 90
    ops set-sequences-heading 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --overwrite --json
    ops set-sequences-heading --dry-run
    """
    from ops import sequences as core

    ids = expand_ids(sequence_ids) or None
    with database(ctx, read_only=dry_run) as conn:
        with progress(core.targets(conn, ids).count(conn), "setting headings") as step:
            result = core.set_headings(conn, ids, value=value, overwrite=overwrite, batch_size=batch_size,
                                       dry_run=dry_run, progress=step)  # fmt: skip
    lines = [f"{result.sequences_examined} sequences examined",
             _ids_line("sequences that would change" if dry_run else "sequences changed", result.changed),
             f"{result.pictures_updated} pictures {'would be updated' if dry_run else 'updated'}",
             f"{result.sequences_without_azimuth} sequences left unchanged: no movement (one picture or one position)"]  # fmt: skip
    if result.skipped_deleted:
        lines.append(_ids_line("deleted sequences left as they are", result.skipped_deleted))
    emit(result.as_dict(), as_json, lines)


COMMANDS = (sequences, set_sequences_heading)
