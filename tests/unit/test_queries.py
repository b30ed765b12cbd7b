"""ops.queries: named statements and the rule of the packaged files."""

from __future__ import annotations

from uuid import UUID

import pytest

from ops import queries
from ops.errors import QueryFileError

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


def test_named_statements_are_fetched_by_name_never_by_position():
    text = "-- header\n\n-- name: first\nSELECT 1;\n\n-- name: second\n-- why\nSELECT 2;\n"
    assert queries.split_named("t.sql", text) == {"first": "SELECT 1", "second": "-- why\nSELECT 2"}
    with pytest.raises(QueryFileError, match="holds 2 statements"):
        queries.split_named("t.sql", "-- name: both\nSELECT 1;\nSELECT 2;\n")
    with pytest.raises(QueryFileError, match="two statements are named a"):
        queries.split_named("t.sql", "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(QueryFileError, match="no '-- name:'"):
        queries.split_named("t.sql", "SELECT 1;")


def test_every_packaged_query_file_follows_the_rule():
    for file in queries.files():
        try:
            statements = queries.named(file)
        except QueryFileError:
            statements = {"": queries.load(file)}
        assert statements and all(s.strip() for s in statements.values()), file
