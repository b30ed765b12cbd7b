"""Where the CLI finds its commands and their specs: each command module lists its top-level commands
(``COMMANDS``), each command carries its spec (``specified``), and the list of every command is a walk of the
Click tree. No command path is written anywhere but in its Click decorator.

The command modules are imported in ``MODULES`` order until the one holding the name asked is found, so
``ops refresh`` (cron) pays for one small module, not for all (start-up: docs/performance.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TypeVar

import click

from ops.commands import Spec
from ops.schema.needs import Needs

# the command modules, each with a COMMANDS tuple of its top-level commands and groups
MODULES = ("ops.cli.db", "ops.cli.worker", "ops.cli.health", "ops.cli.doctor", "ops.cli.sequences", "ops.cli.cleanup",
           "ops.cli.storage", "ops.cli.jobs", "ops.cli.accounts", "ops.cli.localdb")  # fmt: skip
C = TypeVar("C", bound=click.Command)
_ATTRIBUTE = "ops_spec"


def specified(core: str, needs: Needs | None, *, writes: bool, sql: tuple[str, ...] = (),
              views_in_sync: bool = False, not_benched: str = "") -> Callable[[C], C]:  # fmt: skip
    """Attach a command's spec to its Click command (put it above the ``@click.command`` decorator)."""

    def attach(command: C) -> C:
        function = command.callback
        cli = f"{function.__module__}:{function.__name__}" if function is not None else ""
        setattr(command, _ATTRIBUTE, Spec(core, needs, writes, sql, views_in_sync, not_benched, cli=cli))
        return command

    return attach


def spec_of(command: click.Command) -> Spec:
    """The spec a command carries (an AttributeError names a command without one: a bug a test catches)."""
    found: Spec = getattr(command, _ATTRIBUTE)
    return found


def has_spec(command: click.Command) -> bool:
    return hasattr(command, _ATTRIBUTE)


def top_level(name: str) -> click.Command | None:
    """The top-level command or group called ``name``, importing command modules until it is found."""
    for module in MODULES:
        for command in importlib.import_module(module).COMMANDS:
            if command.name == name:
                return command  # type: ignore[no-any-return]
    return None


def top_level_names() -> list[str]:
    return sorted(c.name for module in MODULES for c in importlib.import_module(module).COMMANDS)


def walk(group: click.Group) -> Iterator[tuple[str, click.Command]]:
    """Every command and group under ``group`` with its path as typed (``"sequences reorder"``)."""
    ctx = click.Context(group)

    def below(g: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
        for name in g.list_commands(ctx):
            command = g.get_command(ctx, name)
            if command is None:
                continue
            path = f"{prefix}{name}"
            yield path, command
            if isinstance(command, click.Group):
                yield from below(command, path + " ")

    yield from below(group, "")


def specs(group: click.Group) -> list[Spec]:
    """The spec of every command under ``group``, each with its path, in the CLI's order."""
    return [replace(spec_of(c), path=path) for path, c in walk(group) if has_spec(c)]


def path_of(group: click.Group, command: click.Command) -> str:
    """Where ``command`` is in the tree (its first place: ``refresh`` is also ``db refresh``)."""
    found = [path for path, c in walk(group) if c is command]
    return min(found, key=len)
