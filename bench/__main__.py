"""`python -m bench` (make bench): run every benchmark, save JSON under bench/results/, print a table.

BENCH_PICTURES=100000 make bench                  # the default size
BENCH_PICTURES=1000000,10000000 make bench        # the growth run (about 3 hours, 36 GB: disk stated first)
BENCH_ROUNDS=3                                    # rounds of the paired benchmarks (median); default 3 up
                                                  # to 1M pictures, 1 above
BENCH_ONLY=storage                                # only some groups: doctor, sequences, panoramax, refresh,
                                                  # delete-data, files, storage, startup, plan,
                                                  # upgrade (comma-separated)
BENCH_ONLY=stale[,group...]                       # the groups whose published figures are stale (their code
                                                  # changed since), at their sizes up to 1M (BENCH_PICTURES
                                                  # names others: 10M before a release). The default of
                                                  # `make bench` when any figure is stale; BENCH_ONLY=all runs all

The terminal shows one line per finished benchmark and the table; the run's log (moto's requests, build
steps, commands' stderr) is under .ops/bench/<run>/bench.log.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from bench import charts, report, stale, suite
from bench.common import RESULTS, BenchDb, Result, commit, machine, row, save, table
from bench.generate import generate
from bench.output import Console
from ops.localdb import LocalCluster
from ops.plan import source
from ops.schema import runner
from scripts import panoramax

STALE_MAX = 1_000_000  # BENCH_ONLY=stale re-measures up to this size unless BENCH_PICTURES names others
JIT_MAX = 1_000_000  # JIT on compiles compute_sequence_geom per call (~0.2 s): at 10M its side alone takes hours
PANORAMAX = " on a Panoramax database"
WHOLE_S3 = 3_000  # pictures of the instance a whole-instance cleanup on S3 empties (issue 30's operator had 2,963)
FILES_MAX = 20_000  # pictures whose files the cleanup and worker benchmarks write (rates do not depend on it)
BYTES_PER_PICTURE = 1_000  # on-disk size of a generated instance: 626 bytes per picture measured at 1M
WAL_BYTES = 8 * 1024**3  # max_wal_size of the bench cluster


def build_template(bdb: BenchDb, admin_url: str, pictures: int, console: Console, kind: str = "ops") -> str:
    """An instance of ``pictures`` pictures in a database built by ``ops db upgrade``, or with
    ``kind="panoramax"`` by Panoramax's own migrations (the geovisio wheel)."""
    name = f"instance_{pictures}" if kind == "ops" else f"{kind.replace('-', '_').replace('.', '')}_{pictures}"
    with console.step(f"building a {pictures:,}-picture instance ({kind})"):
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if kind == "ops":
            runner.upgrade(bdb.url_of(name))
        elif kind == "panoramax-2.10":  # the release an upgrade is planned from (its sdist, with pip)
            panoramax.build(bdb.url_of(name), source.from_version(suite.PLAN_FROM, panoramax.CACHE))
        else:
            tmp = Path(tempfile.mkdtemp(prefix="ops-bench-pnx-"))
            panoramax.build(bdb.url_of(name), panoramax.migrations_dir(tmp))
        with psycopg.connect(bdb.url_of(name), autocommit=True, options="-c jit=off") as c:
            if kind != "ops":  # a bulk load: Panoramax's per-row triggers off (47 min instead of 5 at 1M)
                c.execute("SET session_replication_role = replica")
            generate(c, pictures, max(1, pictures // 100), log=False,
                     progress=lambda done, total: console.progress(f"  generating: {done:,} / {total:,} pictures"))  # fmt: skip
            if kind == "panoramax-2.10":  # hidden pictures and sequences, which the upgrade rewrites
                c.execute(
                    "UPDATE pictures SET status = 'hidden' WHERE ('x' || substr(id::text, 1, 2))::bit(8)::int < 5"
                )
                c.execute(
                    "UPDATE sequences SET status = 'hidden' WHERE ('x' || substr(id::text, 1, 2))::bit(8)::int < 5"
                )
            c.execute("RESET session_replication_role")
            c.execute("DELETE FROM job_queue")  # the pictures count as prepared
            c.execute("VACUUM ANALYZE")
            c.execute("CHECKPOINT")
            on_disk = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    console.say(f"built {name}: {on_disk / 1024**3:.1f} GB, {on_disk / pictures:,.0f} bytes per picture")
    return name


def disk_needed(sizes: list[int]) -> int:
    """The templates of both kinds at the largest size, one clone and a full WAL."""
    return 3 * max(sizes) * BYTES_PER_PICTURE + WAL_BYTES


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
    asked = [int(s) for s in os.environ.get("BENCH_PICTURES", "").split(",") if s.strip()]
    only = {g.strip() for g in os.environ.get("BENCH_ONLY", "").split(",") if g.strip()}
    sizes = sorted(asked or [100_000])
    if ("stale" in only or only == set()) and not (only == set() and asked):
        stale_plan, also = stale.plan(report.load_runs()), only - {"stale"}
        if stale_plan or "stale" in only:
            sizes = sorted(asked or [s for s in stale_plan if s <= STALE_MAX] or [100_000])
            only = set().union(also, *(stale_plan.get(s, set()) for s in sizes)) or {"none"}
            print(f"stale figures: re-measuring {', '.join(sorted(only))} at {', '.join(f'{s:,}' for s in sizes)}")
    only.discard("all")
    files = os.environ.get("BENCH_FILES", "1") != "0"

    def rounds_at(size: int) -> int:
        return int(os.environ.get("BENCH_ROUNDS") or (3 if size <= 1_000_000 else 1))

    def wanted(group: str) -> bool:
        return not only or group in only

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    console = Console(Path(".ops") / "bench" / stamp / "bench.log")
    base = Path(tempfile.mkdtemp(prefix="ops-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    need, free = disk_needed(sizes), shutil.disk_usage(base).free
    console.say(f"sizes {', '.join(f'{s:,}' for s in sizes)}; disk: about {need / 1024**3:.0f} GB needed in "
                f"{base.parent} ({free / 1024**3:.0f} GB free); log: {console.logfile}")  # fmt: skip
    if need > free:
        console.say("error: not enough free disk for the largest instance")
        shutil.rmtree(base, ignore_errors=True)
        return 2
    cluster = LocalCluster(base / "pg", fast=True)
    results: list[Result] = []
    rss = suite.RssLog()
    started, measured_commit = datetime.now(UTC), commit()  # the code measured, even if HEAD moves meanwhile

    def done(new: list[Result]) -> None:
        results.extend(new)
        for r in new:
            console.say(row(r))

    try:
        cluster.start()
        admin = cluster.url("postgres")
        with psycopg.connect(admin, autocommit=True) as c:  # a server tuned for bulk work, as in production
            for name, value in (("max_wal_size", "8GB"), ("maintenance_work_mem", "1GB"), ("work_mem", "64MB")):
                c.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            c.execute("SELECT pg_reload_conf()")
        bdb = BenchDb(admin, cluster.url)
        smallest = sizes[0]
        for size in sizes:
            rounds = rounds_at(size)
            console.say(f"== {size:,} pictures, {rounds} round(s)")
            # ops's own instance: every group but the upgrade and the Panoramax ones measures on it (at 10M its
            # build takes a quarter of an hour)
            own = not only or bool(only - {"upgrade", "panoramax"})
            template = build_template(bdb, admin, size, console) if own else ""
            if wanted("sequences"):
                with console.step("sequences reorder and set-sequences-heading"):
                    new = suite.bench_sequences(bdb, template, size, rounds, rss)
                done(new)
            if wanted("doctor"):
                with console.step("doctor"):
                    new = suite.bench_doctor(bdb, template, size, rss, rounds)
                done(new)
            if wanted("sequences"):
                with console.step("geometry of the baseline, and JIT on vs off"):
                    new = suite.bench_geometry_identity(bdb, template, size)
                    if size <= JIT_MAX:
                        new += suite.bench_jit(bdb, template, size)
                done(new)
            if wanted("panoramax"):
                pnx = build_template(bdb, admin, size, console, kind="panoramax")
                with console.step("every maintenance command on a Panoramax database"):
                    new = suite.bench_sequences(bdb, pnx, size, rounds, rss, label=PANORAMAX)
                    new += suite.bench_geometry_identity(bdb, pnx, size, label=PANORAMAX)
                    new += suite.bench_refresh_panoramax(bdb, pnx, size, rounds, rss)
                    new += suite.bench_delete_data(bdb, pnx, size, rounds, rss, label=PANORAMAX)
                    new += suite.bench_storage_scan(bdb, pnx, size, rss, label=PANORAMAX)
                    new += suite.bench_doctor(bdb, pnx, size, rss, rounds, label=PANORAMAX)
                    if size <= JIT_MAX:
                        new += suite.bench_jit(bdb, pnx, size, label=PANORAMAX)
                done(new)
                bdb.drop(pnx)
            if wanted("plan") or wanted("upgrade"):
                old = build_template(bdb, admin, size, console, kind="panoramax-2.10")
                if wanted("plan"):
                    with console.step("db plan of the 2.10.0 -> 2.15.1 upgrade, and the upgrade"):
                        new = suite.bench_plan(bdb, old, size, rss)
                        new += suite.bench_plan_ops(bdb, template, size, rss)
                    done(new)
                if wanted("upgrade"):
                    with console.step("db upgrade --panoramax beside flask db upgrade's way, under load"):
                        new = suite.bench_upgrade(bdb, old, size, rss)
                    done(new)
                bdb.drop(old)
            if wanted("refresh"):
                with console.step("db refresh"):
                    new = suite.bench_refresh(bdb, template, size, rounds, rss)
                done(new)
            if wanted("delete-data"):
                with console.step("user --delete-data"):
                    new = suite.bench_delete_data(bdb, template, size, rounds, rss)
                done(new)
            if wanted("files") and files and size == smallest:
                small = template if size <= FILES_MAX else build_template(bdb, admin, FILES_MAX, console)
                n = min(size, FILES_MAX)
                with console.step(f"cleanup over the files of {n:,} pictures"):
                    new = suite.bench_cleanup_local(bdb, small, n, rss)
                    new += suite.bench_cleanup_s3(bdb, small, n, rss, pictures=min(2000, n))
                whole = template if size == WHOLE_S3 else build_template(bdb, admin, WHOLE_S3, console)
                with console.step(f"a whole-instance cleanup on S3, its dry run and the run ({WHOLE_S3:,} pictures)"):
                    new += suite.bench_cleanup_s3_whole(bdb, whole, WHOLE_S3)
                if whole != template:
                    bdb.drop(whole)
                with console.step(f"the worker over the files of {n:,} pictures"):
                    new += suite.bench_worker(bdb, small, n, rss)
                done(new)
                if small != template:
                    bdb.drop(small)
            if wanted("storage"):
                with console.step("storage check"):
                    new = suite.bench_storage_scan(bdb, template, size, rss)
                    if files and size == smallest and size <= 100_000:
                        new += suite.bench_storage_check(bdb, template, size, rss)
                        new += suite.bench_storage_verify(bdb, template, rss)
                done(new)
            if wanted("startup") and size == smallest:
                with console.step("start-up"):
                    new = suite.bench_startup(bdb, template, rss)
                done(new)
            if template:
                bdb.drop(template)
        done(rss.results())
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    meta = {
        "commit": measured_commit, "machine": machine(), "sizes": sizes,
        "rounds": {str(s): rounds_at(s) for s in sizes}, "groups": sorted(only) or "all",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    path = save(results, meta)
    png = charts.run_chart(results, RESULTS / f"{path.stem}.png")
    print(f"machine: {machine()}; commit {measured_commit}")
    print(table(results))
    for line in growth(results):
        print(line)
    console.say(f"saved {path}" + (f" and {png}" if png else ""))
    failed = [r for r in results if not r.passed]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
