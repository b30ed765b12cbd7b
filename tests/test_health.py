"""`ops health`: exit codes, the Nagios first line, Prometheus' series."""

from __future__ import annotations

import json
import re

from tests.factories import is_panoramax
from tests.storage_helpers import env, local_store


def test_health_exit_codes_and_prometheus_output(ops, conn, db_url, empty_db_url, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
    env = {"DB_URL": db_url, **local_store(tmp_path).env}
    ok = ops("health", env=env)
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OPS HEALTH OK - 9 checks ok | database_time=")
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id) VALUES ('delete', gen_random_uuid())")
    warning = ops("health", "--queue-warning", "1", "--json", env=env)
    assert warning.exit_code == 1 and json.loads(warning.stdout)["state"] == "warning"
    critical = ops("health", "--queue-warning", "1", "--queue-critical", "1", env=env)
    assert critical.exit_code == 2 and "CRITICAL queue: 1 jobs ready" in critical.stdout
    pending = ops("health", env={"DB_URL": empty_db_url})
    assert pending.exit_code == 2 and "CRITICAL schema" in pending.stdout
    down = ops("health", env={"DB_URL": "postgresql://nobody@127.0.0.1:1/x", "FS_URL": str(tmp_path / "gone")})
    assert down.exit_code == 2 and "CRITICAL database" in down.stdout and "CRITICAL storage_permanent" in down.stdout
    text = ops("health", "--prometheus", env=env).stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["ops_database_up"].samples[0].value == 1
    assert {s.labels["task"]: s.value for s in families["ops_jobs_queued"].samples}["delete"] == 1
    assert {s.labels["area"] for s in families["ops_storage_up"].samples} == {"permanent", "derivates", "tmp"}
    assert families["ops_health_status"].type == "gauge"


def test_health_on_an_empty_queue_and_contradictory_thresholds(ops, conn, db_url, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    if is_panoramax(conn):
        conn.execute("UPDATE refresh_database SET refreshed_at = now()")
        conn.execute("DELETE FROM job_queue")
    env = {"DB_URL": db_url, **local_store(tmp_path).env}
    idle = ops("health", "--age-warning", "0s", "--age-critical", "0s", env=env)
    assert idle.exit_code == 0 and "OK       oldest_job: no job ready" in idle.stdout, idle.stdout
    text = ops("health", "--prometheus", env=env).stdout
    queued = {s.labels["task"]: s.value for f in text_string_to_metric_families(text) if f.name == "ops_jobs_queued"
              for s in f.samples}  # fmt: skip
    assert queued == dict.fromkeys(("prepare", "delete", "dispatch", "finalize", "read_metadata", "transfer"), 0.0)
    for warning, critical in (("--queue-warning", "--queue-critical"), ("--failures-warning", "--failures-critical")):
        refused = ops("health", warning, "100", critical, "1", env=env)  # UNKNOWN to a monitoring system
        assert refused.exit_code == 3 and f"{warning} (100) is above {critical} (1)" in refused.stderr
        assert refused.stdout.startswith("OPS HEALTH UNKNOWN - usage: ")
    refused = ops("health", "--age-warning", "2h", "--age-critical", "1h", env=env)
    assert refused.exit_code == 3 and "--age-warning (7200) is above --age-critical (3600)" in refused.stderr
    typo = ops("health", "--timeout", "ten", env=env)
    assert typo.exit_code == 3 and typo.stdout.startswith("OPS HEALTH UNKNOWN - usage: ")


def test_the_nagios_first_line_is_the_overall_state_with_perfdata(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    conn.execute("INSERT INTO job_queue (task, picture_to_delete_id, ts) "
                 "SELECT 'delete', gen_random_uuid(), now() - interval '50 minutes' FROM generate_series(1, 3)")  # fmt: skip
    result = ops("health", "--queue-warning", "2", "--age-warning", "40m", env=env(db_url, store))
    first, *rest = result.stdout.splitlines()
    assert result.exit_code == 1 and first.startswith("OPS HEALTH WARNING - queue: ")
    assert re.search(r"\| database_time=[\d.]+ms;;;0; queued=\d+;2;10000;0; oldest_job=\d+s;2400;21600;0;", first)
    assert any(line.startswith("WARNING  oldest_job: oldest ready job waits for 50m") for line in rest), rest
