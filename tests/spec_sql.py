"""Each command checked against what the tests saw it do: while the tests run, every command invoked is
recorded, with every file of sql/queries it loads (threads included); ``make test`` (OPS_CHECK_SPEC_SQL=1)
then fails when a command ran a file its spec does not list, lists one it never ran, or was never run by
the tests at all (a command without tests).

Only commands run in the test process are seen (the ``ops`` fixture); those the tests run only as separate
processes are named in ``AS_PROCESSES``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from ops import queries

ENABLED = os.environ.get("OPS_CHECK_SPEC_SQL") == "1"
recorded: dict[str, set[str]] = defaultdict(set)  # command -> the files it loaded (every command invoked is a key)
# commands the tests run only as separate processes (signals, kill -9, a cluster of their own), with why
AS_PROCESSES: dict[str, str] = {}
# files a command runs only where the tests run it as a separate process, with why
PROCESS_ONLY = {
    "worker": (
        {"panoramax_refresh", "bookkeeping"},
        "its scheduled refresh runs in the long-running worker, which the tests stop with SIGTERM",
    )
}
# what any command may load besides its own work: the explanation of a failed statement (who holds a lock);
# the guard's own reading of the schema is not counted either (``ensure_schema_current``)
COMMON = {"sessions"}
_current: list[str] = []  # the command being invoked, innermost last


def start() -> None:
    """Record from now on (once per process)."""
    from ops.schema import status

    named, load, invoke, guard = queries.named, queries.load, click.Command.invoke, status.ensure_schema_current

    def note(file: str) -> None:
        if _current and _current[-1]:
            recorded[_current[-1]].add(file)

    def recording_named(file: str) -> dict[str, str]:
        note(file)
        return named(file)

    def recording_load(file: str) -> str:
        note(file)
        return load(file)

    def recording_invoke(self: click.Command, ctx: click.Context) -> Any:
        _current.append(" ".join(ctx.command_path.split()[1:]))  # without the program's name
        recorded.setdefault(_current[-1], set())  # invoked, even if it loads no SQL
        try:
            return invoke(self, ctx)
        finally:
            _current.pop()

    def unrecorded_guard(*args: Any, **kwargs: Any) -> Any:
        _current.append("")  # the guard's reading is every command's, not one's own work
        try:
            return guard(*args, **kwargs)
        finally:
            _current.pop()

    queries.named = recording_named  # type: ignore[assignment]
    status.ensure_schema_current = unrecorded_guard  # type: ignore[assignment]
    queries.load = recording_load  # type: ignore[assignment]
    click.Command.invoke = recording_invoke  # type: ignore[method-assign]


def whole_suite(config: Any) -> bool:
    """Whether this run is the whole suite (``make test``): no path, keyword or marker narrows it. A narrower
    run (one file, -k, or the sdist's own tests run by tests/test_packaging.py) is not judged."""
    narrowed = config.option.keyword or config.option.markexpr
    return not narrowed and [str(a).rstrip("/") for a in config.args] == config.getini("testpaths")


def as_data() -> dict[str, list[str]]:
    return {command: sorted(files) for command, files in recorded.items()}


def merge(data: dict[str, list[str]]) -> None:
    for command, files in data.items():
        recorded[command].update(files)


def problems() -> list[str]:
    """Each command whose spec lists other files than it was seen to run."""
    from ops.cli import specs

    found = []
    for spec in specs():
        if spec.path not in recorded:
            if spec.path not in AS_PROCESSES:
                found.append(f"ops {spec.path} is never run by the tests (in this process)")
            continue
        ran, listed = recorded[spec.path] - COMMON, set(spec.sql)
        if ran - listed:
            found.append(f"ops {spec.path} runs {', '.join(sorted(ran - listed))}, which its spec does not list")
        if listed - ran - PROCESS_ONLY.get(spec.path, (set(), ""))[0]:
            unseen = listed - ran - PROCESS_ONLY.get(spec.path, (set(), ""))[0]
            found.append(f"ops {spec.path} lists {', '.join(sorted(unseen))} in its spec, never run by the tests")
    return found


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_data(), indent=2, sort_keys=True) + "\n")
