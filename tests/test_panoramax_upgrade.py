"""``ops db upgrade --panoramax``: a database built by geovisio 2.10.0 (from the package registry) upgraded to
2.15.1 by ops ends exactly as the same database upgraded by Panoramax's own way (yoyo's ``apply_migrations``,
what ``flask db upgrade`` runs): the same schema, the same history (ids, hashes, order); a session holding a
table is waited for, named, and retried; a lock never granted stops at the deadline with the migration in
progress rolled back, and the next run finishes."""

from __future__ import annotations

import json
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


def history(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as c:
        return [tuple(r) for r in c.execute(
            "SELECT migration_id, migration_hash FROM _yoyo_migration ORDER BY applied_at_utc, migration_id")]  # fmt: skip


def built(new_database, folder: Path) -> str:
    url = new_database("template1")
    assert panoramax.build(url, folder) > 50
    return url


def env(url: str) -> dict[str, str]:
    return {"DB_URL": url}


def test_an_upgrade_by_ops_leaves_what_panoramax_s_own_upgrade_leaves(ops, new_database, releases):
    old, new = releases
    ours, theirs = built(new_database, old), built(new_database, old)
    before = history(ours)
    dry = ops("db", "upgrade", "--panoramax", str(new), "--dry-run", "--json", env=env(ours))
    assert dry.exit_code == 0, dry.stderr
    would = json.loads(dry.stdout)["would_apply"]
    assert len(would) > 5 and history(ours) == before  # a dry run applies nothing

    done = ops("db", "upgrade", "--panoramax", str(new), "--json", env=env(ours))
    assert done.exit_code == 0, done.stderr
    assert [a["id"] for a in json.loads(done.stdout)["applied"]] == would
    assert panoramax.build(theirs, new) == len(would)  # Panoramax's way, on the twin
    assert schema_dump(ours, "--exclude-table-data=*") == schema_dump(theirs, "--exclude-table-data=*")
    assert history(ours) == history(theirs) and len(history(ours)) == len(before) + len(would)

    again = ops("db", "upgrade", "--panoramax", str(new), env=env(ours))
    assert again.exit_code == 0 and "nothing to apply" in again.stdout
    assert panoramax.build(ours, new) == 0  # Panoramax itself finds nothing left to apply


def _hold(url: str, table: str, seconds: float, started: threading.Event, pid: list[int]) -> None:
    with psycopg.connect(url) as c:
        c.execute(f"SELECT count(*) FROM {table}")  # ACCESS SHARE, held until the transaction ends
        pid.append(c.info.backend_pid)
        started.set()
        time.sleep(seconds)


def _plan_seconds(ops, url: str, new: Path) -> float:
    """How long the plan before the upgrade takes here (a dry run makes the same plan)."""
    began = time.monotonic()
    assert ops("db", "upgrade", "--panoramax", str(new), "--dry-run", "--accept-warnings", env=env(url)).exit_code == 0
    return time.monotonic() - began


def test_a_session_holding_a_table_is_named_waited_for_and_the_upgrade_finishes(ops, new_database, releases):
    old, new = releases
    url, twin = built(new_database, old), built(new_database, old)
    started, pid = threading.Event(), []  # held from before the plan until 4 s into the upgrade
    holder = threading.Thread(target=_hold, args=(url, "pictures", _plan_seconds(ops, url, new) + 4, started, pid))
    holder.start()
    started.wait(10)
    try:
        result = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                     env=env(url))  # fmt: skip
    finally:
        holder.join()
    assert result.exit_code == 0, result.stderr
    assert f"held by pid {pid[0]}" in result.stdout and "trying again" in result.stdout
    panoramax.build(twin, new)
    assert schema_dump(url, "--exclude-table-data=*") == schema_dump(twin, "--exclude-table-data=*")
    assert history(url) == history(twin)


def test_a_lock_never_granted_stops_at_the_deadline_and_the_next_run_finishes(ops, new_database, releases):
    old, new = releases
    url, twin = built(new_database, old), built(new_database, old)
    started, pid = threading.Event(), []
    holder = threading.Thread(target=_hold, args=(url, "pictures", _plan_seconds(ops, url, new) + 12, started, pid))
    holder.start()
    started.wait(10)
    try:
        stopped = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                      "--deadline", "3", "--json", env=env(url))  # fmt: skip
    finally:
        holder.join()
    assert stopped.exit_code == 1 and "nothing of this migration was kept" in stopped.stderr
    report = json.loads(stopped.stdout)
    assert report["left"] and report["stopped"]
    # what it applied is in Panoramax's history, the migration it stopped at is not
    recorded = [m for m, _ in history(url)]
    assert all(a["id"] in recorded for a in report["applied"]) and report["left"][0] not in recorded
    finished = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", env=env(url))
    assert finished.exit_code == 0, finished.stderr
    panoramax.build(twin, new)
    assert schema_dump(url, "--exclude-table-data=*") == schema_dump(twin, "--exclude-table-data=*")


def test_panoramax_upgrade_refuses_a_database_ops_built(ops, ops_db_url, releases):
    _old, new = releases
    result = ops("db", "upgrade", "--panoramax", str(new), env=env(ops_db_url))
    assert result.exit_code == 2 and "built by Panoramax" in result.stderr and result.stdout == ""


def test_sigterm_rolls_back_the_migration_in_progress_and_the_next_run_finishes(ops, new_database, releases):
    import signal

    from tests.conftest import start_ops

    old, new = releases
    url, twin = built(new_database, old), built(new_database, old)
    started, pid = threading.Event(), []
    plan_s = _plan_seconds(ops, url, new)
    holder = threading.Thread(target=_hold, args=(url, "pictures", plan_s + 15, started, pid))
    holder.start()
    started.wait(10)
    before = history(url)
    proc = start_ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", "--ddl-lock-timeout", "1",
                     env=env(url))  # fmt: skip
    try:
        time.sleep(plan_s + 6)  # the plan made, the first migration waiting and retrying
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        holder.join()
    assert proc.returncode == 1 and "interrupted" in err and "was rolled back" in err, (proc.returncode, err[-500:])
    assert "trying again" in out
    assert history(url) == before  # the migration in progress left nothing, in the schema's history or elsewhere
    finished = ops("db", "upgrade", "--panoramax", str(new), "--accept-warnings", env=env(url))
    assert finished.exit_code == 0, finished.stderr
    panoramax.build(twin, new)
    assert schema_dump(url, "--exclude-table-data=*") == schema_dump(twin, "--exclude-table-data=*")
    assert history(url) == history(twin)
