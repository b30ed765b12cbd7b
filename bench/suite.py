"""The benchmarks. Each runs an ops command as a user would (the CLI, in a subprocess) and its baseline in
the same run, and returns Results with the median ratio."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

from bench.baseline import statements as baseline_statements
from bench.common import OPS, BenchDb, Measured, Result, ceil_div, measure, side_by_side
from bench.generate import picture_ids, proof_sample, write_local_files, write_s3_files

SQL = Path(__file__).parent / "sql"
RSS_TARGET_MB = 150.0
TARGET_SQL = "≤ 1.5× the same SQL in one transaction (both processes)"
TARGET_REORDER = "≤ 1.0× the same SQL in one transaction (both processes), from 1M"
TARGET_REWRITE = "≤ 1.25× the bare rewrite of the same rows (from 1M)"
TEMPORARY = "CREATE TEMPORARY TABLE wanted ON COMMIT DROP AS"
GROWTH_FROM = 1_000_000  # below, a process's start-up (0.4 s) weighs on a one-second run: the figure is shown


# The command each baseline stands for: the baseline process imports what that command imports (its CLI and
# core modules, from its spec), so that start-up is paid on both sides.
BASELINE_OF = {
    "reorder_baseline": "sequences reorder",
    "reorder_chosen_baseline": "sequences reorder",
    "headings_baseline": "set-sequences-heading",
    "headings_rewrite_baseline": "set-sequences-heading",
    "delete_data_baseline": "user",
    "refresh_plain_baseline": "refresh",
    "refresh_expired_baseline": "refresh",
    "storage_scan_baseline": "storage check",
    "doctor_bare": "doctor",
}


# Commands without a benchmark row, and why (tests/tools/test_bench.py: every other command has one, and none
# of these has one). A command that reads or writes in proportion to the instance gets a row.
def not_benched() -> dict[str, str]:
    """The commands no row measures, each with why (its spec says it: ``not_benched``)."""
    from ops.cli import specs

    return {s.path: s.not_benched for s in specs() if s.not_benched}


def imports_of(baseline: str) -> str:
    from ops.cli import specs

    s = next(s for s in specs() if s.path == BASELINE_OF[baseline])
    return ",".join(dict.fromkeys(target.split(":")[0] for target in (s.cli, s.core)))


REPO = Path(__file__).parent.parent


def _baseline(
    bdb: BenchDb, db: str, name: str, params: dict[str, object] | None = None, stream: bool = False
) -> Measured:
    """The baseline SQL run by a process (bench.baseline) with the ops command's imports: like with like."""
    cmd = [sys.executable, "-m", "bench.baseline", name, "--imports", imports_of(name)]
    cmd += [f"--param={k}={v}" for k, v in (params or {}).items()] + (["--stream"] if stream else [])
    return measure(cmd, {"DB_URL": bdb.url_of(db), "PYTHONPATH": str(REPO)})


def _time_baseline(bdb: BenchDb, db: str, name: str, params: dict[str, object] | None = None) -> float:
    return _baseline(bdb, db, name, params).seconds


def _ops(bdb: BenchDb, db: str, *args: str, env: dict[str, str] | None = None) -> Measured:
    return measure([*OPS, *args], {"DB_URL": bdb.url_of(db), **(env or {})})


class RssLog:
    """Peak RSS of every ops command run, per command and size."""

    def __init__(self) -> None:
        self.peaks: dict[tuple[str, int], float] = {}

    def add(self, command: str, size: int, m: Measured) -> Measured:
        key = (command, size)
        self.peaks[key] = max(self.peaks.get(key, 0.0), m.peak_rss_mb)
        return m

    def results(self) -> list[Result]:
        base = measure([sys.executable, "-c", "import psycopg, click"]).peak_rss_mb
        return [
            Result(f"peak RSS: ops {cmd}", size, mb, base, mb / base, f"< {RSS_TARGET_MB:.0f} MB", mb < RSS_TARGET_MB, "MB",
                   note="baseline: python importing psycopg and click")
            for (cmd, size), mb in sorted(self.peaks.items())
        ]  # fmt: skip


def _paired(bdb: BenchDb, template: str, rounds: int, ours, baseline) -> tuple[list[float], list[float], list]:
    """Interleaved rounds, each on fresh clones of the template (the commands change the data)."""
    ours_t, base_t, extra = [], [], []
    for _ in range(rounds):
        for fn, bucket in ((baseline, base_t), (ours, ours_t)):
            db = bdb.clone(template)
            try:
                value = fn(db)
            finally:
                bdb.drop(db)
            if isinstance(value, tuple):
                bucket.append(value[0])
                if fn is ours:
                    extra.append(value[1])
            else:
                bucket.append(value)
    return ours_t, base_t, extra


def bench_sequences(bdb: BenchDb, template: str, size: int, rounds: int, rss: RssLog, label: str = "") -> list[Result]:
    """Reorder (and its second run) and headings against their single-statement baselines; ``label`` names
    the kind of database when it is not ops's own."""
    results = []

    def ours_reorder(db: str) -> tuple[float, Measured]:
        m = rss.add("sequences reorder", size, _ops(bdb, db, "sequences", "reorder", "--json"))
        return m.seconds, m

    # on a Panoramax database, users' chosen orders: the baseline ranks by the same rule (its ranks checked equal)
    baseline = "reorder_chosen_baseline" if label else "reorder_baseline"
    ours_t, base_t, runs = _paired(bdb, template, rounds, ours_reorder, lambda db: _time_baseline(bdb, db, baseline))
    o, b = statistics.median(ours_t), statistics.median(base_t)
    changed = json.loads(runs[0].stdout)["sequences_changed"]
    results.append(Result(f"sequences reorder (all){label}", size, o, b, o / b, TARGET_REORDER,
                          o / b <= 1.0 or size < GROWTH_FROM,
                          peak_rss_mb=max(r.peak_rss_mb for r in runs), note=f"{changed} sequences changed"))  # fmt: skip

    # second run on an already ordered instance: writes no row
    db = bdb.clone(template)
    try:
        _ops(bdb, db, "sequences", "reorder")
        with psycopg.connect(bdb.url_of(db)) as c:
            before = c.execute(
                "SELECT sum(n_tup_upd + n_tup_ins + n_tup_del) FROM pg_stat_user_tables WHERE relname IN ('sequences_pictures', 'sequences')"
            ).fetchone()[0]
        again = rss.add("sequences reorder", size, _ops(bdb, db, "sequences", "reorder", "--json"))
        time.sleep(0.6)  # statistics are flushed at most every 0.5 s
        with psycopg.connect(bdb.url_of(db)) as c:
            after = c.execute(
                "SELECT sum(n_tup_upd + n_tup_ins + n_tup_del) FROM pg_stat_user_tables WHERE relname IN ('sequences_pictures', 'sequences')"
            ).fetchone()[0]
        written = int(after - before)
        summary = json.loads(again.stdout)
        results.append(Result(f"sequences reorder, second run (rows written){label}", size, written, 0, 0.0 if not written else float("inf"),
                              "0 rows written", written == 0 and summary["sequences_changed"] == 0, "rows",
                              note=f"took {again.seconds:.2f} s"))  # fmt: skip
        results.append(Result(f"sequences reorder, second run (nothing to do){label}", size, again.seconds, b,
                              again.seconds / b, "≤ 0.7× the first run's baseline (from 1M)",
                              again.seconds / b <= 0.7 or size < GROWTH_FROM))  # fmt: skip
        with psycopg.connect(bdb.url_of(db), options="-c jit=off") as c:  # what ops wrote, against the functions
            same, total = c.execute((SQL / "reorder_geometry_identity.sql").read_text()).fetchone()
        results.append(Result(f"sequences reorder: its geometry and bbox vs compute_sequence_geom and _bbox{label}",
                              size, same, total, same / total if total else 0, "100% byte-identical", same == total,
                              "sequences", note="every sequence not deleted, after ops sequences reorder"))  # fmt: skip
    finally:
        bdb.drop(db)

    results.append(_same_ranks(bdb, template, size, baseline, label))

    def ours_heading(db: str) -> tuple[float, Measured]:
        m = rss.add("set-sequences-heading", size, _ops(bdb, db, "set-sequences-heading", "--overwrite", "--json"))
        return m.seconds, m

    def bare_rewrite(db: str) -> float:
        """The write alone: the rows and headings chosen beforehand into a table (untimed), then rewritten."""
        chosen = baseline_statements("headings_baseline")[0]
        assert TEMPORARY in chosen, "headings_baseline.sql's first statement chooses the headings into wanted"
        with psycopg.connect(bdb.url_of(db), autocommit=True) as c:
            c.execute(chosen.replace(TEMPORARY, "CREATE TABLE wanted AS", 1))
            c.execute("ANALYZE wanted")
        return _time_baseline(bdb, db, "headings_rewrite_baseline")

    ours_t, base_t, runs = _paired(
        bdb, template, rounds, ours_heading, lambda db: _time_baseline(bdb, db, "headings_baseline")
    )
    o, b = statistics.median(ours_t), statistics.median(base_t)
    updated = json.loads(runs[0].stdout)["pictures_updated"]
    results.append(Result(f"set-sequences-heading --overwrite (all){label}", size, o, b, o / b,
                          TARGET_REORDER, o / b <= 1.0 or size < GROWTH_FROM,
                          peak_rss_mb=max(r.peak_rss_mb for r in runs), note=f"{updated} pictures updated"))  # fmt: skip
    bare = []
    for _ in range(rounds):
        db = bdb.clone(template)
        try:
            bare.append(bare_rewrite(db))
        finally:
            bdb.drop(db)
    r = statistics.median(bare)
    results.append(Result(f"set-sequences-heading --overwrite vs the bare rewrite of the same rows{label}", size, o,
                          r, o / r, TARGET_REWRITE, o / r <= 1.25 or size < GROWTH_FROM,
                          note=f"{updated} pictures rewritten, the headings chosen beforehand"))  # fmt: skip
    return results


RANKS_DIGEST = (
    "SELECT md5(string_agg(seq_id::text || ':' || rank || ':' || pic_id::text, ',' ORDER BY seq_id, rank)), count(*)"
    " FROM sequences_pictures"
)


def _same_ranks(bdb: BenchDb, template: str, size: int, baseline: str, label: str) -> Result:
    """The baseline's ranks against ops's, each run on a copy of the instance: a pair compares the same result."""
    digests = []
    for run in (lambda db: _ops(bdb, db, "sequences", "reorder"), lambda db: _baseline(bdb, db, baseline)):
        db = bdb.clone(template)
        try:
            run(db)
            with psycopg.connect(bdb.url_of(db)) as c:
                digests.append(c.execute(RANKS_DIGEST).fetchone())
        finally:
            bdb.drop(db)
    (ours, rows), (theirs, _) = digests
    return Result(f"reorder baseline's ranks vs ops's{label}", size, rows if ours == theirs else 0, rows,
                  1.0 if ours == theirs else 0.0, "identical", ours == theirs, "pictures",
                  note=f"{baseline}: every rank of every sequence, compared by digest")  # fmt: skip


def _reader(url: str, stop: threading.Event, waits: list[float]) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        while not stop.is_set():
            started = time.perf_counter()
            c.execute("SELECT sum(nb_pictures) FROM pictures_grid").fetchone()
            waits.append(time.perf_counter() - started)
            time.sleep(0.005)


def _with_reader(url: str, action) -> tuple[float, float]:
    stop, waits = threading.Event(), []
    thread = threading.Thread(target=_reader, args=(url, stop, waits))
    thread.start()
    time.sleep(0.2)
    started = time.perf_counter()
    try:
        action()
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join()
    return elapsed, max(waits)


def bench_refresh(bdb: BenchDb, template: str, size: int, rounds: int, rss: RssLog) -> list[Result]:
    db = bdb.clone(template)
    url = bdb.url_of(db)
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("REFRESH MATERIALIZED VIEW pictures_grid")  # populated: ours refreshes concurrently
            cells = c.execute("SELECT count(*) FROM pictures_grid").fetchone()[0]
        _, idle = _with_reader(url, lambda: time.sleep(2.0))  # the reader's own read time, no refresh running
        ours_runs, plain_runs = [], []
        for _ in range(rounds):

            def plain() -> None:
                _baseline(bdb, db, "refresh_plain_baseline")

            plain_runs.append(_with_reader(url, plain))
            holder: list[Measured] = []

            def ours(holder: list[Measured] = holder) -> None:
                holder.append(rss.add("db refresh", size, _ops(bdb, db, "db", "refresh", "--view", "pictures_grid")))

            ours_runs.append(_with_reader(url, ours))
            assert "concurrently" in holder[0].stdout, holder[0].stdout
        o = statistics.median(r[0] for r in ours_runs)
        b = statistics.median(r[0] for r in plain_runs)
        ow = max(r[1] for r in ours_runs)
        bw = max(r[1] for r in plain_runs)
        all_views = rss.add("db refresh", size, _ops(bdb, db, "refresh"))
    finally:
        bdb.drop(db)
    return [
        Result("db refresh pictures_grid: concurrent vs plain", size, o, b, o / b, "readers never blocked (below)", True,
               note=f"all views: {all_views.seconds:.2f} s"),
        Result("db refresh: longest reader wait", size, ow, bw, ow / bw if bw else 0, "< 0.1 s", ow < 0.1,
               note=f"reader loops on pictures_grid ({cells:,} cells; longest read with no refresh running: "
                    f"{idle:.3f} s); baseline: during a plain REFRESH (a process, as ours)"),
    ]  # fmt: skip


def bench_delete_data(
    bdb: BenchDb, template: str, size: int, rounds: int, rss: RssLog, label: str = ""
) -> list[Result]:
    with psycopg.connect(bdb.url_of(template)) as c:
        account, share = c.execute(
            "SELECT a.id, count(p.id)::float / (SELECT count(*) FROM pictures) FROM accounts a "
            "JOIN pictures p ON p.account_id = a.id WHERE a.name = 'heavy' GROUP BY a.id"
        ).fetchone()

    def ours(db: str) -> tuple[float, Measured]:
        m = rss.add("user --delete-data", size, _ops(bdb, db, "user", str(account), "--delete-data", "--json"))
        return m.seconds, m

    ours_t, base_t, runs = _paired(
        bdb, template, rounds, ours, lambda db: _time_baseline(bdb, db, "delete_data_baseline", {"account_id": account})
    )
    o, b = statistics.median(ours_t), statistics.median(base_t)
    longest = max(json.loads(r.stdout)["delete_data"]["longest_batch_s"] for r in runs)
    deleted = json.loads(runs[0].stdout)["delete_data"]["pictures_deleted"]
    return [
        Result(f"user --delete-data (10% of pictures){label}", size, o, b, o / b, "wall time vs one transaction", True,
               peak_rss_mb=max(r.peak_rss_mb for r in runs), note=f"{deleted} pictures ({share:.0%})"),
        Result(f"user --delete-data: longest lock-holding transaction{label}", size, longest, b, longest / b, "< 2 s",
               longest < 2.0,
               note="baseline: the one transaction holds its locks for its whole duration"),
    ]  # fmt: skip


def _sequence_ids(url: str, max_pictures: int | None = None) -> list[str]:
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT id, nb_pictures FROM sequences WHERE status <> 'deleted' ORDER BY id").fetchall()
    ids, total = [], 0
    for seq_id, nb in rows:
        if max_pictures is not None and total >= max_pictures:
            break
        ids.append(str(seq_id))
        total += nb
    return ids


def bench_cleanup_local(bdb: BenchDb, template: str, size: int, rss: RssLog) -> list[Result]:
    db = bdb.clone(template)
    url = bdb.url_of(db)
    work = Path(tempfile.mkdtemp(prefix="ops-bench-files-", dir="/var/tmp"))
    try:
        with psycopg.connect(url) as c:
            ids = [r[0] for r in c.execute("SELECT id FROM pictures")]
        root = work / "storage"
        files = write_local_files(str(root), ids)
        subprocess.run(["cp", "-a", str(root), str(work / "copy")], check=True)
        subprocess.run(["sync"], check=True)
        started = time.perf_counter()
        subprocess.run(["find", str(work / "copy"), "-mindepth", "1", "-delete"], check=True)
        find_s = time.perf_counter() - started
        seq_ids = _sequence_ids(url)
        m = rss.add("cleanup", size, _ops(bdb, db, "cleanup", *seq_ids, "--full", "--json", env={"FS_URL": str(root)}))
        deleted = sum(json.loads(m.stdout)["files"].values())
    finally:
        bdb.drop(db)
        shutil.rmtree(work, ignore_errors=True)
    ours_rate, find_rate = deleted / m.seconds, files / find_s
    return [
        Result("cleanup --full, local files (files/s vs find -delete)", size, m.seconds, find_s, ours_rate / find_rate,
               "≥ 0.5× find's rate", ours_rate / find_rate >= 0.5, peak_rss_mb=m.peak_rss_mb,
               note=f"{deleted} files: {ours_rate:,.0f} files/s vs {find_rate:,.0f} files/s; includes the database work"),
    ]  # fmt: skip


@contextlib.contextmanager
def _moto_s3():
    """A moto S3 server on 127.0.0.1 with an empty bucket: (the environment ops reads, a boto3 client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from ops.localdb import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "FS_URL": "s3://bench/geovisio"}  # fmt: skip
    try:
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench-secret")  # fmt: skip
        client.create_bucket(Bucket="bench")
        yield env, client
    finally:
        server.stop()


def bench_cleanup_s3(bdb: BenchDb, template: str, size: int, rss: RssLog, pictures: int = 2000) -> list[Result]:
    db = bdb.clone(template)
    url = bdb.url_of(db)
    try:
        with _moto_s3() as (env, client):
            seq_ids = _sequence_ids(url, pictures)
            with psycopg.connect(url) as c:
                pic_ids = [
                    r[0]
                    for r in c.execute(
                        "SELECT DISTINCT pic_id FROM sequences_pictures WHERE seq_id = ANY(%s::uuid[])", (seq_ids,)
                    )
                ]
            write_s3_files(client, "bench", "geovisio/", pic_ids + [i for i in proof_sample(url) if i not in pic_ids])
            m = rss.add("cleanup", size, _ops(bdb, db, "cleanup", *seq_ids, "--full", "--json", env=env))
            summary = json.loads(m.stdout)
    finally:
        bdb.drop(db)
    files = sum(summary["files"].values())
    requests = summary["storage_requests"].get("DeleteObjects", 0)
    floor = ceil_div(files, 1000)
    return [
        Result("cleanup --full, S3 DeleteObjects requests vs ceil(files/1000)", len(pic_ids), requests, floor,
               requests / floor if floor else 0, "≤ 1.1×", bool(floor) and requests / floor <= 1.1, "requests",
               note=f"{files} files deleted on moto's S3 server; all requests: {summary['storage_requests']}"),
    ]  # fmt: skip


def bench_cleanup_s3_whole(bdb: BenchDb, template: str, pictures: int) -> list[Result]:
    """A whole-instance cleanup on S3 (moto over HTTP): its dry run, then the run, on the same objects. The dry
    run lists each prefix once, as the run does, and says what the run then does."""
    db = bdb.clone(template)
    url = bdb.url_of(db)
    try:
        with _moto_s3() as (env, client):
            with psycopg.connect(url) as c:
                pic_ids = [r[0] for r in c.execute("SELECT id FROM pictures")]
            objects = write_s3_files(client, "bench", "geovisio/", pic_ids)
            dry = _ops(bdb, db, "cleanup", "--full", "--yes", "--dry-run", "--json", env=env)
            run = _ops(bdb, db, "cleanup", "--full", "--yes", "--json", env=env)
    finally:
        bdb.drop(db)
    said, done = json.loads(dry.stdout), json.loads(run.stdout)
    same = said["files"] == done["files"]
    lists = (said["storage_requests"].get("ListObjectsV2", 0), done["storage_requests"].get("ListObjectsV2", 0))
    return [
        Result("cleanup (whole instance) --dry-run vs the run, S3", pictures, dry.seconds, run.seconds,
               dry.seconds / run.seconds, "≤ 1.5× the run; counts equal", dry.seconds <= 1.5 * run.seconds and same,
               note=f"{objects} objects on moto's S3 server; files said {said['files']}, deleted {done['files']}; "
               f"ListObjectsV2: dry run {lists[0]}, run {lists[1]}"),
    ]  # fmt: skip


def bench_worker(bdb: BenchDb, template: str, jobs_count: int, rss: RssLog) -> list[Result]:
    times = {}
    for workers in (1, 2):
        db = bdb.clone(template)
        url = bdb.url_of(db)
        work = Path(tempfile.mkdtemp(prefix="ops-bench-worker-", dir="/var/tmp"))
        try:
            ids = [uuid.uuid4() for _ in range(jobs_count)]
            root = work / "storage"
            write_local_files(str(root), ids + proof_sample(url))
            with (
                psycopg.connect(url, autocommit=True) as c,
                c.cursor().copy("COPY job_queue (task, picture_to_delete_id, args) FROM STDIN") as copy,
            ):
                for pic_id in ids:
                    copy.write_row(("delete", pic_id, '{"files": ["derivates", "permanent", "tmp"]}'))
            env = {"DB_URL": url, "FS_URL": str(root)}
            started = time.perf_counter()
            procs = [subprocess.Popen([*OPS, "worker", "--once", "--json"], env={**__import__("os").environ, **env},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(workers)]  # fmt: skip
            for p in procs:
                p.communicate()
                if p.returncode != 0:
                    raise RuntimeError("worker failed")
            times[workers] = time.perf_counter() - started
            with psycopg.connect(url) as c:
                left = c.execute("SELECT count(*) FROM job_queue").fetchone()[0]
                done = c.execute("SELECT count(DISTINCT picture_to_delete_id) FROM job_history").fetchone()[0]
            assert left == 0 and done == jobs_count, (left, done)
        finally:
            bdb.drop(db)
            shutil.rmtree(work, ignore_errors=True)
    scaling = times[1] / times[2]
    return [
        Result("worker --once: 1 vs 2 workers draining delete jobs", jobs_count, times[2], times[1], scaling,
               "scaling (1 worker time / 2 workers time)", scaling > 1.0,
               note=f"{jobs_count} jobs, 4 files each; {jobs_count / times[1]:,.0f} jobs/s with 1 worker, "
                    f"{jobs_count / times[2]:,.0f} with 2 (2 cores shared with PostgreSQL)"),
    ]  # fmt: skip


def bench_startup(bdb: BenchDb, template: str, rss: RssLog, rounds: int = 7) -> list[Result]:
    """Wall time of plain runs (no launcher), then one measured run for the peak RSS."""
    from bench.common import run

    env = {"DB_URL": bdb.url_of(template)}
    results = []
    for name, args, target in (("ops --help", ["--help"], 0.3), ("ops db status", ["db", "status"], 0.5)):

        def ours(args: list[str] = args) -> None:
            run([*OPS, *args], env)

        o, b = side_by_side(ours, lambda: run([sys.executable, "-c", "pass"]), rounds)
        rss.add(name[4:], 0, measure([*OPS, *args], env))
        results.append(Result(f"{name} (start-up)", 0, o, b, o / b, f"< {target} s wall", o < target,
                              note="baseline: python -c pass"))  # fmt: skip
    return results


def bench_storage_check(bdb: BenchDb, template: str, size: int, rss: RssLog) -> list[Result]:
    """ops storage check over every picture of the instance (files on the local disk) vs `find` listing the
    same tree (both are processes)."""
    db = bdb.clone(template)
    url = bdb.url_of(db)
    work = Path(tempfile.mkdtemp(prefix="ops-bench-check-", dir="/var/tmp"))
    try:
        root = work / "storage"
        write_local_files(str(root), picture_ids(url))
        subprocess.run(["sync"], check=True)
        started = time.perf_counter()
        subprocess.run(["find", str(root), "-type", "f", "-name", "*.jpg"], check=True, stdout=subprocess.DEVNULL)
        find_s = time.perf_counter() - started
        m = rss.add("storage check", size, _ops(bdb, db, "storage", "check", "--json", env={"FS_URL": str(root)}))
        checked = json.loads(m.stdout)["pictures"]
    finally:
        bdb.drop(db)
        shutil.rmtree(work, ignore_errors=True)
    return [
        Result("storage check (local disk) vs find listing the tree", size, m.seconds, find_s, m.seconds / find_s,
               "peak RSS < 150 MB", m.peak_rss_mb < RSS_TARGET_MB, peak_rss_mb=m.peak_rss_mb,
               note=f"{checked:,} pictures: {checked / m.seconds:,.0f} pictures/s; find lists every file"),
    ]  # fmt: skip


def bench_storage_scan(bdb: BenchDb, template: str, size: int, rss: RssLog, label: str = "") -> list[Result]:
    """ops storage check over every picture against a storage holding no file (a stat per picture, each one
    missing), vs the same rows streamed by one query: the database side of the check at any size, where
    the files themselves would not fit this machine's inodes (three folders and four files per picture)."""
    work = Path(tempfile.mkdtemp(prefix="ops-bench-scan-", dir="/var/tmp"))
    try:
        for area in ("permanent", "derivates", "tmp"):
            (work / area).mkdir()
        base = _baseline(bdb, template, "storage_scan_baseline", stream=True)
        m = rss.add(
            "storage check", size,
            measure([*OPS, "storage", "check", "--json"], {"DB_URL": bdb.url_of(template), "FS_URL": str(work)}, check=False),
        )  # fmt: skip
        summary = json.loads(m.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missing = sum(summary["originals_missing"].values())
    return [
        Result(f"storage check, no file on disk (database side) vs the same rows in one query{label}", size, m.seconds,
               base.seconds, m.seconds / base.seconds, "peak RSS < 150 MB; every picture counted",
               m.peak_rss_mb < RSS_TARGET_MB and missing == summary["pictures"] == size, peak_rss_mb=m.peak_rss_mb,
               note=f"{missing:,} originals reported missing; keyset pages of 1,000 vs one cursor"),
    ]  # fmt: skip


def bench_storage_verify(
    bdb: BenchDb, template: str, rss: RssLog, files: int = 4000, kib: int = 256, rounds: int = 3
) -> list[Result]:
    """ops storage check --verify (MD5 of every original) vs md5sum over the same files, in MB/s."""
    import hashlib
    import uuid

    from ops.storage import picture_key

    db = bdb.clone(template)
    url = bdb.url_of(db)
    work = Path(tempfile.mkdtemp(prefix="ops-bench-verify-", dir="/var/tmp"))
    try:
        rng = random.Random(3)
        paths = []
        with psycopg.connect(url) as c:
            ids = [r[0] for r in c.execute("SELECT id FROM pictures ORDER BY id LIMIT %s", (files,))]
            for pic_id in ids:
                data = rng.randbytes(kib * 1024)
                path = work / "storage" / "permanent" / picture_key(pic_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                paths.append(str(path))
                c.execute("UPDATE pictures SET original_content_md5 = %s WHERE id = %s",
                          (uuid.UUID(hex=hashlib.md5(data).hexdigest()), pic_id))  # fmt: skip
            c.execute("DELETE FROM pictures WHERE id <> ALL(%s)", (ids,))
            c.commit()
        for area in ("derivates", "tmp"):
            (work / "storage" / area).mkdir(parents=True, exist_ok=True)
        megabytes = files * kib / 1024
        subprocess.run(["sync"], check=True)  # no writeback of the files just written during the rounds
        args = ["storage", "check", "--verify", "--json"]
        runs: list[Measured] = []

        def ours() -> None:
            runs.append(rss.add("storage check --verify", files,
                                _ops(bdb, db, *args, env={"FS_URL": str(work / "storage")})))  # fmt: skip

        def md5sum() -> None:
            subprocess.run(["md5sum", *paths], check=True, stdout=subprocess.DEVNULL)

        ours_s, md5sum_s = side_by_side(ours, md5sum, rounds)
        verified = min(json.loads(m.stdout)["verified"] for m in runs)
    finally:
        bdb.drop(db)
        shutil.rmtree(work, ignore_errors=True)
    ours, theirs = megabytes / ours_s, megabytes / md5sum_s
    return [
        Result("storage check --verify throughput vs md5sum (MB/s)", files, ours_s, md5sum_s, ours / theirs,
               "≥ 0.8× md5sum's rate", ours / theirs >= 0.8 and verified == files,
               peak_rss_mb=max(m.peak_rss_mb for m in runs),
               note=f"{files} originals of {kib} KiB: {ours:,.0f} MB/s vs {theirs:,.0f} MB/s (page cache warm for "
                    f"both; median of {rounds} interleaved rounds)"),
    ]  # fmt: skip


def bench_geometry_identity(bdb: BenchDb, template: str, size: int, label: str = "") -> list[Result]:
    """The reorder baseline's set-based geometry against the database's own compute_sequence_geom, for every
    sequence: a baseline that computes geometry must give the same bytes."""
    started = time.perf_counter()
    with psycopg.connect(bdb.url_of(template), options="-c jit=off") as c:
        same, total, split = c.execute((SQL / "geometry_identity.sql").read_text()).fetchone()
    return [
        Result(f"reorder baseline's geometry vs compute_sequence_geom{label}", size, same, total,
               same / total if total else 0, "100% byte-identical", same == total, "sequences",
               note=f"{split:,} of {total:,} split at gaps of more than 75 m; checked in "
                    f"{time.perf_counter() - started:.1f} s"),
    ]  # fmt: skip


def _expired_grid_template(bdb: BenchDb, template: str, share: float = 0.1) -> str:
    """A clone of a Panoramax instance with its aggregate grid built and the cells of ``share`` of its
    sequences expired (as after a day of uploads and edits)."""
    db = bdb.clone(template)
    with psycopg.connect(bdb.url_of(db), autocommit=True, options="-c jit=off") as c:
        c.execute("SELECT compute_pictures_aggregate_grid()")
        c.execute("INSERT INTO pictures_aggregate_grid_expired (geom) SELECT DISTINCT pic_to_grid(p.geom) "
                  "FROM pictures p JOIN sequences_pictures sp ON sp.pic_id = p.id "
                  "WHERE get_byte(uuid_send(sp.seq_id), 0) < %s ON CONFLICT DO NOTHING", (int(256 * share),))  # fmt: skip
        c.execute("VACUUM ANALYZE pictures_aggregate_grid, pictures_aggregate_grid_expired")
    return db


def _grid_reader(url: str, stop: threading.Event, waits: list[float]) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        while not stop.is_set():
            started = time.perf_counter()
            c.execute("SELECT sum(nb_pictures) FROM pictures_aggregate_grid").fetchone()
            waits.append(time.perf_counter() - started)
            time.sleep(0.005)


def bench_refresh_panoramax(bdb: BenchDb, template: str, size: int, rounds: int, rss: RssLog) -> list[Result]:
    """ops refresh on a Panoramax database (its grid's expired cells) against Panoramax's own recompute called
    by hand, both processes, while a reader loops on the grid."""
    prepared = _expired_grid_template(bdb, template)
    try:
        with psycopg.connect(bdb.url_of(prepared)) as c:
            expired = c.execute("SELECT count(*) FROM pictures_aggregate_grid_expired").fetchone()[0]
        ours_t, base_t, waits = [], [], []
        for _ in range(rounds):
            for side in ("baseline", "ours"):
                db = bdb.clone(prepared)
                url = bdb.url_of(db)
                stop, seen = threading.Event(), []
                reader = threading.Thread(target=_grid_reader, args=(url, stop, seen))
                reader.start()
                time.sleep(0.2)
                try:
                    if side == "ours":
                        m = rss.add("refresh", size, _ops(bdb, db, "refresh"))
                        ours_t.append(m.seconds)
                        waits.append(max(seen))
                    else:
                        base_t.append(_baseline(bdb, db, "refresh_expired_baseline").seconds)
                finally:
                    stop.set()
                    reader.join()
                    bdb.drop(db)
    finally:
        bdb.drop(prepared)
    o, b, w = statistics.median(ours_t), statistics.median(base_t), max(waits)
    return [
        Result("refresh on a Panoramax database (expired grid cells)", size, o, b, o / b, TARGET_SQL, o / b <= 1.5,
               note=f"{expired:,} expired cells; baseline: compute_pictures_aggregate_grid_expired() by hand"),
        Result("refresh on a Panoramax database: longest reader wait", size, w, 0, 0, "< 0.1 s", w < 0.1,
               note="a reader loops on pictures_aggregate_grid while ops refresh runs"),
    ]  # fmt: skip


def bench_jit(bdb: BenchDb, template: str, size: int, label: str = "") -> list[Result]:
    """Each maintenance command with JIT on (ops --jit, the server's default for other sessions) against the
    same with JIT off (ops's default), on fresh clones: what JIT costs or saves ops's statements."""
    with psycopg.connect(bdb.url_of(template)) as c:
        heavy = str(c.execute("SELECT id FROM accounts WHERE name = 'heavy'").fetchone()[0])
        panoramax = c.execute("SELECT to_regclass('pictures_aggregate_grid_expired') IS NOT NULL").fetchone()[0]
    work = Path(tempfile.mkdtemp(prefix="ops-bench-jit-", dir="/var/tmp"))
    for area in ("permanent", "derivates", "tmp"):
        (work / area).mkdir()
    commands = [("sequences reorder", ["sequences", "reorder"]),
                ("set-sequences-heading --overwrite", ["set-sequences-heading", "--overwrite"]),
                ("refresh", ["refresh"]), ("user --delete-data", ["user", heavy, "--delete-data"]),
                ("storage check (no file)", ["storage", "check"])]  # fmt: skip
    results = []
    try:
        source = _expired_grid_template(bdb, template) if panoramax else template
        for name, args in commands:
            times = {}
            for jit in ("--no-jit", "--jit"):
                db = bdb.clone(source)
                try:
                    times[jit] = measure([*OPS, jit, *args], {"DB_URL": bdb.url_of(db), "FS_URL": str(work)},
                                         check=False).seconds  # fmt: skip
                finally:
                    bdb.drop(db)
            on, off = times["--jit"], times["--no-jit"]
            results.append(Result(f"JIT on vs off: {name}{label}", size, on, off, on / off,
                                  "informational: ops runs with JIT off", True,
                                  note=f"JIT on {on:.2f} s, off {off:.2f} s"))  # fmt: skip
        if panoramax:
            bdb.drop(source)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def bench_doctor(bdb: BenchDb, template: str, size: int, rss: RssLog, rounds: int, label: str = "") -> list[Result]:
    """ops doctor (every check but the JIT timing, a fixed cost of a few calls) against its own check
    statements run bare in one transaction (bench.baseline doctor_bare), both processes; and the absolute
    figure, seconds per million pictures, the guide where the ratio says little (at 10M)."""

    def ours() -> None:
        runs.append(rss.add("doctor", size, measure([*OPS, "doctor", "--skip", "DB005", "--json"],
                                                     {"DB_URL": bdb.url_of(template)}, check=False)))  # fmt: skip

    def floor() -> None:
        _baseline(bdb, template, "doctor_bare")

    runs: list[Measured] = []
    o, b = side_by_side(ours, floor, rounds)
    report = json.loads(runs[0].stdout)
    found = sum(1 for f in report["findings"] if f["state"] == "found")
    slowest = max(report["findings"], key=lambda f: f["duration_s"])
    per_million = o / (size / 1_000_000)
    return [
        Result(f"doctor (every check but DB005) vs its check statements run bare{label}", size, o, b, o / b,
               "≤ 1.5× the bare statements; peak RSS < 150 MB",
               o / b <= 1.5 and max(r.peak_rss_mb for r in runs) < RSS_TARGET_MB,
               peak_rss_mb=max(r.peak_rss_mb for r in runs),
               note=f"{found} findings; slowest check {slowest['code']} {slowest['duration_s']:.2f} s"),
        Result(f"doctor, seconds per million pictures{label}", size, per_million, DOCTOR_GUIDE_S, per_million / DOCTOR_GUIDE_S,
               f"≤ {DOCTOR_GUIDE_S:.0f} s per million pictures", per_million <= DOCTOR_GUIDE_S, unit="s/M"),
    ]  # fmt: skip


DOCTOR_GUIDE_S = 15.0  # an absolute guide: a nightly doctor of 10M pictures within 2.5 minutes on 2 cores
PLAN_FROM = "2.10.0"  # planned against the wheel the tests use (2.15.1)
ADDS_COLUMNS = "20250902_01_k5UTq-visibility-status"  # adds the visibility columns later queries read


def bench_plan(bdb: BenchDb, template: str, size: int, rss: RssLog) -> list[Result]:
    """ops db plan of the 2.10.0 -> 2.15.1 upgrade, then the upgrade applied to a copy by yoyo as flask db
    upgrade applies it, observed statement by statement; the operator does what the plan's warning says
    (ANALYZE once the visibility columns exist: without it, a materialized view of the upgrade runs for
    hours, see docs/panoramax.md). Rows: locks and rewrites identical, estimates against the measured times, the
    plan's wall time and peak RSS."""
    from ops.plan import trace
    from scripts import panoramax

    url = bdb.url_of(template)
    m = rss.add("db plan", size, measure([*OPS, "db", "plan", "--panoramax", str(panoramax.wheel()), "--json"],
                                         {"DB_URL": url, "OPS_CACHE_DIR": str(panoramax.CACHE)}, check=False))  # fmt: skip
    plan = json.loads(m.stdout)
    copy = bdb.clone(template)
    folder = panoramax.migrations_dir(Path(tempfile.mkdtemp(prefix="ops-bench-plan-")))
    applied = panoramax.apply_observed(bdb.url_of(copy), folder, until=ADDS_COLUMNS)
    with psycopg.connect(bdb.url_of(copy), autocommit=True) as c:
        started = time.perf_counter()
        c.execute("ANALYZE pictures, sequences, upload_sets")
        analyze_s = time.perf_counter() - started
    applied += panoramax.apply_observed(bdb.url_of(copy), folder)
    bdb.drop(copy)
    real = {(a.id, st.number): st for a in applied for st in a.statements}
    same = compared = 0
    pairs: list[tuple[str, float, float, str]] = []  # (statement, estimate, measured, bound)
    for mp in plan["migrations"]:
        for sp in mp["statements"]:
            st = real.get((mp["id"], sp["number"]))
            if st is None:
                continue
            compared += 1
            planned = ({(lk["table"], lk["mode"]) for lk in sp["locks"] if lk["existing"]},
                       {t["name"] for t in sp["effects"]["rewritten"] if t["existing"]})  # fmt: skip
            measured = ({(lk.production, trace.sql_name(lk.mode)) for lk in st.locks if lk.production},
                        {t.name for t in st.effects.rewritten if t.production})  # fmt: skip
            same += planned == measured
            if st.duration_s > 1.0:
                pairs.append((f"{mp['id'][:11]}#{sp['number']}", sp["estimate"]["seconds"], st.duration_s,
                              sp["estimate"]["bound"]))  # fmt: skip
    longest = max(pairs, key=lambda p: p[2], default=None)
    # an estimate ("~") must be within 3× of the measure; a lower bound (">=", a query whose joins and functions
    # the plan cannot time) must be a bound that holds: at most the measure
    within = [p for p in pairs if (p[3] == ">=" and p[1] <= p[2]) or (p[1] > 0 and 1 / 3 <= p[1] / p[2] <= 3)]
    detail = "; ".join(f"{name} {'≥' if bound == '>=' else '~'}{est:.1f} s vs {real_s:.1f} s"
                       for name, est, real_s, bound in pairs)  # fmt: skip
    total = sum(st.duration_s for st in real.values())
    results = [
        Result("db plan 2.10.0 -> 2.15.1: lock modes and rewrites as applying them (statements)", size, same,
               compared, same / max(compared, 1), "100% identical", same == compared, "statements",
               note=f"{compared} statements of {len(plan['migrations'])} migrations"),
        Result("db plan 2.10.0 -> 2.15.1: estimates of statements measured > 1 s that hold", size, len(within),
               len(pairs), len(within) / max(len(pairs), 1), "every estimate within 3×, every lower bound ≤ the measure",
               len(within) == len(pairs),
               "statements", note=detail or "no statement took more than 1 s"),
        Result("db plan 2.10.0 -> 2.15.1: wall time, against applying the upgrade", size, m.seconds,
               total + analyze_s, m.seconds / (total + analyze_s), "< 60 s at 1M; peak RSS < 150 MB",
               m.seconds < 60 and m.peak_rss_mb < RSS_TARGET_MB, peak_rss_mb=m.peak_rss_mb,
               note=f"exit {plan['exit_code']}, {len(plan['warnings'])} warnings; the upgrade with ANALYZE after "
               f"{ADDS_COLUMNS[:11]} ({analyze_s:.1f} s) as the plan advises"),
    ]  # fmt: skip
    if longest:
        name, est, real_s, bound = longest
        held = est <= real_s if bound == ">=" else 0.5 <= est / real_s <= 2  # a lower bound, reported as such
        results.append(Result(f"db plan: estimate of the longest statement ({name})", size, est, real_s,
                              est / real_s, "within 2× (a lower bound: at most the measure)", held,
                              note=f"bound {bound}"))  # fmt: skip
    return results


def _under_load(url: str, upgrade, read_s: float) -> tuple[float, float, int]:
    """(wall seconds of ``upgrade``, longest insert wait meanwhile, inserts that failed), a report query
    reading pictures for ``read_s`` from the upgrade's start."""
    from scripts import panoramax

    wall: list[float] = []

    def timed() -> None:
        reader = panoramax.long_read(url, read_s)
        started = time.perf_counter()
        try:
            upgrade()
        finally:
            wall.append(time.perf_counter() - started)
            reader.join()

    load = panoramax.WriteLoad(url)
    longest = load.longest_during(timed)
    return wall[0], longest, len(load.failed)


UPGRADE_READ_S = 20.0  # the report query running when the upgrade starts


def bench_upgrade(bdb: BenchDb, template: str, size: int, rss: RssLog) -> list[Result]:
    """ops db upgrade --panoramax of the 2.10.0 -> 2.15.1 upgrade beside Panoramax's own way (yoyo, as flask db
    upgrade, with the ANALYZE the plan advises after the visibility columns: without it a view of the upgrade
    runs for hours), each on a copy of the same instance, under the same write load (a picture inserted every
    50 ms) and the same report query (a 20 s read of pictures, open when the upgrade starts). Rows: the longest
    insert wait (ops waits for a lock 3 s at most at a time, then lets the writes through and tries again;
    Panoramax's ALTER waits behind the read with every insert queued behind it), and the wall time."""
    from scripts import panoramax

    folder = panoramax.migrations_dir(Path(tempfile.mkdtemp(prefix="ops-bench-upgrade-")))
    ours, theirs = bdb.clone(template), bdb.clone(template)
    measured: list[Measured] = []

    def by_ops() -> None:
        env = {"DB_URL": bdb.url_of(ours), "OPS_CACHE_DIR": str(panoramax.CACHE)}
        m = measure([*OPS, "db", "upgrade", "--panoramax", str(panoramax.wheel()), "--accept-warnings"], env)
        measured.append(rss.add("db upgrade --panoramax", size, m))

    def by_panoramax() -> None:
        url = bdb.url_of(theirs)
        panoramax.build(url, folder, until=ADDS_COLUMNS)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("ANALYZE pictures, sequences, upload_sets")
        panoramax.build(url, folder)

    ops_wall, ops_wait, ops_failed = _under_load(bdb.url_of(ours), by_ops, UPGRADE_READ_S)
    their_wall, their_wait, their_failed = _under_load(bdb.url_of(theirs), by_panoramax, UPGRADE_READ_S)
    failed = f"; inserts aborted in a deadlock: {ops_failed} with ops, {their_failed} with flask's way"
    bdb.drop(ours)
    bdb.drop(theirs)
    m = measured[0]
    return [
        Result("db upgrade --panoramax 2.10.0 -> 2.15.1: longest insert wait, vs flask db upgrade's way", size,
               ops_wait, their_wait, ops_wait / their_wait, "≤ 0.5× (a 20 s read of pictures open at the start)",
               ops_wait <= 0.5 * their_wait, note="the same write load and report query on both copies" + failed),
        Result("db upgrade --panoramax 2.10.0 -> 2.15.1: wall time, vs flask db upgrade's way", size, ops_wall,
               their_wall, ops_wall / their_wall, "≤ 1.5× (ops waits its turn; peak RSS < 150 MB)",
               ops_wall <= 1.5 * their_wall and m.peak_rss_mb < RSS_TARGET_MB, peak_rss_mb=m.peak_rss_mb,
               note="flask's way with the ANALYZE the plan advises; both under the same load" + failed),
    ]  # fmt: skip


TEST_INDEX = (
    "0100_bench-index",
    "-- depends: 0005_sequence_geometry\nCREATE INDEX pictures_ts_bench ON pictures (ts);\n",
)


def _lock_sampler(url: str, stop: threading.Event, seen: set[str]) -> None:
    """The lock modes other sessions hold on pictures, sampled every 10 ms."""
    with psycopg.connect(url, autocommit=True) as c:
        while not stop.is_set():
            rows = c.execute(
                "SELECT mode FROM pg_locks WHERE relation = 'pictures'::regclass AND pid <> pg_backend_pid() "
                "AND granted"
            ).fetchall()
            seen.update(r[0] for r in rows)
            time.sleep(0.01)


def bench_plan_ops(bdb: BenchDb, template: str, size: int, rss: RssLog) -> list[Result]:
    """ops db plan of ops's own pending migration, a test one building an index on pictures without
    CONCURRENTLY, against ops db upgrade applying it while pg_locks is sampled."""
    from ops.plan import trace
    from ops.schema.files import default_migrations_dir

    folder = Path(tempfile.mkdtemp(prefix="ops-bench-migrations-"))
    shutil.copytree(default_migrations_dir(), folder, dirs_exist_ok=True)
    (folder / f"{TEST_INDEX[0]}.sql").write_text(TEST_INDEX[1])
    (folder / f"{TEST_INDEX[0]}.rollback.sql").write_text("DROP INDEX pictures_ts_bench;\n")
    env = {"DB_URL": bdb.url_of(template), "OPS_MIGRATIONS_DIR": str(folder)}
    m = rss.add("db plan", size, measure([*OPS, "db", "plan", "--json", "--max-lock", "0"], env, check=False))
    plan = json.loads(m.stdout)
    [statement] = plan["migrations"][0]["statements"]
    planned = {(lk["table"], lk["mode"]) for lk in statement["locks"] if lk["existing"]}
    copy = bdb.clone(template)
    stop, seen = threading.Event(), set[str]()
    sampler = threading.Thread(target=_lock_sampler, args=(bdb.url_of(copy), stop, seen))
    sampler.start()
    try:
        applied = measure([*OPS, "db", "upgrade"], {**env, "DB_URL": bdb.url_of(copy)})
    finally:
        stop.set()
        sampler.join()
        bdb.drop(copy)
    measured_s = float(applied.stdout.split(f"applied {TEST_INDEX[0]} (")[1].split(" s)")[0])
    strongest = max(seen, key=lambda mode: trace.MODES.index(mode), default="")
    estimate = statement["estimate"]["seconds"]
    return [
        Result("db plan, ops migration (index on pictures): lock mode as sampled while applying it", size,
               len(planned), 1, 1.0 if planned == {("pictures", trace.sql_name(strongest))} else 0.0,
               "identical", planned == {("pictures", trace.sql_name(strongest))}, "locks",
               note=f"planned {sorted(planned)}, sampled {trace.sql_name(strongest) if strongest else 'none'}"),
        Result("db plan, ops migration (index on pictures): estimate vs ops db upgrade", size, estimate, measured_s,
               estimate / measured_s, "within 2×", 0.5 <= estimate / measured_s <= 2,
               note=f"exit {plan['exit_code']} with --max-lock 0 (the CONCURRENTLY warning)"),
    ]  # fmt: skip
