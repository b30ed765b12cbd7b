"""The compatibility table of README.md and docs/panoramax.md: which ops commands did their work on a database built by the migrations
of each Panoramax release. Written by ``tests/test_compatibility.py`` (``make compatibility``), which runs
every maintenance command on each release and checks its outcome; the test fails when either table
differs from what it found."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = (README, REPO / "docs" / "panoramax.md")
BEGIN = "<!-- compatibility table: written by `make compatibility` from tests/test_compatibility.py, do not edit -->"
END = "<!-- end of compatibility table -->"
# releases on the package registry; wheels carry the migrations from 2.12, older releases only their sdists
VERSIONS = ("2.8.1", "2.10.0", "2.12.0", "2.13.0", "2.14.0", "2.15.1")


def render(found: dict[str, dict[str, str]]) -> str:
    """``found``: command -> version -> "yes" or why not."""
    versions = [v for v in VERSIONS if any(v in row for row in found.values())]
    lines = [BEGIN, "", "| command | " + " | ".join(versions) + " |", "|---|" + "---|" * len(versions)]
    for command, row in found.items():
        cells = ["✓" if row.get(v) == "yes" else f"✗ {row.get(v, 'not run')}" for v in versions]
        lines.append(f"| `ops {command}` | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", END])


def current_section(text: str) -> str:
    match = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, re.DOTALL)
    return match.group(0) if match else ""


def write(table: str) -> None:
    for page in PAGES:
        text = page.read_text()
        current = current_section(text)
        if not current:
            raise SystemExit(f"{page.name} has no compatibility table markers")
        page.write_text(text.replace(current, table))
