"""What a command is beside its Click function (``Spec``): its core function, what it uses of the schema,
whether it may write, whether it needs the materialized views as their files define them, and the SQL files
it runs.

A spec is written once, on the command itself (``ops.cli.registry.specified``); its path comes from where
Click places the command. Everything that needs the list of commands walks the Click tree
(``ops.cli.registry.walk``): the capability guard of each command (``ops.cli.common.database``),
``ops db status``'s readiness list and ``ops health``'s schema check on a Panoramax-managed database, the
sessions that are read-only by force, the command reference (docs/reference.md) and the files each benchmark
row measures. Light on purpose: imported when the CLI starts, and by no module below the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ops.schema.needs import Needs, merged


@dataclass(frozen=True)
class Spec:
    core: str  # "module:function" it calls for the work
    needs: Needs | None  # what it uses of a Panoramax-managed schema; None: no schema guard (db, local-db)
    writes: bool  # may write (else its sessions are read-only by force)
    sql: tuple[str, ...] = ()  # files of sql/queries it runs
    views_in_sync: bool = False  # refuses to run when a materialized view differs from sql/views (refresh)
    not_benched: str = ""  # why no benchmark row measures it (bench/suite.py), when none does
    path: str = ""  # as typed ("sequences reorder"): from the Click tree
    cli: str = ""  # "module:function" of the Click command: from the decorated function

    @property
    def guarded(self) -> bool:
        return self.needs is not None


def needs_by_command(specs: Iterable[Spec]) -> dict[str, Needs]:
    """Command path -> what it needs of a Panoramax-managed schema, for the commands the guard checks."""
    return {s.path: s.needs for s in specs if s.needs is not None}


def all_needs(specs: Iterable[Spec]) -> Needs:
    """Everything the maintenance commands need together (``ops health``'s schema check)."""
    return merged([s.needs for s in specs if s.needs is not None])
