"""A plain (non-editable) install ships the SQL files, and `ops db upgrade` works from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_ships_sql_and_upgrade_works_from_anywhere(tmp_path, empty_db_url):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next(wheels.glob("ops-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    sql_files = sorted(p.name for p in (REPO / "sql" / "migrations").glob("*.sql"))
    for name in sql_files:
        assert f"ops/sql/migrations/{name}" in names
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "ops").rglob("*.py"))
    assert [m for m in modules if m not in names] == []  # every module of every package is shipped
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "OPS_"))}
    env.update(PYTHONPATH=str(target), DB_URL=empty_db_url)
    proc = subprocess.run(
        [sys.executable, "-c", "import ops, sys; print(ops.__file__, file=sys.stderr); from ops.cli import main; main()", "db", "upgrade"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stderr  # the installed copy ran, not the checkout
    assert "database is up to date" in proc.stdout
