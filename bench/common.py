"""Shared helpers of the benchmarks: timing rounds, results as JSON and a markdown table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

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
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["pass"] = d.pop("passed")
        return d


def median_time(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def commit() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    return proc.stdout.strip() or "nocommit"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def save(results: list[Result]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{date.today().isoformat()}-{commit()}.json"
    path.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return path


def table(results: list[Result]) -> str:
    lines = [
        "| benchmark | size | ours (s) | baseline (s) | ratio | target | pass |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.benchmark} | {r.size:,} | {r.ours_s:.3f} | {r.baseline_s:.3f} | {r.ratio:.2f} | {r.target} | "
            f"{'pass' if r.passed else 'FAIL'} |"
        )
    return "\n".join(lines)
