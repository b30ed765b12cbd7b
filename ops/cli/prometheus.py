"""The node_exporter textfile format (``ops health --prometheus``, ``ops doctor --prometheus``): each family a
gauge, its HELP and TYPE once, then its samples; NaN and +Inf spelled as Prometheus reads them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

# a sample's labels: the value of its family's one label (str), none (None), or (label, value) pairs
Key = TypeVar("Key", bound=str | tuple[tuple[str, str], ...] | None)


def textfile(families: Mapping[str, tuple[str, str | None]], series: Mapping[str, Mapping[Key, float]]) -> str:
    """``families``: name -> (help, label name or None); ``series``: name -> labels -> value. Families are
    written in the order of ``series``."""
    lines: list[str] = []
    for name, samples in series.items():
        help_text, label = families[name]
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for key, value in samples.items():
            pairs = key if isinstance(key, tuple) else ((label, key),) if label and key is not None else ()
            shown = "NaN" if math.isnan(value) else "+Inf" if math.isinf(value) else repr(float(value))
            labels = ",".join(f'{k}="{v}"' for k, v in pairs)
            lines.append(f"{name}{{{labels}}} {shown}" if labels else f"{name} {shown}")
    return "\n".join(lines) + "\n"
