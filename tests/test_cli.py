"""The command line as a whole: help texts, examples, project files."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from ops.cli import cli
from scripts import cli_reference
from tests.conftest import REPO


def example_blocks(doc: str) -> list[list[str]]:
    """The ``\\b`` paragraphs of a docstring: examples that Click must print as written."""
    blocks, current = [], None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "\b":
            current = []
            blocks.append(current)
        elif not stripped:
            current = None
        elif current is not None:
            current.append(stripped)
    return blocks


def test_every_command_shows_its_examples_line_by_line():
    commands = cli_reference.commands(cli, cli_reference.root_context())
    assert len(commands) >= 18
    for ctx, command in commands:
        path = ctx.command_path
        blocks = example_blocks(command.help or "")
        assert blocks, f"{path} has no example paragraph (\\b) in its help"
        examples = [line for block in blocks for line in block]
        assert any(path in line for line in examples), f"no example of {path} runs {path}"
        rendered = [line.strip() for line in command.get_help(ctx).splitlines()]
        for line in examples:
            assert line in rendered, f"{path} --help does not show {line!r} on a line of its own"


def test_every_command_is_in_the_readme_and_its_reference_is_current():
    readme = (REPO / "README.md").read_text()
    reference = cli_reference.current_section(readme)
    shell_lines = [line for line in readme.replace(reference, "").splitlines() if line.startswith("$ ")]
    for ctx, command in cli_reference.commands(cli, cli_reference.root_context()):
        if not isinstance(command, click.Group):
            shown = [line for line in shell_lines if re.search(re.escape(ctx.command_path) + r"(\s|\)|$)", line)]
            assert shown, f"the README shows no example of {ctx.command_path}"
    assert reference == cli_reference.render(), "the README's command reference differs from --help: run make readme"


def test_help_runs(ops):
    result = ops("--help")
    assert result.exit_code == 0
    assert "db" in result.stdout and "local-db" in result.stdout
    for args in (["db", "upgrade", "--help"], ["cleanup", "--help"], ["storage", "orphans", "--help"]):
        shown = ops(*args)
        assert shown.exit_code == 0 and f"Usage: ops {' '.join(args[:-1])}" in shown.stdout


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
