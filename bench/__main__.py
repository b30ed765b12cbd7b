"""`python -m bench` (make bench): run every benchmark, save JSON under bench/results/, print a table.

BENCH_PICTURES=100000 make bench            # the default size
BENCH_PICTURES=100000,1000000 make bench    # the full run, with growth factors
BENCH_ROUNDS=3                              # rounds of the paired benchmarks (median)
BENCH_ONLY=storage                          # only some groups: sequences, panoramax, refresh, delete-data,
                                            # files, storage, startup (comma-separated)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from bench import suite
from bench.common import RESULTS, BenchDb, Result, chart, commit, machine, save, table
from bench.generate import generate
from ops.localdb import LocalCluster
from ops.schema import runner
from scripts import panoramax


def build_template(bdb: BenchDb, admin_url: str, pictures: int, kind: str = "ops") -> str:
    """An instance of ``pictures`` pictures in a database built by ``ops db upgrade``, or with
    ``kind="panoramax"`` by Panoramax's own migrations (the geovisio wheel)."""
    name = f"instance_{pictures}" if kind == "ops" else f"panoramax_{pictures}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if kind == "ops":
        runner.upgrade(bdb.url_of(name))
    else:
        panoramax.build(bdb.url_of(name), panoramax.migrations_dir(Path(tempfile.mkdtemp(prefix="ops-bench-pnx-"))))
    with psycopg.connect(bdb.url_of(name), autocommit=True) as c:
        if kind == "panoramax":  # a bulk load: Panoramax's per-row triggers off (47 min instead of 5 at 1M)
            c.execute("SET session_replication_role = replica")
        generate(c, pictures, max(1, pictures // 100))
        c.execute("RESET session_replication_role")
        c.execute("DELETE FROM job_queue")  # the pictures count as prepared
        c.execute("VACUUM ANALYZE")
        c.execute("CHECKPOINT")
    return name


def growth(results: list[Result]) -> list[str]:
    lines = []
    by_name: dict[str, list[Result]] = {}
    for r in results:
        if r.unit == "s" and r.size > 0:
            by_name.setdefault(r.benchmark, []).append(r)
    for name, rows in sorted(by_name.items()):
        rows.sort(key=lambda r: r.size)
        if len(rows) > 1 and rows[0].ours_s > 0:
            small, big = rows[0], rows[-1]
            factor = big.ours_s / small.ours_s
            base = big.baseline_s / small.baseline_s if small.baseline_s else float("nan")
            lines.append(f"- {name}: {factor:.1f}× from {small.size:,} to {big.size:,} pictures (baseline {base:.1f}×)")
    return lines


def main() -> int:
    sizes = [int(s) for s in os.environ.get("BENCH_PICTURES", "100000").split(",") if s.strip()]
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    base = Path(tempfile.mkdtemp(prefix="ops-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = LocalCluster(base / "pg", fast=True)
    results: list[Result] = []
    rss = suite.RssLog()
    try:
        cluster.start()
        admin = cluster.url("postgres")
        bdb = BenchDb(admin, cluster.url)
        file_size = min(sizes[0], 100_000)
        only = {g.strip() for g in os.environ.get("BENCH_ONLY", "").split(",") if g.strip()}

        def wanted(group: str) -> bool:
            return not only or group in only

        for size in sorted(sizes):
            print(f"== {size:,} pictures", file=sys.stderr)
            template = build_template(bdb, admin, size)
            if wanted("sequences"):
                results += suite.bench_sequences(bdb, template, size, rounds, rss)
            if wanted("panoramax"):
                pnx = build_template(bdb, admin, size, kind="panoramax")
                results += suite.bench_sequences(bdb, pnx, size, rounds, rss, label=" on a Panoramax database")
                bdb.drop(pnx)
            if wanted("refresh"):
                results += suite.bench_refresh(bdb, template, size, rounds, rss)
            if wanted("delete-data"):
                results += suite.bench_delete_data(bdb, template, size, rounds, rss)
            if wanted("files") and size == sorted(sizes)[0] and os.environ.get("BENCH_FILES", "1") != "0":
                small = template if size <= 100_000 else build_template(bdb, admin, file_size)
                results += suite.bench_cleanup_local(bdb, small, min(size, file_size), rss)
                results += suite.bench_cleanup_s3(bdb, small, min(size, file_size), rss, pictures=min(2000, size))
                results += suite.bench_worker(bdb, small, min(size, file_size), rss)
            if wanted("storage") and os.environ.get("BENCH_FILES", "1") != "0":
                results += suite.bench_storage_check(bdb, template, size, rss)
                if size == sorted(sizes)[0]:
                    results += suite.bench_storage_verify(bdb, template, rss)
            if wanted("startup") and size == sorted(sizes)[0]:
                results += suite.bench_startup(bdb, template, rss)
            for partial in table(results).splitlines()[-3:]:
                print(partial, file=sys.stderr)
        results += rss.results()
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    path = save(results)
    png = chart(results, RESULTS / f"{path.stem}.png")
    print(f"machine: {machine()}; commit {commit()}")
    print(table(results))
    for line in growth(results):
        print(line)
    print(f"saved {path}" + (f" and {png}" if png else ""), file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
