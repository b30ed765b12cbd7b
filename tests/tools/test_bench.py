"""A tiny run of the instance generator and of every benchmark, so that they cannot rot.

Speed is not asserted here (that is what `make bench` reports); only that each benchmark runs the real
commands and produces complete, sane results.
"""

from __future__ import annotations

import json
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
        again_inst = generate(c, 1500, 15, seed=7, log=False)
        assert (again_inst.pictures, again_inst.digest) == (1500, inst.digest)


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
    sequences = suite.bench_sequences(bdb, template, 1500, 1, rss)
    check(sequences, 7)
    geometry = sequences[3]  # what ops wrote: the geometry and bbox of the database's functions
    assert geometry.passed and geometry.ours_s == geometry.baseline_s == 15
    assert sequences[4].passed  # the baseline's ranks are ops's
    assert sequences[6].benchmark.endswith("the bare rewrite of the same rows") and sequences[6].baseline_s > 0
    check(suite.bench_refresh(bdb, template, 1500, 1, rss), 2)
    check(suite.bench_delete_data(bdb, template, 1500, 1, rss), 2)
    check(suite.bench_cleanup_local(bdb, template, 1500, rss), 1)
    s3 = suite.bench_cleanup_s3(bdb, template, 1500, rss, pictures=200)
    check(s3, 1)
    assert s3[0].passed  # DeleteObjects batching is a count, not a timing: it must hold at any size
    check(suite.bench_worker(bdb, template, 100, rss), 1)
    check(suite.bench_startup(bdb, template, rss, rounds=1), 2)
    check(suite.bench_storage_check(bdb, template, 1500, rss), 1)
    scan = suite.bench_storage_scan(bdb, template, 1500, rss)
    check(scan, 1)
    assert scan[0].passed  # every one of the 1,500 pictures counted as missing, memory under the target
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
    check(results, 7)
    assert all(r.benchmark.endswith(" on a Panoramax database") for r in results)
    assert results[1].passed and results[1].ours_s == 0  # an ordered instance: reorder writes nothing
    assert results[3].passed and results[3].ours_s == 15  # ops's geometry and bbox: Panoramax's functions'
    assert results[4].passed and results[4].ours_s == 1500  # the users'-choices baseline ranks as ops
    name, rss = url.rsplit("/", 1)[1], suite.RssLog()
    identity = suite.bench_geometry_identity(bdb, name, 1500, label=" on a Panoramax database")
    assert identity[0].passed and identity[0].ours_s == identity[0].baseline_s == 15
    check(suite.bench_refresh_panoramax(bdb, name, 1500, 1, rss), 2)
    check(suite.bench_delete_data(bdb, name, 1500, 1, rss, label=" on a Panoramax database"), 2)
    check(suite.bench_storage_scan(bdb, name, 1500, rss, label=" on a Panoramax database"), 1)
    check(suite.bench_doctor(bdb, name, 1500, rss, 1, label=" on a Panoramax database"), 2)
    jit = suite.bench_jit(bdb, name, 1500, label=" on a Panoramax database")
    assert len(jit) == 5 and all(r.ours_s > 0 and r.baseline_s > 0 for r in jit)


def test_readme_performance_tables_are_generated_from_the_results():
    from bench import report

    page = report.PAGE.read_text(encoding="utf-8")
    assert report.current_section(page) == report.render(), "docs/performance.md differs: run make bench-report"
    readme = report.readme_section.README.read_text(encoding="utf-8")
    section = report.readme_section.current(readme, report.README_BEGIN, report.README_END)
    assert section == report.highlights(), "README.md's performance figures differ: run make bench-report"


def _run(tmp_path, name: str, finished: str, sizes: list[int], rows: list[Result]) -> None:
    meta = {
        "commit": name,
        "machine": "m",
        "sizes": sizes,
        "rounds": {str(s): 1 for s in sizes},
        "finished_at": finished,
    }
    (tmp_path / f"{name}.json").write_text(json.dumps({**meta, "results": [r.as_dict() for r in rows]}))


def test_report_takes_the_newest_run_per_size_and_flags_growth_that_is_not_linear(tmp_path):
    from bench import report

    def timed(name: str, size: int, seconds: float) -> Result:
        return Result(name, size, seconds, seconds / 1.2, 1.2, "≤ 1.5×", True)

    _run(tmp_path, "old", "2026-01-01T00:00:00", [1_000_000], [timed("reorder", 1_000_000, 99.0)])
    _run(tmp_path, "big", "2026-02-01T00:00:00", [1_000_000, 10_000_000],
         [timed("reorder", 1_000_000, 10.0), timed("reorder", 10_000_000, 110.0),
          timed("headings", 1_000_000, 10.0), timed("headings", 10_000_000, 150.0),
          Result("start-up", 0, 0.1, 0.03, 3.3, "< 0.3 s", True)])  # fmt: skip
    _run(tmp_path, "small", "2026-03-01T00:00:00", [100_000], [timed("reorder", 100_000, 1.0)])
    (tmp_path / "legacy.json").write_text(json.dumps([timed("reorder", 1_000_000, 5.0).as_dict()]))  # not read
    text = report.render(report.load_runs(tmp_path), {"headings": "measured: the cause"})
    reorder = next(line for line in text.splitlines() if line.startswith("| reorder |"))
    assert reorder.split(" | ")[1:5] == ["1.00 s (1.20×)", "10.00 s (1.20×)", "110.00 s (1.20×)", "11.0×"]
    assert "`big`, `small`" in reorder and "`old`" not in reorder  # the newest run per size, named
    headings = next(line for line in text.splitlines() if line.startswith("| headings |"))
    assert "15.0× (not linear, see below)" in headings and "- headings: measured: the cause" in text
    assert "| start-up | 0 |" in text  # not an instance size: in the second table
    assert text.startswith(report.BEGIN) and text.endswith(report.END)


def test_a_second_run_of_the_same_commit_and_sizes_keeps_the_first_run_s_results(tmp_path):
    """Two groups run one after the other at 10M the same day (sequences, then upgrade): both files stay, and
    the report shows both runs' rows (the second once overwrote the first's results)."""
    from bench import report
    from bench.common import save

    meta = {"commit": "abc1234", "machine": "m", "sizes": [10_000_000], "rounds": {"10000000": 1}}
    first = save([Result("reorder", 10_000_000, 44.0, 53.0, 0.83, "≤ 1.0×", True)],
                 {**meta, "finished_at": "2026-12-07T09:52:00"}, tmp_path)  # fmt: skip
    second = save([Result("upgrade", 10_000_000, 77.0, 77.5, 0.99, "≤ 1.5×", True)],
                  {**meta, "finished_at": "2026-12-07T10:12:00"}, tmp_path)  # fmt: skip
    assert first != second and first.exists() and second.exists()
    text = report.render(report.load_runs(tmp_path), {})
    assert "| reorder | 44.00 s (0.83×) |" in text and "| upgrade | 77.00 s (0.99×) |" in text


def test_bench_console_keeps_moto_s_request_log_off_the_terminal(tmp_path):
    import io
    import logging

    from bench.output import Console

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        console = Console(tmp_path / "run" / "bench.log", stream=stream)
        logging.getLogger("werkzeug").info('127.0.0.1 - - "PUT /bench/key HTTP/1.1" 200 -')
        with console.step("a long step"):
            console.progress("generating: 1 / 2")  # not a terminal: no progress line
        console.say("| reorder | 100,000 | pass |")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    assert stream.getvalue() == "| reorder | 100,000 | pass |\n"
    logged = (tmp_path / "run" / "bench.log").read_text()
    assert "PUT /bench/key" in logged and "a long step" in logged and "generating: 1 / 2" in logged


def test_every_published_figure_names_the_command_whose_code_it_measures():
    from bench import report, stale

    names = {r.benchmark for run in report.load_runs() for r in run.results}
    commandless = {n for n in names if stale.command_of(n) is None}
    assert commandless == {"ops --help (start-up)", "peak RSS: ops --help"}
    assert stale.command_of("sequences reorder (all) on a Panoramax database") == "sequences reorder"
    assert stale.command_of("peak RSS: ops user --delete-data") == "user"
    assert stale.command_of("db refresh pictures_grid: concurrent vs plain") == "db refresh"
    assert stale.group_of("set-sequences-heading --overwrite (all) on a Panoramax database") == "panoramax"
    for name in names - commandless:
        files = stale.files_of(stale.command_of(name))
        assert all((stale.ROOT / f).is_file() for f in files), files
    assert "ops/sequences.py" in stale.files_of("sequences reorder")
    assert "sql/queries/reorder_ranks.sql" in stale.files_of("sequences reorder")


def test_a_figure_is_stale_once_its_command_s_code_changed_after_it_was_measured():
    import subprocess

    from bench import stale

    if not stale.in_git():
        pytest.skip("not a git checkout: nothing tells when a file changed")
    git = ["git", "-C", str(stale.ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    touched = subprocess.run([*git, "log", "--format=%h", "--", "ops/sequences.py"], capture_output=True, text=True)
    before_last_change = touched.stdout.split()[1]  # a commit after which ops/sequences.py changed again
    assert stale.staleness("sequences reorder (all)", head) is None
    why = stale.staleness("sequences reorder (all)", before_last_change)
    assert why is not None and why.commit == before_last_change
    assert stale.staleness("sequences reorder (all)", "0000000").changed_in == "unknown commit"
    assert stale.staleness("ops --help (start-up)", "0000000") is None  # no command: nothing to compare


def test_the_report_shows_no_stale_figure(tmp_path):
    from bench import report, stale

    if not stale.in_git():
        pytest.skip("not a git checkout")
    row = Result("sequences reorder (all)", 1_000_000, 9.0, 9.5, 0.95, "≤ 1.0×", True)
    _run(tmp_path, "0000000", "2026-01-01T00:00:00", [1_000_000], [row])
    text = report.render(report.load_runs(tmp_path), {})
    assert "9.00 s" not in text and "sequences reorder (all) at 1M: measured at 0000000" in text


def test_the_charts_draw_the_current_figures():
    from bench import charts, report, stale

    if not stale.in_git():
        pytest.skip("not a git checkout")
    runs = report.load_runs()
    drawn = ((charts.GROWTH, charts.growth_data(runs)), (charts.JIT, charts.jit_data(runs)),
             (charts.STALLS, charts.stall_data(runs)))  # fmt: skip
    for path, data in drawn:
        svg = path.read_text(encoding="utf-8")
        assert charts.description(svg) == data, f"{path.name} is stale: run make bench-report"
        assert data, f"{path.name} draws no current figure"
    page = report.PAGE.read_text(encoding="utf-8")
    assert "performance-growth.svg" in page.split("\n## ")[0]  # the page leads with the growth chart
    assert "performance-jit.svg" in page and "performance-stalls.svg" in page


def test_every_command_has_a_benchmark_row_or_says_why_not():
    from bench import report, stale, suite
    from ops.cli import specs

    measured = {stale.command_of(r.benchmark) for run in report.load_runs() for r in run.results}
    paths = {s.path for s in specs()}
    unmeasured = set(suite.not_benched())
    assert paths - measured - unmeasured == set(), "a command without a row: add one in bench/suite.py, or say why"
    assert unmeasured & measured == set(), "measured now: take not_benched out of its spec"
