"""Sequence upkeep: picture order (reorder) and headings from the movement path.

Both work set-based, a batch of sequences per transaction (no round trip per picture or per sequence), so
a run over a whole instance never holds one giant transaction and an interrupted run can simply be run
again: they only write what differs from the wanted result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import psycopg

from ops import db, queries
from ops.errors import UnknownSequences, UsageError

DEFAULT_BATCH_SIZE = 1000
Progress = Callable[[int], None]


def _noop(_: int) -> None:
    pass


def unknown_sequences(conn: psycopg.Connection, ids: list[UUID]) -> list[UUID]:
    """The ids of ``ids`` that are no sequence, sorted."""
    rows = conn.execute(
        "SELECT ids.id FROM unnest(%(ids)s::uuid[]) AS ids (id) "
        "WHERE NOT EXISTS (SELECT 1 FROM sequences s WHERE s.id = ids.id) ORDER BY 1",
        {"ids": ids},
    ).fetchall()
    return [r[0] for r in rows]


SHOWN_IDS = 10


def raise_unknown(unknown: list[UUID]) -> None:
    """UnknownSequences naming the first unknown ids (and how many more: the line stays short)."""
    if unknown:
        shown = ", ".join(map(str, unknown[:SHOWN_IDS]))
        more = f" and {len(unknown) - SHOWN_IDS:,} more" if len(unknown) > SHOWN_IDS else ""
        what = "no such sequence" if len(unknown) == 1 else f"{len(unknown):,} ids are no sequence"
        raise UnknownSequences(f"{what}: {shown}{more} (nothing was changed)")


def check_sequences_exist(conn: psycopg.Connection, ids: list[UUID]) -> None:
    """Raise UnknownSequences listing every id of ``ids`` that is no sequence."""
    raise_unknown(unknown_sequences(conn, ids))


def count_targets(conn: psycopg.Connection, ids: list[UUID] | None) -> int:
    if ids:
        return len(set(ids))
    return int(db.scalar(conn, "SELECT count(*) FROM sequences WHERE status <> 'deleted'"))


def target_batches(conn: psycopg.Connection, ids: list[UUID] | None, batch_size: int) -> Iterator[list[UUID]]:
    """The sequences to work on, in batches: the given ids, or every sequence not deleted (keyset paging,
    so memory stays flat whatever the number of sequences)."""
    if ids:
        unique = sorted(set(ids))
        for start in range(0, len(unique), batch_size):
            yield unique[start : start + batch_size]
        return
    after = UUID(int=0)
    while True:
        rows = conn.execute(
            "SELECT id FROM sequences WHERE status <> 'deleted' AND id > %(after)s ORDER BY id LIMIT %(n)s",
            {"after": after, "n": batch_size},
        ).fetchall()
        if not rows:
            return
        batch = [r[0] for r in rows]
        yield batch
        after = batch[-1]


def recompute_derived(conn: psycopg.Connection, seq_ids: list[UUID]) -> None:
    """Recompute geom, bbox, min/max picture time and picture count of the given sequences."""
    conn.execute(queries.load("sequence_derived"), {"seq_ids": seq_ids})


@dataclass
class ReorderResult:
    sequences_examined: int = 0
    sequences_changed: int = 0
    pictures_moved: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reorder(
    conn: psycopg.Connection,
    ids: list[UUID] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress = _noop,
) -> ReorderResult:
    """Rank the pictures of each sequence 1..n by (ts, originalFileName, id) and recompute its derived
    fields, committing a batch of sequences per transaction. Sequences already in order are not written."""
    if ids:
        check_sequences_exist(conn, ids)
    result = ReorderResult()
    for batch in target_batches(conn, ids, batch_size):
        with conn.transaction():
            # A batch reads a small share of all pictures: index lookups beat a full scan of pictures per batch
            # (measured at 1M pictures: 16 s instead of 18 s for the whole instance).
            conn.execute("SET LOCAL enable_hashjoin = off")
            conn.execute("SET LOCAL enable_mergejoin = off")
            moved = conn.execute(queries.statement("reorder_ranks", "ranks"), {"seq_ids": batch}).fetchall()
            conn.execute("SET LOCAL enable_hashjoin = on")
            conn.execute("SET LOCAL enable_mergejoin = on")
            changed = [row[0] for row in moved]
            if changed:
                conn.execute(queries.statement("reorder_ranks", "flip"), {"changed": changed})
                recompute_derived(conn, changed)
        result.sequences_examined += len(batch)
        result.sequences_changed += len(changed)
        result.pictures_moved += sum(row[1] for row in moved)
        progress(len(batch))
    return result


@dataclass
class HeadingResult:
    sequences_examined: int = 0
    sequences_changed: int = 0
    pictures_updated: int = 0
    sequences_without_azimuth: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


HEADING_RANGE = (-359, 359)


def set_headings(
    conn: psycopg.Connection,
    ids: list[UUID] | None = None,
    *,
    value: int = 0,
    overwrite: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress = _noop,
) -> HeadingResult:
    """Set picture headings to the geodesic azimuth of movement plus ``value`` degrees (90 = looking right).

    Without ``overwrite`` only NULL or previously computed headings change."""
    low, high = HEADING_RANGE
    if not low <= value <= high:
        raise UsageError(f"heading value must be an integer from {low} to {high}, got {value}")
    if ids:
        check_sequences_exist(conn, ids)
    result = HeadingResult()
    query = queries.load("headings")
    for batch in target_batches(conn, ids, batch_size):
        with conn.transaction():
            changed, updated, without = db.one(conn, query, {"seq_ids": batch, "value": value, "overwrite": overwrite})
        result.sequences_examined += len(batch)
        result.sequences_changed += changed
        result.pictures_updated += updated
        result.sequences_without_azimuth += without
        progress(len(batch))
    return result
