"""Load the parameterised SQL of ``sql/queries/`` by name.

A file may hold several statements (split with sqlparse, as yoyo does); each is run with named parameters
(``%(seq_ids)s``), never assembled from input.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The text of ``sql/queries/<name>.sql``."""
    return (resources.files("ops.sql") / "queries" / f"{name}.sql").read_text(encoding="utf-8")


@cache
def statements(name: str) -> tuple[str, ...]:
    """The statements of ``sql/queries/<name>.sql``, in order."""
    import sqlparse

    return tuple(s for s in (part.strip().rstrip(";") for part in sqlparse.split(load(name))) if s)
