"""``ops cleanup``: remove sequences, pictures and their files, safely.

Selection: the given sequences and the pictures no other sequence holds (or the whole instance). Flags pick
what goes: database entries, derivatives (cache), originals (permanent), and with a full cleanup tmp too.

The database and the storage never disagree in the dangerous direction: when rows and files both go, one
transaction deletes the rows and queues one ``delete`` job per picture; only after the commit are the jobs
processed, by the worker's own code. An interrupted cleanup leaves jobs that a re-run or ``ops worker``
completes. A database-only cleanup touches no file (they become orphans: ``ops storage orphans``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ops import db, jobs, queries, sequences
from ops.errors import ConfigError
from ops.report import Report as Log
from ops.report import silent
from ops.schema.kind import detect
from ops.storage import KINDS, DeleteResult, Storage

TABLES = ("sequences", "sequences_pictures", "pictures", "job_queue", "upload_sets")
FILE_BATCH = 1000


@dataclass(frozen=True)
class CleanupPlan:
    """What to remove: ``seq_ids`` None means the whole instance."""

    seq_ids: list[UUID] | None
    database: bool
    kinds: tuple[str, ...]

    @classmethod
    def from_flags(
        cls, seq_ids: list[UUID] | None, *, full: bool, database: bool, cache: bool, permanent: bool
    ) -> CleanupPlan:
        if full or not (database or cache or permanent):
            return cls(seq_ids, True, KINDS)
        kinds = tuple(k for k, wanted in (("permanent", permanent), ("derivates", cache)) if wanted)
        return cls(seq_ids, database, kinds)


@dataclass
class CleanupResult:
    dry_run: bool
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    finished_earlier_delete_jobs: int = 0
    pictures_with_files_not_deleted: int = 0
    delete_jobs: jobs.BatchResult | None = None
    storage_requests: dict[str, int] = field(default_factory=dict)

    failed_pictures: set[UUID] = field(default_factory=set, repr=False)

    def add_files(self, deletion: DeleteResult) -> None:
        for kind, n in deletion.files.items():
            self.files[kind] += n
        self.failed_pictures |= set(deletion.failed)
        self.pictures_with_files_not_deleted = len(self.failed_pictures)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "failed_pictures"}
        data["delete_jobs"] = self.delete_jobs.as_dict() if self.delete_jobs else None
        return data


# pg_advisory_xact_lock key of the cleanup selection: b"opsclean" as an integer.
CLEANUP_LOCK_KEY = int.from_bytes(b"opsclean", "big")


def _cleaned_earlier(conn: psycopg.Connection, ids: list[UUID]) -> set[UUID]:
    """The ids an earlier cleanup removed, as its delete jobs (queued or done) record them."""
    return {r[0] for r in conn.execute(queries.load("cleaned_earlier"), {"ids": ids}).fetchall()}


def _serialise(conn: psycopg.Connection) -> None:
    """One cleanup selects at a time (until its transaction ends), so two cleanups of sequences sharing a
    picture each see the other's deletions: the picture goes with the second, never stranded by both."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (CLEANUP_LOCK_KEY,))


def cleanup(
    conn: psycopg.Connection,
    storage: Storage | None,
    plan: CleanupPlan,
    *,
    dry_run: bool = False,
    enqueue_only: bool = False,
    batch_size: int = jobs.DEFAULT_BATCH_SIZE,
    log: Log = silent,
) -> CleanupResult:
    """Run (or, with ``dry_run``, count) a cleanup. ``conn`` is an autocommit connection.

    With ``enqueue_only``, a cleanup of rows and files stops after the commit: the queued delete jobs are
    left to ``ops worker`` (or a re-run)."""
    if plan.kinds and storage is None:
        raise ConfigError(
            "deleting files needs the storage settings (FS_URL, or FS_PERMANENT_URL + FS_DERIVATES_URL + FS_TMP_URL)"
        )
    result = CleanupResult(dry_run)
    if plan.seq_ids is None:
        _whole_instance(conn, storage, plan, result, dry_run, batch_size, log)
    else:
        _per_sequence(conn, storage, plan, result, dry_run, enqueue_only, batch_size, log)
    if storage is not None:
        result.storage_requests = storage.requests()
    return result


def _per_sequence(
    conn: psycopg.Connection, storage: Storage | None, plan: CleanupPlan, result: CleanupResult,
    dry_run: bool, enqueue_only: bool, batch_size: int, log: Log,
) -> None:  # fmt: skip
    ids = sorted(set(plan.seq_ids or []))
    missing = sequences.unknown_sequences(conn, ids)
    unknown = missing
    if missing and plan.database and plan.kinds:  # cleaned by an interrupted earlier run: finish it
        cleaned = _cleaned_earlier(conn, missing)
        unknown = [i for i in missing if i not in cleaned]
    sequences.raise_unknown(unknown)
    existing = set(ids) - set(missing)
    if plan.database and plan.kinds and not dry_run and not enqueue_only:
        assert storage is not None
        earlier = jobs.drain(conn, storage, batch_size=batch_size, log=log)
        result.finished_earlier_delete_jobs = earlier.jobs
        result.add_files(earlier.deletion)
        if earlier.jobs:
            log(f"finished {earlier.jobs} delete jobs left by an earlier run")
    params = {"seq_ids": sorted(existing)}
    # On a Panoramax database any `delete` job is read by Panoramax's worker as "delete every file": ops
    # queues jobs there only when every kind goes; otherwise it deletes the files itself after the commit.
    by_jobs = plan.kinds == KINDS or not detect(conn).panoramax
    with conn.transaction() as tx:
        _serialise(conn)
        for statement in queries.named("cleanup_select").values():
            conn.execute(statement, params)
        if plan.database:
            result.rows = dict(zip(TABLES, db.one(conn, queries.load("cleanup_counts"), params), strict=True))
        if dry_run:
            if storage is not None:
                _count_files(conn, storage, plan.kinds, result)
            raise psycopg.Rollback(tx)
        if plan.database:
            if plan.kinds and by_jobs:
                conn.execute(queries.load("jobs_enqueue_delete"), {**params, "kinds": json.dumps(list(plan.kinds))})
            elif plan.kinds:
                _hold_selection(conn)
            unlink_sequences(conn, params["seq_ids"])
            for statement in queries.named("cleanup_delete").values():
                conn.execute(statement, params)
        elif plan.kinds:
            assert storage is not None
            for batch in _picture_batches(conn):
                result.add_files(storage.delete_pictures(dict.fromkeys(plan.kinds, batch)))
    if dry_run:  # counted and rolled back: no queue processed, no file touched
        return
    if plan.database and plan.kinds and not by_jobs:
        assert storage is not None
        for batch in _held_batches(conn):
            result.add_files(storage.delete_pictures(dict.fromkeys(plan.kinds, batch)))
    elif plan.database and plan.kinds and not enqueue_only:
        assert storage is not None
        result.delete_jobs = jobs.drain(conn, storage, batch_size=batch_size, log=log)
        result.add_files(result.delete_jobs.deletion)


HELD_CURSOR = "cleanup_held_pictures"


def _hold_selection(conn: psycopg.Connection) -> None:
    """Keep the selected pictures' ids past the commit (a cursor WITH HOLD, materialised at commit), to
    delete their files once no row points at them any more."""
    conn.execute(sql.SQL("DECLARE {} CURSOR WITH HOLD FOR SELECT id FROM cleanup_pictures ORDER BY id").format(
        sql.Identifier(HELD_CURSOR)))  # fmt: skip


def _held_batches(conn: psycopg.Connection) -> Iterator[list[UUID]]:
    fetch = sql.SQL("FETCH {} FROM {}").format(sql.Literal(FILE_BATCH), sql.Identifier(HELD_CURSOR))
    try:
        while rows := conn.execute(fetch).fetchall():
            yield [r[0] for r in rows]
    finally:
        conn.execute(sql.SQL("CLOSE {}").format(sql.Identifier(HELD_CURSOR)))


def unlink_sequences(conn: psycopg.Connection, seq_ids: list[UUID]) -> None:
    """Clear the links into these sequences that would block their deletion on a Panoramax database (each
    statement of sequence_links.sql runs where its table exists)."""
    for table, statement in queries.named("sequence_links").items():
        if db.table_exists(conn, table):
            conn.execute(statement, {"seq_ids": seq_ids})


def _picture_batches(conn: psycopg.Connection) -> Iterator[list[UUID]]:
    """The selected pictures in batches, from a server-side cursor: memory stays flat."""
    with conn.cursor(name="cleanup_pictures_cursor") as cur:
        cur.itersize = FILE_BATCH
        cur.execute("SELECT id FROM cleanup_pictures ORDER BY id")
        while rows := cur.fetchmany(FILE_BATCH):
            yield [r[0] for r in rows]


def _count_files(conn: psycopg.Connection, storage: Storage, kinds: tuple[str, ...], result: CleanupResult) -> None:
    for batch in _picture_batches(conn):
        for kind in kinds:
            result.files[kind] += storage.areas[kind].count_pictures(batch)


def _whole_instance(
    conn: psycopg.Connection, storage: Storage | None, plan: CleanupPlan, result: CleanupResult, dry_run: bool,
    batch_size: int, log: Log,
) -> None:  # fmt: skip
    if plan.database:
        result.rows = dict(zip(TABLES, db.one(conn, queries.load("cleanup_all_counts")), strict=True))
    if dry_run:
        if storage is not None:
            for area in plan.kinds:
                result.files[area] = sum(1 for _ in storage.areas[area].list_files())
        return
    if plan.database:
        _delete_all_rows(conn, batch_size)
        log("database entries removed")
    for area in plan.kinds:
        assert storage is not None
        result.add_files(storage.areas[area].wipe())
        log(f"{area} storage emptied")


def _delete_all_rows(conn: psycopg.Connection, batch_size: int) -> None:
    """Every sequence, picture and upload set, a batch per transaction: sequences (with their links),
    then pictures (with the delete jobs Panoramax's trigger queues for them), then upload sets."""
    statements = queries.named("cleanup_all_delete")
    params: dict[str, Any] = {"batch_size": batch_size}
    while True:
        with conn.transaction():
            _serialise(conn)
            seq_ids = [r[0] for r in conn.execute(statements["sequence_batch"], params).fetchall()]
            if not seq_ids:
                break
            unlink_sequences(conn, seq_ids)
            conn.execute(statements["sequences"], {"seq_ids": seq_ids})
    while True:
        with conn.transaction():
            pic_ids = [r[0] for r in conn.execute(statements["pictures"], params).fetchall()]
            conn.execute(statements["trigger_jobs"], {"pic_ids": pic_ids})
        if not pic_ids:
            break
    while conn.execute(statements["upload_sets"], params).rowcount:
        pass
