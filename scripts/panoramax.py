"""A database built by Panoramax's own migrations, for the tests and the benchmarks: those of the geovisio
wheel on the package registry, applied with yoyo's API as ``flask db upgrade`` applies them. Nothing of
Panoramax's SQL is copied into this repository: the wheel is downloaded once into ``.ops/cache``."""

from __future__ import annotations

import contextlib
import io
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops.plan import source

GEOVISIO_VERSION = "2.15.1"
WHEEL = f"geovisio-{GEOVISIO_VERSION}-py3-none-any.whl"
CACHE = Path(__file__).resolve().parent.parent / ".ops" / "cache"


def wheel() -> Path:
    """The geovisio wheel, downloaded from the package registry on first use."""
    return _download(GEOVISIO_VERSION, binary=True)


def sdist(version: str = GEOVISIO_VERSION) -> Path:
    """geovisio's sdist (its sources: compose files, docs), downloaded from the package registry on first use."""
    return _download(version, binary=False)


def _download(version: str, binary: bool) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = source.pip_download(version, CACHE, binary)
    if found is None:
        raise RuntimeError(f"pip download geovisio=={version} ({'wheel' if binary else 'sdist'}) failed")
    return found


def migrations_dir(into: Path) -> Path:
    """Panoramax's migration files, extracted from the wheel into ``into``."""
    folder = into / "geovisio-migrations"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        with zipfile.ZipFile(wheel()) as archive:
            for name in archive.namelist():
                if name.startswith("geovisio/migrations/") and name.endswith(".sql"):
                    (folder / Path(name).name).write_bytes(archive.read(name))
    return folder


def build(url: str, folder: Path, until: str | None = None) -> int:
    """Apply every Panoramax migration to ``url`` as Panoramax does (``flask db upgrade``); returns how many
    were applied. ``until``: stop after that migration (``yoyo apply --revision``)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrations = read_migrations(str(folder))
    with contextlib.redirect_stdout(io.StringIO()), backend.lock():  # its migrations print SELECT results
        pending = backend.to_apply(migrations)
        if until is not None:
            ids = [m.id for m in pending]
            pending = pending[: ids.index(until) + 1] if until in ids else pending
        backend.apply_migrations(pending)
    backend.connection.close()
    return len(pending)


def apply_observed(url: str, folder: Path, connect_timeout_s: float = 10.0, until: str | None = None) -> list[Any]:
    """Apply the pending migrations of ``folder`` with yoyo, as ``flask db upgrade`` does, and observe each
    statement as ``ops db plan`` observes its replay (``ops.plan.trace``): the locks it takes, what it
    rewrites, how long it runs, here on the real rows. What a plan is measured against. ``until``: stop
    after that migration (``yoyo apply --revision``)."""
    import psycopg
    from yoyo import read_migrations
    from yoyo.backends import PostgresqlPsycopgBackend
    from yoyo.connections import parse_uri

    from ops import db
    from ops.plan import relations, trace

    with db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as conn:
        initial = relations.snapshot(conn)
    traces: list[trace.MigrationTrace] = []

    class ObservingCursor:
        """yoyo's cursor, observing the statements of the migration being applied."""

        def __init__(self, real: Any, conn: Any) -> None:
            self.real, self.conn = real, conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def execute(self, sql: str, params: Any = None) -> Any:
            current = traces[-1] if traces else None
            todo = expected_statements[current.id][len(current.statements) :] if current else []
            if not todo or sql != todo[0] or current is None:
                return self.real.execute(sql, params)
            conn = self.conn
            st = trace.StatementTrace(len(current.statements) + 1, sql)
            current.statements.append(st)
            before = relations.snapshot(conn)
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:  # outside a transaction
                st.tag, st.duration_s, seen = trace.run_observed(conn, url, sql, connect_timeout_s)
                after = relations.snapshot(conn)
                st.locks = trace.taken_locks(seen, {}, {**before, **after}, initial)
                st.observed = bool(seen)
                self.real = conn.cursor()  # no rows to show
            else:
                pid = conn.info.backend_pid
                held = trace.held_locks(conn, pid)
                started = time.monotonic()
                self.real.execute(sql, params)
                st.duration_s = time.monotonic() - started
                st.tag = self.real.statusmessage or ""
                after = relations.snapshot(conn)
                st.locks = trace.taken_locks(trace.held_locks(conn, pid), held, {**before, **after}, initial)
            st.effects = relations.effects(before, after, initial, st.tag)
            return self

    class Observed(PostgresqlPsycopgBackend):
        def cursor(self) -> Any:
            return ObservingCursor(super().cursor(), self.connection)

    backend = Observed(parse_uri(url.replace("postgresql://", "postgresql+psycopg://", 1)), "_yoyo_migration")
    migrations = read_migrations(str(folder))
    expected_statements: dict[str, list[str]] = {}
    with contextlib.redirect_stdout(io.StringIO()), backend.lock():
        for m in backend.to_apply(migrations):
            m.load()
            expected_statements[m.id] = [s.step._apply for s in m.steps]
            traces.append(trace.MigrationTrace(m.id, bool(m.use_transactions)))
            backend.apply_one(m)
            if m.id == until:
                break
    backend.connection.close()
    return traces


class WriteLoad(threading.Thread):
    """Panoramax's API writing meanwhile (tests and benchmarks of upgrades): a picture inserted every 50 ms, as
    its upload does, each insert timed from its start to its commit."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.latencies = url, threading.Event(), list[float]()
        self.failed: list[str] = []  # inserts PostgreSQL aborted (a deadlock victim: an upload that failed)

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as c:
            row = c.execute("SELECT id FROM accounts ORDER BY created_at LIMIT 1").fetchone()
            assert row is not None, "no account to upload as"
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    c.execute("INSERT INTO pictures (geom, account_id, metadata) "
                              "VALUES (ST_SetSRID(ST_MakePoint(2.0, 48.0), 4326), %s, '{}')", (row[0],))  # fmt: skip
                except psycopg.errors.DeadlockDetected as e:
                    self.failed.append(str(e).splitlines()[0])
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.05)

    def longest_during(self, work: Callable[[], object]) -> float:
        """The longest insert while ``work`` runs (the load started half a second before it); the inserts
        that failed are in ``failed``."""
        self.start()
        time.sleep(0.5)
        try:
            work()
        finally:
            self.stop.set()
            self.join(120)
        return max(self.latencies)


def long_read(url: str, seconds: float) -> threading.Thread:
    """A long read of pictures (a report: an open transaction holding ACCESS SHARE) for ``seconds`` from now;
    returns once the read holds its lock."""
    import psycopg

    holding = threading.Event()

    def hold() -> None:
        with psycopg.connect(url) as c:
            c.execute("SELECT count(*) FROM pictures")
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    if not holding.wait(30):
        raise TimeoutError("the long read of pictures did not start within 30 s")
    return thread
