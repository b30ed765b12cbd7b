"""``ops local-db`` drives a real cluster: start, status, url, stop."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest


def test_local_db_lifecycle(ops):
    base = Path(tempfile.mkdtemp(prefix="ops-localdb-", dir="/tmp"))
    base.chmod(0o755)
    data = str(base / "pg")
    try:
        assert ops("local-db", "status", "--data-dir", data).exit_code == 1
        started = ops("local-db", "start", "--data-dir", data)
        assert started.exit_code == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/ops")
        with psycopg.connect(url) as c:
            c.execute("CREATE EXTENSION postgis")
            assert c.execute("SELECT postgis_lib_version()").fetchone()[0]
        assert ops("local-db", "url", "--data-dir", data).stdout.strip() == url
        status = ops("local-db", "status", "--data-dir", data)
        assert status.exit_code == 0 and url in status.stdout
        assert ops("local-db", "start", "--data-dir", data).stdout.strip() == url  # idempotent
        as_json = json.loads(ops("local-db", "start", "--json", "--data-dir", data).stdout)
        assert as_json == {"state": "running", "url": url, "data_dir": data}
        assert json.loads(ops("local-db", "url", "--json", "--data-dir", data).stdout)["url"] == url
        assert ops("local-db", "stop", "--data-dir", data).stdout.strip() == "stopped"
        again = json.loads(ops("local-db", "stop", "--json", "--data-dir", data).stdout)
        assert again == {"state": "stopped", "url": None, "data_dir": data, "was_running": False}
        assert ops("local-db", "status", "--data-dir", data).exit_code == 1
        stopped_url = ops("local-db", "url", "--data-dir", data)
        assert stopped_url.exit_code == 1 and "not running" in stopped_url.stderr
        restarted = ops("local-db", "url", "--start", "--data-dir", data)
        assert restarted.exit_code == 0
        with psycopg.connect(restarted.stdout.strip()) as c:  # data kept across restarts
            assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()[0] == 1
    finally:
        ops("local-db", "stop", "--data-dir", data)
        shutil.rmtree(base, ignore_errors=True)


def test_unreachable_data_dir_is_one_clear_line(ops, tmp_path):
    import os

    if os.geteuid() != 0:
        pytest.skip("only a root process hands the server to the postgres user")
    private = tmp_path / "private"  # pytest's tmp_path is inside a 0700 folder
    result = ops("local-db", "start", "--data-dir", str(private / "pg"))
    assert result.exit_code == 1
    assert "cannot reach" in result.stderr and "--data-dir" in result.stderr
