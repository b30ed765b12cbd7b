"""Every maintenance command on databases built by the migrations of each Panoramax release since 2.8.1 (from
the package registry: the wheel when it carries the migrations, else the sdist, Python migrations run by
yoyo), each checked by its outcome. The compatibility table (README.md, docs/panoramax.md) is this test's result:
``make compatibility`` writes it, and the test fails when either says something else."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psycopg

from ops.plan import source
from scripts import compatibility, panoramax
from tests.factories import make_account, make_sequence, prepared, ranked_pictures, walk
from tests.storage_helpers import Store, env, local_store, picture_files


def _instance(url: str, store: Store) -> dict[str, object]:
    """Alice: a sequence of 6 pictures out of order, one of 3; Bob: one of 2. Every picture with its files."""
    with psycopg.connect(url, autocommit=True) as c:
        alice, bob = make_account(c, "alice"), make_account(c, "bob")
        shuffled = walk(2.0, 48.0, 6)[::-1]
        seqs = {"shuffled": make_sequence(c, alice, shuffled), "alice2": make_sequence(c, alice, walk(2.1, 48.0, 3)),
                "bob": make_sequence(c, bob, walk(2.2, 48.0, 2))}  # fmt: skip
        prepared(c)
        pictures = {name: [p for _r, p in ranked_pictures(c, seq)] for name, seq in seqs.items()}
    for ids in pictures.values():
        for pic in ids:
            store.add_picture(pic)
    return {"seqs": seqs, "pictures": pictures}


def _files_gone(store: Store, pics: list) -> bool:
    left = store.files()
    return not any(f in left for p in pics for f in picture_files(p))


def _run_all(ops: Callable[..., object], url: str, store: Store) -> dict[str, str]:
    """Each command run as an operator would, with the check of its outcome: "yes" or why not."""
    data = _instance(url, store)
    seqs, pics = data["seqs"], data["pictures"]
    e = env(url, store)
    found: dict[str, str] = {}

    def check(command: str, args: list[str], ok: Callable[[object], bool], codes: tuple[int, ...] = (0,)) -> None:
        result = ops(*args, env=e)
        if result.exit_code not in codes:
            lines = (result.stderr or result.stdout).strip().splitlines()
            found[command] = f"exit {result.exit_code}: {lines[-1][:70] if lines else ''}"
        else:
            found[command] = "yes" if ok(result) else "ran, outcome wrong"

    def ranks_in_time_order(_r: object) -> bool:
        with psycopg.connect(url) as c:
            ts = [r[0] for r in c.execute("SELECT p.ts FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id "
                                          "WHERE sp.seq_id = %s ORDER BY sp.rank", (seqs["shuffled"],))]  # fmt: skip
        return ts == sorted(ts)

    def headings_set(_r: object) -> bool:
        with psycopg.connect(url) as c:
            return c.execute("SELECT count(*) FROM pictures WHERE heading IS NULL").fetchone()[0] == 0

    def rows_gone(seq: str, names: list[str]) -> Callable[[object], bool]:
        def ok(_r: object) -> bool:
            with psycopg.connect(url) as c:
                ids = [p for n in names for p in pics[n]]
                left = c.execute("SELECT count(*) FROM pictures WHERE id = ANY(%s)", (ids,)).fetchone()[0]
            return left == 0 and _files_gone(store, ids)

        return ok

    check("db status", ["db", "status", "--check"], lambda r: "ready" in r.stdout or "up to date" in r.stdout)
    check("sequences reorder", ["sequences", "reorder"], ranks_in_time_order)
    check("set-sequences-heading", ["set-sequences-heading", "--overwrite"], headings_set)
    check("refresh", ["refresh"], lambda r: True)
    check("storage check", ["storage", "check"], lambda r: True)
    check("doctor", ["doctor"], lambda r: "could not run" not in r.stdout, (0, 1))
    check("health", ["health"], lambda r: r.stdout.startswith(("OPS HEALTH OK", "OPS HEALTH WARNING")), (0, 1))
    check("cleanup", ["cleanup", str(seqs["alice2"])], rows_gone(str(seqs["alice2"]), ["alice2"]))
    check("cleanup --enqueue-only", ["cleanup", str(seqs["bob"]), "--enqueue-only"], lambda r: True)
    check("worker", ["worker", "--once"], rows_gone(str(seqs["bob"]), ["bob"]))
    check("jobs", ["jobs"], lambda r: True)
    check("jobs list", ["jobs", "list"], lambda r: True)
    check("storage orphans", ["storage", "orphans", "--min-age", "0"], lambda r: True)
    check("default-account-tokens get", ["default-account-tokens", "get"], lambda r: r.stdout.count(".") == 2)
    token = ops("default-account-tokens", "get", env=e).stdout.strip()
    check("tokens verify", ["tokens", "verify", token], lambda r: r.stdout.startswith("valid: token"))
    check("db refresh", ["db", "refresh"], lambda r: True)
    check("jobs retry", ["jobs", "retry", "--failed", "--dry-run"], lambda r: True)
    check("jobs prune", ["jobs", "prune", "--older-than", "30d", "--dry-run"], lambda r: True)
    check("user --delete-data", ["user", "alice", "--delete-data", "--wait"], rows_gone("", ["shuffled"]))
    return found


def test_every_maintenance_command_on_every_panoramax_release(ops, new_database, tmp_path):
    found: dict[str, dict[str, str]] = {}
    for version in compatibility.VERSIONS:
        url = new_database("template1")
        assert panoramax.build(url, source.from_version(version, panoramax.CACHE)) > 50
        store = local_store(Path(tmp_path / version))
        for command, outcome in _run_all(ops, url, store).items():
            found.setdefault(command, {})[version] = outcome
    table = compatibility.render(found)
    if os.environ.get("OPS_WRITE_COMPATIBILITY"):
        compatibility.write(table)
    for page in compatibility.PAGES:
        assert compatibility.current_section(page.read_text()) == table, f"{page.name}: make compatibility"
    failed = {c: {v: o for v, o in row.items() if o != "yes"} for c, row in found.items()}
    assert {c: row for c, row in failed.items() if row} == {}


def test_every_maintenance_command_has_a_compatibility_row():
    """A maintenance command (one with a spec's Needs on a Panoramax schema) is checked on every release."""
    import re

    from ops.cli import specs

    checked = {name.split(" --")[0] for name in re.findall(r'check\("([^"]+)"', Path(__file__).read_text())}
    assert {s.path for s in specs() if s.guarded} - checked == set()
