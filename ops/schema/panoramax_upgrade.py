"""``ops db upgrade --panoramax SOURCE`` (and ``ops db rollback --panoramax SOURCE``, the same way back):
Panoramax's pending migrations applied with yoyo into Panoramax's own history, as ``flask db upgrade`` applies them (yoyo's default tables ``_yoyo_migration`` and ``_yoyo_log``, its
lock row, the same ids, hashes and order: yoyo itself writes them), with what an upgrade of a live database
needs and ``flask db upgrade`` lacks:

- each migration under a short ``lock_timeout``: a statement waiting for a lock behind a long read gives up
  within seconds instead of queueing every write of its table behind it; the migration rolls back, the
  blocking session is named, and it is tried again with backoff, up to a deadline;
- a progress line while a statement runs long (what runs, for how long, the plan's estimate beside it);
- ``ANALYZE`` of the tables whose columns an earlier migration of the same upgrade added, between the two
  (the planner would otherwise guess, and may choose a plan thousands of times slower);
- SIGINT/SIGTERM (the CLI turns SIGTERM into KeyboardInterrupt) cancel the running statement: the migration
  in progress rolls back, those applied before it stay applied and are listed.

This is the one place ops writes Panoramax's history, and only through yoyo.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ops import db, queries
from ops.errors import MigrationError, OpsError
from ops.report import Log, silent
from ops.schema import leftovers, yoyo_adapter

FILE = "panoramax_upgrade"
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"  # another session waited on a lock of the migration while holding one it wanted


@dataclass
class Options:
    lock_timeout_s: float = 3.0  # a statement's wait for a lock, per attempt
    deadline_s: float = 600.0  # the longest one migration is retried for
    backoff_s: float = 1.0  # the first wait between attempts, doubled each time (at most BACKOFF_MAX_S)
    progress_every_s: float = 10.0
    analyze_after: dict[str, list[str]] = field(default_factory=dict)  # migration id -> tables, once applied
    estimates: dict[str, str] = field(default_factory=dict)  # migration id -> the plan's figure ("≥ 0.3 s")


BACKOFF_MAX_S = 30.0


@dataclass
class Applied:
    id: str
    seconds: float
    attempts: int
    analyzed: list[str] = field(default_factory=list)


@dataclass
class Result:
    pending: list[str]  # before the run, in the order yoyo applies them
    applied: list[Applied] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped before the end (interrupted, deadline)

    def as_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "applied": [asdict(a) for a in self.applied],
                "left": self.pending[len(self.applied):], "stopped": self.stopped}  # fmt: skip


class UpgradeStopped(OpsError):
    """The upgrade stopped before its end (interrupted, or a lock never granted): what was applied stays."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


def app_name() -> str:
    """The application_name of the upgrade's connections (yoyo opens its own: ops watches them by name)."""
    return f"{db.application_name()} db upgrade --panoramax [{os.getpid()}]"


def _backend(url: str, lock_timeout_s: float) -> Any:
    """yoyo's own psycopg backend, with its default tables (Panoramax's history), on a connection whose
    statements wait ``lock_timeout_s`` at most for a lock."""
    from yoyo import get_backend

    return get_backend(yoyo_adapter.yoyo_url(url, max(1, int(lock_timeout_s * 1000)), app_name()))


def _migrations(folder: Path) -> Any:
    from yoyo import read_migrations

    return read_migrations(str(folder))


def pending(url: str, folder: Path) -> list[str]:
    """The ids of the migrations of ``folder`` that Panoramax's history does not hold, in yoyo's order."""
    backend = _backend(url, 5.0)
    try:
        return [m.id for m in backend.to_apply(_migrations(folder))]
    finally:
        backend.connection.close()


def loadable(folder: Path, ids: list[str]) -> None:
    """Load the Python migrations among ``ids`` before anything is applied: one that cannot run outside
    Panoramax's environment (an import it lacks) is named now, not half-way through the upgrade."""
    for m in _migrations(folder):
        if m.id in ids and str(m.path).endswith(".py"):
            try:
                m.load()
            except ImportError as e:
                raise MigrationError(f"{m.id} cannot run here ({e}): apply this release with Panoramax's own "
                                     "flask db upgrade (nothing was applied)") from None  # fmt: skip


@contextlib.contextmanager
def _progress(watch: psycopg.Connection, mid: str, estimate: str | None, every_s: float,
              report: Log) -> Iterator[None]:  # fmt: skip
    """A line every ``every_s`` seconds while the migration runs: its statement, for how long, the estimate."""
    stop = threading.Event()
    started = time.monotonic()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                row = watch.execute(queries.statement(FILE, "running"), {"app": app_name()}).fetchone()
            except psycopg.Error:
                return  # advisory only
            beside = f" (plan: {estimate})" if estimate is not None else ""
            what = f": {row[1]} for {row[0]:.0f} s" if row else ""
            report(f"{mid}: running {time.monotonic() - started:.0f} s{beside}{what}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _one(backend: Any, m: Any, rollback: bool) -> None:
    """yoyo's ``apply_one`` (``rollback_one``), the same steps and history rows, but a migration that runs in a
    transaction commits in the one transaction that also writes its ``_yoyo_log`` and ``_yoyo_migration`` rows.
    yoyo commits the migration on a connection of its own and records it after: a process killed in between
    (flask db upgrade too) leaves a migration applied that the history calls pending, and the next run applies
    it again and fails. A migration without a transaction cannot be made whole: its steps run as yoyo runs them,
    then its two history rows are written in one transaction (``ops.schema.leftovers`` deals with what a kill
    during its steps leaves)."""
    backend.ensure_internal_schema_updated()
    direction = "rollback" if rollback else "apply"
    if not m.use_transactions:  # its statements commit one by one, on a connection of their own (as yoyo's)
        with backend.copy() as steps_backend:
            m.process_steps(steps_backend, direction)
    with backend.transaction():
        if m.use_transactions:
            m.process_steps(backend, direction)  # its own transaction nests as a savepoint of this one
        backend.log_migration(m, direction)  # both history rows, or neither: a kill never leaves one alone
        (backend.unmark_one(m, log=False) if rollback else backend.mark_one(m, log=False))


def _apply(backend: Any, watch: psycopg.Connection, m: Any, options: Options, report: Log,
           rollback: bool = False) -> int:  # fmt: skip
    """Apply (or roll back) one migration with yoyo, retried while it times out waiting for a lock or is the
    victim PostgreSQL picks in a deadlock (its transaction rolled back whole either way); returns the attempts."""
    deadline = time.monotonic() + options.deadline_s
    backoff, attempt = options.backoff_s, 0
    if not m.use_transactions and not rollback and str(m.path).endswith(".sql"):
        from yoyo.migrations import read_sql_migration

        for line in leftovers.drop_interrupted_indexes(watch, read_sql_migration(str(m.path))[2]):
            report(f"{m.id}: {line}")
    while True:
        attempt += 1
        with (
            db.BlockerWatch(watch, 0, app=app_name()) as blockers,
            _progress(watch, m.id, options.estimates.get(m.id), options.progress_every_s, report),
        ):
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # yoyo prints the rows of a migration's SELECT
                    _one(backend, m, rollback)
                return attempt
            except psycopg.Error as e:
                if e.sqlstate not in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED) or not m.use_transactions:
                    raise MigrationError(f"{m.id} failed: {' '.join(str(e).split())}"
                                         + ("; nothing of this migration was kept" if m.use_transactions else
                                            "; it runs without a transaction: what it did before is kept")) from None  # fmt: skip
                held = ", ".join(b.describe() for b in blockers.last_blockers) or "a session that has ended"
                waited = "was in a deadlock with" if e.sqlstate == DEADLOCK_DETECTED else (
                    f"waited {options.lock_timeout_s:g} s for a lock held by")  # fmt: skip
        if time.monotonic() + backoff > deadline:
            raise MigrationError(f"{m.id}: no lock within {options.deadline_s:.0f} s ({attempt} attempts of "
                                 f"{options.lock_timeout_s:g} s), held by {held}; nothing of this migration was kept")  # fmt: skip
        report(f"{m.id}: {waited} {held}; rolled back, trying again in {backoff:g} s (attempt {attempt + 1})")
        time.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_S)


def upgrade(url: str, folder: Path, options: Options | None = None, report: Log = silent) -> Result:
    """Apply Panoramax's pending migrations of ``folder`` (see the module's docstring). Raises UpgradeStopped
    (with what was applied) when interrupted or when a lock is never granted."""
    return _run(url, folder, options or Options(), report, rollback=False, everything=True)


def to_roll_back(url: str, folder: Path, everything: bool) -> list[str]:
    """What ``rollback`` would roll back: the last migration of ``folder`` applied (every one, ``everything``),
    in the order yoyo rolls them back."""
    backend = _backend(url, Options().lock_timeout_s)
    try:
        ids = [m.id for m in backend.to_rollback(_migrations(folder))]
    finally:
        backend.connection.close()
    return ids if everything else ids[:1]


def rollback(url: str, folder: Path, everything: bool, options: Options | None = None,
             report: Log = silent) -> Result:  # fmt: skip
    """Roll back the last of Panoramax's migrations of ``folder`` applied (every one, ``everything``) with
    yoyo, out of Panoramax's own history, as ``flask db rollback [--all]`` does, each under the same lock
    timeout, retries and deadline as an upgrade."""
    return _run(url, folder, options or Options(), report, rollback=True, everything=everything)


LOCK_WAIT_S = 10  # behind another run's lock row, as yoyo's own lock() waits


@contextlib.contextmanager
def _locked(url: str, backend: Any) -> Iterator[None]:
    """yoyo's lock row (the one flask db upgrade inserts), held in a transaction left open for the whole run and
    rolled back at its end: another upgrade, ops's or Panoramax's, waits for it as for yoyo's own row, and a
    run killed meanwhile leaves no row behind (yoyo commits its row, so a killed flask db upgrade locks every
    later one out until ``yoyo break-lock``)."""
    with db.connect(url) as conn:
        try:
            conn.execute(queries.statement(FILE, "lock_wait"), {"wait": f"{LOCK_WAIT_S * 1000}ms"})
            conn.execute(queries.statement(FILE, "lock_row"), {"pid": os.getpid()})
        except psycopg.errors.UniqueViolation:
            conn.rollback()
            holder = db.scalar(conn, queries.statement(FILE, "lock_holder"))
            raise MigrationError(f"Panoramax's migration lock (the row of yoyo_lock) is held by process {holder}: "
                                 "a flask db upgrade runs, or one was killed (once none runs, yoyo break-lock frees "
                                 "it); nothing was applied") from None  # fmt: skip
        except psycopg.errors.LockNotAvailable:
            raise MigrationError(f"another upgrade of Panoramax's migrations holds its lock (waited {LOCK_WAIT_S} s); "
                                 "nothing was applied") from None  # fmt: skip
        backend._is_locked = True  # yoyo's own lock() (its internal-schema upgrade) then knows the row is held
        try:
            yield
        finally:
            backend._is_locked = False
            conn.rollback()


def _run(url: str, folder: Path, options: Options, report: Log, *, rollback: bool, everything: bool) -> Result:
    backend = _backend(url, options.lock_timeout_s)
    watch = db.connect(url, autocommit=True)
    result = Result([])
    try:
        with _locked(url, backend):
            migrations = _migrations(folder)
            todo = backend.to_rollback(migrations) if rollback else backend.to_apply(migrations)  # yoyo's lists
            todo = todo if everything else todo[:1]
            result.pending = [m.id for m in todo]
            for m in todo:
                started = time.monotonic()
                attempts = _apply(backend, watch, m, options, report, rollback=rollback)
                applied = Applied(m.id, round(time.monotonic() - started, 3), attempts)
                for table in [] if rollback else options.analyze_after.get(m.id, []):
                    watch.execute(queries.identified(FILE, "analyze", table=table))
                    applied.analyzed.append(table)
                result.applied.append(applied)
                tail = f", then ANALYZE {', '.join(applied.analyzed)}" if applied.analyzed else ""
                report(f"{'rolled back' if rollback else 'applied'} {m.id} ({applied.seconds:.2f} s{tail})")
            if not rollback:
                with contextlib.redirect_stdout(io.StringIO()):
                    backend.run_post_apply(todo)
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        raise UpgradeStopped(_stopped("interrupted", result, rollback), result) from None
    except MigrationError as e:
        result.stopped = str(e)
        raise UpgradeStopped(_stopped(str(e), result, rollback), result) from None
    finally:
        watch.close()
        backend.connection.close()
    return result


def _stopped(why: str, result: Result, rollback: bool) -> str:
    done = ", ".join(a.id for a in result.applied) or "none"
    current = result.pending[len(result.applied)] if len(result.applied) < len(result.pending) else None
    undone = "its rollback was undone" if rollback else "was rolled back"
    rolled = f"; {current} {undone}" if current and why == "interrupted" else ""
    verb = "rolled back" if rollback else "applied"
    return f"{why}{rolled}; {verb} before it: {done}; left: {len(result.pending) - len(result.applied)}"
