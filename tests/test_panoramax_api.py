"""What Panoramax's users choose through Panoramax 2.15.1's own API survives ops, checked through that API: the
sort of an upload set (each ``sort_method``) or of a collection (``PATCH sortby``), a relative heading
(``PATCH relative_heading``), a heading set by hand (``PATCH`` of an item), the rank gap a deletion through
the API leaves; and a cleanup of one sequence deletes what its dry run said while deletions queued by the API
wait for the worker. Every picture is uploaded as a camera's JPEG to a real Panoramax server
(tests/panoramax_api/), which prepares it and dispatches its upload set itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from tests.conftest import _create_database, _drop_database
from tests.panoramax_api import SECRET_KEY, Panoramax, Picture, make_pictures

NAMES = ["F_01.jpg", "F_02.jpg", "F_04.jpg", "F_05.jpg", "F_06.jpg"]
SHUFFLED = [8, 2, 6, 0, 10]  # capture seconds of NAMES: their capture order is not their names' order


def _walk(folder: Path, names: list[str], seconds: list[int], lon: float, *, pano: bool = False) -> list[Path]:
    """Pictures 11 m apart going north (planar and geodesic azimuths agree: 0), taken at these seconds."""
    pictures = [Picture(name, 48.1 + i * 0.0001, lon, f"2024:01:01 10:00:{s:02d}", pano=pano)
                for i, (name, s) in enumerate(zip(names, seconds, strict=True))]  # fmt: skip
    return make_pictures(folder, pictures)


@pytest.fixture(scope="module")
def instance(cluster, admin_url, panoramax_template, tmp_path_factory) -> Iterator[dict]:
    """A Panoramax server and what its users did through its API: four upload sets with each sort method, a
    collection sorted by PATCH, a 360 one given a relative heading, a heading set by hand, a picture deleted."""
    name = f"pnxapi_{uuid4().hex[:8]}"
    _create_database(admin_url, name, panoramax_template)
    url = cluster.url(name)
    root = tmp_path_factory.mktemp("pnxapi")
    server = Panoramax(url, root / "storage").start()
    token = _token(url)
    try:
        seqs = {}
        for i, method in enumerate(["filename-asc", "filename-desc", "time-asc", "time-desc"]):
            files = _walk(root / method, NAMES, SHUFFLED, 2.0 + i * 0.01)
            seqs[method] = server.upload(method, files, sort_method=method)
        seqs["patched"] = server.upload("patched", _walk(root / "patched", NAMES, SHUFFLED, 2.1))
        server.call("PATCH", f"/api/collections/{seqs['patched']}", {"sortby": "-filename"}, token=token)
        seqs["pano"] = server.upload("pano", _walk(root / "pano", NAMES, [0, 2, 4, 6, 8], 2.2, pano=True))
        server.call("PATCH", f"/api/collections/{seqs['pano']}", {"relative_heading": 90}, token=token)
        seqs["hand"] = server.upload("hand", _walk(root / "hand", NAMES, [0, 2, 4, 6, 8], 2.3))
        hand_set = server.items(seqs["hand"])[2]["id"]
        server.call("PATCH", f"/api/collections/{seqs['hand']}/items/{hand_set}", {"heading": 200}, token=token)
        seqs["gap"] = server.upload("gap", _walk(root / "gap", NAMES, SHUFFLED, 2.4), sort_method="filename-asc")
        deleted = server.items(seqs["gap"])[1]["id"]
        server.call("DELETE", f"/api/collections/{seqs['gap']}/items/{deleted}", token=token)
        server.wait_until_idle()
        yield {"url": url, "server": server, "seqs": seqs, "token": token, "storage": root / "storage",
               "hand_set": hand_set}  # fmt: skip
    finally:
        server.stop()
        _drop_database(admin_url, name)


def _token(url: str) -> str:
    """The default account's token, from ops (Panoramax-compatible: the API accepts it as Bearer)."""
    from click.testing import CliRunner

    from ops.cli import cli

    result = CliRunner().invoke(cli, ["default-account-tokens", "get"], env={"DB_URL": url, "SECRET_KEY": SECRET_KEY})
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _served(instance: dict) -> dict[str, list[tuple[str, int]]]:
    """Each collection as Panoramax serves it: its pictures' file names and azimuths, in its order."""
    server = instance["server"]
    return {k: [(p["name"], p["azimuth"]) for p in server.items(seq)] for k, seq in instance["seqs"].items()}


def _env(instance: dict) -> dict[str, str]:
    return {"DB_URL": instance["url"], "FS_URL": str(instance["storage"])}


def test_what_users_chose_through_the_api_is_what_panoramax_serves_before_ops(instance):
    """the starting point, as Panoramax's own API left it (so that the tests below compare with something)"""
    served = _served(instance)
    names = {k: [n for n, _a in v] for k, v in served.items()}
    assert names["filename-asc"] == NAMES and names["filename-desc"] == NAMES[::-1]
    by_time = [n for _s, n in sorted(zip(SHUFFLED, NAMES, strict=True))]
    assert names["time-asc"] == by_time and names["time-desc"] == by_time[::-1]
    assert names["patched"] == NAMES[::-1] and names["gap"] == [NAMES[0], *NAMES[2:]]
    assert {a for _n, a in served["pano"]} == {90}  # going north, plus the relative heading
    assert served["hand"][2] == (NAMES[2], 200)


def _ranks(instance: dict, seq: str) -> list[int]:
    with psycopg.connect(instance["url"]) as c:
        return [r[0] for r in c.execute("SELECT rank FROM sequences_pictures WHERE seq_id = %s ORDER BY rank", (seq,))]


def test_doctor_fix_then_reorder_keep_every_order_users_chose(ops, instance):
    """ops doctor --fix (the rank gap the API's deletion left), then ops sequences reorder: every collection is
    served in the same order, the gap is closed in that order"""
    before = _served(instance)
    seqs = instance["seqs"]
    assert _ranks(instance, seqs["gap"]) == [1, 3, 4, 5], "the API's deletion left no gap: nothing to fix"
    doctor = ops("doctor", "--fix", env=_env(instance))
    assert doctor.exit_code == 0, doctor.stdout + doctor.stderr
    assert _ranks(instance, seqs["gap"]) == [1, 2, 3, 4], doctor.stdout
    assert _served(instance) == before
    reorder = ops("sequences", "reorder", "--json", env=_env(instance))
    assert reorder.exit_code == 0, reorder.stderr
    kept = json.loads(reorder.stdout)["users_order"]
    for method in ("filename-asc", "filename-desc", "time-asc", "time-desc"):
        assert kept[seqs[method]] == f"upload set {method}", kept
    assert kept[seqs["patched"]] == "current_sort -filename", kept
    assert _served(instance) == before


def test_headings_keep_the_relative_heading_and_the_hand_set_one(ops, instance):
    """ops set-sequences-heading (no --value): the 360 collection stays at movement + 90, the heading set by
    hand through the API stays 200, every azimuth Panoramax serves is unchanged"""
    before = _served(instance)
    result = ops("set-sequences-heading", env=_env(instance))
    assert result.exit_code == 0, result.stderr
    after = _served(instance)
    assert after == before, (before, after)
    assert {a for _n, a in after["pano"]} == {90} and after["hand"][2] == (NAMES[2], 200)


def test_cleanup_deletes_what_its_dry_run_said_while_the_api_s_deletions_wait(ops, instance):
    """Panoramax restarted without background threads; a collection deleted through the API queues its
    pictures' delete jobs; ops cleanup of another sequence deletes that sequence's files only, as many as its
    dry run said, and leaves the API's jobs (and files) to the worker"""
    instance["server"].stop()
    server = Panoramax(instance["url"], instance["storage"], workers=False).start()
    try:
        seqs = instance["seqs"]
        server.call("DELETE", f"/api/collections/{seqs['time-desc']}", token=instance["token"])
        with psycopg.connect(instance["url"]) as c:
            queued = c.execute("SELECT count(*) FROM job_queue").fetchone()[0]
        assert queued > 0, "the API queued no job"
        storage = instance["storage"]
        before = {p for p in storage.rglob("*") if p.is_file()}
        dry = ops("cleanup", seqs["time-asc"], "--dry-run", "--json", env=_env(instance))
        assert dry.exit_code == 0, dry.stderr
        done = ops("cleanup", seqs["time-asc"], "--json", env=_env(instance))
        assert done.exit_code == 0, done.stderr
        said, did = json.loads(dry.stdout)["files"], json.loads(done.stdout)["files"]
        assert said == did and sum(did.values()) > 0, (said, did)
        assert len(before - {p for p in storage.rglob("*") if p.is_file()}) == sum(did.values())
        with psycopg.connect(instance["url"]) as c:
            assert c.execute("SELECT count(*) FROM job_queue").fetchone()[0] == queued  # the worker's, untouched
        assert json.loads(done.stdout)["other_delete_jobs_waiting"] == queued
        with pytest.raises(AssertionError, match=" 404 "):  # Panoramax no longer serves the cleaned sequence
            server.call("GET", f"/api/collections/{seqs['time-asc']}")
        assert [p["name"] for p in server.items(seqs["filename-asc"])] == NAMES  # nor anything else changed
    finally:
        server.stop()
