"""On a database built by Panoramax's own migrations (geovisio 2.15.1, tests/panoramax.py): ops recognises
it, never touches its migration history, checks what each command needs, and every maintenance command
does its job with Panoramax's extra tables, triggers and functions."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from scripts import panoramax
from tests.factories import T0, Pic, make_account, make_sequence, prepared, walk
from tests.test_migrations import schema_dump


def history(url: str) -> list[tuple]:
    with psycopg.connect(url) as c:
        migrations = c.execute("SELECT * FROM _yoyo_migration ORDER BY migration_hash").fetchall()
        log = c.execute("SELECT * FROM _yoyo_log ORDER BY id").fetchall()
        return [*migrations, *log]


def panoramax_is_up_to_date(url: str, tmp_path) -> bool:
    """What Panoramax's `flask db upgrade` checks: yoyo finds nothing to apply."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return not backend.to_apply(read_migrations(str(panoramax.migrations_dir(tmp_path))))
    finally:
        backend.connection.close()


def test_status_recognises_panoramax_and_every_command_is_ready(ops, pnx_url):
    result = ops("db", "status", env={"DB_URL": pnx_url})
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("Panoramax-managed database: 102 Panoramax migrations applied, latest 20260708_01_")
    assert "built by Panoramax 2.15.1" in first  # which release, from the history
    assert "ops sequences reorder: ready" in result.stdout and "ops cleanup: ready" in result.stdout
    assert "missing" not in result.stdout  # Panoramax's migrations are not ops's
    data = json.loads(ops("db", "status", "--check", "--json", env={"DB_URL": pnx_url}).stdout)
    assert data["kind"] == "panoramax-managed" and data["up_to_date"] is True
    assert data["panoramax"]["migrations"] == 102 and data["panoramax"]["release"] == "2.15.1"
    assert all(c["ready"] for c in data["commands"].values())


@pytest.mark.parametrize(
    "args",
    [["db", "upgrade"], ["db", "upgrade", "--dry-run"], ["db", "rollback"], ["db", "rollback", "--all", "--yes"],
     ["db", "rollback", "--dry-run"]],
)  # fmt: skip
def test_upgrade_and_rollback_refuse_and_change_nothing(ops, pnx_url, args, tmp_path):
    schema, yoyo = schema_dump(pnx_url), history(pnx_url)
    result = ops(*args, env={"DB_URL": pnx_url})
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Panoramax-managed database" in lines[0] and "flask db upgrade" in lines[0]
    assert "nothing was changed" in lines[0]
    assert schema_dump(pnx_url) == schema and history(pnx_url) == yoyo
    assert panoramax_is_up_to_date(pnx_url, tmp_path)


def test_guard_names_what_an_older_panoramax_lacks(ops, pnx_url):
    with psycopg.connect(pnx_url, autocommit=True) as c:
        c.execute("ALTER TABLE job_queue DROP COLUMN to_do_after_ts")
        c.execute("DROP FUNCTION compute_sequence_bbox(uuid) CASCADE")
    cleanup = ops("cleanup", "0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e", "--database", env={"DB_URL": pnx_url})
    assert cleanup.exit_code == 1
    assert "lacks what ops cleanup needs: column job_queue.to_do_after_ts" in cleanup.stderr
    reorder = ops("sequences", "reorder", env={"DB_URL": pnx_url})
    assert reorder.exit_code == 1 and "function compute_sequence_bbox()" in reorder.stderr
    headings = ops("set-sequences-heading", env={"DB_URL": pnx_url})
    assert headings.exit_code == 0, headings.stderr  # needs neither
    check = ops("db", "status", "--check", env={"DB_URL": pnx_url})
    assert check.exit_code == 1 and "ops worker: lacks column job_queue.to_do_after_ts" in check.stdout
    assert "error: database schema is not current: " in check.stderr


def test_an_ops_migration_written_into_panoramax_history_is_named_not_touched(ops, pnx_url):
    with psycopg.connect(
        pnx_url, autocommit=True
    ) as c:  # what a development build of ops before 0.1.0 did on such a database
        c.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) "
            "VALUES ('x', '0001_extensions', now())"
        )
    before = history(pnx_url)
    status = ops("db", "status", env={"DB_URL": pnx_url})
    assert status.exit_code == 0 and "also names 0001_extensions" in status.stdout
    assert ops("db", "upgrade", env={"DB_URL": pnx_url}).exit_code == 1
    assert history(pnx_url) == before


def test_reorder_geometry_is_panoramax_s_on_both_kinds(ops, pnx_url, ops_db_url):
    """Same pictures, same order on both kinds: the same MultiLineString, split where two consecutive
    pictures are more than 75 m apart, and on Panoramax's database what its own function computes."""
    later = walk(2.01, 48.0, 5, seed=4)  # ~700 m from the first walk: a gap in the capture
    for p in later:
        p.ts += timedelta(hours=1)
    pics = walk(2.0, 48.0, 6, seed=3) + later
    pics[2].lon, pics[2].lat = pics[1].lon, pics[1].lat  # two pictures at one position
    geoms = {}
    for url in (pnx_url, ops_db_url):
        with psycopg.connect(url, autocommit=True) as c:
            account = make_account(c)
            order = [Pic(p.lon, p.lat, p.ts, p.filename) for p in pics]
            seq = make_sequence(c, account, list(reversed(order)))
            result = ops("sequences", "reorder", str(seq), env={"DB_URL": url})
            assert result.exit_code == 0, result.stderr
            geoms[url] = c.execute(
                "SELECT ST_AsText(geom), ST_NumGeometries(geom), ST_AsText(geom) = ST_AsText(compute_sequence_geom(id)),"
                " bbox::text FROM sequences WHERE id = %s",
                (seq,),
            ).fetchone()
    assert geoms[pnx_url] == geoms[ops_db_url]
    text, parts, same_as_function, _bbox = geoms[pnx_url]
    assert parts == 2 and same_as_function and text.startswith("MULTILINESTRING")


def expire_a_cell(conn: psycopg.Connection) -> None:
    account = make_account(conn, "mapper")
    make_sequence(conn, account, walk(3.0, 45.0, 3))
    conn.execute("UPDATE pictures SET geom = ST_SetSRID(ST_MakePoint(3.05, 45.05), 4326) WHERE geom IS NOT NULL")


def test_refresh_does_what_panoramax_does_and_reports_a_skip_as_a_skip(ops, pnx_url):
    with psycopg.connect(pnx_url, autocommit=True) as c:
        expire_a_cell(c)
        assert c.execute("SELECT count(*) FROM pictures_aggregate_grid_expired").fetchone()[0] > 0
        with psycopg.connect(pnx_url) as other:
            other.execute("SELECT * FROM refresh_database FOR UPDATE")  # a refresh running elsewhere
            skipped = ops("refresh", "--json", env={"DB_URL": pnx_url})
        assert skipped.exit_code == 0, skipped.stderr
        assert json.loads(skipped.stdout)[0]["state"] == "skipped"
        assert c.execute("SELECT refreshed_at FROM refresh_database").fetchone()[0] is None
        done = ops("refresh", env={"DB_URL": pnx_url})
        assert done.exit_code == 0, done.stderr
        assert done.stdout.startswith("refreshed pictures_aggregate_grid in ") and "1 cells" in done.stdout
        assert c.execute("SELECT count(*) FROM pictures_aggregate_grid_expired").fetchone()[0] == 0
        assert c.execute("SELECT nb_pictures FROM pictures_aggregate_grid").fetchall() == [(3,)]
        assert c.execute("SELECT refreshed_at > now() - interval '1 minute' FROM refresh_database").fetchone()[0]
        c.execute("TRUNCATE pictures_aggregate_grid")
        full = ops("db", "refresh", "--full", env={"DB_URL": pnx_url})
        assert full.exit_code == 0 and "all cells rebuilt" in full.stdout
        assert c.execute("SELECT sum(nb_pictures) FROM pictures_aggregate_grid").fetchone()[0] == 3
        assert c.execute("SELECT to_regclass('ops_views')").fetchone()[0] is None  # never ops's views here
    bad = ops("refresh", "--view", "pictures_grid", env={"DB_URL": pnx_url})
    assert bad.exit_code == 2 and "Panoramax database" in bad.stderr


@pytest.fixture
def edited(pnx_url):
    """Two sequences sharing a picture, edited by a user as Panoramax's API records it (change history
    linking the pictures' changes to the sequence's), with a report, an annotation, an upload set with its
    files, and a (legacy) next_sequences link."""
    with psycopg.connect(pnx_url, autocommit=True) as c:
        alice = make_account(c, "alice")
        upload_set = c.execute(
            "INSERT INTO upload_sets (account_id, title) VALUES (%s, 'u') RETURNING id", (alice,)
        ).fetchone()[0]
        a, b, shared, d = walk(2.0, 48.0, 4)
        seq1 = make_sequence(c, alice, [a, b, shared])
        seq2 = make_sequence(c, alice, [d, shared])
        c.execute("UPDATE pictures SET upload_set_id = %s", (upload_set,))
        c.execute(
            "INSERT INTO files (upload_set_id, file_name, picture_id) SELECT %s, id::text || '.jpg', id FROM pictures",
            (upload_set,),
        )
        prepared(c)
        with c.transaction():  # one edit of seq1 and its pictures, as the API makes it
            c.execute("UPDATE sequences SET last_account_to_edit = %s WHERE id = %s", (alice, seq1))
            c.execute(
                "UPDATE pictures SET last_account_to_edit = %s, heading = 90 WHERE id = ANY(%s)",
                (alice, [a.id, b.id, shared.id]),
            )
        c.execute("INSERT INTO reports (issue, picture_id) VALUES ('other', %s)", (a.id,))
        c.execute("INSERT INTO reports (issue, sequence_id) VALUES ('other', %s)", (seq1,))
        c.execute("INSERT INTO annotations (picture_id, shape) VALUES (%s, '{}')", (b.id,))
        c.execute("INSERT INTO next_sequences (seq_id, rank, next_seq_id) VALUES (%s, 1, %s)", (seq2, seq1))
        linked = c.execute("SELECT count(*) FROM pictures_changes WHERE sequences_changes_id IS NOT NULL").fetchone()[0]
        assert linked == 3
    return {"url": pnx_url, "seq1": seq1, "seq2": seq2, "a": a.id, "b": b.id, "shared": shared.id, "d": d.id,
            "upload_set": upload_set}  # fmt: skip


def test_cleanup_of_an_edited_sequence_follows_panoramax_rules(ops, edited, tmp_path):
    e = edited
    result = ops("cleanup", str(e["seq1"]), "--database", env={"DB_URL": e["url"]})
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(e["url"]) as c:
        assert {r[0] for r in c.execute("SELECT id FROM pictures")} == {e["shared"], e["d"]}
        # the kept picture keeps its change history, unlinked from the deleted sequence's change set
        kept = c.execute("SELECT picture_id, sequences_changes_id FROM pictures_changes").fetchall()
        assert kept == [(e["shared"], None)]
        assert c.execute("SELECT count(*) FROM sequences_changes").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM reports").fetchone()[0] == 0  # about deleted things
        assert c.execute("SELECT count(*) FROM annotations").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM next_sequences").fetchone()[0] == 0
        files = dict(c.execute("SELECT file_name, picture_id FROM files").fetchall())
        assert len(files) == 4 and sorted(map(str, filter(None, files.values()))) == sorted(
            map(str, [e["shared"], e["d"]])
        )  # file rows stay with their upload set; those of deleted pictures lose their picture
        assert c.execute("SELECT count(*) FROM job_queue").fetchone()[0] == 0  # no file deletion queued
    assert panoramax_is_up_to_date(e["url"], tmp_path)


def test_whole_instance_cleanup_deletes_in_batches_without_truncate(ops, edited, tmp_path):
    e = edited
    result = ops("cleanup", "--database", "--yes", "--batch-size", "1", "--json", env={"DB_URL": e["url"]})
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(e["url"]) as c:
        for table in ("sequences", "pictures", "upload_sets", "files", "pictures_changes", "next_sequences",
                      "reports", "job_queue"):  # fmt: skip
            assert c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        assert c.execute("SELECT count(*) FROM accounts WHERE name = 'alice'").fetchone()[0] == 1
    assert panoramax_is_up_to_date(e["url"], tmp_path)


@pytest.mark.parametrize("flag, gone, kept", [("--cache", "derivates", "permanent"),
                                               ("--permanent-pictures", "permanent", "derivates")])  # fmt: skip
def test_partial_cleanup_leaves_no_job_a_panoramax_worker_reads_as_delete_all(ops, pnx_url, store, flag, gone, kept):
    with psycopg.connect(pnx_url, autocommit=True) as c:
        account = make_account(c)
        pics = walk(1.0, 1.0, 3)
        seq = make_sequence(c, account, pics)
        prepared(c)
    for p in pics:
        store.add_picture(p.id)
    result = ops("cleanup", str(seq), "--database", flag, "--json", env={"DB_URL": pnx_url, **store.env})
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(pnx_url) as c:
        assert c.execute("SELECT count(*) FROM pictures").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM job_queue").fetchone()[0] == 0
    left = store.files()
    assert not any(f.startswith(f"{gone}/") for f in left)
    assert sum(f.startswith(f"{kept}/") for f in left) >= 3


def test_delete_data_on_an_edited_account(ops, edited):
    e = edited
    result = ops("user", "alice", "--delete-data", "--json", env={"DB_URL": e["url"]})
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(e["url"]) as c:
        assert c.execute("SELECT count(*) FROM pictures").fetchone()[0] == 0
        statuses = c.execute("SELECT DISTINCT status::text FROM sequences").fetchall()
        assert statuses == [("deleted",)]  # tombstones, as Panoramax's API leaves them
        assert c.execute("SELECT count(*) FROM sequences_changes").fetchone()[0] == 1  # sequences stay
        assert c.execute("SELECT count(*) FROM upload_sets").fetchone()[0] == 0
        queued = c.execute("SELECT count(*), bool_and(args ? 'files') FROM job_queue WHERE task = 'delete'").fetchone()
        assert queued == (4, True)


def test_worker_and_orphans_work_alongside_panoramax_jobs(ops, pnx_url, store):
    with psycopg.connect(pnx_url, autocommit=True) as c:
        account = make_account(c)
        pics = [Pic(1.0, 1.0 + i * 1e-4, T0 + timedelta(seconds=i)) for i in range(3)]
        make_sequence(c, account, pics)
        for p in pics:
            store.add_picture(p.id)
        c.execute("DELETE FROM pictures WHERE id = %s", (pics[0].id,))  # as the API: the trigger queues its job
        assert c.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0] == 1
    worker = ops("worker", "--once", "--json", env={"DB_URL": pnx_url, **store.env})
    assert worker.exit_code == 0, worker.stderr
    assert json.loads(worker.stdout)["done"] == 1
    assert not any(str(pics[0].id)[9:] in f for f in store.files())
    orphans = ops("storage", "orphans", "--min-age", "0", "--json", env={"DB_URL": pnx_url, **store.env})
    assert orphans.exit_code == 0 and json.loads(orphans.stdout)["orphan_pictures"]["permanent"] == 0
