"""Input that used to end as "unexpected <Exception>" (exit 1) or a multi-line error: each is one clear line
naming what is wrong (issue 30, I)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import worker
from ops.errors import OpsError, PlanError, UsageError
from ops.plan import source


def test_a_cron_that_never_fires_is_refused():
    with pytest.raises(UsageError, match="never fires"):
        worker.validate_cron("0 0 30 2 *")
    assert worker.validate_cron("0 2 * * *") == "0 2 * * *"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda tmp: source.resolve("/etc/passwd", tmp / "cache"), "neither a geovisio wheel"),
        (lambda tmp: source.resolve("2.15.1", Path("/proc/self")), "cannot write the cache directory /proc/self"),
    ],
)
def test_sources_and_caches_ops_cannot_use_are_one_line(tmp_path, call, message):
    with pytest.raises(PlanError) as caught:
        call(tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_migration_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "0001_x.sql").write_bytes("-- café\nSELECT 1;".encode("latin-1"))
    with pytest.raises(OpsError, match=r"0001_x\.sql is not UTF-8 text"):
        source.read_folder(tmp_path)
