"""The Performance page's charts, drawn as SVG by ``make bench-report`` from the current figures of
``bench/results/*.json`` (a figure whose code changed since it was measured is left out, as in the tables):

- ``docs/performance-growth.svg``: time against instance size, ops beside its baseline, one panel per command;
- ``docs/performance-jit.svg``: each command's time with PostgreSQL's JIT on, against off (ops runs with it
  off), at every size measured;
- ``docs/performance-stalls.svg``: the longest wait of users' own statements while a command runs, ops beside
  its baseline (flask db upgrade's way, a plain REFRESH);
- beside each saved run, a PNG of its own figures (``run_chart``).

Each SVG carries the data it was drawn from (its ``dc:description``), so that a test tells a chart from a
stale one without drawing it (``tests/tools/test_bench.py``). Needs matplotlib (the bench extra).
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING

from bench import stale
from bench.common import Result, size_label

if TYPE_CHECKING:
    from bench.report import Run

DOCS = Path(__file__).resolve().parent.parent / "docs"
GROWTH = DOCS / "performance-growth.svg"
JIT = DOCS / "performance-jit.svg"
CHARTED = [  # (benchmark, panel title): time against instance size, ops beside its baseline
    ("sequences reorder (all)", "sequences reorder"),
    ("sequences reorder (all) on a Panoramax database", "sequences reorder, Panoramax database"),
    ("set-sequences-heading --overwrite (all)", "set-sequences-heading --overwrite"),
    ("set-sequences-heading --overwrite (all) on a Panoramax database", "set-sequences-heading, Panoramax db"),
    ("user --delete-data (10% of pictures)", "user --delete-data (10%)"),
    ("doctor (every check but DB005) vs its check statements run bare", "doctor"),
]
JIT_PREFIX = "JIT on vs off: "
STALLS = DOCS / "performance-stalls.svg"
STALLED = [  # (benchmark, what ops is, what its baseline is): the longest wait of the users' own queries
    ("db upgrade --panoramax 2.10.0 -> 2.15.1: longest insert wait, vs flask db upgrade's way",
     "inserts during ops db upgrade --panoramax", "during flask db upgrade's way"),
    ("db refresh: longest reader wait", "readers during ops db refresh (concurrent)", "during a plain REFRESH"),
    ("refresh on a Panoramax database: longest reader wait", "readers during ops refresh (Panoramax's grid)", ""),
]  # fmt: skip

Data = dict[str, list[list[float]]]


def current(runs: list[Run]) -> dict[str, dict[int, Result]]:
    """The newest current figure of every instance-size row, per benchmark and size."""
    newest: dict[str, dict[int, tuple[Result, Run]]] = {}
    for run in runs:
        sizes = {int(s) for s in run.meta.get("sizes", [])}  # type: ignore[attr-defined]
        for r in run.results:
            if r.size in sizes:
                newest.setdefault(r.benchmark, {})[r.size] = (r, run)
    return {name: {size: r for size, (r, run) in sorted(by_size.items())
                   if not stale.staleness(name, str(run.meta.get("commit", "")))}
            for name, by_size in newest.items()}  # fmt: skip


def growth_data(runs: list[Run]) -> Data:
    """Per charted benchmark, [size, ops seconds, baseline seconds] of each current figure, by size."""
    figures = current(runs)
    data = {name: [[size, round(r.ours_s, 3), round(r.baseline_s, 3)] for size, r in figures.get(name, {}).items()]
            for name, _title in CHARTED}  # fmt: skip
    return {name: points for name, points in data.items() if points}


def jit_data(runs: list[Run]) -> Data:
    """Per command measured with JIT on and off, [size, seconds with JIT on, seconds with it off]."""
    data = {name.removeprefix(JIT_PREFIX): [[size, round(r.ours_s, 3), round(r.baseline_s, 3)]
                                            for size, r in by_size.items()]
            for name, by_size in current(runs).items() if name.startswith(JIT_PREFIX)}  # fmt: skip
    return {name: points for name, points in sorted(data.items()) if points}


def stall_data(runs: list[Run]) -> Data:
    """Per charted wait, [size, ops's longest wait, its baseline's (0: none)] of each current figure."""
    figures = current(runs)
    data = {name: [[size, round(r.ours_s, 3), round(r.baseline_s, 3)] for size, r in figures.get(name, {}).items()]
            for name, _ours, _theirs in STALLED}  # fmt: skip
    return {name: points for name, points in data.items() if points}


def description(svg: str) -> Data | None:
    """The data a chart was drawn from, as written in its SVG (``dc:description``)."""
    found = re.search(r"<dc:description>(.*?)</dc:description>", svg, re.S)
    return json.loads(unescape(found.group(1))) if found else None


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ops"  # the same data draws the same file
    import matplotlib.pyplot as plt

    return plt


def _save(fig, data: Data, path: Path) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None, "Description": json.dumps(data, sort_keys=True)})


def draw_growth(data: Data, path: Path = GROWTH) -> None:
    """One panel per command: ops and its baseline on the same axes, against the instance size."""
    plt = _pyplot()
    titles = dict(CHARTED)
    names = [n for n, _ in CHARTED if n in data] or ["none"]
    cols = 2
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        points = data.get(name, [])
        if not points:
            ax.text(0.5, 0.5, "no current figure: BENCH_ONLY=stale make bench", ha="center", va="center")
            ax.set_axis_off()
            continue
        sizes = [p[0] for p in points]
        ax.plot(sizes, [p[1] for p in points], marker="o", label="ops")
        ax.plot(sizes, [p[2] for p in points], marker="x", linestyle="--", label="baseline (hand-written SQL)")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [size_label(int(s)) for s in sizes])
        ax.set_title(titles[name], fontsize=10)
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    fig.suptitle("Time against instance size (pictures): ops beside its baseline, current figures only")
    _save(fig, data, path)
    plt.close(fig)


def _bars(data: Data, path: Path, bars: list[tuple[str, float, str]], unit: str, xlim: tuple[float, float],
          xlabel: str, title: str, mark: float | None = None) -> None:  # fmt: skip
    """One horizontal bar per (label, value, colour), log scale, each value written beside its bar."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 0.34 * max(len(bars), 4) + 1.2))
    if bars:
        ax.barh(range(len(bars)), [v for _, v, _ in bars], color=[c for _, _, c in bars])
        ax.set_yticks(range(len(bars)), [label for label, _, _ in bars], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(*xlim)
        if mark is not None:
            ax.axvline(mark, color="black", linewidth=0.8)
        for y, (_, v, _) in enumerate(bars):
            ax.text(v, y, f" {v:.3g}{unit}", va="center", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no current figure: BENCH_ONLY=stale make bench", ha="center", va="center")
        ax.set_axis_off()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    _save(fig, data, path)
    plt.close(fig)


def draw_jit(data: Data, path: Path = JIT) -> None:
    """One bar per command and size: its time with JIT on divided by its time with JIT off (log scale; 1 is
    no difference, right of it JIT costs time)."""
    bars = []
    for name, points in data.items():
        for size, on, off in points:
            r = on / off if off else 1.0
            bars.append((f"{name} ({size_label(int(size))})", r,
                         "tab:red" if r > 1.1 else "tab:green" if r < 0.9 else "tab:gray"))  # fmt: skip
    ratios = [v for _, v, _ in bars] or [1.0]
    _bars(data, path, bars, "×", (min(0.5, min(ratios) * 0.8), max(2.0, max(ratios) * 2)),
          "time with JIT on ÷ time with JIT off (ops runs with JIT off)",
          "PostgreSQL's JIT: what it would cost each command, current figures only", mark=1.0)  # fmt: skip


def draw_stalls(data: Data, path: Path = STALLS) -> None:
    """The longest wait of the users' own statements while a command runs, ops beside its baseline, per size
    (log scale: from milliseconds to the seconds that stall an upload)."""
    bars = []
    for name, ours, theirs in STALLED:
        for size, mine, baseline in data.get(name, []):
            bars.append((f"{ours} ({size_label(int(size))})", max(mine, 0.001), "tab:blue"))
            if theirs and baseline > 0:
                bars.append((f"{theirs} ({size_label(int(size))})", baseline, "tab:orange"))
    values = [v for _, v, _ in bars] or [1.0]
    _bars(data, path, bars, " s", (min(0.0005, min(values) / 2), max(values) * 3),
          "longest wait of a user's statement (seconds; blue: ops, orange: its baseline)",
          "What users wait for while a command runs, current figures only")  # fmt: skip


def draw_all(runs: list[Run]) -> bool:
    """Draw every chart; False when matplotlib is missing (the charts are left as they are)."""
    try:
        _pyplot()
    except ImportError:
        return False
    draw_growth(growth_data(runs))
    draw_jit(jit_data(runs))
    draw_stalls(stall_data(runs))
    return True


def run_chart(results: list[Result], path: Path) -> Path | None:
    """A run's own PNG beside its results file: time against size per command, ops and baseline (log axes)."""
    try:
        plt = _pyplot()
    except ImportError:
        return None
    series: dict[str, list[tuple[int, float, float]]] = {}
    for r in results:
        if r.unit == "s" and r.size > 0:
            series.setdefault(r.benchmark, []).append((r.size, r.ours_s, r.baseline_s))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(9, 6))
    for name, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{name} (ops)")
        ax.plot([p[0] for p in points], [p[2] for p in points], marker="x", linestyle="--", alpha=0.6,
                label=f"{name} (baseline)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pictures in the instance")
    ax.set_ylabel("seconds (median)")
    ax.set_title("ops commands vs baselines")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
