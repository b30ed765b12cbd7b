"""The command line as a whole: help texts, examples, project files."""

from __future__ import annotations

import click
import yaml

from ops.cli import cli
from tests.conftest import REPO


def all_commands(group: click.Group, ctx: click.Context, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found += all_commands(command, click.Context(command, parent=ctx), path)
        else:
            found.append((path, command))
    return found


def test_every_command_has_help_with_an_example():
    ctx = click.Context(cli)
    commands = all_commands(cli, ctx)
    assert len(commands) >= 7
    for path, command in commands:
        assert command.help, f"ops {path} has no help text"
        assert "ops " in command.help, f"ops {path} has no example in its help"
        readme = (REPO / "README.md").read_text()
        assert f"ops {path}" in readme, f"the README does not show ops {path}"


def test_help_runs(ops):
    result = ops("--help")
    assert result.exit_code == 0
    assert "db" in result.stdout and "local-db" in result.stdout


def test_compose_has_a_one_shot_migration_the_others_wait_for():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    migrations = services["migrations"]
    command = migrations["command"]
    assert (" ".join(command) if isinstance(command, list) else command) == "ops db upgrade"
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
