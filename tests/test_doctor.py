"""`ops doctor` on both kinds of database: a clean instance (its sequences finished by the database's own
functions, as Panoramax's worker finishes them) reports nothing; each code, seeded, is found with its exact
count and ids, and its printed fix repairs it; doctor itself changes nothing and runs as a SELECT-only role."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest

from ops import doctor
from ops.doctor import checks
from tests.conftest import MONITORING_GRANTS, database_dump, make_role
from tests.factories import Pic, is_panoramax, make_account, make_sequence, walk
from tests.storage_helpers import env


def finished(conn) -> None:
    """As Panoramax's worker leaves sequences: derived fields by the database's own functions."""
    conn.execute("UPDATE sequences SET geom = compute_sequence_geom(id), bbox = compute_sequence_bbox(id), "
                 "min_picture_ts = d.min_ts, max_picture_ts = d.max_ts, nb_pictures = d.nb FROM ("
                 "SELECT sp.seq_id, min(p.ts) AS min_ts, max(p.ts) AS max_ts, count(*) AS nb FROM sequences_pictures sp "
                 "JOIN pictures p ON p.id = sp.pic_id GROUP BY sp.seq_id) d WHERE d.seq_id = sequences.id")  # fmt: skip
    conn.execute("DELETE FROM job_queue")


@pytest.fixture
def clean(ops, conn, db_url):
    """Three finished sequences with headings, the map refreshed, the default account with its token."""
    account = make_account(conn, "alice")
    seqs = []
    for i in range(3):
        pics = walk(1.0 + i, 1.0, 5, seed=i)
        for p in pics:
            p.heading = 90
        seqs.append(make_sequence(conn, account, pics))
    finished(conn)
    assert ops("refresh", env=env(db_url)).exit_code == 0
    return seqs


def run(ops, url, *args: str):
    result = ops("doctor", "--json", *args, env=env(url))
    return result, json.loads(result.stdout)


def found(report, code: str) -> list[dict]:
    return [f for f in report["findings"] if f["code"] == code and f["state"] == "found"]


def test_a_clean_instance_reports_nothing(ops, conn, db_url, clean):
    result, report = run(ops, db_url, "--fail-level", "info", "--skip", "DB005")
    assert result.exit_code == 0, [f for f in report["findings"] if f["state"] not in ("clean", "not applicable")]
    assert report["worst"] is None
    not_applicable = {f["code"] for f in report["findings"] if f["state"] == "not applicable"}
    storage = {"STO001", "STO002"}  # checked with --storage only
    assert not_applicable == (storage if is_panoramax(conn) else {"UPL002"} | storage)


def seed_and_fix(ops, conn, url, code: str, seed, expect_ids: list[str] | None = None, count: int = 1, fix=None):
    """Seed a defect, find it (exact count and ids), apply the printed fix (or ``fix``), find it gone."""
    seed()
    result, report = run(ops, url, "--only", code, "--fail-level", "info")
    findings = found(report, code)
    assert result.exit_code == 1 and len(findings) == 1, report
    assert findings[0]["count"] == count, findings[0]
    if expect_ids is not None:
        assert findings[0]["ids"] == sorted(expect_ids), findings[0]
    printed = findings[0]["fix"]
    if fix is not None:
        fix(printed)
    elif printed.startswith("ops "):
        args = printed.split("  (")[0].split()[1:]
        assert ops(*args, env=env(url)).exit_code == 0, printed
    else:
        conn.execute(printed.split("  (")[0])
    again, report = run(ops, url, "--only", code, "--fail-level", "info")
    assert again.exit_code == 0 and not found(report, code), report


def test_sequence_checks_find_and_fix(ops, conn, db_url, clean):
    s1, s2, s3 = (str(s) for s in clean)
    seed_and_fix(ops, conn, db_url, "SEQ001", lambda: conn.execute(
        "UPDATE sequences SET geom = ST_Multi(ST_MakeLine(ST_MakePoint(0, 0), ST_MakePoint(0, 0.001))) "
        "WHERE id = %s", (s1,)), [s1])  # fmt: skip
    seed_and_fix(ops, conn, db_url, "SEQ002", lambda: conn.execute(
        "UPDATE sequences SET nb_pictures = 99 WHERE id = ANY(%s::uuid[])", ([s2, s3],)), [s2, s3], 2)  # fmt: skip
    seed_and_fix(ops, conn, db_url, "SEQ003", lambda: conn.execute(
        "UPDATE sequences_pictures SET rank = rank + 10 WHERE seq_id = %s", (s1,)), [s1])  # fmt: skip
    empty = str(conn.execute("INSERT INTO sequences (account_id, status) SELECT id, 'ready' FROM accounts "
                             "WHERE name = 'alice' RETURNING id").fetchone()[0])  # fmt: skip
    seed_and_fix(ops, conn, db_url, "SEQ004", lambda: None, [empty],
                 fix=lambda printed: ops(*printed.split("  (")[0].split()[1:], "--yes", env=env(db_url)))  # fmt: skip
    seed_and_fix(ops, conn, db_url, "SEQ005", lambda: conn.execute(
        "UPDATE pictures SET heading = NULL WHERE id IN (SELECT pic_id FROM sequences_pictures WHERE seq_id = %s "
        "AND rank <= 2)", (s3,)), [s3])  # fmt: skip


def test_picture_job_and_upload_checks_find_and_fix(ops, conn, db_url, clean):
    account = conn.execute("SELECT id FROM accounts WHERE name = 'alice'").fetchone()[0]
    seq = make_sequence(conn, account, walk(5.0, 1.0, 3))
    stuck, waiting, broken = [str(r[0]) for r in conn.execute(
        "SELECT pic_id FROM sequences_pictures WHERE seq_id = %s ORDER BY rank", (seq,))]  # fmt: skip
    conn.execute("DELETE FROM job_queue")
    finished(conn)
    old = "now() - interval '3 days'"
    seed_and_fix(ops, conn, db_url, "PIC001", lambda: conn.execute(
        f"UPDATE pictures SET status = 'preparing', updated_at = {old} WHERE id = %s", (stuck,)), [stuck])  # fmt: skip
    conn.execute("DELETE FROM job_queue")
    seed_and_fix(ops, conn, db_url, "PIC002", lambda: conn.execute(
        "UPDATE pictures SET status = 'waiting-for-delete' WHERE id = %s", (waiting,)), [waiting])  # fmt: skip
    conn.execute("DELETE FROM job_queue")
    job = str(uuid4())

    def broken_picture() -> None:
        conn.execute("UPDATE pictures SET status = 'broken', preparing_status = 'broken' WHERE id = %s", (broken,))
        conn.execute("INSERT INTO job_history (job_id, job_task, picture_id, started_at, finished_at, error) VALUES "
                     "(%s, 'prepare', %s, now(), now(), 'blur API: 503\nmore details')", (job, broken))  # fmt: skip

    seed_and_fix(ops, conn, db_url, "PIC003", broken_picture, [job])
    conn.execute("DELETE FROM job_queue")
    lost = Pic(9.0, 9.0, id=uuid4())
    from tests.factories import add_picture

    def unsequenced() -> None:
        add_picture(conn, account, lost)
        conn.execute(f"UPDATE pictures SET inserted_at = {old} WHERE id = %s", (lost.id,))
        conn.execute("DELETE FROM job_queue")

    seed_and_fix(ops, conn, db_url, "PIC004", unsequenced, [str(lost.id)])
    gone_job = str(uuid4())

    def orphan_job() -> None:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # as a database without the foreign key
            conn.execute("INSERT INTO job_queue (id, task, picture_id) VALUES (%s, 'prepare', %s)", (gone_job, uuid4()))

    seed_and_fix(ops, conn, db_url, "JOB001", orphan_job, [gone_job])
    upload = str(conn.execute(f"INSERT INTO upload_sets (account_id, title, completed, dispatched, created_at) "
                              f"VALUES (%s, 'u', true, false, {old}) RETURNING id", (account,)).fetchone()[0])  # fmt: skip
    conn.execute("DELETE FROM job_queue WHERE upload_set_id IS NOT NULL")
    seed_and_fix(ops, conn, db_url, "UPL001", lambda: None, [upload])
    if is_panoramax(conn):
        ghost = str(uuid4())

        def lost_file() -> None:
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute("INSERT INTO files (upload_set_id, file_name, picture_id) VALUES (%s, 'x.jpg', %s)",
                             (upload, ghost))  # fmt: skip

        seed_and_fix(ops, conn, db_url, "UPL002", lost_file, [ghost])


def test_database_and_account_checks_find_and_fix(ops, conn, db_url, clean, admin_url, monkeypatch):
    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now() - interval '3 days'")
    else:
        conn.execute("UPDATE ops_views SET refreshed_at = now() - interval '3 days'")
    seed_and_fix(ops, conn, db_url, "MAP001", lambda: None)
    conn.execute("CREATE INDEX doctor_probe ON pictures (ts)")
    with psycopg.connect(admin_url.rsplit("/", 1)[0] + "/" + db_url.rsplit("/", 1)[1], autocommit=True) as su:
        su.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'doctor_probe'::regclass")
    seed_and_fix(ops, conn, db_url, "DB001", lambda: None, ["doctor_probe"])
    hostile = "Mixed; DROP TABLE pictures CASCADE; --"  # a name the printed fix must quote, never run as SQL
    conn.execute(f'CREATE INDEX "{hostile}" ON pictures (ts)')
    with psycopg.connect(admin_url.rsplit("/", 1)[0] + "/" + db_url.rsplit("/", 1)[1], autocommit=True) as su:
        su.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (f'"{hostile}"',))
    seed_and_fix(ops, conn, db_url, "DB001", lambda: None, [f'"{hostile}"'])
    assert conn.execute("SELECT to_regclass('pictures') IS NOT NULL").fetchone()[0]
    defaults = [r[0] for r in conn.execute("SELECT id FROM accounts WHERE is_default")]
    seed_and_fix(ops, conn, db_url, "ACC001", lambda: conn.execute("UPDATE accounts SET is_default = false"),
                 fix=lambda _printed: conn.execute("UPDATE accounts SET is_default = true WHERE id = %s",
                                                   (defaults[0],)))  # fmt: skip
    seed_and_fix(ops, conn, db_url, "ACC002", lambda: conn.execute(
        "DELETE FROM tokens WHERE account_id = %s", (defaults[0],)), [str(defaults[0])])  # fmt: skip
    monkeypatch.setattr(checks, "IDLE_AFTER", timedelta(0))
    holder = psycopg.connect(db_url, application_name="forgotten")
    holder.execute("SELECT 1 FROM pictures LIMIT 1")  # a transaction left open, holding its locks
    pid = holder.info.backend_pid
    time.sleep(0.2)
    seed_and_fix(ops, conn, db_url, "DB004", lambda: None, [str(pid)])
    holder.close()
    monkeypatch.setattr(checks, "XID_WARNING", 0)
    _r, report = run(ops, db_url, "--only", "DB003")
    assert found(report, "DB003")[0]["fix"] == "VACUUM (FREEZE);"  # the whole database, runnable as printed


def test_db002_says_what_the_schema_lacks(ops, conn, db_url):
    if is_panoramax(conn):
        conn.execute("ALTER TABLE job_history DROP COLUMN error")  # a column the worker writes, gone
    else:
        conn.execute("DELETE FROM ops_yoyo_migration WHERE migration_id = '0005_sequence_geometry'")
    _r, report = run(ops, db_url, "--only", "DB002")
    finding = found(report, "DB002")[0]
    assert ("job_history.error" in finding["ids"][0]) if is_panoramax(conn) else ("1 pending" in finding["ids"][0])


def test_doctor_changes_nothing_and_runs_as_a_select_only_role(ops, conn, db_url, clean):
    conn.execute("UPDATE sequences SET nb_pictures = 42")  # something to find
    role = make_role(db_url, MONITORING_GRANTS)
    counters = "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables"

    def writes() -> int:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")
        time.sleep(1.0)  # other sessions flush their statistics within a second
        with psycopg.connect(db_url) as fresh:
            fresh.execute("SELECT pg_stat_clear_snapshot()")
            return fresh.execute(counters).fetchone()[0]

    before, written = database_dump(db_url), writes()
    result = ops("doctor", "--json", env=env(db_url.replace("postgres@", f"{role}@")))
    assert result.exit_code == 1 and found(json.loads(result.stdout), "SEQ002")
    assert database_dump(db_url) == before and writes() == written


def test_fix_repairs_what_it_can_and_its_dry_run_nothing(ops, conn, db_url, clean):
    s1 = str(clean[0])
    conn.execute("UPDATE sequences SET nb_pictures = 99 WHERE id = %s", (s1,))
    conn.execute("UPDATE pictures SET heading = NULL WHERE id IN (SELECT pic_id FROM sequences_pictures WHERE seq_id = %s)",
                 (s1,))  # fmt: skip
    before = database_dump(db_url)
    dry = ops("doctor", "--fix", "--dry-run", "--json", env=env(db_url))
    plan = json.loads(dry.stdout)["fix"]
    assert plan["reorder"] == [s1] and plan["headings"] == [s1] and database_dump(db_url) == before
    done = ops("doctor", "--fix", env=env(db_url))
    assert "fix (did): reorder 1 sequences, set headings of 1" in done.stdout
    after = ops("doctor", "--only", "SEQ", "--fail-level", "info", env=env(db_url))
    assert after.exit_code == 0, after.stdout


def test_prometheus_gives_every_check_its_series_and_counts_what_was_found(ops, conn, db_url, clean):
    """For alerting: a series per code whether it found something, ran clean or was skipped; the counts of
    the findings; the status doctor exits with; printed under -q too (cron)."""
    from prometheus_client.parser import text_string_to_metric_families

    s1, s2 = str(clean[0]), str(clean[1])
    conn.execute("UPDATE sequences SET nb_pictures = 99 WHERE id = ANY(%s::uuid[])", ([s1, s2],))
    before = time.time()
    result = ops("-q", "doctor", "--skip", "DB005", "--prometheus", env=env(db_url))
    assert result.exit_code == 1, result.stderr
    samples = {
        (s.name, s.labels.get("code")): s for f in text_string_to_metric_families(result.stdout) for s in f.samples
    }
    for code, check in doctor.CODES.items():
        assert samples[("ops_doctor_findings", code)].labels["severity"] == check.severity
        assert samples[("ops_doctor_check_up", code)].value == (0 if code == "DB005" else 1), code
    assert samples[("ops_doctor_findings", "SEQ002")].value == 2
    assert samples[("ops_doctor_findings", "SEQ001")].value == 0
    assert samples[("ops_doctor_status", None)].value == 1
    assert samples[("ops_doctor_last_run_timestamp_seconds", None)].value >= before
    both = ops("doctor", "--prometheus", "--json", env=env(db_url))
    assert both.exit_code == 2 and "--prometheus goes alone" in both.stderr


def test_unknown_codes_and_a_lone_dry_run_are_usage_errors(ops, db_url):
    bad = ops("doctor", "--only", "NOPE1", env=env(db_url))
    assert bad.exit_code == 2 and "is no check code" in bad.stderr
    lone = ops("doctor", "--dry-run", env=env(db_url))
    assert lone.exit_code == 2 and "--dry-run goes with --fix" in lone.stderr


def test_every_code_is_documented_once():
    from tests.conftest import REPO

    page = (REPO / "docs" / "commands.md").read_text()
    for code in doctor.CODES:
        assert len(re.findall(rf"\| `{code}` \|", page)) == 1, code


def test_fix_retries_broken_pictures_and_exits_0_once_everything_is_fixed(ops, conn, db_url, clean):
    """PIC003's --fix retries every failed job of the broken pictures (it retried none: the ids were read
    with no limit as [1:NULL]); --fix then exits 0, the state after its fixes being clean"""
    s1 = str(clean[0])
    conn.execute("UPDATE sequences SET nb_pictures = 99 WHERE id = %s", (s1,))
    broken = conn.execute("SELECT pic_id FROM sequences_pictures WHERE seq_id = %s LIMIT 1", (clean[1],)).fetchone()[0]
    conn.execute("DELETE FROM job_queue")
    job = uuid4()
    conn.execute("UPDATE pictures SET status = 'broken', preparing_status = 'broken' WHERE id = %s", (broken,))
    conn.execute("INSERT INTO job_history (job_id, job_task, picture_id, started_at, finished_at, error) VALUES "
                 "(%s, 'prepare', %s, now(), now(), 'blur API: 503')", (job, broken))  # fmt: skip
    done = ops("doctor", "--fix", "--json", "--only", "SEQ002", "--only", "PIC003", env=env(db_url))
    report = json.loads(done.stdout)
    assert report["fix"]["retry_jobs"] == [str(job)] and report["fix"]["retried"], report["fix"]
    assert conn.execute("SELECT count(*) FROM job_queue WHERE picture_id = %s", (broken,)).fetchone()[0] == 1
    assert done.exit_code == 0, (report["findings"], done.stderr)


def test_a_fix_that_fails_is_reported_and_the_others_still_run(ops, conn, db_url, clean, admin_url):
    """a refresh behind a lock on what it refreshes fails within the write lock timeout, named, exit 1;
    the reorder asked in the same --fix still ran"""
    import threading

    s1 = str(clean[0])
    conn.execute("UPDATE sequences SET nb_pictures = 99 WHERE id = %s", (s1,))
    target = "pictures_aggregate_grid" if is_panoramax(conn) else "accounts_stats"
    conn.execute("UPDATE refresh_database SET refreshed_at = now() - interval '10 days'" if is_panoramax(conn)
                 else "UPDATE ops_views SET refreshed_at = now() - interval '10 days'")  # fmt: skip
    holder = psycopg.connect(db_url)
    holder.execute(
        f"LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE" if is_panoramax(conn) else f"REFRESH MATERIALIZED VIEW {target}"
    )  # names of the tests; the transaction stays open
    release = threading.Timer(20, holder.rollback)
    release.start()
    try:
        started = time.monotonic()
        done = ops("--write-lock-timeout", "2s", "doctor", "--fix", "--json", "--only", "SEQ002", "--only", "MAP",
                   env=env(db_url))  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
    report = json.loads(done.stdout)
    assert done.exit_code == 1 and elapsed < 15, (done.exit_code, elapsed, done.stderr)
    assert report["fix"]["reordered"] and "refreshed" in report["fix"]["failed"], report["fix"]
    assert "lock" in report["fix"]["failed"]["refreshed"] and "doctor --fix: refreshed failed" in done.stderr
