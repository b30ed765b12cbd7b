"""compose.yaml, parsed (no Docker engine here), and its migrations step run as compose runs it."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import REPO


def test_compose_has_a_one_shot_migration_the_others_wait_for():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    migrations = services["migrations"]
    command = migrations["command"]
    assert command == ["sh", "-c", "ops db status --check > /dev/null || ops db upgrade"]
    assert migrations["depends_on"]["db"]["condition"] == "service_healthy"
    waiting = [
        name
        for name, s in services.items()
        if s.get("depends_on", {}).get("migrations", {}).get("condition") == "service_completed_successfully"
    ]
    assert waiting, "no service waits for the migrations"
    assert any("postgis" in s.get("image", "") for s in services.values())
    db_url = migrations["environment"]["DB_URL"]
    assert db_url.startswith("postgresql://")
    for s in services.values():  # Panoramax's compose misspells these as BD_*
        assert not any(str(k).startswith("BD_") for k in s.get("environment", {}) or {})


def test_compose_runs_a_worker_after_the_migrations():
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    worker = services["worker"]
    assert worker["command"] == ["ops", "worker"]
    assert worker["depends_on"]["migrations"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["FS_URL"].startswith("s3://")


def test_the_compose_migrations_command_lets_the_worker_start_on_both_kinds(db_url, empty_db_url):
    """The migrations service's command, run as compose runs it: exit 0 on a Panoramax-managed database (whose
    schema ops leaves alone) as on ops's own and on an empty one (migrated), so the worker starts everywhere."""
    import os
    import subprocess
    import sys

    command = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["migrations"]["command"]
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    for url in (db_url, empty_db_url):
        proc = subprocess.run(command, env={"PATH": path, "DB_URL": url}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    status = subprocess.run(["ops", "db", "status", "--check"], env={"PATH": path, "DB_URL": empty_db_url})
    assert status.returncode == 0
