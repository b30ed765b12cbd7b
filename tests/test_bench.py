"""A tiny run of the instance generator and of every benchmark, so that they cannot rot.

Speed is not asserted here (that is what `make bench` reports); only that each benchmark runs the real
commands and produces complete, sane results.
"""

from __future__ import annotations

import math

import psycopg
import pytest

from bench import suite
from bench.common import BenchDb, Result, table
from bench.generate import generate


@pytest.fixture
def tiny_instance(new_database, template_db, cluster, admin_url):
    url = new_database(template_db)
    with psycopg.connect(url, autocommit=True) as c:
        inst = generate(c, 1500, 15, seed=7, log=False)
    return BenchDb(admin_url, cluster.url), url.rsplit("/", 1)[1], inst, url


def test_generator_is_realistic_and_deterministic(tiny_instance, new_database, template_db):
    _, _, inst, url = tiny_instance
    with psycopg.connect(url) as c:
        nb, no_heading, spherical = c.execute(
            "SELECT count(*), count(*) FILTER (WHERE heading IS NULL),"
            " count(*) FILTER (WHERE metadata ->> 'type' = 'equirectangular') FROM pictures"
        ).fetchone()
        assert nb == 1500
        assert 0.2 < no_heading / nb < 0.4 and 0.05 < spherical / nb < 0.15
        assert c.execute("SELECT count(*) FROM sequences").fetchone()[0] == 15
        heavy = c.execute(
            "SELECT count(*) FROM sequences s JOIN accounts a ON a.id = s.account_id WHERE a.name = 'heavy'"
        ).fetchone()[0]
        assert heavy == 2  # every 10th sequence
        assert c.execute("SELECT count(*) FROM sequences WHERE geom IS NULL").fetchone()[0] == 0
        steps = c.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) FROM ("
            " SELECT ST_Distance(p.geom::geography, lag(p.geom::geography) OVER w) AS d"
            " FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id"
            " WINDOW w AS (PARTITION BY sp.seq_id ORDER BY p.ts)) x WHERE d IS NOT NULL"
        ).fetchone()[0]
        assert 3 <= steps <= 10
    again = new_database(template_db)
    with psycopg.connect(again, autocommit=True) as c:
        assert generate(c, 1500, 15, seed=7, log=False).pictures == inst.pictures


def check(results: list[Result], expected: int) -> None:
    assert len(results) == expected
    for r in results:
        assert r.benchmark and r.target
        assert math.isfinite(r.ours_s) and math.isfinite(r.baseline_s) and r.baseline_s >= 0
        assert set(r.as_dict()) >= {"benchmark", "size", "ours_s", "baseline_s", "ratio", "target", "pass"}
    assert table(results).count("\n") == expected + 1


def test_every_benchmark_runs_at_tiny_size(tiny_instance, s3_endpoint):
    bdb, template, _, _ = tiny_instance
    rss = suite.RssLog()
    check(suite.bench_sequences(bdb, template, 1500, 1, rss), 3)
    check(suite.bench_refresh(bdb, template, 1500, 1, rss), 2)
    check(suite.bench_delete_data(bdb, template, 1500, 1, rss), 2)
    check(suite.bench_cleanup_local(bdb, template, 1500, rss), 1)
    s3 = suite.bench_cleanup_s3(bdb, template, 1500, rss, pictures=200)
    check(s3, 1)
    assert s3[0].passed  # DeleteObjects batching is a count, not a timing: it must hold at any size
    check(suite.bench_worker(bdb, template, 100, rss), 1)
    check(suite.bench_startup(bdb, template, rss, rounds=1), 2)
    check(suite.bench_storage_check(bdb, template, 1500, rss), 1)
    verify = suite.bench_storage_verify(bdb, template, rss, files=50, kib=16)
    check(verify, 1)
    peaks = rss.results()
    commands = ["--help", "cleanup", "db refresh", "db status", "sequences reorder", "set-sequences-heading",
                "storage check", "storage check --verify", "user --delete-data"]  # fmt: skip
    check(peaks, len(commands))  # one peak per command measured
    assert sorted(r.benchmark.removeprefix("peak RSS: ops ") for r in peaks) == commands
    assert all(r.unit == "MB" and 5 < r.ours_s < 1000 for r in peaks)
    second_run = suite.bench_sequences(bdb, template, 1500, 1, rss)[1]
    assert second_run.passed and second_run.ours_s == 0  # an ordered instance: reorder writes nothing


def test_sequence_benchmarks_run_on_a_panoramax_database(new_database, panoramax_template, cluster, admin_url):
    url = new_database(panoramax_template)
    with psycopg.connect(url, autocommit=True) as c:
        generate(c, 1500, 15, seed=7, log=False)
        c.execute("DELETE FROM job_queue")
    bdb = BenchDb(admin_url, cluster.url)
    results = suite.bench_sequences(
        bdb, url.rsplit("/", 1)[1], 1500, 1, suite.RssLog(), label=" on a Panoramax database"
    )
    check(results, 3)
    assert all(r.benchmark.endswith(" on a Panoramax database") for r in results)
    assert results[1].passed and results[1].ours_s == 0  # an ordered instance: reorder writes nothing
