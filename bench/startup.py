"""Start-up overhead: `ops --help` and `ops db status` (nothing pending) against `python -c pass`."""

from __future__ import annotations

import sys

from bench.common import OPS, Result, run, side_by_side

HELP_TARGET_S = 0.3
STATUS_TARGET_S = 0.5


def bench_startup(db_url: str, rounds: int = 7) -> list[Result]:
    baseline = lambda: run([sys.executable, "-c", "pass"])  # noqa: E731
    results = []
    for name, cmd, target in (
        ("ops --help", [*OPS, "--help"], HELP_TARGET_S),
        ("ops db status", [*OPS, "db", "status"], STATUS_TARGET_S),
    ):
        ours, base = side_by_side(lambda cmd=cmd: run(cmd, {"DB_URL": db_url}), baseline, rounds)
        results.append(
            Result(name, 0, ours, base, ours / base, f"< {target} s wall", ours < target, "baseline: python -c pass")
        )
    return results
