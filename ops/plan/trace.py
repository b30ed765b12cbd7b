"""Replaying pending migrations on the scratch database, one statement at a time, and reading what each
statement did: the relation locks it took (``pg_locks`` of the replaying session), the tables and indexes
it rewrote (a new relfilenode), created, dropped or renamed, and the constraints it validated.

Each migration keeps its own transaction semantics: one transaction for the whole migration (its locks are
held until its commit), or, for ``-- transactional: false``, each statement on its own. A statement that
cannot run in a transaction block (``CREATE INDEX CONCURRENTLY``) runs as it would in production while a
second session holds an older snapshot: the statement waits for that snapshot with its locks taken, and a
third session reads them; then the snapshot is released and the statement ends. Before a migration without
a transaction, the index a killed run of it left is dropped (``ops.schema.leftovers``), as the upgrade does.
What the relations look like before and after each statement is read by ``ops.plan.relations``.
Long because the replay's three kinds of statement (in the migration's transaction, in one of its own,
outside one) are one class.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ops import db, queries
from ops.errors import PlanError
from ops.plan import vet
from ops.plan.relations import Effects, Relation, effects, snapshot
from ops.plan.source import Migration
from ops.schema import leftovers

# Lock modes, weakest first, as pg_locks names them; what each blocks of ordinary reads and writes.
MODES = (
    "AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
    "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock",
)  # fmt: skip
NOTHING, WRITES, READS_AND_WRITES = "nothing", "writes", "reads and writes"
BLOCKS = {
    "AccessShareLock": NOTHING, "RowShareLock": NOTHING, "RowExclusiveLock": NOTHING,
    "ShareUpdateExclusiveLock": NOTHING, "ShareLock": WRITES, "ShareRowExclusiveLock": WRITES,
    "ExclusiveLock": WRITES, "AccessExclusiveLock": READS_AND_WRITES,
}  # fmt: skip
OBSERVE_LIMIT_S = 120.0
POLL_S = 0.01


def sql_name(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE``, as the documentation and LOCK TABLE spell it."""
    words, word = [], ""
    for ch in mode.removesuffix("Lock"):
        if ch.isupper() and word:
            words.append(word)
            word = ""
        word += ch
    return " ".join([*words, word]).upper()


def stronger(a: str, b: str) -> str:
    return a if MODES.index(a) >= MODES.index(b) else b


def held_locks(conn: psycopg.Connection, pid: int) -> dict[int, str]:
    """Relation oid -> strongest granted mode, of session ``pid``."""
    held: dict[int, str] = {}
    for relation, mode, granted in conn.execute(queries.statement("plan", "locks"), {"pid": pid}).fetchall():
        if granted and relation is not None and mode in MODES:
            held[relation] = stronger(mode, held.get(relation) or mode)
    return held


@dataclass
class Lock:
    relation: str  # the table's name when the lock was taken
    table: str
    mode: str  # the strongest taken on the table or one of its indexes
    production: str | None  # the table's name in production; None: created by the upgrade (blocks nobody
    # before its commit)

    @property
    def existing(self) -> bool:
        return self.production is not None

    @property
    def blocks(self) -> str:
        return BLOCKS[self.mode] if self.existing else NOTHING

    def as_dict(self) -> dict[str, Any]:
        return {"relation": self.relation, "table": self.table, "mode": sql_name(self.mode), "existing": self.existing,
                "blocks": self.blocks}  # fmt: skip


@dataclass
class StatementTrace:
    number: int
    text: str
    tag: str = ""  # the server's command tag ("CREATE INDEX", "UPDATE 0")
    locks: list[Lock] = field(default_factory=list)  # taken by this statement
    effects: Effects = field(default_factory=Effects)
    error: str | None = None
    observed: bool = True  # False: ran outside a transaction without waiting, its locks could not be seen
    duration_s: float = 0.0  # on the scratch copy (empty tables): not an estimate

    @property
    def verb(self) -> str:
        return self.tag.split(" ")[0] if self.tag else ""


@dataclass
class MigrationTrace:
    id: str
    transactional: bool
    statements: list[StatementTrace] = field(default_factory=list)
    not_traced: str | None = None  # why (a Python migration)
    failed: bool = False
    interrupted: list[str] = field(default_factory=list)  # what a killed run left on the scratch copy, dropped first


def _describe_error(exc: psycopg.Error) -> str:
    return " ".join(str(exc).split())


class BeyondScratch(Exception):
    """A statement wrote to the cluster's shared catalogs while replayed: rolled back, never committed."""


def shared_writes(conn: psycopg.Connection) -> int:
    return int(db.scalar(conn, queries.statement("plan", "shared_writes")))


def _refused_why(number: int, text: str, exc: psycopg.Error) -> str:
    return (f"statement #{number} ({_summary(text)}) was refused to the replay's role, which may reach nothing "
            f"beyond the scratch copy ({_describe_error(exc)}): it {vet.BEYOND}, or needs a privilege the copy "
            "does not give; ops replayed none of this migration")  # fmt: skip


def _summary(text: str) -> str:
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    flat = " ".join(" ".join(lines).split())
    return flat if len(flat) <= 80 else flat[:79] + "…"


def refused(m: Migration) -> str | None:
    """Why a migration is not replayed at all (one of its statements is refused), or None."""
    for number, text in enumerate(m.statements, start=1):
        reason = vet.refusal(text, m.transactional)
        if reason:
            return f"statement #{number} ({_summary(text)}) {reason}; ops replayed none of this migration"
    return None


RAN_BEYOND = (
    "wrote to the cluster's shared catalogs (roles, databases, tablespaces, their settings) or changed its role "
    "when replayed, so it "
    "acts beyond the scratch database: rolled back, never committed; ops replayed none of this migration"
)


def taken_locks(
    new: dict[int, str], before: dict[int, str], rels: dict[int, Relation], initial: dict[int, Relation]
) -> list[Lock]:
    """The locks a statement took, one per table: the strongest of the table's own and of its indexes'
    (a lock on an index of production's blocks its table's users; one on a new index blocks nobody)."""
    by_table: dict[int, Lock] = {}
    for oid, mode in sorted(new.items()):
        if oid in before and MODES.index(before[oid]) >= MODES.index(mode):
            continue
        rel = rels.get(oid)
        if rel is None:
            continue  # a catalog, or a relation created and dropped within the statement
        table_oid = rel.table_oid if rel.is_index and rel.table_oid else oid
        if rel.is_index and oid not in initial and table_oid in initial:
            continue
        table = rels.get(table_oid, rel)
        prod = initial.get(table_oid)
        known = by_table.get(table_oid)
        if known is None:
            by_table[table_oid] = Lock(table.qualified, table.qualified, mode, prod.qualified if prod else None)
        else:
            known.mode = stronger(known.mode, mode)
    return sorted(by_table.values(), key=lambda lock: (-MODES.index(lock.mode), lock.table))


class Tracer:
    """Replays migrations on the scratch database (``url``), in order, and keeps what each statement did."""

    def __init__(self, url: str, connect_timeout_s: float, progress: Callable[[str], None] = lambda _m: None,
                 confined: bool = False, observer_url: str | None = None) -> None:  # fmt: skip
        self.url = url
        # the sessions that hold a snapshot and read the locks beside a statement run outside a transaction: as
        # the plan's own role, which sees the replay's session in pg_stat_activity (its confined role would not)
        self.observer_url = observer_url or url
        self.confined = confined  # run as a role of its own (ops.plan.confine)
        self.connect_timeout_s = connect_timeout_s
        self.progress = progress
        self.conn = db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s)
        self.pid = self.conn.info.backend_pid
        self.role = db.scalar(self.conn, queries.statement("plan", "current_role"))
        self.initial = snapshot(self.conn)

    def close(self) -> None:
        self.conn.close()

    def _refused(self, exc: psycopg.Error) -> bool:
        """Whether PostgreSQL refused a statement to the confined replay's role (a privilege beyond the copy)."""
        return self.confined and isinstance(exc, psycopg.errors.InsufficientPrivilege)

    def _beyond(self, shared: int) -> bool:
        """Whether the statement just run wrote to the cluster's shared catalogs or left the replay's role."""
        return (
            shared_writes(self.conn) != shared
            or db.scalar(self.conn, queries.statement("plan", "current_role")) != self.role
        )

    def replay(self, migrations: list[Migration]) -> list[MigrationTrace]:
        traces = []
        for m in migrations:
            self.progress(m.id)
            if m.python:
                traces.append(MigrationTrace(m.id, m.transactional, not_traced="a Python migration: ops runs no "
                                             "code of a release, so its locks and duration are unknown"))  # fmt: skip
                continue
            why = refused(m)
            if why:
                traces.append(MigrationTrace(m.id, m.transactional, not_traced=why))
                continue
            traces.append(self._transactional(m) if m.transactional else self._autocommit(m))
        return traces

    def _transactional(self, m: Migration) -> MigrationTrace:
        trace = MigrationTrace(m.id, True)
        self.conn.execute("BEGIN")
        rels, held = snapshot(self.conn), held_locks(self.conn, self.pid)
        shared = shared_writes(self.conn)
        for number, text in enumerate(m.statements, start=1):
            st = StatementTrace(number, text)
            trace.statements.append(st)
            started = time.monotonic()
            try:
                cur = self.conn.execute(text)
                st.tag = cur.statusmessage or ""
            except psycopg.Error as exc:
                self.conn.execute("ROLLBACK")
                if self._refused(exc):
                    return MigrationTrace(m.id, True, not_traced=_refused_why(number, text, exc))
                st.error = _describe_error(exc)
                trace.failed = True
                return trace
            st.duration_s = time.monotonic() - started
            if self._beyond(shared):
                self.conn.execute("ROLLBACK")
                return MigrationTrace(m.id, True, not_traced=f"statement #{number} ({_summary(text)}) {RAN_BEYOND}")
            after, now_held = snapshot(self.conn), held_locks(self.conn, self.pid)
            st.locks = taken_locks(now_held, held, {**rels, **after}, self.initial)
            st.effects = effects(rels, after, self.initial, st.tag)
            rels, held = after, now_held
        self.conn.execute("COMMIT")
        return trace

    def _autocommit(self, m: Migration) -> MigrationTrace:
        trace = MigrationTrace(m.id, False, interrupted=leftovers.drop_interrupted_indexes(self.conn, m.statements))
        for number, text in enumerate(m.statements, start=1):
            st = StatementTrace(number, text)
            trace.statements.append(st)
            if vet.block_boundary(text):
                st.tag = "(not replayed: each statement is traced in a transaction of its own)"
                continue
            before = snapshot(self.conn)
            try:
                self._in_own_transaction(st, before)
            except BeyondScratch:
                return MigrationTrace(m.id, False, not_traced=f"statement #{number} ({_summary(text)}) {RAN_BEYOND}")
            except psycopg.errors.ActiveSqlTransaction:
                self.conn.execute("ROLLBACK")
                if not vet.runs_outside_transaction(text):
                    return MigrationTrace(m.id, False, not_traced=(
                        f"statement #{number} ({_summary(text)}) refuses a transaction block, and outside one ops "
                        "replays only index builds, REINDEX, VACUUM, ANALYZE, CLUSTER, DROP … CONCURRENTLY and "
                        "ALTER TYPE … ADD VALUE (whose effects stay in the scratch database)"))  # fmt: skip
                try:
                    self._observed(st, before)
                except psycopg.Error as exc:
                    st.error = _describe_error(exc)
            except psycopg.Error as exc:
                self.conn.execute("ROLLBACK")
                if self._refused(exc):
                    return MigrationTrace(m.id, False, not_traced=_refused_why(number, text, exc))
                st.error = _describe_error(exc)
            if st.error:
                trace.failed = True
                return trace
        return trace

    def _in_own_transaction(self, st: StatementTrace, before: dict[int, Relation]) -> None:
        """A statement of a non-transactional migration that may run in a transaction block: traced in one
        (its locks end with the statement)."""
        self.conn.execute("BEGIN")
        held = held_locks(self.conn, self.pid)
        shared = shared_writes(self.conn)
        started = time.monotonic()
        cur = self.conn.execute(st.text)
        st.duration_s = time.monotonic() - started
        st.tag = cur.statusmessage or ""
        if self._beyond(shared):
            self.conn.execute("ROLLBACK")
            raise BeyondScratch
        after, now_held = snapshot(self.conn), held_locks(self.conn, self.pid)
        self.conn.execute("COMMIT")
        st.locks = taken_locks(now_held, held, {**before, **after}, self.initial)
        st.effects = effects(before, after, self.initial, st.tag)

    def _observed(self, st: StatementTrace, before: dict[int, Relation]) -> None:
        """A statement that refuses transaction blocks: run as in production (``run_observed``)."""
        st.tag, st.duration_s, seen = run_observed(self.conn, self.observer_url, st.text, self.connect_timeout_s)
        after = snapshot(self.conn)
        st.locks = taken_locks(seen, {}, {**before, **after}, self.initial)
        st.observed = bool(seen)
        st.effects = effects(before, after, self.initial, st.tag)


def run_observed(
    conn: psycopg.Connection, url: str, text: str, connect_timeout_s: float
) -> tuple[str, float, dict[int, str]]:
    """Run ``text`` on ``conn`` (autocommit) while another session holds an older snapshot, which a
    statement such as ``CREATE INDEX CONCURRENTLY`` waits for with its locks taken; a third session reads
    them meanwhile. Returns the command tag, the duration and the strongest lock seen on each relation."""
    seen: dict[int, str] = {}
    outcome: dict[str, Any] = {}
    pid = conn.info.backend_pid
    with (
        db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as blocker,
        db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as watcher,
    ):
        blocker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        blocker.execute("SELECT 1")  # takes the snapshot the statement will wait for…
        watcher.execute("SELECT txid_current()")  # …made older than the statement's by a committed xid

        def run() -> None:
            started = time.monotonic()
            try:
                outcome["tag"] = conn.execute(text).statusmessage or ""
            except psycopg.Error as exc:
                outcome["error"] = exc
            outcome["duration"] = time.monotonic() - started

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        deadline = time.monotonic() + OBSERVE_LIMIT_S
        released = False
        while worker.is_alive() and time.monotonic() < deadline:
            waiting = watcher.execute(queries.statement("plan", "waiting"), {"pid": pid}).fetchone()
            for oid, mode in held_locks(watcher, pid).items():  # read after: a waiting statement holds them
                seen[oid] = stronger(mode, seen.get(oid, mode))
            if not released and waiting and waiting[0] == "Lock":
                blocker.execute("COMMIT")
                released = True
            time.sleep(POLL_S)
        unseen = not released and worker.is_alive()  # waiting all along, and the watcher never saw it wait
        if not released:
            blocker.execute("COMMIT")
        worker.join()
    if unseen:  # its duration and locks would be the watch's, not the statement's: say so, do not guess
        raise PlanError(f"the replay could not watch {_summary(text)} wait for its snapshot within "
                        f"{OBSERVE_LIMIT_S:.0f} s (pg_stat_activity did not show its session)")  # fmt: skip
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("tag", ""), outcome.get("duration", 0.0), seen
