"""ops.schema.status: counts and what is wrong."""

from __future__ import annotations

from uuid import UUID

from ops.schema.status import MigrationStatus, SchemaStatus

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


def test_schema_status_counts_and_names_what_is_wrong():
    state = SchemaStatus(
        [MigrationStatus("0001", "applied"), MigrationStatus("0002", "pending"), MigrationStatus("0003", "pending")]
    )
    assert state.counts == {"applied": 1, "pending": 2}
    assert not state.up_to_date and state.problems() == "2 pending"
    assert SchemaStatus([MigrationStatus("0001", "applied")]).up_to_date
