"""Files that are not what the layout expects: one symbolic-link policy for every command that reads or
deletes (an area root may be a link; below it, links to folders are never followed, a link where a file is
expected is removed itself), and originals that cannot be read (a FIFO, a folder, a dangling link, no
permission) counted by `storage check --verify` while it goes on with the others."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ops.storage import derivates_folder, picture_key
from tests.conftest import file_tree, run_ops
from tests.storage_helpers import local_store, prepared_sequence

pytestmark = pytest.mark.category("files")


def link_first_folders(store, area: str, pic_id, outside) -> str:
    """Move ``area/aa/bb`` of a picture out of the storage and leave a link to it in its place; a file that is
    not the picture's joins it out there. Returns the link's key."""
    key = (derivates_folder(pic_id) if area == "derivates" else picture_key(pic_id)).split("/")
    link = store.root / area / key[0] / key[1]
    target = outside / f"{area}-{key[0]}-{key[1]}"
    shutil.move(link, target)
    (target / "not-a-picture-file.txt").write_text("operator's notes")
    link.symlink_to(target, target_is_directory=True)
    return f"{area}/{key[0]}/{key[1]}"


@pytest.mark.parametrize("command", ["cleanup", "user --delete-data --wait"])
def test_deletion_never_follows_a_linked_folder(scenario, ops, conn, db_url, tmp_path, command):
    """ops cleanup / user --delete-data --wait with derivates/aa/bb of one picture a link to a folder outside the
    storage: nothing outside is deleted, the picture's other files go, the kept one is reported with why, and
    the run exits 1 (a file it should delete stayed)"""
    store = local_store(tmp_path / "storage")
    outside = tmp_path / "outside"
    outside.mkdir()
    seq, pics = prepared_sequence(conn, store, 4)
    link = link_first_folders(store, "derivates", pics[0].id, outside)
    before_outside = file_tree(outside)
    args = ["cleanup", str(seq), "--json"] if command == "cleanup" else ["user", "alice", "--delete-data", "--wait",
                                                                          "--json"]  # fmt: skip
    result = ops(*args, env={"DB_URL": db_url, **store.env})
    left = {p for p in store.files() if not p.startswith(link)}
    ok = result.exit_code == 1 and file_tree(outside) == before_outside and left == set()
    history = conn.execute("SELECT error FROM job_history WHERE error IS NOT NULL").fetchall()
    ok = ok and any(f"{link[len('derivates/'):]} is a symbolic link to a folder, never followed" in (e or "")
                    for (e,) in history)  # fmt: skip
    ok = ok and (store.root / link).is_symlink()
    scenario.run(ok, f"exit {result.exit_code}; outside same {file_tree(outside) == before_outside}; left {left}; "
                     f"history {history}; {result.stderr[-300:]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


def test_an_area_root_may_be_a_link(scenario, ops, conn, db_url, tmp_path):
    """permanent/ a link to a folder on another disk (allowed): cleanup deletes the originals inside it"""
    store = local_store(tmp_path / "storage")
    seq, _pics = prepared_sequence(conn, store, 3)
    other_disk = tmp_path / "other-disk"
    shutil.move(store.root / "permanent", other_disk)
    (store.root / "permanent").symlink_to(other_disk, target_is_directory=True)
    result = ops("cleanup", str(seq), env={"DB_URL": db_url, **store.env})
    remaining = [p for p in other_disk.rglob("*") if p.is_file()]
    scenario.run(result.exit_code == 0 and remaining == [] and (store.root / "permanent").is_symlink(),
                 f"exit {result.exit_code}, left {remaining}: {result.stderr[-300:]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


def test_orphans_remove_links_themselves_and_keep_what_they_do_not_own(scenario, ops, conn, db_url, tmp_path):
    """ops storage orphans --delete with an orphan original that is a link to a file outside, a link to a folder
    and a FIFO shaped like orphans: the link is removed (its target stays, its own size counted), the other two
    are kept with the reason, and a second run finds nothing left to delete"""
    store = local_store(tmp_path / "storage")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.jpg"
    target.write_bytes(b"x" * 5000)
    ids = [f"{n:08x}-1111-4222-8333-444455556666" for n in range(1, 5)]
    plain = store.root / "permanent" / picture_key(ids[0])
    linked = store.root / "permanent" / picture_key(ids[1])
    for path in (plain, linked):
        path.parent.mkdir(parents=True)
    plain.write_bytes(b"y" * 100)
    linked.symlink_to(target)
    folder_link = store.root / "derivates" / derivates_folder(ids[2])
    folder_link.parent.mkdir(parents=True)
    folder_link.symlink_to(outside, target_is_directory=True)
    fifo = store.root / "tmp" / picture_key(ids[3])
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    for p in (plain, linked, fifo):
        os.utime(p, (0, 0), follow_symlinks=False)
    env = {"DB_URL": db_url, **store.env}
    first = ops("storage", "orphans", "--delete", "--json", env=env)
    report = json.loads(first.stdout) if first.exit_code == 0 else {}
    link_size = len(str(target))
    ok = (report.get("orphan_files", {}).get("permanent") == 2 and report["removed_files"]["permanent"] == 2
          and report["orphan_bytes"]["permanent"] == 100 + link_size
          and report["removed_bytes"]["permanent"] == 100 + link_size
          and target.read_bytes() == b"x" * 5000 and not os.path.lexists(linked)
          and folder_link.is_symlink() and fifo.exists() and sum(report["kept"].values()) == 2)  # fmt: skip
    scenario.run(ok, f"first run: {first.stdout[:600]} {first.stderr[-200:]}")
    second = ops("storage", "orphans", "--delete", "--json", env=env)
    again = json.loads(second.stdout) if second.exit_code == 0 else {}
    scenario.run(again.get("orphan_files") == {"permanent": 0, "derivates": 0, "tmp": 0},
                 f"second run: {second.stdout[:300]}")  # fmt: skip
    text = ops("storage", "orphans", env=env)
    scenario.run("a symbolic link to a folder: never followed" in text.stdout and "kept derivates/" in text.stdout,
                 f"text: {text.stdout}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


def run_without_file_privileges(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """ops as an operator's account that file permissions apply to: run as root, without the capabilities
    that let root read any file (setpriv drops them), so a file of mode 000 cannot be read."""
    prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    return run_ops(*args, env=env, prefix=prefix)


def test_storage_check_counts_what_it_cannot_read_and_goes_on(scenario, conn, db_url, tmp_path):
    """ops storage check --verify with originals replaced by a FIFO, a folder, a dangling link, a link to a file
    and a file it may not read (mode 000, as an account without root's file privileges): each counted unreadable with its path and why, the other
    pictures verified, exit 1, the JSON carrying them"""
    base = tmp_path / "storage"
    store = local_store(base)
    _seq, pics = prepared_sequence(conn, store, 9)
    import hashlib
    from uuid import UUID

    md5 = UUID(hex=hashlib.md5(b"\xff\xd8 picture bytes").hexdigest())
    conn.execute("UPDATE pictures SET original_content_md5 = %s", (md5,))
    originals = [store.root / "permanent" / picture_key(p.id) for p in pics]
    for path in originals[:5]:
        path.unlink()
    os.mkfifo(originals[0])
    originals[1].mkdir()
    originals[2].symlink_to(base / "nowhere.jpg")
    (base / "elsewhere.jpg").write_bytes(b"\xff\xd8 picture bytes")
    originals[3].symlink_to(base / "elsewhere.jpg")
    originals[4].write_bytes(b"\xff\xd8 picture bytes")
    originals[4].chmod(0)
    env = {"DB_URL": db_url, **store.env}
    try:
        result = run_without_file_privileges(["storage", "check", "--verify", "--json"], env)
        report = json.loads(result.stdout) if result.stdout.startswith("{") else {}
        reasons = " ".join(report.get("unreadable_examples", []))
        ok = (result.returncode == 1 and report.get("unreadable") == 5 and report["verified"] == 4
              and report["pictures"] == 9 and all(word in reasons for word in
              ("a FIFO", "a folder", "a dangling symbolic link", "a symbolic link (not followed)",
               "Permission denied")))  # fmt: skip
        scenario.run(ok, f"exit {result.returncode}: {result.stdout[:800]} {result.stderr[-300:]}")
        text = run_without_file_privileges(["storage", "check", "--verify"], env)
        scenario.run(text.returncode == 1 and "originals unreadable: 5" in text.stdout
                     and f"permanent/{picture_key(pics[0].id)}: a FIFO" in text.stdout,
                     f"text: {text.stdout[-500:]} {text.stderr[-300:]}")  # fmt: skip
    finally:
        originals[4].chmod(0o644)
    assert scenario.failures == 0, scenario.notes


def test_deleting_commands_refuse_an_unmounted_storage_before_any_row(scenario, ops, conn, db_url, tmp_path):
    """ops cleanup and ops user --delete-data --wait with FS_URL an empty mount point: exit 1 saying the volume
    may not be mounted, before deleting a row (the database dump is unchanged), and the mount point stays empty"""
    from tests.conftest import database_dump

    store = local_store(tmp_path / "real")
    seq, _pics = prepared_sequence(conn, store, 3)
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    for args in (["cleanup", str(seq)], ["cleanup", "--yes"], ["user", "alice", "--delete-data", "--wait"]):
        before = database_dump(db_url)
        result = ops(*args, env={"DB_URL": db_url, "FS_URL": str(mount_point)})
        ok = (result.exit_code == 1 and "is the volume mounted?" in result.stderr and database_dump(db_url) == before
              and list(mount_point.iterdir()) == [])  # fmt: skip
        scenario.run(ok, f"{args}: exit {result.exit_code}: {result.stderr[-200:]}")
    assert scenario.failures == 0, scenario.notes
