"""Shared helpers of the benchmarks: a throwaway cluster, database clones, measured runs, results."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

RESULTS = Path(__file__).parent / "results"
OPS = [sys.executable, "-m", "ops"]


@dataclass
class Result:
    benchmark: str
    size: int
    ours_s: float
    baseline_s: float
    ratio: float
    target: str
    passed: bool
    unit: str = "s"
    peak_rss_mb: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["pass"] = d.pop("passed")
        return d


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


# A child's peak RSS counts the memory of the process it was forked from (the kernel keeps the high-water
# mark across exec), so commands are started by this small launcher, not by the big benchmark process.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
with open(os.environ["OPS_BENCH_RSS_FILE"], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> Measured:
    """Run a command, with its wall time and peak RSS (wait4's rusage of that command alone)."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        full_env = {**os.environ, **(env or {}), "OPS_BENCH_RSS_FILE": rss.name}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *cmd], env=full_env, stdout=out, stderr=err)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        peak_kb = int(rss.read() or 0)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} failed ({proc.returncode}): {stderr[-2000:]}")
    return Measured(seconds, peak_kb / 1024, stdout, stderr)


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr}")
    return proc


def side_by_side(ours: Callable[[], object], baseline: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median times of ``ours`` and ``baseline``, interleaved round by round (a noisy machine hits both)."""
    ours_t, base_t = [], []
    for _ in range(rounds):
        for fn, bucket in ((baseline, base_t), (ours, ours_t)):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(ours_t), statistics.median(base_t)


class BenchDb:
    """Databases of one cluster: migrated templates and their throwaway clones."""

    def __init__(self, admin_url: str, url_of: Callable[[str], str]) -> None:
        self.admin_url = admin_url
        self.url_of = url_of
        self._n = 0

    def clone(self, template: str) -> str:
        """A copy of ``template``, its files copied and flushed before anything is timed on it. The default
        strategy (WAL_LOG) copies through shared buffers and leaves them dirty: the next timed run pays for
        writing out the copy, whichever side it is (reorder at 1M, 4 rounds each: 5.4-6.8 s against 5.0-5.5 s
        with FILE_COPY and a sync)."""
        self._n += 1
        name = f"bench_{os.getpid()}_{self._n}"
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)))  # fmt: skip
        os.sync()
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def sql_time(self, name: str, statement: str, params: dict[str, object] | None = None) -> float:
        with psycopg.connect(self.url_of(name), autocommit=True) as c:
            started = time.perf_counter()
            with c.transaction():
                c.execute(statement, params)
            return time.perf_counter() - started


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b) if a else 0


def commit() -> str:
    """The commit measured, with ``+dirty`` when tracked files differ from it."""
    here = Path(__file__).parent
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True, cwd=here).returncode == 1
    return (proc.stdout.strip() or "nocommit") + ("+dirty" if dirty else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, PostgreSQL 15, Python {platform.python_version()}"


def save(results: list[Result], meta: dict[str, object], directory: Path = RESULTS) -> Path:
    """``bench/results/<date>-<commit>-<sizes>.json``: the run's metadata (commit, machine, sizes, rounds,
    when it finished) and its results; bench.report builds docs/performance.md's tables from these files.
    A file already there (another group's run of the same commit and sizes that day) is never overwritten:
    this run's file gets ``-2``, ``-3``..."""
    directory.mkdir(exist_ok=True)
    sizes = "-".join(str(s) for s in meta["sizes"])  # type: ignore[attr-defined]
    stem = f"{date.today().isoformat()}-{meta['commit']}-{sizes}"
    document = json.dumps({**meta, "results": [r.as_dict() for r in results]}, indent=2, ensure_ascii=False)
    n = 1
    while True:
        path = directory / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        try:
            with path.open("x", encoding="utf-8") as f:  # "x": fails when the file exists
                f.write(document + "\n")
            return path
        except FileExistsError:
            n += 1


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:g} {unit}"


def row(r: Result) -> str:
    return (
        f"| {r.benchmark} | {r.size:,} | {_fmt(r.ours_s, r.unit)} | {_fmt(r.baseline_s, r.unit)} | "
        f"{r.ratio:.2f} | {r.target} | {'pass' if r.passed else 'FAIL'} |"
    )


def table(results: list[Result]) -> str:
    lines = [
        "| benchmark | size | ours | baseline | ratio | target | pass |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    lines += [row(r) for r in results]
    return "\n".join(lines)


def size_label(n: int) -> str:
    """An instance size as the tables and charts show it: 1M, 10M, 100,000."""
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n:,}"
