"""``ops db upgrade --panoramax``: a database built by geovisio 2.10.0 (from the package registry) upgraded to
2.15.1 by ops ends exactly as the same database upgraded by Panoramax's own way (yoyo's ``apply_migrations``,
what ``flask db upgrade`` runs): the same schema, the same history (ids, hashes, order); a session holding a
table is waited for, named, and retried; a lock never granted stops at the deadline with the migration in
progress rolled back, and the next run finishes."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ops.plan import source
from scripts import panoramax
from tests.test_migrations import schema_dump

FROM = "2.10.0"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The migrations of 2.10.0 (its sdist) and of 2.15.1 (the wheel the tests use)."""
    return source.from_version(FROM, panoramax.CACHE), panoramax.migrations_dir(tmp_path_factory.mktemp("pnx"))


@pytest.fixture(scope="module")
def templates(releases, cluster, admin_url) -> tuple[str, str]:
    """Two template databases, built once: geovisio 2.10.0's, and the same upgraded to 2.15.1 the way
    Panoramax upgrades (yoyo's apply_migrations, what flask db upgrade runs): the reference."""
    from tests.conftest import _create_database

    old, new = releases
    names = (f"pnx_{FROM.replace('.', '')}_{os.getpid()}", f"pnx_{FROM.replace('.', '')}_up_{os.getpid()}")
    for name in names:
        _create_database(admin_url, name, "template1")
        assert panoramax.build(cluster.url(name), old) > 50
    assert panoramax.build(cluster.url(names[1]), new) > 5
    return names


def history(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as c:
        return [tuple(r) for r in c.execute(
            "SELECT migration_id, migration_hash FROM _yoyo_migration ORDER BY applied_at_utc, migration_id")]  # fmt: skip


def env(url: str) -> dict[str, str]:
    return {"DB_URL": url}


def same_as_panoramax(url: str, reference: str) -> None:
    assert schema_dump(url, "--exclude-table-data=*") == schema_dump(reference, "--exclude-table-data=*")
    assert history(url) == history(reference)


def test_an_upgrade_by_ops_leaves_what_panoramax_s_own_upgrade_leaves(ops, new_database, cluster, releases,
                                                                     templates, tmp_path):  # fmt: skip
    _old, new = releases
    ours, reference = new_database(templates[0]), cluster.url(templates[1])
    before = history(ours)
    dry = ops("db", "upgrade", "--panoramax", str(new), "--dry-run", "--json", env=env(ours))
    assert dry.exit_code == 0, dry.stderr
    would = json.loads(dry.stdout)["would_apply"]
    assert len(would) > 5 and history(ours) == before  # a dry run applies nothing
    assert [m for m, _ in history(reference)] == [m for m, _ in before] + would  # Panoramax's own order

    done = ops("db", "upgrade", "--panoramax", str(new), "--json", env=env(ours))
    assert done.exit_code == 0, done.stderr
    assert [a["id"] for a in json.loads(done.stdout)["applied"]] == would
    same_as_panoramax(ours, reference)

    again = ops("db", "upgrade", "--panoramax", str(new), env=env(ours))
    assert again.exit_code == 0 and "nothing to apply" in again.stdout
    assert panoramax.build(ours, new) == 0  # Panoramax itself finds nothing left to apply
    _panoramax_works_on(ours, tmp_path)


def _release_and_one_more(release: Path, tmp_path: Path, name: str, text: str, rollback: str) -> Path:
    """A copy of ``release``'s migrations with one more after its last: ``name`` (``text``, its rollback)."""
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    last = sorted(p.stem for p in release.glob("*.sql") if not p.stem.endswith(".rollback"))[-1]
    (folder / f"{name}.sql").write_text(f"-- depends: {last}\n{text}\n")
    (folder / f"{name}.rollback.sql").write_text(f"{rollback}\n")
    return folder


def test_a_long_migration_prints_a_progress_line_every_10_seconds(ops, new_database, cluster, releases,
                                                                  templates, tmp_path):  # fmt: skip
    """A statement that runs 12 s (a view over a million pictures takes 13 s): its progress line comes from a
    watcher thread, while yoyo's own output is swallowed. At 1M pictures the watcher died with no Click
    context in its thread, and its line would have gone into the swallowed output."""
    folder = _release_and_one_more(releases[1], tmp_path, "29990101_01_slow-view",
                                   "CREATE MATERIALIZED VIEW ops_test_slow AS "
                                   "SELECT count(*) AS n, pg_sleep(12)::text AS slept FROM pictures;",
                                   "DROP MATERIALIZED VIEW ops_test_slow;")  # fmt: skip
    url = new_database(templates[1])  # 2.15.1 applied: the slow one is pending
    done = ops("db", "upgrade", "--panoramax", str(folder), env=env(url))
    assert done.exit_code == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    progress = [line for line in done.stdout.splitlines() if line.startswith("29990101_01_slow-view: running")]
    assert progress and "running 10 s" in progress[0] and "ops_test_slow" in progress[0], done.stdout[-2000:]
    assert "(plan: ≥ " in progress[0]  # a query over pictures: the plan's lower bound, with its sign
    assert history(url)[-1][0] == "29990101_01_slow-view"


def test_a_deadlock_with_a_writer_rolls_the_migration_back_and_it_is_tried_again(ops, new_database, releases,
                                                                                templates, tmp_path):  # fmt: skip
    """The migration holds accounts and waits for pages, which a session holds while it waits for accounts:
    PostgreSQL aborts the migration (the other session's deadlock_timeout is longer), ops rolls it back,
    names the session and applies it again once the session is done. Seen at 1M pictures, with Panoramax's
    uploads inserting pictures (their foreign-key check on accounts) during 20250902_01."""
    folder = _release_and_one_more(releases[1], tmp_path, "29990101_01_two-tables",
                                   "ALTER TABLE accounts ADD COLUMN ops_test_a int;\n"
                                   "ALTER TABLE pages ADD COLUMN ops_test_b int;", "SELECT 1;")  # fmt: skip
    url = new_database(templates[1])
    waited_on = threading.Event()

    def other_session() -> None:
        with psycopg.connect(url) as c, psycopg.connect(url, autocommit=True) as look:
            c.execute("SET deadlock_timeout = '60s'")  # so that PostgreSQL picks the migration as the victim
            c.execute("SELECT count(*) FROM pages")
            pid, deadline = c.info.backend_pid, time.monotonic() + 300
            while time.monotonic() < deadline and not look.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE '%%db upgrade --panoramax%%' "
                "AND wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))", (pid,)
            ).fetchone():  # fmt: skip
                time.sleep(0.05)
            waited_on.set()
            c.execute("SELECT count(*) FROM accounts")  # waits for the migration: a deadlock

    thread = threading.Thread(target=other_session, daemon=True)
    thread.start()
    done = ops("db", "upgrade", "--panoramax", str(folder), env=env(url))
    thread.join(60)
    assert waited_on.is_set()
    assert done.exit_code == 0, done.stdout[-1500:] + done.stderr
    assert "29990101_01_two-tables: was in a deadlock with pid" in done.stdout, done.stdout[-1500:]
    assert history(url)[-1][0] == "29990101_01_two-tables"
    with psycopg.connect(url) as c:
        assert c.execute("SELECT count(*) FROM information_schema.columns "
                         "WHERE column_name IN ('ops_test_a', 'ops_test_b')").fetchone()[0] == 2  # fmt: skip


def _panoramax_works_on(url: str, tmp_path: Path) -> None:
    """Panoramax 2.15.1's own API starts on the database (it checks its schema first) and takes an upload
    through to a ready collection: its background threads prepare the pictures and dispatch the upload set."""
    from tests.panoramax_api import Panoramax, Picture, make_pictures

    server = Panoramax(url, tmp_path / "storage").start()
    try:
        files = make_pictures(tmp_path / "upload", [Picture(f"{n}.jpg", 48.1 + n * 0.0001, 2.5, f"2024:01:01 10:00:0{n}")
                                                    for n in range(3)])  # fmt: skip
        collection = server.upload("after the upgrade", files)
        assert [p["name"] for p in server.items(collection)] == ["0.jpg", "1.jpg", "2.jpg"]
    finally:
        server.stop()


@pytest.mark.parametrize("start", ["2.12.0", "2.13.0", "2.14.0"])
def test_from_each_later_release_too(ops, new_database, cluster, releases, start, tmp_path):
    """the same equality from each release an instance may still run: its migrations (from the package
    registry) applied, then 2.15.1's by ops and, on a copy, by Panoramax's own way; Panoramax's API works on it"""
    _old, new = releases
    ours, reference = new_database(), new_database()
    older = source.from_version(start, panoramax.CACHE)
    for url in (ours, reference):
        assert panoramax.build(url, older) > 50
    before = [m for m, _ in history(ours)]
    assert panoramax.build(reference, new) > 0
    done = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--json", env=env(ours))
    assert done.exit_code == 0, done.stderr
    assert [a["id"] for a in json.loads(done.stdout)["applied"]] == [m for m, _ in history(reference)][len(before) :]
    same_as_panoramax(ours, reference)  # the schema, and the history in Panoramax's own order
    _panoramax_works_on(ours, tmp_path)


class Holder(threading.Thread):
    """A session holding ``pictures`` (ACCESS SHARE, in an open transaction) from the start, until ``after_s``
    seconds after the upgrade's first statement began waiting for it (the plan before runs unhindered)."""

    def __init__(self, url: str, after_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.after_s = url, after_s
        self.holding, self.waited_on = threading.Event(), threading.Event()
        self.pid = 0

    def run(self) -> None:
        with psycopg.connect(self.url) as c, psycopg.connect(self.url, autocommit=True) as look:
            c.execute("SELECT count(*) FROM pictures")
            self.pid = c.info.backend_pid
            self.holding.set()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not look.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE '%%db upgrade --panoramax%%' "
                "AND wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))", (self.pid,)
            ).fetchone():  # fmt: skip
                time.sleep(0.1)
            self.waited_on.set()
            time.sleep(self.after_s)


def _holding(url: str, after_s: float) -> Holder:
    holder = Holder(url, after_s)
    holder.start()
    assert holder.holding.wait(10)
    return holder


def test_a_session_holding_a_table_is_named_waited_for_and_the_upgrade_finishes(ops, new_database, cluster,
                                                                                releases, templates):  # fmt: skip
    _old, new = releases
    url = new_database(templates[0])
    holder = _holding(url, 3.0)
    try:
        result = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                     env=env(url))  # fmt: skip
    finally:
        holder.join()
    assert result.exit_code == 0, result.stderr
    assert f"held by pid {holder.pid}" in result.stdout and "trying again" in result.stdout
    same_as_panoramax(url, cluster.url(templates[1]))


def test_a_lock_never_granted_stops_at_the_deadline_and_the_next_run_finishes(ops, new_database, cluster,
                                                                             releases, templates):  # fmt: skip
    _old, new = releases
    url = new_database(templates[0])
    holder = _holding(url, 8.0)
    try:
        stopped = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                      "--deadline", "3", "--json", env=env(url))  # fmt: skip
    finally:
        holder.join()
    assert stopped.exit_code == 1 and "nothing of this migration was kept" in stopped.stderr
    assert f"held by pid {holder.pid}" in stopped.stderr
    report = json.loads(stopped.stdout)
    assert report["left"] and report["stopped"]
    # what it applied is in Panoramax's history, the migration it stopped at is not
    recorded = [m for m, _ in history(url)]
    assert all(a["id"] in recorded for a in report["applied"]) and report["left"][0] not in recorded
    finished = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", env=env(url))
    assert finished.exit_code == 0, finished.stderr
    same_as_panoramax(url, cluster.url(templates[1]))


def test_sigterm_rolls_back_the_migration_in_progress_and_the_next_run_finishes(ops, new_database, cluster,
                                                                               releases, templates):  # fmt: skip
    import signal

    from tests.conftest import start_ops

    _old, new = releases
    url = new_database(templates[0])
    before = history(url)
    holder = _holding(url, 4.0)
    proc = start_ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                     env=env(url))  # fmt: skip
    try:
        assert holder.waited_on.wait(120)
        time.sleep(1.5)  # waiting for its lock, or between two attempts
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert "trying again" in out  # it was waiting, retrying, when the signal came
    finally:
        holder.join()
    assert proc.returncode == 1 and "interrupted" in err and "was rolled back" in err, (proc.returncode, err[-500:])
    assert history(url) == before  # the migration in progress left nothing
    finished = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", env=env(url))
    assert finished.exit_code == 0, finished.stderr
    same_as_panoramax(url, cluster.url(templates[1]))


def test_panoramax_upgrade_refuses_a_database_ops_built(ops, ops_db_url, releases):
    _old, new = releases
    result = ops("db", "upgrade", "--panoramax", str(new), env=env(ops_db_url))
    assert result.exit_code == 2 and "built by Panoramax" in result.stderr and result.stdout == ""


def test_writes_stall_at_most_the_lock_timeout_where_panoramax_s_own_upgrade_stalls_them_behind_a_long_read(
    ops, new_database, releases, templates
):
    """the same write load and the same 12 s read of pictures during each upgrade: with ops (lock timeout 1 s)
    no insert waits much more than 1 s; with Panoramax's own way (yoyo, as flask db upgrade) the inserts queue
    behind its ALTER, itself behind the read, for seconds"""
    _old, new = releases
    ours, theirs = new_database(templates[0]), new_database(templates[0])

    def by_ops() -> None:
        # the read holds until the upgrade has waited on it, then 4 s more: a fixed 12 s could end during the
        # plan, before any migration, on a loaded machine
        reader = _holding(ours, 4.0)
        result = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                     env=env(ours))  # fmt: skip
        reader.join()
        assert result.exit_code == 0 and "trying again" in result.stdout, result.stdout + result.stderr

    def by_panoramax() -> None:
        reader = panoramax.long_read(theirs, 12)
        assert panoramax.build(theirs, new) > 5
        reader.join()

    with_ops = panoramax.WriteLoad(ours).longest_during(by_ops)
    with_panoramax = panoramax.WriteLoad(theirs).longest_during(by_panoramax)
    assert with_ops <= 1 + 1.5, (with_ops, with_panoramax)  # the lock timeout, plus the statement and a margin
    assert with_panoramax >= 4 * with_ops and with_panoramax >= 3, (with_ops, with_panoramax)


def _rolled_back_panoramax_s_way(url: str, folder: Path) -> None:
    """What flask db rollback does (geovisio's rollback_db_schema): yoyo's rollback of the last migration."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with backend.lock():
            backend.rollback_migrations(backend.to_rollback(read_migrations(str(folder)))[:1])
    finally:
        backend.connection.close()


def test_a_rollback_by_ops_leaves_what_panoramax_s_own_rollback_leaves(ops, new_database, releases, templates):
    """ops db rollback --panoramax: the dry run names the last migration and changes nothing; the rollback
    leaves the schema and history flask db rollback leaves; --all needs --yes; an upgrade puts it back"""
    _old, new = releases
    ours, theirs = new_database(templates[1]), new_database(templates[1])
    before = history(ours)
    dry = ops("db", "rollback", "--panoramax", str(new), "--dry-run", "--json", env=env(ours))
    assert dry.exit_code == 0 and json.loads(dry.stdout)["would_roll_back"] == [before[-1][0]], dry.stderr
    assert history(ours) == before
    refused = ops("db", "rollback", "--panoramax", str(new), "--all", env=env(ours))
    assert refused.exit_code != 0 and "--yes" in refused.stderr and history(ours) == before

    done = ops("db", "rollback", "--panoramax", str(new), "--json", env=env(ours))
    assert done.exit_code == 0, done.stderr
    assert [r["id"] for r in json.loads(done.stdout)["rolled_back"]] == [before[-1][0]]
    _rolled_back_panoramax_s_way(theirs, new)
    same_as_panoramax(ours, theirs)

    again = ops("db", "upgrade", "--panoramax", str(new), env=env(ours))
    assert again.exit_code == 0, again.stderr
    assert history(ours) == before


def test_a_lock_left_by_a_killed_flask_upgrade_is_named_and_nothing_is_applied(ops, new_database, releases,
                                                                              templates):  # fmt: skip
    """yoyo commits its lock row, so a killed flask db upgrade leaves it: ops says whose it is and how to free
    it, exits non-zero, applies nothing; its own row is never committed, so its kills leave none"""
    _old, new = releases
    url = new_database(templates[0])
    before = history(url)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 4242)")
    result = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", env=env(url))
    assert result.exit_code == 1 and "held by process 4242" in result.stderr and "yoyo break-lock" in result.stderr
    assert history(url) == before


def _killed_index_build(url: str) -> None:
    """What a kill during 20260611_01's CREATE INDEX CONCURRENTLY leaves: the build waits for an older
    snapshot (a reader's), and its session dies meanwhile; PostgreSQL keeps the index, invalid."""
    with psycopg.connect(url, autocommit=True) as reader, psycopg.connect(url, autocommit=True) as look:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM pictures")  # a snapshot the build must wait for
        builder = psycopg.connect(url, autocommit=True)
        pid = builder.info.backend_pid
        thread = threading.Thread(target=lambda: _ignore_errors(
            builder.execute, "CREATE INDEX CONCURRENTLY job_history_job_id_idx ON job_history(job_id)"))  # fmt: skip
        thread.start()
        deadline = time.monotonic() + 60
        while not look.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                               (pid,)).fetchone():  # fmt: skip
            assert time.monotonic() < deadline, "the index build never waited for the older snapshot"
            time.sleep(0.05)
        look.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join()
        builder.close()


def _ignore_errors(call, *args) -> None:
    try:
        call(*args)
    except psycopg.Error:
        pass


@pytest.mark.parametrize("left", ["half-built, invalid", "built"])
def test_an_index_a_killed_run_left_is_dropped_and_built_again(ops, new_database, cluster, releases, templates,
                                                               left):  # fmt: skip
    """A run killed during (or just after) a migration without a transaction, CREATE INDEX CONCURRENTLY, left
    its index while Panoramax's history calls the migration pending: flask db upgrade fails there on
    "already exists" forever. The plan names it (read on production), the upgrade drops it and builds it
    again, and the database ends as Panoramax's own upgrade leaves it."""
    _old, new = releases
    url = new_database(templates[1])
    _rolled_back_panoramax_s_way(url, new)  # 20260708_01
    _rolled_back_panoramax_s_way(url, new)  # 20260611_01, the index build
    if left == "built":  # killed after the build, before yoyo recorded it
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE INDEX CONCURRENTLY job_history_job_id_idx ON job_history(job_id)")
    else:
        _killed_index_build(url)
    with psycopg.connect(url) as c:
        assert c.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'job_history_job_id_idx'::regclass"
                         ).fetchone() == (left == "built",)  # fmt: skip
    line = f"index job_history_job_id_idx ({left}) left by an interrupted run"
    plan = ops("db", "plan", "--panoramax", str(new), env=env(url))
    assert plan.exit_code in (0, 1) and line in plan.stdout, plan.stdout + plan.stderr
    done = ops("db", "upgrade", "--panoramax", str(new), env=env(url))
    assert done.exit_code == 0, done.stderr
    assert f"20260611_01_oIsoT-job-id-idx: {line}" in done.stdout
    same_as_panoramax(url, cluster.url(templates[1]))
