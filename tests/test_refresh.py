"""`ops refresh` on Panoramax's map grid, and the documented refresh schedule."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO
from tests.factories import is_panoramax
from tests.storage_helpers import env, local_store, prepared_sequence

# --- 1. a dry run changes nothing, anywhere ------------------------------------------------------------


def grid(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT ST_AsText(geom), nb_pictures FROM pictures_aggregate_grid").fetchall())


@pytest.mark.parametrize("how", ["cleanup", "delete-data"])
def test_the_map_forgets_deleted_pictures_on_the_next_refresh(ops, conn, db_url, tmp_path, how):
    if not is_panoramax(conn):
        pytest.skip("Panoramax's aggregate grid: ops's own views are refreshed whole")
    store = local_store(tmp_path / "storage")
    prepared_sequence(conn, store, 3, lon=1.0, name="alice")
    gone, _ = prepared_sequence(conn, store, 4, lon=7.0, name="bob")
    assert ops("refresh", "--full", env=env(db_url)).exit_code == 0
    assert sorted(grid(conn).values()) == [3, 4]
    args = ["cleanup", str(gone)] if how == "cleanup" else ["user", "bob", "--delete-data", "--wait"]
    assert ops(*args, env=env(db_url, store)).exit_code == 0
    refreshed = ops("refresh", env=env(db_url))
    assert refreshed.exit_code == 0 and "1 emptied cells removed" in refreshed.stdout, refreshed.stdout
    assert list(grid(conn).values()) == [3]


def test_the_documented_refresh_cron_and_health_agree():
    """The crontab of the commands guide refreshes on the schedule it tells health to judge by."""
    readme = (REPO / "docs" / "commands.md").read_text()
    schedule = re.search(r"^PICTURE_PROCESS_REFRESH_CRON=(.+)$", readme, re.MULTILINE)
    cron_line = re.search(r"^(\S+ \S+ \S+ \S+ \S+) +cd /srv/ops && /opt/ops/bin/ops -q refresh$", readme, re.MULTILINE)
    assert schedule and cron_line and schedule.group(1).strip("'\"") == cron_line.group(1)
