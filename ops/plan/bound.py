"""How a plan's figure holds, and the sign it is written with: about (``~``), at least (``≥``: a query whose
joins and functions the plan cannot time), at most (``≤``: rows it cannot count). The values are those of
the plan's JSON (``"bound": ">="``)."""

from __future__ import annotations

from enum import StrEnum


class Bound(StrEnum):
    ABOUT = "~"
    AT_LEAST = ">="
    AT_MOST = "<="

    @property
    def sign(self) -> str:
        """What goes before the figure: ``~1.6 s``, ``≥ 0.3 s``, ``≤ 2 s``."""
        return {Bound.ABOUT: "~", Bound.AT_LEAST: "≥ ", Bound.AT_MOST: "≤ "}[self]

    def figure(self, seconds: float) -> str:
        """A duration as the plan writes it: ``~1.6 s``, ``≥ 12 s``, ``≤ 3 min``."""
        return f"{self.sign}{format_seconds(seconds)}"


def format_seconds(s: float) -> str:
    if s < 0.05:
        return "0 s"
    if s < 10:
        return f"{s:.1f} s"
    if s < 600:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min"
