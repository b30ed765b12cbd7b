"""Durations as operators write them: ``90s``, ``30m``, ``24h``, ``7d``, ``2w``, or combined from the
largest unit down, ``1d12h``. A bare number is seconds. Nothing else is accepted: no space, no unit twice,
no unit out of order, at most ``MAX_DURATION``."""

from __future__ import annotations

import re
from datetime import timedelta

from ops.errors import UsageError

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
SHAPE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_DURATION = timedelta(days=36500)  # 100 years: beyond it, "forever" is meant, and dates overflow
MAX_TEXT = "36500d (100 years)"


def parse_duration(text: str) -> timedelta:
    """``"1d12h"`` → 36 hours. UsageError (naming the accepted form and range) on anything else."""
    match = SHAPE.match(text) if text and text.isascii() else None
    if text.isdigit() and text.isascii():
        seconds = int(text)
    elif match and any(match.groups()):
        seconds = sum(int(n) * size for n, size in zip(match.groups(), UNITS.values(), strict=True) if n)
    else:
        raise UsageError(
            f"{text[:40]!r} is not a duration: write it like 90s, 30m, 24h, 7d, 2w or 1d12h (largest unit first, "
            "each unit once, no space)"
        )
    if seconds > MAX_DURATION.total_seconds():
        raise UsageError(f"{text[:40]!r} is too long: a duration is at most {MAX_TEXT}")
    return timedelta(seconds=seconds)


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
