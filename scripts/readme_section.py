"""A generated section of README.md or a docs/ page, between a BEGIN and an END marker: read it, check it, rewrite it."""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def current(text: str, begin: str, end: str) -> str:
    start, stop = text.index(begin), text.index(end)
    return text[start : stop + len(end)]


def update(begin: str, end: str, fresh: str, *, check: bool, stale: str, page: Path = README) -> int:
    """Rewrite the section with ``fresh``; with ``check``, only say ``stale`` and return 1 when it differs."""
    text = page.read_text(encoding="utf-8")
    if check:
        if current(text, begin, end) != fresh:
            print(stale, file=sys.stderr)
            return 1
        return 0
    page.write_text(text.replace(current(text, begin, end), fresh), encoding="utf-8")
    return 0
