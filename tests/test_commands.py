"""The command as the unit of the house: every Click command carries its spec and every command module is
listed; each piece a spec names exists; the guard knows every command on both kinds of database."""

from __future__ import annotations

import ast
import importlib

import click
import pytest

from ops import queries
from ops.cli import cli, registry, specs
from tests.conftest import REPO, every_command


def resolve(target: str) -> object:
    module, _, attr = target.partition(":")
    value: object = importlib.import_module(module)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


def _only_a_group(command: click.Command) -> bool:
    return isinstance(command, click.Group) and not command.invoke_without_command


def test_every_command_carries_a_spec():
    paths = {" ".join(path) for path, command in every_command(cli) if path and not _only_a_group(command)}
    assert paths == {s.path for s in specs()}
    assert all(not registry.has_spec(c) for path, c in every_command(cli) if path and _only_a_group(c))


def test_every_command_module_is_listed_and_lists_its_commands():
    """A module of ops/cli defining a command is in registry.MODULES, and its top-level commands in its COMMANDS:
    otherwise `ops <name>` would not find it."""
    tree = {id(c) for _, c in every_command(cli)}
    for path in sorted((REPO / "ops" / "cli").glob("*.py")):
        if path.stem == "__init__":  # the root group
            continue
        module = importlib.import_module(f"ops.cli.{path.stem}")
        defined = [v for v in vars(module).values() if isinstance(v, click.Command) and v.__module__ != "click.core"]
        defined = [c for c in defined if c.callback is not None and c.callback.__module__ == module.__name__]
        if defined and module.__name__ not in ("ops.cli.plan",):  # db plan: added to `ops db` by ops.cli.db
            assert module.__name__ in registry.MODULES, module.__name__
        assert {id(c) for c in defined} <= tree, f"{module.__name__}: a command the CLI does not reach"


def test_each_piece_of_a_spec_exists():
    by_path = {" ".join(path): command for path, command in every_command(cli) if path}
    files = set(queries.files())
    for s in specs():
        assert resolve(s.cli) is by_path[s.path], f"{s.path}: {s.cli} is not the command"
        assert callable(resolve(s.core)), f"{s.path}: {s.core}"
        assert set(s.sql) <= files, f"{s.path}: no such file in sql/queries: {set(s.sql) - files}"


def test_no_command_path_is_spelled_outside_its_definition():
    """`database(ctx)` reads the command's spec from the context: no call names a command by a string."""
    for path in (REPO / "ops" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("database", "open_database"):
                strings = [a for a in node.args[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                assert not strings, f"{path.name}:{node.lineno}: a command named by a string"


def test_the_schema_layer_does_not_know_the_commands():
    for path in (REPO / "ops" / "schema").glob("*.py"):
        text = path.read_text()
        assert "ops.commands" not in text and "from ops import commands" not in text, path.name


@pytest.mark.parametrize("path", [s.path for s in specs()])
def test_the_guard_knows_every_command_on_both_kinds(conn, path):
    from ops.schema import status

    spec = next(s for s in specs() if s.path == path)
    status.ensure_schema_current(conn, needs=spec.needs, what=path)  # raises when the command lacks something
