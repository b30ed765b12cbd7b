"""ops.durations: the strict syntax operators write, and its bounds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ops.durations import describe, parse_duration
from ops.errors import UsageError


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("1d12h", 129600),
                                           ("2w", 1209600), ("1w2d3h4m5s", 788645), ("36500d", 3153600000)])  # fmt: skip
def test_durations_as_operators_write_them(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", " 1d", "1d ", "1d1d", "1h1d", "1D", "1.5h", "-1d", "٣d", "36501d", "99999999999w"]
)
def test_anything_else_is_refused(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def test_described_for_people():
    assert (describe(42), describe(3000), describe(93784)) == ("42s", "50m", "1d 2h")
