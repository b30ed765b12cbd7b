"""The node_exporter textfile format (``ops health --prometheus``): each family a gauge, its HELP and TYPE
once, then its samples; NaN and +Inf spelled as Prometheus reads them."""

from __future__ import annotations

import math
from collections.abc import Mapping


def textfile(families: Mapping[str, tuple[str, str | None]], series: Mapping[str, Mapping[str | None, float]]) -> str:
    """``families``: name -> (help, label name or None); ``series``: name -> label value (None: no label) ->
    value. Families are written in the order of ``series``."""
    lines: list[str] = []
    for name, samples in series.items():
        help_text, label = families[name]
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for key, value in samples.items():
            shown = "NaN" if math.isnan(value) else "+Inf" if math.isinf(value) else repr(float(value))
            lines.append(f'{name}{{{label}="{key}"}} {shown}' if label else f"{name} {shown}")
    return "\n".join(lines) + "\n"
