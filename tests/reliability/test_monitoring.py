"""The operator's view never hangs and never says OK when it is not: `ops health` under every failure mode of
the database (down, a server that never answers, a wrong password, not PostgreSQL, a table locked, a slow
network) answers CRITICAL within its --timeout with every Prometheus series printed; `ops jobs` gives up on a
locked table naming who holds it; a role lacking a privilege is a CRITICAL check; a role with the documented
monitoring grants runs every read-only command. Network faults are servers on 127.0.0.1 only."""

from __future__ import annotations

import time
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from ops.health import FAMILIES, LABEL_VALUES
from tests.conftest import MONITORING_GRANTS, make_role
from tests.reliability.conftest import run_ops
from tests.reliability.faults import TcpServer
from tests.storage_helpers import local_store, prepared_sequence

pytestmark = pytest.mark.category("monitoring")
TIMEOUT = 3.0
MARGIN = 4.0  # process start (~0.5 s alone, up to 3 s beside two other test workers) and printing


def every_series_is_there(text: str) -> bool:
    """Each family with each of its label values, whatever failed: alerting sees values, never absence."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (_help, label) in FAMILIES.items():
        if name not in families:
            return False
        if label and {s.labels[label] for s in families[name].samples} != set(LABEL_VALUES[label]):
            return False
    return True


def prometheus_values(text: str) -> dict[tuple[str, str], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, next(iter(s.labels.values()), "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def url_on(port: int, user: str = "postgres", password: str = "") -> str:
    secret = f":{password}" if password else ""
    return f"postgresql://{user}{secret}@127.0.0.1:{port}/ops"


@pytest.fixture
def password_role(cluster, admin_url):
    """A role that must give its password (scram), on the tests' own cluster: a real wrong-password answer."""
    name = f"pw_{uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right-one'").format(sql.Identifier(name)))
        hba = cluster.pgdata / "pg_hba.conf"
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        c.execute("SELECT pg_reload_conf()")
    return name


MODES = ["down", "silent", "garbage", "wrong-password", "slow-network"]


@pytest.mark.parametrize("mode", MODES)
def test_health_answers_critical_within_its_timeout(scenario, mode, ops_db_url, cluster, password_role, tmp_path):
    """ops health --timeout 3 against a database that is down / never answers / is not PostgreSQL / refuses the
    password / sits behind a slow network: CRITICAL (exit 2) in time, every series printed"""
    port = int(ops_db_url.rsplit(":", 1)[1].split("/")[0])
    server = None
    if mode == "down":
        url = url_on(1)
    elif mode == "wrong-password":
        url = ops_db_url.replace("postgres@", f"{password_role}:wrong-one@")
    else:
        server = {"silent": lambda: TcpServer("silent"), "garbage": lambda: TcpServer("garbage"),
                  "slow-network": lambda: TcpServer("slow", ("127.0.0.1", port), delay_s=1.5)}[mode]()  # fmt: skip
        url = url_on(server.port)
    env = {"DB_URL": url, **local_store(tmp_path).env}
    try:
        for output in ("--prometheus", None):
            started = time.monotonic()
            result = run_ops("health", "--timeout", str(TIMEOUT), *([output] if output else []), env=env, timeout=60)
            elapsed = time.monotonic() - started
            ok = result.returncode == 2 and elapsed < TIMEOUT + MARGIN
            if output == "--prometheus":
                values = prometheus_values(result.stdout)
                ok = ok and every_series_is_there(result.stdout) and values[("ops_database_up", "")] == 0
                ok = ok and values[("ops_health_status", "")] == 2
            elif output is None:
                ok = ok and result.stdout.startswith("OPS HEALTH CRITICAL - database: ")
            scenario.run(ok, f"{mode} {output}: exit {result.returncode} in {elapsed:.1f} s: {result.stdout[:300]}")
    finally:
        if server is not None:
            server.close()
    scenario.detail += f" (each answer measured: under {TIMEOUT + MARGIN:g} s)"
    assert scenario.failures == 0, scenario.notes


def hold_lock(url: str, table: str) -> psycopg.Connection:
    holder = psycopg.connect(url, application_name="locker")
    holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
    return holder


def test_health_with_a_locked_table_names_the_holder_in_time(scenario, db_url, tmp_path):
    """ops health --timeout 8 while another session holds job_queue in ACCESS EXCLUSIVE mode: queue CRITICAL
    naming the session (pid, application_name), the other checks answered, exit 2 in time"""
    env = {"DB_URL": db_url, **local_store(tmp_path).env}
    holder = hold_lock(db_url, "job_queue")
    try:
        for output in (None, "--prometheus"):
            started = time.monotonic()
            result = run_ops("health", "--timeout", "8", *([output] if output else []), env=env, timeout=60)
            elapsed = time.monotonic() - started
            ok = result.returncode == 2 and elapsed < 8 + MARGIN
            if output is None:
                pid = holder.info.backend_pid
                ok = ok and f"job_queue (ACCESS EXCLUSIVE) by pid {pid} (locker" in result.stdout
                ok = ok and "OK       database" in result.stdout and "lock_timeout" in result.stdout
            else:
                values = prometheus_values(result.stdout)
                ok = ok and every_series_is_there(result.stdout) and values[("ops_check_up", "queue")] == 0
                ok = ok and values[("ops_database_up", "")] == 1
            scenario.run(ok, f"{output}: exit {result.returncode} in {elapsed:.1f} s: {result.stdout[:400]}")
    finally:
        holder.close()
    assert scenario.failures == 0, scenario.notes


@pytest.mark.parametrize("args", [("jobs",), ("jobs", "list"), ("jobs", "list", "--failed")])
def test_jobs_on_a_locked_table_give_up_and_say_who_holds_it(scenario, args, db_url):
    """ops jobs / jobs list while job_queue (or job_history) is locked: one error line naming the holder, exit 1,
    after OPS_READ_LOCK_TIMEOUT"""
    for table in ("job_queue", "job_history"):
        holder = hold_lock(db_url, table)
        pid = holder.info.backend_pid
        try:
            started = time.monotonic()
            result = run_ops(*args, env={"DB_URL": db_url, "OPS_READ_LOCK_TIMEOUT": "1"}, timeout=60)
            elapsed = time.monotonic() - started
        finally:
            holder.close()
        ok = (result.returncode == 1 and elapsed < 1 + MARGIN and result.stderr.count("\n") == 1
              and f"{table} (ACCESS EXCLUSIVE) by pid {pid} (locker" in result.stderr
              and "lock_timeout (1s)" in result.stderr)  # fmt: skip
        scenario.run(ok, f"{table}: exit {result.returncode} in {elapsed:.1f} s: {result.stderr[:300]}")
    assert scenario.failures == 0, scenario.notes


def test_doctor_with_a_locked_table_reports_the_checks_it_could_not_run_in_time(scenario, db_url):
    """ops doctor (text, --json, --prometheus) while another session holds pictures in ACCESS EXCLUSIVE mode,
    OPS_READ_LOCK_TIMEOUT=1: each check reading pictures gives up after a second and is reported failed,
    naming the holder; the others run; exit 2; every series printed"""
    import json

    from ops.doctor import CODES

    env = {"DB_URL": db_url, "OPS_READ_LOCK_TIMEOUT": "1"}
    bound = len(CODES) * 1 + MARGIN  # at most every check waiting its second
    holder = hold_lock(db_url, "pictures")
    pid = holder.info.backend_pid
    try:
        for output in ("--json", "--prometheus"):
            started = time.monotonic()
            result = run_ops("doctor", "--skip", "DB005", output, env=env, timeout=120)
            elapsed = time.monotonic() - started
            ok = result.returncode == 3 and elapsed < bound
            if output == "--json":
                states = {f["code"]: f for f in json.loads(result.stdout)["findings"]} if ok else {}
                ok = (
                    ok
                    and states["SEQ002"]["state"] == "failed"
                    and f"by pid {pid} (locker" in states["SEQ002"]["detail"]
                )
                ok = ok and states["DB001"]["state"] == "clean" and states["ACC001"]["state"] in ("clean", "found")
            else:
                values = prometheus_values(result.stdout) if ok else {}
                ok = (
                    ok
                    and values[("ops_doctor_check_up", "SEQ002")] == 0
                    and values[("ops_doctor_check_up", "DB001")] == 1
                )
                ok = ok and values[("ops_doctor_status", "")] == 3
                ok = ok and all(("ops_doctor_findings", code) in values for code in CODES)
            scenario.run(
                ok,
                f"{output}: exit {result.returncode} in {elapsed:.1f} s: {result.stdout[:400]} {result.stderr[:200]}",
            )
    finally:
        holder.close()
    assert scenario.failures == 0, scenario.notes


def test_a_role_lacking_a_privilege_is_a_critical_check_not_a_crash(scenario, db_url, tmp_path):
    """ops health as a role that may not read the migration history: CRITICAL schema check naming the
    missing privilege, exit 2, every Prometheus series printed"""
    history = "_yoyo_migration" if "_yoyo_migration" in _tables(db_url) else "ops_yoyo_migration"
    role = make_role(db_url, MONITORING_GRANTS + f"REVOKE SELECT ON {history} FROM {{role}}")
    env = {"DB_URL": db_url.replace("postgres@", f"{role}@"), **local_store(tmp_path).env}
    text = run_ops("health", env=env)
    ok = text.returncode == 2 and f"permission denied for table {history}" in text.stdout
    scenario.run(ok, f"text: exit {text.returncode}: {text.stdout[:300]} {text.stderr[:200]}")
    prom = run_ops("health", "--prometheus", env=env)
    values = prometheus_values(prom.stdout) if prom.returncode == 2 else {}
    scenario.run(prom.returncode == 2 and every_series_is_there(prom.stdout) and values[("ops_schema_ready", "")] == 0,
                 f"prometheus: exit {prom.returncode}: {prom.stdout[:200]} {prom.stderr[:200]}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        return {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_the_monitoring_role_runs_every_read_only_command(scenario, conn, db_url, tmp_path):
    """a role with only the documented monitoring grants: health, jobs, jobs list, db status and storage check
    --verify all answer (exit 0), and a worker's held job is seen as processing"""
    store = local_store(tmp_path)
    prepared_sequence(conn, store, 3)
    if "_yoyo_migration" in _tables(db_url):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
    else:
        assert run_ops("refresh", env={"DB_URL": db_url}).returncode == 0
    role = make_role(db_url, MONITORING_GRANTS)
    env = {"DB_URL": db_url.replace("postgres@", f"{role}@"), **store.env}
    for args in (("health",), ("jobs",), ("jobs", "list"), ("jobs", "list", "--failed"), ("db", "status"),
                 ("storage", "check", "--verify")):  # fmt: skip
        result = run_ops(*args, env=env)
        scenario.run(
            result.returncode == 0, f"{args}: exit {result.returncode}: {result.stdout[-300:]} {result.stderr}"
        )
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    with psycopg.connect(db_url) as worker:  # a worker (another role) holds the job
        worker.execute("SELECT id FROM job_queue WHERE task = 'delete' FOR UPDATE")
        shown = run_ops("jobs", "--json", env=env)
    import json

    delete = [t for t in json.loads(shown.stdout)["tasks"] if t["task"] == "delete"] if shown.returncode == 0 else []
    scenario.run(bool(delete) and delete[0]["processing"] == 1, f"jobs as the monitoring role: {shown.stdout[:300]}")
    assert scenario.failures == 0, scenario.notes
