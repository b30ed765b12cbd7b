"""ops.worker: the refresh schedule."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from ops.errors import UsageError
from ops.worker import next_refresh, validate_cron

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


def test_refresh_schedule_follows_the_cron_from_the_last_refresh():
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert next_refresh("0 2 * * *", None, now) == now
    assert next_refresh("0 2 * * *", datetime(2026, 11, 28, 2, 0, 5, tzinfo=UTC), now) == datetime(
        2026, 11, 29, 2, 0, tzinfo=UTC
    )
    with pytest.raises(UsageError, match="valid cron"):
        validate_cron("every day")
