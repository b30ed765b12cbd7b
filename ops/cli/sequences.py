"""``ops sequences reorder`` and ``ops set-sequences-heading``."""

from __future__ import annotations

from uuid import UUID

import click

from ops.cli.common import SEQUENCE_ID, database, emit, expand_ids, progress
from ops.cli.options import batch_size_option, json_option

batch_option = batch_size_option(1000, "Sequences")


@click.group()
def sequences() -> None:
    """Sequence upkeep.

    \b
    ops sequences reorder
    """


@sequences.command()
@click.argument("sequence_ids", nargs=-1, type=SEQUENCE_ID)
@batch_option
@json_option
@click.pass_context
def reorder(ctx: click.Context, sequence_ids: tuple[UUID | str, ...], batch_size: int, as_json: bool) -> None:
    """Sort the pictures of sequences by capture time (all sequences not deleted when no id is given).

    Ranks become 1..n by (capture time, original file name, picture id); geometry, bbox, first/last capture
    time and picture count are recomputed. Sequences already in order are not written. - reads ids from stdin.

    \b
    ops sequences reorder
    ops sequences reorder 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --json
    ops sequences reorder - < sequence-ids.txt
    """
    from ops import sequences as core

    ids = expand_ids(sequence_ids) or None
    with database(ctx, "sequences reorder") as conn:
        total = core.count_targets(conn, ids)
        with progress(total, "reordering sequences") as step:
            result = core.reorder(conn, ids, batch_size=batch_size, progress=step)
    emit(
        result.as_dict(),
        as_json,
        [
            f"{result.sequences_examined} sequences examined",
            f"{result.sequences_changed} sequences changed",
            f"{result.pictures_moved} pictures moved",
        ],
    )


@click.command("set-sequences-heading")
@click.argument("sequence_ids", nargs=-1, type=SEQUENCE_ID)
@click.option(
    "--value",
    type=click.IntRange(-359, 359),
    default=0,
    show_default=True,
    metavar="DEGREES",
    help="Camera direction relative to movement, from -359 to 359 (90 = looking right).",
)
@click.option("--overwrite", is_flag=True, help="Also replace headings that came from the pictures' own metadata.")
@batch_option
@json_option
@click.pass_context
def set_sequences_heading(
    ctx: click.Context,
    sequence_ids: tuple[UUID | str, ...],
    value: int,
    overwrite: bool,
    batch_size: int,
    as_json: bool,
) -> None:
    """Set picture headings from the movement path (geodesic azimuth to the next position) plus --value.

    Without --overwrite only missing or previously computed headings change. No id: every sequence.

    \b
    ops set-sequences-heading --value 90
    ops set-sequences-heading 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e --overwrite --json
    """
    from ops import sequences as core

    ids = expand_ids(sequence_ids) or None
    with database(ctx, "set-sequences-heading") as conn:
        total = core.count_targets(conn, ids)
        with progress(total, "setting headings") as step:
            result = core.set_headings(
                conn, ids, value=value, overwrite=overwrite, batch_size=batch_size, progress=step
            )
    emit(
        result.as_dict(),
        as_json,
        [
            f"{result.sequences_examined} sequences examined",
            f"{result.sequences_changed} sequences changed",
            f"{result.pictures_updated} pictures updated",
            f"{result.sequences_without_azimuth} sequences left unchanged: no movement (one picture or one position)",
        ],
    )
