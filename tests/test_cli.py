"""The command line as a whole: help, global options (-q, --env-file)."""

from __future__ import annotations

import json

from tests.conftest import run_ops
from tests.factories import is_panoramax
from tests.storage_helpers import env, local_store


def test_help_runs(ops):
    result = ops("--help")
    assert result.exit_code == 0
    assert "db" in result.stdout and "local-db" in result.stdout
    for args in (["db", "upgrade", "--help"], ["cleanup", "--help"], ["storage", "orphans", "--help"]):
        shown = ops(*args)
        assert shown.exit_code == 0 and f"Usage: ops {' '.join(args[:-1])}" in shown.stdout


def test_quiet_prints_nothing_when_all_went_well(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
    else:
        assert ops("refresh", env=env(db_url)).exit_code == 0
    for args in (["refresh"], ["sequences", "reorder"], ["health"], ["db", "status"]):
        result = ops("-q", *args, env=env(db_url, store))
        assert result.exit_code == 0 and result.stdout == "" and result.stderr == "", (
            args,
            result.stdout,
            result.stderr,
        )
    assert json.loads(ops("-q", "jobs", "--json", env=env(db_url)).stdout)["queued"] >= 0
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    warned = ops("-q", "health", "--queue-warning", "1", env=env(db_url, store))
    assert warned.exit_code == 1 and warned.stdout.startswith("OPS HEALTH WARNING")


def test_env_file_elsewhere(ops_db_url, tmp_path):
    settings = tmp_path / "settings" / "ops.env"
    settings.parent.mkdir()
    settings.write_text(f"DB_URL={ops_db_url}\n")
    for args, extra in ((["--env-file", str(settings)], {}), ([], {"OPS_ENV_FILE": str(settings)})):
        proc = run_ops(*args, "db", "status", "--check", cwd=tmp_path, env=extra)
        assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stderr
    missing = run_ops("--env-file", str(tmp_path / "nope.env"), "db", "status", cwd=tmp_path)
    assert missing.returncode == 2 and "is not a file" in missing.stderr
