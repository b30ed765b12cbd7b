"""SIGKILL at random points of every destructive command, then a re-run: it must finish and leave the
database and the storage exactly as an uninterrupted run does (on both kinds of database)."""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bench.generate import generate
from tests.conftest import repetitions
from tests.factories import prepared
from tests.reliability.conftest import Scenario, run_ops, start_ops
from tests.storage_helpers import local_store
from tests.test_migrations import schema_dump

KILLS = repetitions(50, 12)  # per command
pytestmark = pytest.mark.category("crash")

Snapshot = Callable[[str, Path], object]


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as c:
        return c.execute(query).fetchall()


def prepare_template(new_database, template: str, tmp_path: Path, with_files: bool, setup) -> tuple[str, Path | None]:
    """A database (and a storage folder) holding the scenario's data, copied by each run."""
    url = new_database(template)
    with psycopg.connect(url, autocommit=True) as c:
        generate(c, 120, 8, seed=11, log=False)
        prepared(c)
    root = None
    if with_files:
        store = local_store(tmp_path / "seed")
        with psycopg.connect(url) as c:
            for (pic_id,) in c.execute("SELECT id FROM pictures"):
                store.add_picture(pic_id)
        root = store.root
    setup(url, root)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CHECKPOINT")
    return url, root


def kill_loop(scenario: Scenario, new_database, sources: list[tuple[str, Path | None]], tmp_path: Path,
              args: list[str] | Callable[[str], list[str]], snapshot: Snapshot, kills: int = KILLS) -> None:  # fmt: skip
    """Run ``args`` uninterrupted once per source (the expected end state), then until ``kills`` runs were
    killed mid-way: kill at a random time within the uninterrupted duration, re-run, compare."""
    rng = random.Random(20261129)
    args_of = args if callable(args) else (lambda _url: args)  # the command, for the database it runs on
    expected, durations = [], []
    for template_url, root in sources:
        url, store = _copy(new_database, template_url, root, tmp_path / f"expected{len(expected)}")
        started = time.monotonic()
        done = run_ops(*args_of(url), env=_env(url, store))
        durations.append(time.monotonic() - started)
        assert done.returncode == 0, done.stderr
        expected.append(snapshot(url, store))
    attempt = 0
    while scenario.runs < kills and attempt < kills * 3:
        attempt += 1
        which = attempt % len(sources)
        template_url, root = sources[which]
        url, store = _copy(new_database, template_url, root, tmp_path / f"run{attempt}")
        run_args = args_of(url)  # taken before the run: the re-run names the same ids
        proc = start_ops(*run_args, env=_env(url, store))
        delay = rng.uniform(0.2, durations[which])
        time.sleep(delay)
        if proc.poll() is not None:  # finished before the kill point: not a kill; later kill points come
            proc.communicate()  # earlier (the reference run may have been slowed by the machine)
            durations[which] = max(0.3, min(durations[which], delay))
            continue
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        rerun = run_ops(*run_args, env=_env(url, store))
        ok = rerun.returncode == 0 and snapshot(url, store) == expected[which]
        scenario.run(ok, f"attempt {attempt}: rc {rerun.returncode} {rerun.stderr.strip()[-300:]}")
        if store is not None:
            shutil.rmtree(store, ignore_errors=True)
    scenario.detail += f" ({scenario.runs} kills in {attempt} attempts)"
    assert scenario.runs >= kills and scenario.failures == 0, scenario.notes


def _copy(new_database, template_url: str, root: Path | None, dest: Path) -> tuple[str, Path | None]:
    url = new_database(template_url.rsplit("/", 1)[1])
    if root is None:
        return url, None
    shutil.copytree(root, dest)
    return url, dest


def _env(url: str, store: Path | None) -> dict[str, str]:
    return {"DB_URL": url, **({"FS_URL": str(store)} if store else {})}


@pytest.fixture
def both_kinds(template_db, panoramax_template):
    return [template_db, panoramax_template]


def sequences_to_clean(url: str) -> list[str]:
    return [str(r[0]) for r in rows(url, "SELECT id FROM sequences ORDER BY id LIMIT 4")]


def cleanup_state(url: str, store: Path | None) -> object:
    assert store is not None
    return (rows(url, "SELECT id FROM pictures ORDER BY id"), rows(url, "SELECT id FROM sequences ORDER BY id"),
            rows(url, "SELECT count(*) FROM job_queue"), files_of(store))  # fmt: skip


def test_cleanup_killed_anywhere_finishes_on_rerun(scenario, new_database, both_kinds, tmp_path):
    """ops cleanup <4 sequences> (rows, then files by delete jobs) killed at random, then run again"""
    sources = [prepare_template(new_database, t, tmp_path / t, True, lambda u, r: None) for t in both_kinds]
    kill_loop(scenario, new_database, sources, tmp_path,
              lambda url: ["cleanup", *sequences_to_clean(url), "--batch-size", "5"], cleanup_state)  # fmt: skip


def delete_data_state(url: str, store: Path | None) -> object:
    return (rows(url, "SELECT id, status::text FROM sequences ORDER BY id"), rows(url, "SELECT id FROM pictures ORDER BY id"),
            rows(url, "SELECT picture_to_delete_id FROM job_queue WHERE task = 'delete' ORDER BY 1"),
            rows(url, "SELECT id FROM upload_sets ORDER BY id"))  # fmt: skip


def test_delete_data_killed_anywhere_finishes_on_rerun(scenario, new_database, both_kinds, tmp_path):
    """ops user heavy --delete-data (batches of at most 5 pictures) killed at random, then run again"""
    sources = [prepare_template(new_database, t, tmp_path / t, False, lambda u, r: None) for t in both_kinds]
    kill_loop(scenario, new_database, sources, tmp_path, ["user", "heavy", "--delete-data", "--batch-size", "5"],
              delete_data_state)  # fmt: skip


def queue_deletions(url: str, root: Path | None) -> None:
    ids = sequences_to_clean(url)
    done = run_ops("cleanup", *ids, "--enqueue-only", env={"DB_URL": url, "FS_URL": str(root)})
    assert done.returncode == 0, done.stderr


def worker_state(url: str, store: Path | None) -> object:
    assert store is not None
    return (rows(url, "SELECT count(*) FROM job_queue"), files_of(store),
            rows(url, "SELECT DISTINCT picture_to_delete_id FROM job_history WHERE error IS NULL ORDER BY 1"))  # fmt: skip


def test_worker_killed_anywhere_finishes_on_rerun(scenario, new_database, both_kinds, tmp_path):
    """ops worker --once (batches of 5 delete jobs) killed at random, then run again"""
    sources = [prepare_template(new_database, t, tmp_path / t, True, queue_deletions) for t in both_kinds]
    kill_loop(scenario, new_database, sources, tmp_path, ["worker", "--once", "--batch-size", "5"], worker_state)


def shuffle_ranks(url: str, _root: Path | None) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("UPDATE sequences_pictures SET rank = -rank")
        c.execute("UPDATE sequences_pictures SET rank = (abs(hashtext(pic_id::text)) % 100000) + 200000 WHERE rank < 0")


def reorder_state(url: str, _store: Path | None) -> object:
    return (rows(url, "SELECT seq_id, rank, pic_id FROM sequences_pictures ORDER BY 1, 2"),
            rows(url, "SELECT id, ST_AsText(geom), bbox::text, nb_pictures FROM sequences ORDER BY id"))  # fmt: skip


def test_reorder_killed_anywhere_finishes_on_rerun(scenario, new_database, both_kinds, tmp_path):
    """ops sequences reorder (one sequence per transaction) killed at random, then run again"""
    sources = [prepare_template(new_database, t, tmp_path / t, False, shuffle_ranks) for t in both_kinds]
    kill_loop(scenario, new_database, sources, tmp_path, ["sequences", "reorder", "--batch-size", "1"], reorder_state)


def upgrade_state(url: str, _store: Path | None) -> object:
    return schema_dump(url, "--exclude-table-data=*"), rows(
        url, "SELECT migration_id FROM ops_yoyo_migration ORDER BY 1"
    )


def test_upgrade_killed_anywhere_finishes_on_rerun(scenario, new_database, tmp_path):
    """ops db upgrade on an empty database killed at random, then run again"""
    empty = new_database("template1")
    kill_loop(scenario, new_database, [(empty, None)], tmp_path, ["db", "upgrade"], upgrade_state)


def panoramax_upgrade_state(url: str, _store: Path | None) -> object:
    return (schema_dump(url, "--exclude-table-data=*"),
            rows(url, "SELECT migration_id, migration_hash FROM _yoyo_migration ORDER BY 1"),
            rows(url, "SELECT migration_id, operation FROM _yoyo_log ORDER BY created_at_utc, migration_id"),
            rows(url, "SELECT count(*) FROM yoyo_lock"))  # fmt: skip


def test_panoramax_upgrade_killed_anywhere_finishes_on_rerun(scenario, new_database, tmp_path):
    """ops db upgrade --panoramax 2.15.1 on a geovisio 2.10.0 database killed at random, then run again: the
    schema and Panoramax's own history (applied, log, no lock left) end as after an uninterrupted run"""
    from ops.plan import source
    from scripts import panoramax

    old = new_database("template1")
    assert panoramax.build(old, source.from_version("2.10.0", panoramax.CACHE)) > 50
    new = panoramax.migrations_dir(tmp_path / "pnx")
    # --accept-warnings: after a kill, a table an applied migration created exists in production, and the plan
    # of the rest warns about its lock (20260219_01 rebuilds pictures_aggregate_grid for an unknown time)
    kill_loop(scenario, new_database, [(old, None)], tmp_path,
              ["db", "upgrade", "--panoramax", str(new), "--accept-warnings"], panoramax_upgrade_state,
              kills=repetitions(20, 6))  # fmt: skip
