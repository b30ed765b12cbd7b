"""ops run as a user who does not own the picture files (as it was beside Panoramax, whose image runs as uid
1000): every file it could not delete is a failure (exit 1, named, its job failed at once: a permission is no
transient error), and doctor --storage names the folders it may not delete from beforehand."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.reliability.conftest import run_ops
from tests.storage_helpers import env, local_store, prepared_sequence

pytestmark = pytest.mark.category("files")
# nobody, who may read every file (so it runs this checkout's code even from a 0700 folder, as mktemp -d makes)
# but write none: CAP_DAC_READ_SEARCH grants reading and searching folders, never deleting from them.
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search",
          "--ambient-caps=+dac_read_search")  # fmt: skip


@pytest.fixture
def foreign_store():
    """A storage whose files belong to root (the deployment's owner), readable by all: nobody may read, not
    delete (the tests' tmp_path is 0700, so this one lives in /tmp)."""
    base = Path(tempfile.mkdtemp(prefix="ops-owner-", dir="/tmp"))
    base.chmod(0o755)
    yield local_store(base)
    shutil.rmtree(base, ignore_errors=True)


def _open_to_read(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_files_ops_may_not_delete_fail_loudly(scenario, conn, db_url, foreign_store):
    """doctor --storage names the folders; cleanup, worker and storage orphans --delete run as nobody exit 1
    naming Permission denied, delete no file, and the jobs fail at once with that error"""
    store = foreign_store
    prepared_sequence(conn, store, 2, lon=2.0, name="bob")  # the proof's ready pictures
    seq, _pics = prepared_sequence(conn, store, 3)
    orphan = store.root / "permanent" / "00" / "11" / "22" / "33" / "4444-4555-8666-777788889999.jpg"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"an orphan")
    os.utime(orphan, (0, 0))
    _open_to_read(store.root)
    before = store.files()
    environment = env(db_url, store)

    doctor = run_ops("doctor", "--storage", "--only", "STO", "--json", env=environment, prefix=NOBODY)
    report = json.loads(doctor.stdout) if doctor.stdout.startswith("{") else {}
    sto = {f["code"]: f for f in report.get("findings", [])}
    scenario.run(doctor.returncode == 1 and sto.get("STO002", {}).get("state") == "found"
                 and sto.get("STO001", {}).get("state") == "clean" and "not writable by uid 65534" in doctor.stdout,
                 f"doctor: {doctor.returncode} {doctor.stdout[:600]} {doctor.stderr[-300:]}")  # fmt: skip

    cleanup = run_ops("cleanup", str(seq), "--json", env=environment, prefix=NOBODY)
    with psycopg.connect(db_url) as c:
        history = c.execute("SELECT error FROM job_history WHERE error IS NOT NULL").fetchall()
        queued = c.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0]
    scenario.run(cleanup.returncode == 1 and "Permission denied" in cleanup.stderr and store.files() == before
                 and len(history) == 3 and queued == 0,
                 f"cleanup: {cleanup.returncode} queued {queued} history {history} {cleanup.stderr[-400:]}")  # fmt: skip

    orphans = run_ops("-q", "storage", "orphans", "--delete", "--min-age", "1h", "--json", env=environment,
                      prefix=NOBODY)  # fmt: skip
    data = json.loads(orphans.stdout) if orphans.stdout.startswith("{") else {}
    scenario.run(orphans.returncode == 1 and data.get("not_deleted", {}).get("permanent") == 1
                 and orphan.exists() and "could not be deleted" in orphans.stderr,
                 f"orphans: {orphans.returncode} {orphans.stdout[:300]} {orphans.stderr[-300:]}")  # fmt: skip

    as_root = run_ops("doctor", "--storage", "--only", "STO", env=environment)  # the owner: nothing to say
    scenario.run(as_root.returncode == 0, f"as the owner: {as_root.returncode} {as_root.stdout[-300:]}")
    assert scenario.failures == 0, scenario.notes
