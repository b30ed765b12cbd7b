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
