"""Which published figures are older than the code they measure.

Each benchmark row names the command it measures (``command_of``); the command's spec (on its Click command)
names the files its code lives in: its CLI module, its core module and the SQL files it runs (``files_of``),
and the row's baseline SQL (``bench/sql``) counts too. A figure is stale when any of those files changed in a
commit after the one it was measured at (``git rev-list``), or when that commit is unknown here. The report
shows no stale figure; ``BENCH_ONLY=stale make bench`` re-measures the groups and sizes that have one.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ops.cli import specs
from ops.commands import Spec

ROOT = Path(__file__).resolve().parent.parent
PANORAMAX = " on a Panoramax database"
PREFIXES = ("peak RSS: ops ", "JIT on vs off: ", "ops ")
# rows whose name does not start with their command
ALIASES = {"reorder baseline's geometry": "sequences reorder", "reorder baseline's ranks": "sequences reorder"}
# the benchmark group (BENCH_ONLY) that measures a command's rows on ops's own database
GROUP_OF = {
    "sequences reorder": "sequences", "set-sequences-heading": "sequences", "doctor": "doctor",
    "db refresh": "refresh", "refresh": "refresh", "user": "delete-data", "cleanup": "files", "worker": "files",
    "storage check": "storage", "db plan": "plan", "db status": "startup", "db upgrade": "upgrade",
}  # fmt: skip
# code a command runs beyond its spec's CLI and core modules: db upgrade's --panoramax form
ALSO = {"db upgrade": ("ops/cli/panoramax_upgrade.py", "ops/schema/panoramax_upgrade.py")}
BASELINES = {"sequences reorder": ("reorder_baseline", "reorder_capture_order"),
             "set-sequences-heading": ("headings_baseline", "headings_rewrite_baseline"),
             "user": ("delete_data_baseline",),
             "storage check": ("storage_scan_baseline",)}  # fmt: skip


@functools.cache
def _specs() -> dict[str, Spec]:
    return {s.path: s for s in specs()}


def command_of(benchmark: str) -> str | None:
    """The command a benchmark row measures ("sequences reorder (all) on a Panoramax database" -> "sequences
    reorder"), or None (start-up of ``ops --help``, a row about a baseline alone)."""
    name = benchmark.removesuffix(PANORAMAX)
    for prefix in PREFIXES:
        name = name.removeprefix(prefix)
    for alias, command in ALIASES.items():
        if name.startswith(alias):
            return command
    found = [s.path for s in _specs().values() if name == s.path or name.startswith(s.path + " ")
             or name.startswith(s.path + ",") or name.startswith(s.path + ":")]  # fmt: skip
    return max(found, key=len) if found else None


def group_of(benchmark: str) -> str | None:
    """The BENCH_ONLY group whose run measures this row."""
    command = command_of(benchmark)
    if command is None:
        return None
    if PANORAMAX in benchmark or benchmark.startswith("refresh on a Panoramax"):
        return "panoramax"
    if benchmark.startswith("JIT on vs off: "):  # measured beside reorder on ops's own database
        return "sequences"
    return GROUP_OF.get(command)


def _module_files(target: str) -> list[str]:
    """The file of a module, or every module of its package when it is a package (ops.doctor) or lives in a
    subpackage of the core (ops.plan.planner: the plan's code is all of ops/plan/); a CLI module alone."""
    parts = target.split(":")[0].split(".")
    path = Path(*parts)
    if (ROOT / path).is_dir():
        return sorted(str(p.relative_to(ROOT)) for p in (ROOT / path).glob("*.py"))
    if len(parts) > 2 and parts[1] != "cli":
        return sorted(str(p.relative_to(ROOT)) for p in (ROOT / path.parent).glob("*.py"))
    return [f"{path}.py"]


def files_of(command: str) -> list[str]:
    """The files the code of ``command`` lives in, relative to the repository."""
    spec = _specs()[command]
    files = {*_module_files(spec.cli), *_module_files(spec.core), *(f"sql/queries/{name}.sql" for name in spec.sql)}
    files.update(f"bench/sql/{name}.sql" for name in BASELINES.get(command, ()))
    files.update(ALSO.get(command, ()))
    return sorted(files)


@dataclass(frozen=True)
class Staleness:
    commit: str  # the commit the figure was measured at
    changed_in: str  # the first later commit that changed its code ("unknown commit" when not in history)


@functools.cache
def in_git() -> bool:
    done = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "true"


@functools.cache
def _changed(commit: str, files: tuple[str, ...]) -> str | None:
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    if known.returncode != 0:
        return "unknown commit"
    done = subprocess.run(["git", "rev-list", "--reverse", "--abbrev-commit", f"{commit}..HEAD", "--", *files],
                          cwd=ROOT, capture_output=True, text=True, check=True)  # fmt: skip
    later = done.stdout.split()
    return later[0] if later else None


def staleness(benchmark: str, commit: str) -> Staleness | None:
    """Why the figure of ``benchmark`` measured at ``commit`` is stale, or None when it is current (or
    outside a git checkout, where nothing can be told)."""
    command = command_of(benchmark)
    if command is None or not in_git():
        return None
    changed = _changed(commit, tuple(files_of(command)))
    return Staleness(commit, changed) if changed else None


def plan(runs: list) -> dict[int, set[str]]:
    """The sizes and groups that have a stale figure in the published tables (bench.report's newest run per
    benchmark and size): what ``BENCH_ONLY=stale`` re-measures."""
    newest: dict[tuple[str, int], tuple[int, str]] = {}
    for run in runs:
        sizes = sorted(int(s) for s in run.meta.get("sizes", []))
        for r in run.results:  # a measurement not tied to the instance size: at the run's smallest instance
            at = r.size if r.size in sizes or not sizes else sizes[0]
            key = r.size if r.size in sizes else 0  # a sample's size varies by run: the newest run's counts
            newest[(r.benchmark, key)] = (at, str(run.meta.get("commit", "")))
    wanted: dict[int, set[str]] = {}
    for (benchmark, _), (size, commit) in newest.items():
        group = group_of(benchmark)
        if group and staleness(benchmark, commit):
            wanted.setdefault(size, set()).add(group)
    return wanted
