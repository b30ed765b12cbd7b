"""The parameterised SQL of ``sql/queries/``, loaded by name.

A file holds one statement, or several statements each introduced by a ``-- name: <name>`` line and
fetched by that name (never by position, so adding a statement to a file cannot hand a caller the wrong
one). Statements run with named parameters (``%(seq_ids)s``); nothing is assembled from input: a
``{placeholder}`` is filled only with another statement of the same file (``composed``) or with a quoted
identifier (``identified``).

The rule (tests/test_architecture.py checks it): every SQL statement of the core modules lives here, but
one-line SET/SHOW/RESET statements, cursor control (DECLARE, FETCH, CLOSE) and one-line SELECTs that read
only catalogs and functions (``SELECT to_regclass(%s) IS NOT NULL``, ``SELECT pg_advisory_xact_lock(%s)``);
a lone keyword (a command tag such as ``"UPDATE"`` compared with) is no statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

import sqlparse
from psycopg import sql

from ops.errors import QueryFileError

NAME_MARKER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def _text(file: str) -> str:
    return (resources.files("ops.sql") / "queries" / f"{file}.sql").read_text(encoding="utf-8")


def one_statement(where: str, text: str) -> str:
    """The single statement of ``text`` (comments kept, final semicolon dropped)."""
    parts = [p.strip().rstrip(";").strip() for p in sqlparse.split(text)]
    statements = [p for p in parts if sqlparse.format(p, strip_comments=True).strip()]
    if len(statements) != 1:
        raise QueryFileError(f"{where} holds {len(statements)} statements, expected 1")
    return statements[0]


def split_named(where: str, text: str) -> dict[str, str]:
    """The statements of a text made of ``-- name: <name>`` sections, by name, in order."""
    markers = list(NAME_MARKER.finditer(text))
    if not markers:
        raise QueryFileError(f"{where} has no '-- name:' statements")
    found: dict[str, str] = {}
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        name = marker.group(1)
        if name in found:
            raise QueryFileError(f"{where}: two statements are named {name}")
        body = text[marker.end() : following.start() if following else len(text)]
        found[name] = one_statement(f"{where}: statement {name}", body)
    return found


@cache
def named(file: str) -> dict[str, str]:
    """Every named statement of ``sql/queries/<file>.sql``, in file order."""
    return split_named(f"sql/queries/{file}.sql", _text(file))


def statement(file: str, name: str) -> str:
    """The statement called ``name`` in ``sql/queries/<file>.sql``."""
    statements = named(file)
    if name not in statements:
        raise QueryFileError(f"sql/queries/{file}.sql has no statement named {name}")
    return statements[name]


def composed(file: str, name: str, columns: Mapping[str, sql.Composable] | None = None, **parts: str) -> sql.Composed:
    """The statement ``name`` of ``sql/queries/<file>.sql`` with each ``{part}`` placeholder replaced by the
    statement of the same file that ``parts`` names: one selection shared by a statement that only reads
    (a dry run) and one that writes, without copying it. ``columns`` fills column placeholders, in the parts
    too (``capabilities.optional_columns``). Only statements of the packaged files are composed, never input."""
    fill = dict(columns or {})

    def part(text: str) -> sql.Composable:
        return sql.SQL(text).format(**fill) if fill else sql.SQL(text)

    filled = {k: sql.Composed([sql.SQL("\n"), part(statement(file, v)), sql.SQL("\n")]) for k, v in parts.items()}
    return sql.SQL(statement(file, name)).format(**filled, **fill)


def identified(file: str, name: str, **identifiers: str) -> sql.Composed:
    """The statement ``name`` with each ``{placeholder}`` filled with a quoted identifier (a view, a table,
    a database named at run time)."""
    return sql.SQL(statement(file, name)).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})


@cache
def load(file: str) -> str:
    """The one statement of ``sql/queries/<file>.sql`` (a file without ``-- name:`` markers)."""
    text = _text(file)
    if NAME_MARKER.search(text):
        raise QueryFileError(f"sql/queries/{file}.sql has named statements; use queries.statement")
    return one_statement(f"sql/queries/{file}.sql", text)


def files() -> list[str]:
    """The names of every file of ``sql/queries/`` (for the tests that check them all)."""
    folder = resources.files("ops.sql") / "queries"
    return sorted(p.name[: -len(".sql")] for p in folder.iterdir() if p.name.endswith(".sql"))
