"""Merge saved benchmark results: `python -m bench.report FILE.json [FILE.json ...]`.

Prints one markdown table (largest size first) and the growth factor of each timed benchmark between its
smallest and largest size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.__main__ import growth
from bench.common import Result, table


def load(paths: list[str]) -> list[Result]:
    results = []
    for path in paths:
        for row in json.loads(Path(path).read_text()):
            row["passed"] = row.pop("pass")
            results.append(Result(**row))
    return results


def main(paths: list[str]) -> int:
    results = load(paths)
    results.sort(key=lambda r: (-r.size, r.benchmark))
    print(table(results))
    for line in growth(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
