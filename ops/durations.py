"""Durations as operators write them: ``90s``, ``30m``, ``24h``, ``7d``, ``2w``, or combined, ``1d12h``."""

from __future__ import annotations

import re
from datetime import timedelta

from ops.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``"1d12h"`` → 36 hours. A bare number is seconds. UsageError on anything else."""
    value = text.strip().lower()
    if value.isdigit():
        return timedelta(seconds=int(value))
    parts = PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise UsageError(f"{text[:40]!r} is not a duration: write it like 90s, 30m, 24h, 7d, 2w or 1d12h")
    return timedelta(seconds=sum(int(n) * UNITS[u] for n, u in parts))


def describe(seconds: float) -> str:
    """``93784`` → ``1d 2h``: the two largest units, for people."""
    if seconds < 60:
        return f"{seconds:.0f}s"
    left = int(seconds)
    shown = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            shown.append(f"{left // size}{unit}")
            left %= size
    return " ".join(shown[:2])
