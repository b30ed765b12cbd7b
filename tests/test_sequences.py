"""`ops sequences reorder` and `ops set-sequences-heading`, checked against independent computations."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from geographiclib.geodesic import Geodesic

from tests.factories import T0, Pic, make_account, make_sequence, ranked_pictures, walk
from tests.storage_helpers import env

# --- reorder ------------------------------------------------------------------------------------------


def python_order(pics: list[Pic]) -> list:
    """Expected order: (ts, originalFileName, id), missing names last as in PostgreSQL."""
    return [p.id for p in sorted(pics, key=lambda p: (p.ts, p.filename is None, p.filename or "", str(p.id)))]


def shuffled_sequence(conn, account, n=12, seed=3, lon=2.35, lat=48.85):
    pics = walk(lon, lat, n, seed=seed)
    # ties: identical timestamps, and identical timestamps and names (the id breaks them)
    pics[3].ts = pics[4].ts = pics[5].ts
    pics[6].ts, pics[7].ts = pics[8].ts, pics[8].ts
    pics[7].filename = pics[8].filename
    pics[9].filename = None
    ranks = list(range(1, n + 1))
    random.Random(seed).shuffle(ranks)
    return make_sequence(conn, account, pics, [r * 10 for r in ranks]), pics


def test_reorder_ranks_match_a_python_sort_and_geometry_follows(ops, conn, db_url):
    account = make_account(conn)
    seq, pics = shuffled_sequence(conn, account)
    result = ops("sequences", "reorder", str(seq), "--json", env={"DB_URL": db_url})
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sequences_examined"] == 1 and summary["sequences_changed"] == 1
    ranked = ranked_pictures(conn, seq)
    assert [r for r, _ in ranked] == list(range(1, len(pics) + 1))
    assert [p for _, p in ranked] == python_order(pics)
    by_id = {p.id: p for p in pics}
    expected_points = [(by_id[pid].lon, by_id[pid].lat) for _, pid in ranked]
    geom_type, coords, nb, min_ts, max_ts, bbox = conn.execute(
        "SELECT GeometryType(geom), ST_AsGeoJSON(geom)::json -> 'coordinates', nb_pictures, min_picture_ts, "
        "max_picture_ts, ARRAY[ST_XMin(bbox), ST_YMin(bbox), ST_XMax(bbox), ST_YMax(bbox)] FROM sequences WHERE id = %s",
        (seq,),
    ).fetchone()
    assert geom_type == "MULTILINESTRING"
    assert len(coords) == 1
    assert [c for point in coords[0] for c in point] == pytest.approx([c for point in expected_points for c in point])
    assert nb == len(pics)
    assert min_ts == min(p.ts for p in pics) and max_ts == max(p.ts for p in pics)
    lons, lats = [p.lon for p in pics], [p.lat for p in pics]
    assert bbox == pytest.approx([min(lons), min(lats), max(lons), max(lats)])


def test_reorder_twice_writes_nothing_the_second_time(ops, conn, db_url):
    account = make_account(conn)
    for seed in range(3):
        shuffled_sequence(conn, account, seed=seed)
    first = ops("sequences", "reorder", env={"DB_URL": db_url})
    assert "sequences reordered: 3 (" in first.stdout
    xmin_before = conn.execute("SELECT array_agg(xmin::text ORDER BY seq_id, rank) FROM sequences_pictures").fetchone()
    second = ops("sequences", "reorder", env={"DB_URL": db_url})
    assert second.exit_code == 0
    assert "sequences reordered: 0\n" in second.stdout and "0 pictures moved" in second.stdout
    assert "(missing or stale): 0\n" in second.stdout
    xmin_after = conn.execute("SELECT array_agg(xmin::text ORDER BY seq_id, rank) FROM sequences_pictures").fetchone()
    assert xmin_before == xmin_after  # no row was rewritten


def test_reorder_all_in_small_batches_skips_deleted_and_untargeted(ops, conn, db_url):
    account = make_account(conn)
    seqs = [shuffled_sequence(conn, account, seed=s)[0] for s in range(5)]
    deleted, _ = shuffled_sequence(conn, account, seed=9)
    conn.execute("UPDATE sequences SET status = 'deleted' WHERE id = %s", (deleted,))
    before_deleted = ranked_pictures(conn, deleted)
    result = ops("sequences", "reorder", "--batch-size", "2", "--json", env={"DB_URL": db_url})
    assert json.loads(result.stdout)["sequences_examined"] == 5
    for seq in seqs:
        assert [r for r, _ in ranked_pictures(conn, seq)] == list(range(1, 13))
    assert ranked_pictures(conn, deleted) == before_deleted


def test_reorder_only_the_given_sequence(ops, conn, db_url):
    account = make_account(conn)
    target, _ = shuffled_sequence(conn, account, seed=1)
    other, _ = shuffled_sequence(conn, account, seed=2)
    other_before = ranked_pictures(conn, other)
    assert ops("sequences", "reorder", str(target), env={"DB_URL": db_url}).exit_code == 0
    assert ranked_pictures(conn, other) == other_before


def test_reorder_geometry_is_null_under_two_positions(ops, conn, db_url):
    account = make_account(conn)
    lone = make_sequence(conn, account, [Pic(1, 1, T0 + timedelta(seconds=5)), Pic(1, 1, T0)])
    result = ops("sequences", "reorder", str(lone), env={"DB_URL": db_url})
    assert result.exit_code == 0
    geom, nb = conn.execute("SELECT geom, nb_pictures FROM sequences WHERE id = %s", (lone,)).fetchone()
    assert geom is None and nb == 2


def test_shared_picture_keeps_both_sequences_consistent(ops, conn, db_url):
    account = make_account(conn)
    seq_a, pics = shuffled_sequence(conn, account, n=10, seed=4)
    seq_b = make_sequence(conn, account, [pics[0], Pic(3, 3, T0 - timedelta(days=1))], ranks=[1, 2])
    assert ops("sequences", "reorder", env={"DB_URL": db_url}).exit_code == 0
    assert [p for _, p in ranked_pictures(conn, seq_a)] == python_order(pics)
    assert ranked_pictures(conn, seq_b)[0][1] != pics[0].id  # the older picture now comes first


def gapless_and_gapped(conn, account):
    """Two shuffled sequences, one ranked 1..n (its pictures trade places), one with gaps (renumbered), each
    with a jump of about 700 m (the geometry is split there)."""
    made = []
    for seed, step in ((5, 1), (6, 10)):
        pics = walk(2.0 + seed, 45.0, 14, seed=seed)
        for p in pics[7:]:
            p.lon += 0.01
        pics[2].ts = pics[3].ts  # a tie, broken by the file name
        ranks = list(range(1, len(pics) + 1))
        random.Random(seed).shuffle(ranks)
        made.append((make_sequence(conn, account, pics, [r * step for r in ranks]), pics))
    return made


def test_reorder_in_place_and_with_gaps_gives_the_order_and_the_functions_geometry(ops, conn, db_url):
    from ops.schema import capabilities

    assert capabilities.sequence_rule_known(conn)  # ops's and Panoramax's functions: computed set-based
    account = make_account(conn)
    made = gapless_and_gapped(conn, account)
    before = {pic: rank for seq, _ in made for rank, pic in ranked_pictures(conn, seq)}
    dry = json.loads(ops("sequences", "reorder", "--dry-run", "--json", env={"DB_URL": db_url}).stdout)
    result = ops("sequences", "reorder", "--json", env={"DB_URL": db_url})
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(summary["reordered"]) == sorted(str(seq) for seq, _ in made)
    after = {pic: rank for seq, _ in made for rank, pic in ranked_pictures(conn, seq)}
    moved = sum(before[pic] != after[pic] for pic in before)
    assert summary["pictures_moved"] == dry["pictures_moved"] == moved > 14  # the dry run said what the run did
    for seq, pics in made:
        ranked = ranked_pictures(conn, seq)
        assert [r for r, _ in ranked] == list(range(1, len(pics) + 1))
        assert [p for _, p in ranked] == python_order(pics)
        same = conn.execute(
            "SELECT ST_AsEWKB(geom) = ST_AsEWKB(compute_sequence_geom(id)), bbox::text = compute_sequence_bbox(id)::text,"
            " ST_NumGeometries(geom) FROM sequences WHERE id = %s",
            (seq,),
        ).fetchone()
        assert same == (True, True, 2)  # byte for byte what the database's own functions give; split at the jump
    assert json.loads(ops("sequences", "reorder", "--json", env={"DB_URL": db_url}).stdout)["sequences_changed"] == 0


def test_a_geometry_rule_ops_does_not_know_is_called_per_sequence(ops, conn, db_url):
    from ops.schema import capabilities

    conn.execute(  # another rule (no split at 75 m), as a later Panoramax release might bring
        "CREATE OR REPLACE FUNCTION compute_sequence_geom(sequence_id uuid) RETURNS geometry LANGUAGE sql STABLE AS "
        "$$ SELECT ST_Multi(ST_MakeLine(p.geom ORDER BY sp.rank)) FROM sequences_pictures sp "
        "JOIN pictures p ON p.id = sp.pic_id WHERE sp.seq_id = sequence_id $$"
    )
    assert not capabilities.sequence_rule_known(conn)
    account = make_account(conn)
    made = gapless_and_gapped(conn, account)
    assert ops("sequences", "reorder", env={"DB_URL": db_url}).exit_code == 0
    for seq, pics in made:
        assert [p for _, p in ranked_pictures(conn, seq)] == python_order(pics)
        same, parts = conn.execute(
            "SELECT ST_AsEWKB(geom) = ST_AsEWKB(compute_sequence_geom(id)), ST_NumGeometries(geom) FROM sequences "
            "WHERE id = %s",
            (seq,),
        ).fetchone()
        assert same and parts == 1  # the database's rule, not ops's: one line across the jump


@pytest.mark.parametrize("command", [["sequences", "reorder"], ["set-sequences-heading"]])
def test_ids_are_validated_before_anything_changes(ops, conn, db_url, command):
    account = make_account(conn)
    seq, _ = shuffled_sequence(conn, account)
    before = ranked_pictures(conn, seq)
    bad = ops(*command, str(seq), "not-a-uuid", env={"DB_URL": db_url})
    assert bad.exit_code == 2
    assert "'not-a-uuid' is not a sequence id" in bad.stderr
    unknown = "00000000-0000-4000-8000-000000000001"
    missing = ops(*command, str(seq), unknown, env={"DB_URL": db_url})
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: no such sequence: {unknown} (nothing was changed)"
    assert ranked_pictures(conn, seq) == before


@pytest.mark.parametrize("command", [["sequences", "reorder"], ["set-sequences-heading"], ["refresh"]])
def test_commands_refuse_a_pending_schema(ops, empty_db_url, command):
    result = ops(*command, env={"DB_URL": empty_db_url})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database schema needs an update: ")
    assert result.stderr.strip().endswith("Run: ops db upgrade")


# --- headings -----------------------------------------------------------------------------------------


def expected_headings(pics: list[Pic], value: int) -> list[int | None]:
    """Geodesic azimuth (geographiclib, WGS84) to the next different position, else from the previous one."""
    positions = [(p.lat, p.lon) for p in pics]
    result: list[int | None] = []
    for i, here in enumerate(positions):
        nxt = next((q for q in positions[i + 1 :] if q != here), None)
        if nxt is not None:
            azimuth = Geodesic.WGS84.Inverse(here[0], here[1], nxt[0], nxt[1])["azi1"]
        else:
            prev = next((q for q in reversed(positions[:i]) if q != here), None)
            if prev is None:
                result.append(None)
                continue
            azimuth = Geodesic.WGS84.Inverse(prev[0], prev[1], here[0], here[1])["azi1"]
        result.append(round(azimuth + value) % 360)
    return result


def headings_by_rank(conn, seq):
    return conn.execute(
        "SELECT p.heading FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id "
        "WHERE sp.seq_id = %s ORDER BY sp.rank",
        (seq,),
    ).fetchall()


def angle_gap(a: int, b: int) -> int:
    return min((a - b) % 360, (b - a) % 360)


def along(lon: float, lat: float, dlon: float, dlat: float, n: int) -> list[Pic]:
    return [Pic(lon + i * dlon, lat + i * dlat, T0 + timedelta(seconds=i)) for i in range(n)]


CASES = {
    "equator": along(10.0, 0.0, 0.0003, 0.0002, 6),
    "60N": along(24.9, 60.17, 0.0005, 0.0001, 6),
    "antimeridian": along(179.9997, -16.5, 0.0002, 0.00005, 4) + along(-179.9995, -16.49985, 0.0002, 0.00005, 3),
    "duplicates": [Pic(5.0, 45.0), Pic(5.0, 45.0), Pic(5.001, 45.0005), Pic(5.001, 45.0005), Pic(5.0, 45.0)],
    "same_timestamps": [Pic(-3.0 + i * 0.0002, 47.0 + (i % 2) * 0.0001, T0) for i in range(5)],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("value", [0, 90, -45])
def test_headings_match_geographiclib(ops, conn, db_url, case, value):
    import copy

    pics = copy.deepcopy(CASES[case])
    seq = make_sequence(conn, make_account(conn), pics)
    result = ops("set-sequences-heading", str(seq), "--value", str(value), env={"DB_URL": db_url})
    assert result.exit_code == 0, result.stderr
    got = [h for (h,) in headings_by_rank(conn, seq)]
    want = expected_headings(pics, value)
    for g, w in zip(got, want, strict=True):
        assert g is not None and 0 <= g < 360
        assert angle_gap(g, w) <= 1, (case, got, want)
    computed = conn.execute(
        "SELECT bool_and(heading_computed) FROM pictures p JOIN sequences_pictures sp ON sp.pic_id = p.id WHERE sp.seq_id = %s",
        (seq,),
    ).fetchone()[0]
    assert computed


def test_headings_keep_metadata_values_unless_overwrite(ops, conn, db_url):
    pics = along(2.0, 45.0, 0.0003, 0.0, 4)  # due east: about 90 degrees
    pics[1].heading = 123  # from the picture's own metadata
    pics[2].heading, pics[2].heading_computed = 7, True  # computed before: may change
    seq = make_sequence(conn, make_account(conn), pics)
    result = ops("set-sequences-heading", str(seq), "--json", env={"DB_URL": db_url})
    assert json.loads(result.stdout)["pictures_updated"] == 3
    assert [h for (h,) in headings_by_rank(conn, seq)] == [90, 123, 90, 90]
    again = ops("set-sequences-heading", str(seq), "--json", env={"DB_URL": db_url})
    assert json.loads(again.stdout)["pictures_updated"] == 0  # idempotent: nothing rewritten
    overwrite = ops("set-sequences-heading", str(seq), "--overwrite", "--json", env={"DB_URL": db_url})
    assert json.loads(overwrite.stdout)["pictures_updated"] == 1
    assert [h for (h,) in headings_by_rank(conn, seq)] == [90, 90, 90, 90]


def test_sequences_without_movement_are_counted_and_untouched(ops, conn, db_url):
    account = make_account(conn)
    lone = make_sequence(conn, account, [Pic(1, 1)])
    still = make_sequence(conn, account, [Pic(2, 2), Pic(2, 2), Pic(2, 2)])
    moving = make_sequence(conn, account, along(3, 3, 0.001, 0, 3))
    result = ops("set-sequences-heading", "--json", env={"DB_URL": db_url})
    summary = json.loads(result.stdout)
    assert summary == {
        "dry_run": False,
        "sequences_examined": 3,
        "sequences_changed": 1,
        "changed": [str(moving)],
        "pictures_updated": 3,
        "sequences_without_azimuth": 2,
        "skipped_deleted": [],
    }
    assert headings_by_rank(conn, lone) == [(None,)]
    assert headings_by_rank(conn, still) == [(None,)] * 3
    assert all(h is not None for (h,) in headings_by_rank(conn, moving))


@pytest.mark.parametrize("bad", ["360", "-360", "12.5", "east"])
def test_heading_value_out_of_range_is_a_usage_error(ops, db_url, bad):
    result = ops("set-sequences-heading", "--value", bad, env={"DB_URL": db_url})
    assert result.exit_code == 2
    assert "--value" in result.stderr


def stored(conn, seq):
    return conn.execute("SELECT ST_AsText(geom), bbox::text, nb_pictures, min_picture_ts FROM sequences "
                        "WHERE id = %s", (seq,)).fetchone()  # fmt: skip


def test_reorder_computes_missing_and_stale_fields_of_sequences_in_order(ops, conn, db_url):
    account = make_account(conn)
    in_order = [make_sequence(conn, account, walk(1.0 + i, 1.0, 5, seed=i)) for i in range(3)]
    conn.execute("UPDATE sequences SET geom = NULL, bbox = NULL")  # as Panoramax leaves them before finalize
    stale = in_order[2]
    first = ops("sequences", "reorder", str(in_order[0]), "--json", env=env(db_url))
    assert json.loads(first.stdout)["recomputed"] == [str(in_order[0])]  # named: recomputed though in order
    assert stored(conn, in_order[0])[0].startswith("MULTILINESTRING") and stored(conn, in_order[1])[0] is None
    whole = ops("sequences", "reorder", "--json", env=env(db_url))
    summary = json.loads(whole.stdout)
    assert summary["reordered"] == [] and set(summary["recomputed"]) == {str(s) for s in in_order[1:]}
    assert all(stored(conn, s)[0].startswith("MULTILINESTRING") and stored(conn, s)[1] for s in in_order)
    right = stored(conn, stale)
    conn.execute("UPDATE sequences SET nb_pictures = 99, geom = ST_Multi(ST_MakeLine(ST_MakePoint(0, 0), "
                 "ST_MakePoint(0, 0.0001))) WHERE id = %s", (stale,))  # fmt: skip
    again = json.loads(ops("sequences", "reorder", "--json", env=env(db_url)).stdout)
    assert again["recomputed"] == [str(stale)] and stored(conn, stale) == right
    assert json.loads(ops("sequences", "reorder", "--json", env=env(db_url)).stdout)["recomputed"] == []


def test_headings_list_the_sequences_they_change_and_leave_deleted_ones(ops, conn, db_url):
    account = make_account(conn)
    moving = make_sequence(conn, account, walk(1.0, 1.0, 4))
    deleted = make_sequence(conn, account, walk(2.0, 1.0, 4), status="deleted")
    dry = ops("set-sequences-heading", str(moving), str(deleted), "--dry-run", env=env(db_url))
    assert f"sequences that would change: 1 ({moving})" in dry.stdout
    assert f"deleted sequences left as they are: 1 ({deleted})" in dry.stdout and "no movement" in dry.stdout
    assert conn.execute("SELECT count(*) FROM pictures WHERE heading IS NOT NULL").fetchone()[0] == 0
    done = json.loads(ops("set-sequences-heading", str(moving), str(deleted), "--json", env=env(db_url)).stdout)
    assert done["changed"] == [str(moving)] and done["skipped_deleted"] == [str(deleted)]
    assert done["sequences_without_azimuth"] == 0
