"""``ops cleanup``: remove sequences, pictures and their files, safely. (The module is long because its
three ways, per sequence, whole instance and dry run, share one set of statements and one safety rule.)

Selection: the given sequences and the pictures no other sequence holds (or the whole instance, a batch of
pictures at a time). Flags pick what goes: database entries, derivatives (cache), originals (permanent),
and with a full cleanup tmp too. Only the files of the pictures being deleted go: anything else in the
storage (files outside the layout, orphans, an operator's notes) is counted and left.

The database and the storage never disagree in the dangerous direction: when rows and files both go, one
transaction deletes the rows and queues one ``delete`` job per picture; only after the commit are the jobs
processed, by the worker's own code. An interrupted cleanup leaves jobs that a re-run or ``ops worker``
completes. A database-only cleanup touches no file (they become orphans: ``ops storage orphans``).

A dry run reads only: it runs in a read-only session, reads the selection in place (no temporary table)
and counts the selection's own rows and files; no queue is processed, nothing is created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ops import db, queries, refresh, sequences, worker
from ops.errors import ConfigError
from ops.report import Log, silent
from ops.schema import capabilities
from ops.schema.kind import detect
from ops.settings import CLEANUP_BATCH
from ops.storage import KINDS, DeleteResult, Storage
from ops.storage.layout import picture_of
from ops.storage_check import prove_location

TABLES = ("sequences", "sequences_pictures", "pictures", "job_queue", "upload_sets")
FILE_BATCH = 1000
SELECTION = "cleanup_select"


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
    other_files_kept: dict[str, int] = field(default_factory=dict)  # whole instance: files of no deleted picture
    finished_earlier_delete_jobs: int = 0
    pictures_with_files_not_deleted: int = 0
    files_queued_for_worker: int = 0  # --enqueue-only: pictures whose files the queued jobs will delete
    other_delete_jobs_waiting: int = 0  # a cleanup of named sequences leaves the others' jobs to the worker
    files_already_gone: dict[str, int] = field(default_factory=dict)  # not there when their deletion came
    storage_unavailable: str | None = None  # the storage stopped answering: the jobs left wait for ops worker
    delete_jobs: worker.BatchResult | None = None
    storage_requests: dict[str, int] = field(default_factory=dict)
    not_deleted_examples: list[str] = field(default_factory=list)

    failed_pictures: set[UUID] = field(default_factory=set, repr=False)

    def add_files(self, deletion: DeleteResult) -> None:
        for kind, n in deletion.files.items():
            self.files[kind] += n
        for kind, n in deletion.already_gone.items():
            self.files_already_gone[kind] = self.files_already_gone.get(kind, 0) + n
        self.failed_pictures |= set(deletion.failed)
        self.pictures_with_files_not_deleted = len(self.failed_pictures)
        for why in deletion.failed.values():
            if len(self.not_deleted_examples) < sequences.SHOWN_IDS and why not in self.not_deleted_examples:
                self.not_deleted_examples.append(why)

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
    batch_size: int = CLEANUP_BATCH.default,
    log: Log = silent,
) -> CleanupResult:
    """Run (or, with ``dry_run``, count) a cleanup. ``conn`` is an autocommit connection (a read-only one
    for a dry run).

    With ``enqueue_only``, a cleanup of rows and files stops after the commit: the queued delete jobs are
    left to ``ops worker`` (or a re-run)."""
    if plan.kinds and storage is None:
        raise ConfigError(
            "deleting files needs the storage settings (FS_URL, or FS_PERMANENT_URL + FS_DERIVATES_URL + FS_TMP_URL)"
        )
    result = CleanupResult(dry_run)
    if storage is not None and plan.kinds:  # before any row goes (and in a dry run: the run would refuse too)
        prove_location(conn, storage)
    if plan.seq_ids is None:
        _whole_instance(conn, storage, plan, result, dry_run, enqueue_only, batch_size, log)
    else:
        _per_sequence(conn, storage, plan, result, dry_run, enqueue_only, batch_size, log)
        if plan.kinds:  # the queue's other delete jobs stay for the worker
            result.other_delete_jobs_waiting = int(db.scalar(conn, queries.statement(SELECTION, "delete_jobs_waiting")))
    if storage is not None:
        result.storage_requests = storage.requests()
    return result


def _by_jobs(conn: psycopg.Connection, plan: CleanupPlan) -> bool:
    """Whether files go by delete jobs. On a Panoramax database any `delete` job is read by Panoramax's
    worker as "delete every file": ops queues jobs there only when every kind goes; otherwise it deletes
    the files itself right after the commit."""
    return plan.kinds == KINDS or not detect(conn).panoramax


def _delete_selection(conn: psycopg.Connection, plan: CleanupPlan, params: dict[str, Any], by_jobs: bool) -> None:
    """Delete the rows of the selection held in cleanup_pictures (and the sequences of ``params``), queuing
    the delete jobs of its files first when they go by jobs; its grid cells expire (Panoramax)."""
    if plan.kinds and by_jobs:
        enqueue = "enqueue" if capabilities.one_delete_job_per_picture(conn) else "enqueue_unindexed"
        statement = queries.composed("jobs_enqueue_delete", enqueue, wanted="wanted", merged="merged")
        conn.execute(statement, {**params, "kinds": json.dumps(list(plan.kinds))})
    refresh.expire_cells_of_deleted(conn)
    if params["seq_ids"]:
        unlink_sequences(conn, params["seq_ids"])
    for name in ("upload_sets_of_pictures", "sequences", "pictures", "trigger_jobs", "empty_upload_sets"):
        conn.execute(queries.statement("cleanup_delete", name), params)


def _hold(conn: psycopg.Connection, selection: str, params: dict[str, Any]) -> None:
    conn.execute(queries.composed(SELECTION, "hold", selection=selection), params)
    conn.execute(queries.statement(SELECTION, "primary_key"))


def _rows(conn: psycopg.Connection, query: str | sql.Composed, params: dict[str, Any] | None = None) -> dict[str, int]:
    return dict(zip(TABLES, db.one(conn, query, params), strict=True))


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
    params: dict[str, Any] = {"seq_ids": sorted(set(ids) - set(missing))}
    if dry_run:
        _preview(conn, storage, plan, params, result)
        return
    if plan.database and plan.kinds and not enqueue_only:
        assert storage is not None
        earlier = worker.drain(conn, storage, batch_size=batch_size, log=log, sequences=ids)
        result.finished_earlier_delete_jobs = earlier.jobs
        result.add_files(earlier.deletion)
        if earlier.jobs:
            log(f"finished {earlier.jobs} delete jobs of an interrupted earlier cleanup of these sequences")
    by_jobs = _by_jobs(conn, plan)
    with conn.transaction():
        _serialise(conn)
        _hold(conn, "of_sequences", params)
        if plan.database:
            result.rows = _rows(conn, queries.statement(SELECTION, "counts"), params)
            if plan.kinds and not by_jobs:
                _hold_ids_past_commit(conn)
            _delete_selection(conn, plan, params, by_jobs)
        elif plan.kinds:
            assert storage is not None
            for batch in _picture_batches(conn, queries.statement(SELECTION, "held_ids")):
                result.add_files(storage.delete_pictures(dict.fromkeys(plan.kinds, batch)))
    if plan.database and plan.kinds:
        _after_commit(conn, storage, plan, result, by_jobs, enqueue_only, batch_size, log, sequences=ids)


def _after_commit(
    conn: psycopg.Connection, storage: Storage | None, plan: CleanupPlan, result: CleanupResult, by_jobs: bool,
    enqueue_only: bool, batch_size: int, log: Log, held: list[UUID] | None = None,
    sequences: list[UUID] | None = None,
) -> None:  # fmt: skip
    """The files of rows deleted and committed: by the queued jobs (now, or left to the worker), or
    directly (``held``: these ids; None: the cursor held past the commit)."""
    assert storage is not None
    if not by_jobs:
        for batch in [held] if held is not None else _held_batches(conn):
            result.add_files(storage.delete_pictures(dict.fromkeys(plan.kinds, batch)))
    elif enqueue_only:
        result.files_queued_for_worker += result.rows["pictures"] if held is None else len(held)
    elif held is None:
        _drain(conn, storage, result, batch_size, log, sequences)


def _drain(
    conn: psycopg.Connection, storage: Storage, result: CleanupResult, batch_size: int, log: Log,
    sequences: list[UUID] | None = None,
) -> None:  # fmt: skip
    """Process the queued delete jobs now: those of this cleanup of ``sequences`` (None: a whole-instance
    cleanup, every job). Other jobs (Panoramax's, another cleanup's) are the worker's."""
    result.delete_jobs = worker.drain(conn, storage, batch_size=batch_size, log=log, sequences=sequences)
    result.add_files(result.delete_jobs.deletion)
    result.storage_unavailable = result.delete_jobs.storage_unavailable


def _preview(
    conn: psycopg.Connection, storage: Storage | None, plan: CleanupPlan, params: dict[str, Any],
    result: CleanupResult,
) -> None:  # fmt: skip
    """A dry run of a per-sequence cleanup: the selection read in place, its rows and files counted."""
    with conn.transaction():
        if plan.database:
            result.rows = _rows(conn, queries.composed(SELECTION, "preview_counts", selection="of_sequences",
                                                       counts="counts"), params)  # fmt: skip
        if storage is not None:
            ids = queries.composed(SELECTION, "preview_ids", selection="of_sequences")
            for batch in _picture_batches(conn, ids, params):
                for kind in plan.kinds:
                    result.files[kind] += storage.areas[kind].count_pictures(batch)


HELD_CURSOR = "cleanup_held_pictures"


def _hold_ids_past_commit(conn: psycopg.Connection) -> None:
    """Keep the selected pictures' ids past the commit (a cursor WITH HOLD, materialised at commit), to
    delete their files once no row points at them any more."""
    conn.execute(sql.SQL("DECLARE {} CURSOR WITH HOLD FOR {}").format(
        sql.Identifier(HELD_CURSOR), sql.SQL(queries.statement(SELECTION, "held_ids"))))  # fmt: skip


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


def _picture_batches(
    conn: psycopg.Connection, query: str | sql.Composed, params: dict[str, Any] | None = None
) -> Iterator[list[UUID]]:
    """The ids ``query`` returns, in batches, from a server-side cursor: memory stays flat. Call inside a
    transaction."""
    with conn.cursor(name="cleanup_pictures_cursor") as cur:
        cur.itersize = FILE_BATCH
        cur.execute(query, params)
        while rows := cur.fetchmany(FILE_BATCH):
            yield [r[0] for r in rows]


def _all_pictures(conn: psycopg.Connection, batch_size: int) -> Iterator[list[UUID]]:
    """Every picture id, a page at a time (keyset paging: each page its own short statement)."""
    after = UUID(int=0)
    while rows := conn.execute(queries.statement(SELECTION, "pictures_page"),
                               {"after": after, "batch_size": batch_size}).fetchall():  # fmt: skip
        yield [r[0] for r in rows]
        after = rows[-1][0]


def _whole_instance(
    conn: psycopg.Connection, storage: Storage | None, plan: CleanupPlan, result: CleanupResult, dry_run: bool,
    enqueue_only: bool, batch_size: int, log: Log,
) -> None:  # fmt: skip
    if plan.database:
        result.rows = _rows(conn, queries.load("cleanup_all_counts"))
    if dry_run:  # each area listed once, as the run lists it: never a listing per picture
        if storage is not None and plan.kinds:
            ours, listed = _count_listed(conn, storage, plan.kinds)
            result.files.update(ours)
            result.other_files_kept = {k: listed[k] - ours[k] for k in plan.kinds}
        return
    if not plan.database:
        assert storage is not None or not plan.kinds
        for batch in _all_pictures(conn, batch_size) if plan.kinds else []:
            assert storage is not None
            result.add_files(storage.delete_pictures(dict.fromkeys(plan.kinds, batch)))
    else:
        _delete_all_rows(conn, storage, plan, result, enqueue_only, batch_size, log)
        log("database entries removed")
        if plan.kinds and _by_jobs(conn, plan) and not enqueue_only:
            assert storage is not None
            _drain(conn, storage, result, batch_size, log)
    if plan.kinds and not enqueue_only and not result.storage_unavailable:
        result.other_files_kept = _listed(storage, plan.kinds)


REMOVED_KINDS = ("file", "symlink", "folder-link")  # what a deletion removes (a link: itself); never "special"


def _count_listed(
    conn: psycopg.Connection, storage: Storage, kinds: tuple[str, ...]
) -> tuple[dict[str, int], dict[str, int]]:
    """A whole-instance dry run: (files of pictures that have a row, every entry listed), per kind, each area
    listed once and its picture ids looked up a page at a time."""
    ours, listed = dict.fromkeys(kinds, 0), dict.fromkeys(kinds, 0)
    for kind in kinds:
        page: dict[UUID, int] = {}
        for stored in storage.areas[kind].list_files():
            listed[kind] += 1
            pic_id = picture_of(kind, stored.key) if stored.kind in REMOVED_KINDS else None
            if pic_id is None:
                continue
            page[pic_id] = page.get(pic_id, 0) + 1
            if len(page) >= FILE_BATCH:
                ours[kind] += _files_of_rows(conn, page)
                page = {}
        ours[kind] += _files_of_rows(conn, page)
    return ours, listed


def _files_of_rows(conn: psycopg.Connection, page: dict[UUID, int]) -> int:
    if not page:
        return 0
    rows = conn.execute(queries.statement(SELECTION, "existing"), {"ids": list(page)}).fetchall()
    return sum(page[r[0]] for r in rows)


def _listed(storage: Storage | None, kinds: tuple[str, ...]) -> dict[str, int]:
    """How many files each area holds: after a whole-instance cleanup, those of no deleted picture."""
    return {kind: sum(1 for _ in storage.areas[kind].list_files()) for kind in kinds} if storage else {}


def _delete_all_rows(
    conn: psycopg.Connection, storage: Storage | None, plan: CleanupPlan, result: CleanupResult,
    enqueue_only: bool, batch_size: int, log: Log,
) -> None:  # fmt: skip
    """Every sequence (with its links), then the pictures a batch per transaction by the statements of a
    per-sequence cleanup (their delete jobs queued with them), then what is left of the upload sets."""
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
    by_jobs = _by_jobs(conn, plan)
    while True:
        with conn.transaction():
            _serialise(conn)
            _hold(conn, "whole_instance_batch", params)
            held = [r[0] for r in conn.execute(queries.statement(SELECTION, "held_ids")).fetchall()]
            if held:
                _delete_selection(conn, plan, {"seq_ids": []}, by_jobs)
        if not held:
            break
        if plan.kinds:
            _after_commit(conn, storage, plan, result, by_jobs, enqueue_only, batch_size, log, held)
    while conn.execute(statements["upload_sets"], params).rowcount:
        pass
