"""What a Panoramax user chose is kept by every command: the sort of a collection (``current_sort``) or of its
upload set (``sort_method``), relative headings, headings set by hand; and a cleanup of named sequences deletes
what its dry run said, its own pictures' files only. On a database built by Panoramax 2.15.1's migrations, the
choices written in the columns its API writes them to."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from tests.factories import T0, Pic, make_account, make_sequence, prepared, ranked_pictures, walk
from tests.storage_helpers import env, local_store


def _pictures(names: list[str], minutes: list[int]) -> list[Pic]:
    return [Pic(2.0 + i * 0.0002, 48.0, T0 + timedelta(minutes=m), filename=n)
            for i, (n, m) in enumerate(zip(names, minutes, strict=True))]  # fmt: skip


def _upload_set(conn: psycopg.Connection, account, sort_method: str):
    return conn.execute("INSERT INTO upload_sets (account_id, title, sort_method) VALUES (%s, 'x', %s) RETURNING id",
                        (account, sort_method)).fetchone()[0]  # fmt: skip


def _names(conn: psycopg.Connection, seq) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT p.metadata->>'originalFileName' FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id "
        "WHERE sp.seq_id = %s ORDER BY sp.rank", (seq,))]  # fmt: skip


@pytest.fixture
def pnx(pnx_url):
    with psycopg.connect(pnx_url, autocommit=True) as c:
        yield pnx_url, c


def test_reorder_keeps_each_order_an_owner_chose(ops, pnx):
    """filename-asc and filename-desc upload sets, a -filename collection sort, numeric stems compared as
    numbers: none is re-sorted by capture time; a sequence with no choice is; --by-capture-time overrides"""
    url, conn = pnx
    alice = make_account(conn)
    shuffled = [3, 1, 5, 2, 4]
    names = ["F_01.jpg", "F_02.jpg", "F_04.jpg", "F_05.jpg", "F_06.jpg"]
    asc = make_sequence(conn, alice, _pictures(names, shuffled))
    desc = make_sequence(conn, alice, _pictures(names[::-1], shuffled))
    api_sorted = make_sequence(conn, alice, _pictures(names[::-1], shuffled))
    numeric = make_sequence(conn, alice, _pictures(["9.jpg", "10.jpg", "100.jpg"], [3, 2, 1]))
    plain = make_sequence(conn, alice, _pictures(["a.jpg", "b.jpg", "c.jpg"], [3, 2, 1]))
    for seq, method in ((asc, "filename-asc"), (desc, "filename-desc"), (numeric, "filename-asc")):
        conn.execute("UPDATE sequences SET upload_set_id = %s WHERE id = %s", (_upload_set(conn, alice, method), seq))
    conn.execute("UPDATE sequences SET current_sort = '-filename' WHERE id = %s", (api_sorted,))
    prepared(conn)

    dry = ops("sequences", "reorder", "--dry-run", "--json", env=env(url))
    kept = json.loads(dry.stdout)["users_order"]
    assert kept == {
        str(asc): "upload set filename-asc",
        str(desc): "upload set filename-desc",
        str(api_sorted): "current_sort -filename",
        str(numeric): "upload set filename-asc",
    }, kept
    result = ops("sequences", "reorder", env=env(url))
    assert result.exit_code == 0 and "kept in the order their owner chose" in result.stdout, result.stdout
    assert _names(conn, asc) == names and _names(conn, desc) == names[::-1] and _names(conn, api_sorted) == names[::-1]
    assert _names(conn, numeric) == ["9.jpg", "10.jpg", "100.jpg"]
    assert _names(conn, plain) == ["c.jpg", "b.jpg", "a.jpg"]  # no choice: capture time

    forced = ops("sequences", "reorder", str(asc), "--by-capture-time", env=env(url))
    assert forced.exit_code == 0 and _names(conn, asc) == ["F_02.jpg", "F_05.jpg", "F_01.jpg", "F_06.jpg", "F_04.jpg"]
    usage = ops("sequences", "reorder", "--by-capture-time", env=env(url))
    assert usage.exit_code == 2 and "named sequences only" in usage.stderr


def test_doctor_renumbers_in_place_and_names_an_order_against_the_owner_s_choice(ops, pnx):
    """a rank gap in a filename-sorted sequence is closed without re-sorting it; a sequence whose pictures are
    not in its owner's order is SEQ006, left for the operator"""
    url, conn = pnx
    alice = make_account(conn)
    names = ["F_01.jpg", "F_02.jpg", "F_03.jpg"]
    gapped = make_sequence(conn, alice, _pictures(names, [3, 1, 2]), ranks=[1, 2, 5])
    wrong = make_sequence(conn, alice, _pictures(names[::-1], [1, 2, 3]))
    for seq in (gapped, wrong):
        conn.execute("UPDATE sequences SET upload_set_id = %s WHERE id = %s",
                     (_upload_set(conn, alice, "filename-asc"), seq))  # fmt: skip
    prepared(conn)
    report = json.loads(ops("doctor", "--json", "--only", "SEQ003", "--only", "SEQ006", env=env(url)).stdout)
    found = {f["code"]: f for f in report["findings"] if f["state"] == "found"}
    assert found["SEQ006"]["ids"] == [str(wrong)] and str(gapped) in found["SEQ003"]["ids"], report["findings"]
    fixed = ops("doctor", "--fix", "--only", "SEQ003", "--only", "SEQ006", env=env(url))
    assert [r for r, _ in ranked_pictures(conn, gapped)] == [1, 2, 3] and _names(conn, gapped) == names
    assert _names(conn, wrong) == names[::-1], fixed.stdout  # doctor never re-sorts it


def _heading(conn, pic_id) -> tuple[int, bool]:
    return conn.execute("SELECT heading, heading_computed FROM pictures WHERE id = %s", (pic_id,)).fetchone()


def test_headings_follow_the_relative_heading_chain_and_keep_hand_set_ones(ops, pnx):
    """relative_heading 90 on the sequence: every picture is movement + 90 (Panoramax recomputes them all);
    an upload set's relative heading when the sequence has none; with no relative heading, a heading set by
    hand stays and a 0 (cameras' "unknown") is computed"""
    url, conn = pnx
    alice = make_account(conn)
    east = [Pic(2.0 + i * 0.001, 48.0, T0 + timedelta(seconds=i), filename=f"{i}.jpg") for i in range(4)]
    east[1].heading = 200  # set by hand: heading_computed false
    on_sequence = make_sequence(conn, alice, east)
    conn.execute("UPDATE sequences SET metadata = '{\"relative_heading\": 90}' WHERE id = %s", (on_sequence,))
    north = [Pic(3.0, 48.0 + i * 0.001, T0 + timedelta(seconds=i), filename=f"{i}.jpg") for i in range(3)]
    on_upload_set = make_sequence(conn, alice, north)
    upload_set = _upload_set(conn, alice, "time-asc")
    conn.execute("UPDATE upload_sets SET relative_heading = -90 WHERE id = %s", (upload_set,))
    conn.execute("UPDATE sequences SET upload_set_id = %s WHERE id = %s", (upload_set, on_upload_set))
    plain = [Pic(4.0 + i * 0.001, 48.0, T0 + timedelta(seconds=i), filename=f"{i}.jpg") for i in range(3)]
    plain[0].heading, plain[1].heading = 123, 0
    without = make_sequence(conn, alice, plain)
    prepared(conn)
    result = ops("set-sequences-heading", env=env(url))
    assert result.exit_code == 0, result.stderr
    assert {_heading(conn, p.id)[0] for p in east} == {180}  # east (90) + 90, the hand-set one too
    assert {_heading(conn, p.id)[0] for p in north} == {270}  # north (0) - 90
    assert _heading(conn, plain[0].id) == (123, False) and _heading(conn, plain[1].id) == (90, True)
    again = json.loads(ops("set-sequences-heading", "--json", env=env(url)).stdout)
    assert again["pictures_updated"] == 0  # idempotent
    forced = ops("set-sequences-heading", str(without), "--value", "0", "--overwrite", env=env(url))
    assert forced.exit_code == 0 and _heading(conn, plain[0].id) == (90, True)


def test_cleanup_of_named_sequences_deletes_what_its_dry_run_said_and_leaves_other_jobs(ops, pnx, tmp_path):
    """17 delete jobs queued as Panoramax queues them (its trigger, on another user's deleted pictures): a
    cleanup of one sequence deletes its own pictures' files, as many as its dry run counted, and leaves the
    other jobs and their files to the worker, saying how many wait"""
    url, conn = pnx
    store = local_store(tmp_path)
    mine = make_sequence(conn, make_account(conn), walk(1.0, 1.0, 7))
    theirs = walk(2.0, 1.0, 17)
    make_sequence(conn, make_account(conn, "bob"), theirs)
    prepared(conn)
    ids = [r[0] for r in conn.execute("SELECT pic_id FROM sequences_pictures WHERE seq_id = %s", (mine,))]
    for pic_id in ids + [p.id for p in theirs]:
        store.add_picture(pic_id)
    conn.execute("DELETE FROM pictures WHERE id = ANY(%s)", ([p.id for p in theirs],))  # Panoramax's trigger queues
    assert conn.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0] == 17
    rows_only = ops("cleanup", "--database", "--dry-run", str(mine), env=env(url, store))
    assert rows_only.exit_code == 0 and "other delete jobs" not in rows_only.stdout  # no file touched: no such line
    dry = json.loads(ops("cleanup", str(mine), "--dry-run", "--json", env=env(url, store)).stdout)
    before = store.files()
    done = ops("cleanup", str(mine), "--json", env=env(url, store))
    result = json.loads(done.stdout)
    assert done.exit_code == 0 and result["files"] == dry["files"], (dry["files"], result["files"], done.stderr)
    assert len(before - store.files()) == sum(dry["files"].values())
    assert conn.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0] == 17
    assert result["other_delete_jobs_waiting"] == 17


def test_a_folder_where_an_original_should_be_is_never_deleted(ops, pnx, tmp_path):
    """permanent/<key> a folder holding files: the cleanup keeps it and everything in it, says why, exits 1"""
    from ops.storage import picture_key

    url, conn = pnx
    store = local_store(tmp_path)
    seq = make_sequence(conn, make_account(conn), walk(1.0, 1.0, 3))
    prepared(conn)
    ids = [r[0] for r in conn.execute("SELECT pic_id FROM sequences_pictures WHERE seq_id = %s ORDER BY rank", (seq,))]
    for pic_id in ids:
        store.add_picture(pic_id)
    folder = store.root / "permanent" / picture_key(ids[0])
    folder.unlink()
    folder.mkdir()
    (folder / "precious.txt").write_text("an operator's file")
    result = ops("cleanup", str(seq), "--json", env=env(url, store))
    assert result.exit_code == 1 and "a folder where a picture's file should be" in result.stderr, result.stderr
    assert (folder / "precious.txt").read_text() == "an operator's file"
    error = conn.execute("SELECT error FROM job_history WHERE picture_to_delete_id = %s AND error IS NOT NULL",
                         (ids[0],)).fetchone()  # fmt: skip
    assert error and "a folder" in error[0]  # the job failed at once: a folder stays a folder
