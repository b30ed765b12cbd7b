"""ops.cleanup: which flags pick what goes."""

from __future__ import annotations

from uuid import UUID

import pytest

from ops.cleanup import CleanupPlan
from ops.storage.layout import KINDS

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


@pytest.mark.parametrize(
    "flags, database, kinds",
    [
        ({}, True, KINDS),
        ({"full": True}, True, KINDS),
        ({"database": True}, True, ()),
        ({"cache": True}, False, ("derivates",)),
        ({"permanent": True}, False, ("permanent",)),
        ({"cache": True, "permanent": True}, False, ("permanent", "derivates")),
        ({"database": True, "cache": True}, True, ("derivates",)),
        ({"full": True, "cache": True}, True, KINDS),
    ],
)
def test_cleanup_flags_pick_what_goes(flags, database, kinds):
    given = {"full": False, "database": False, "cache": False, "permanent": False, **flags}
    plan = CleanupPlan.from_flags(None, **given)
    assert (plan.database, plan.kinds) == (database, kinds)
