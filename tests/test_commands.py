"""The command as the unit of the house: every Click command has its spec (ops/commands.py) and every spec a
command; each piece a spec names exists; the guard knows every command on both kinds of database."""

from __future__ import annotations

import ast
import importlib

import click
import pytest

from ops import commands, queries
from ops.cli import cli
from tests.conftest import REPO, every_command


def resolve(target: str) -> object:
    module, _, attr = target.partition(":")
    value: object = importlib.import_module(module)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


def test_every_command_has_a_spec_and_every_spec_a_command():
    paths = {" ".join(path) for path, command in every_command(cli) if path and not _only_a_group(command)}
    assert paths == {s.path for s in commands.SPECS}
    groups = {" ".join(path) for path, command in every_command(cli) if path and isinstance(command, click.Group)}
    assert groups == set(commands.GROUPS)


def _only_a_group(command: click.Command) -> bool:
    return isinstance(command, click.Group) and not command.invoke_without_command


def test_each_piece_of_a_spec_exists():
    by_path = {" ".join(path): command for path, command in every_command(cli) if path}
    files = set(queries.files())
    for s in commands.SPECS:
        assert resolve(s.cli) is by_path[s.path], f"{s.path}: {s.cli} is not the command"
        assert callable(resolve(s.core)), f"{s.path}: {s.core}"
        assert set(s.sql) <= files, f"{s.path}: no such file in sql/queries: {set(s.sql) - files}"
    for name, target in commands.GROUPS.items():
        assert resolve(target) is by_path[name]


def test_the_cli_asks_the_guard_for_commands_that_have_a_spec():
    """Every `database(ctx, "<path>")` of the CLI names a spec (forgetting one is a KeyError on any database)."""
    paths = {s.path for s in commands.SPECS}
    for path in (REPO / "ops" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("database", "open_database"):
                name = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
                assert name in paths, f"{path.name}:{node.lineno}: database(ctx, {name!r}) names no spec"


@pytest.mark.parametrize("path", [s.path for s in commands.SPECS])
def test_the_guard_knows_every_command_on_both_kinds(conn, path):
    from ops.schema import status

    status.ensure_schema_current(conn, command=path)  # raises when the command lacks something
