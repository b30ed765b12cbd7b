"""ops.schema.files: migration checksums."""

from __future__ import annotations

from uuid import UUID

from ops.schema.files import normalized_checksum

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


def test_checksum_ignores_line_ends_and_trailing_blanks_only():
    base = normalized_checksum("CREATE TABLE a (id int);\nSELECT 1;\n")
    assert normalized_checksum("CREATE TABLE a (id int);  \r\nSELECT 1;\r\n\n") == base
    assert normalized_checksum("CREATE TABLE a (id bigint);\nSELECT 1;\n") != base
    assert normalized_checksum("CREATE TABLE a  (id int);\nSELECT 1;\n") != base
