"""Commands that only look create nothing, anywhere: the database dump (schema and data) and the storage tree
(folders included) are the same before and after each of them, on both kinds of database, with a mounted
storage and with an empty folder where the storage should be mounted (which they must refuse, not fill)."""

from __future__ import annotations

import time

import pytest

from ops.storage import picture_key
from tests.conftest import CliRunner, cli, database_dump, file_tree
from tests.factories import make_account
from tests.storage_helpers import local_store, prepared_sequence

pytestmark = pytest.mark.category("read-only")

LOOKING = [
    ("db", "status"), ("db", "status", "--json"), ("db", "upgrade", "--dry-run"), ("db", "rollback", "--dry-run"),
    ("health",), ("health", "--prometheus"), ("health", "--json"), ("jobs",), ("jobs", "list"),
    ("jobs", "list", "--failed"), ("jobs", "retry", "--failed", "--dry-run"),
    ("jobs", "prune", "--older-than", "1s", "--dry-run"), ("storage", "check"), ("storage", "check", "--verify"),
    ("storage", "orphans"), ("user", "alice"), ("default-account-tokens", "get"),
]  # fmt: skip


def test_read_only_commands_create_nothing(scenario, conn, db_url, tmp_path):
    """each read-only command (db status, health, jobs, storage check and orphans, user, token…): database dump
    and storage tree identical before and after, with the storage mounted and with an empty mount point"""
    store = local_store(tmp_path / "mounted")
    _seq, pics = prepared_sequence(conn, store, 3)
    store.write("permanent/notes.txt")  # a file outside the layout
    store.write(f"derivates/{picture_key(pics[0].id)[:-4]}0/thumb.jpg")  # an orphan derivative
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    make_account(conn, "bob")
    unmounted = tmp_path / "mnt"
    unmounted.mkdir()
    storages = {"mounted": (store.root, store.env), "unmounted": (unmounted, {"FS_URL": str(unmounted)})}
    for name, (root, fs_env) in storages.items():
        env = {"DB_URL": db_url, "FLASK_SECRET_KEY": "k" * 40, **fs_env}
        for args in LOOKING:
            db_before, files_before = database_dump(db_url), file_tree(root)
            result = CliRunner().invoke(cli, list(args), env=env, prog_name="ops")
            db_same = database_dump(db_url) == db_before
            files_same = file_tree(root) == files_before
            refused = name == "unmounted" and args[0] == "storage"
            answered = result.exit_code in (0, 1, 2) and "Traceback" not in result.output
            ok = db_same and files_same and answered and (not refused or "is the volume mounted?" in result.stderr)
            scenario.run(ok, f"{name} {args}: exit {result.exit_code}, database same {db_same}, files same "
                             f"{files_same}: {result.stderr[-200:]}")  # fmt: skip
    scenario.detail += f" ({len(LOOKING)} commands × 2 storages)"
    assert scenario.failures == 0, scenario.notes


def test_health_reports_an_unmounted_storage_critical(scenario, conn, db_url, tmp_path):
    """ops health with FS_URL an empty folder (the mount point of a volume that did not mount), then with the
    areas there but permanent/ empty while the database has ready pictures: CRITICAL, storage up 0"""
    from tests.reliability.test_monitoring import prometheus_values

    store = local_store(tmp_path / "real")
    prepared_sequence(conn, store, 2)
    unmounted = tmp_path / "mnt"
    unmounted.mkdir()
    result = CliRunner().invoke(cli, ["health"], env={"DB_URL": db_url, "FS_URL": str(unmounted)}, prog_name="ops")
    scenario.run(result.exit_code == 2 and "permanent/ does not exist under FS_URL" in result.output
                 and "is the volume mounted?" in result.output and list(unmounted.iterdir()) == [],
                 f"no areas: exit {result.exit_code}: {result.output[:300]}")  # fmt: skip
    empty = local_store(tmp_path / "empty")  # the three folders, nothing in them
    for args in (["health"], ["health", "--prometheus"]):
        result = CliRunner().invoke(cli, args, env={"DB_URL": db_url, **empty.env}, prog_name="ops")
        if args[-1] == "--prometheus":
            values = prometheus_values(result.output)
            ok = values[("ops_storage_up", "permanent")] == 0 and values[("ops_storage_up", "derivates")] == 1
        else:
            ok = "CRITICAL storage_permanent" in result.output and "ready pictures: is the volume mounted?" in (
                result.output
            )
        scenario.run(ok and result.exit_code == 2, f"{args}: exit {result.exit_code}: {result.output[:300]}")
    assert scenario.failures == 0, scenario.notes


def test_read_only_commands_end_within_their_deadline_on_a_slow_link(scenario, ops_db_url):
    """the database behind a link delivering a chunk every 2 s: db status, jobs, storage-free doctor end within
    OPS_READ_DEADLINE plus the cancellation's round trip over the same link, one line, never a hang"""
    from tests.reliability.conftest import run_ops
    from tests.reliability.faults import TcpServer

    port = int(ops_db_url.rsplit(":", 1)[1].split("/")[0])
    link = TcpServer("slow", ("127.0.0.1", port), delay_s=2.0)
    slow_url = ops_db_url.replace(f":{port}/", f":{link.port}/")
    deadline = 6
    try:
        for args in (["db", "status"], ["jobs", "list"], ["doctor", "--skip", "DB005"]):
            started = time.monotonic()
            result = run_ops("--read-deadline", str(deadline), "--connect-timeout", "30", *args,
                             env={"DB_URL": slow_url}, timeout=120)  # fmt: skip
            elapsed = time.monotonic() - started
            said = (
                "did not finish within 6 s (OPS_READ_DEADLINE)" in result.stderr
                or "read deadline passed (OPS_READ_DEADLINE)" in result.stdout
            )  # doctor: the checks not run
            # the deadline, the cancellation's round trip over the link (two chunks), process start
            scenario.run(result.returncode in (1, 3) and said and elapsed < deadline + 2 * 2.0 + 3,
                         f"{args}: exit {result.returncode} in {elapsed:.1f} s: {result.stderr[-300:]}")  # fmt: skip
    finally:
        link.close()
    assert scenario.failures == 0, scenario.notes
