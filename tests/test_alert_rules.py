"""The alerting rules (monitoring/ops-alerts.rules.yml) run by ``promtool test rules`` (Debian's prometheus
package, installed by ``make test``) on what ops really writes: the textfiles of ``ops health --prometheus``
and ``ops doctor --prometheus``, taken from real runs on a database put in each situation and replayed as
series. Each situation raises exactly the alerts the docs name for it, and no other, with its rendered
summary: a healthy instance none; a database down OpsDatabaseDown and OpsHealthCritical (never a schema,
refresh or queue alert on values it could not read); a monitor that stopped while node_exporter keeps serving
its last file OpsHealthStale, one that never wrote OpsHealthMissing; a doctor that could not run
OpsDoctorCheckFailed, one that stopped two days ago OpsDoctorNotRun, one that found an error OpsDoctorErrors;
a schema ops did not build, a job ready for hours, jobs given up, a map not refreshed, an unmounted picture
folder and a check that got no reading in time each their own. ``test_every_alert_has_a_case_that_raises_it``
keeps it so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_ops
from tests.storage_helpers import Store, env, local_store

RULES = REPO / "monitoring" / "ops-alerts.rules.yml"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make test installs Debian's prometheus)")
SAMPLE = re.compile(r"^([a-z_][a-z0-9_]*(?:\{[^}]*\})?) (\S+)$")
DOWN_URL = "postgresql://ops@127.0.0.1:1/nothing"  # nothing listens on port 1: the database is down
TIMESTAMPS = ("ops_health_last_run_timestamp_seconds", "ops_doctor_last_run_timestamp_seconds")
MINUTES = 40  # each case: 40 minutes of samples, one a minute, evaluated at the end


def samples(text: str) -> dict[str, str]:
    """The samples of a textfile (metric with labels -> value as written)."""
    return {m[1]: m[2] for line in text.splitlines() if (m := SAMPLE.match(line))}


def series(
    found: dict[str, str], *, stopped: bool | tuple[str, ...] = False, minutes: int = MINUTES,
    then: tuple[int, dict[str, str]] | None = None,
) -> list[dict[str, str]]:  # fmt: skip
    """promtool input series: every sample constant, as node_exporter serves a file, except the run
    timestamps, which follow the clock (a file rewritten every minute) or stay at 0 (a monitor that stopped:
    ``stopped`` True for both, or the timestamps that stopped). ``then``: (minute, samples) from which a
    later file is served instead."""
    halted = TIMESTAMPS if stopped is True else stopped or ()
    out = []
    for metric, value in found.items():
        if metric in TIMESTAMPS:
            values = f"0x{minutes}" if metric in halted else f"0+60x{minutes}"
        elif then is not None:
            at, later = then
            values = f"{_repeated(value, at)} {_repeated(later.get(metric, value), minutes - at + 1)}"
        else:
            values = _repeated(value, minutes + 1)
        out.append({"series": metric, "values": values})
    return out


def _repeated(sample: str, count: int) -> str:
    """``count`` samples of one value in promtool's notation (NaN cannot be expanded with ``x``)."""
    return " ".join(["NaN"] * count) if sample == "NaN" else f"{sample}x{count - 1}"


def _store(tmp_path: Path) -> Store:
    """The test's local picture storage, created on first use."""
    root = tmp_path / "store" / "storage"
    return Store("local", {"FS_URL": str(root)}, root=root) if root.exists() else local_store(tmp_path / "store")


def humanize_duration(seconds: float) -> str:
    """Prometheus's humanizeDuration template function, for durations of a minute or more."""
    s = int(seconds)
    days, hours, minutes, secs = s // 86400, s // 3600 % 24, s // 60 % 60, s % 60
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def _annotations(rule: dict, rendered: dict[str, str] | None) -> dict[str, str]:
    text = {**rule.get("annotations", {}), **(rendered or {})}
    assert not any("{{" in v for v in text.values()), f"{rule['alert']}: a templated alert needs its value here"
    return text


def promtool(
    tmp_path: Path, input_series: list[dict[str, str]], firing: set[str] | dict[str, list[dict]], *,
    minutes: int = MINUTES,
) -> None:  # fmt: skip
    """Assert that at the end of the samples exactly ``firing`` fire, every other rule staying silent.
    ``firing`` as a dict: per alert, its instances (extra labels, and "summary" as the template renders it)."""
    rules = [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]]
    instances = firing if isinstance(firing, dict) else {name: [{}] for name in firing}
    cases = []
    for rule in rules:
        expected = []
        for instance in instances.get(rule["alert"], []):
            labels = {k: v for k, v in instance.items() if k != "summary"}
            rendered = {"summary": instance["summary"]} if "summary" in instance else None
            expected.append({"exp_labels": {**labels, **dict(rule.get("labels", {}))},
                             "exp_annotations": _annotations(rule, rendered)})  # fmt: skip
        cases.append({"eval_time": f"{minutes}m", "alertname": rule["alert"], "exp_alerts": expected})
    assert set(instances) <= {r["alert"] for r in rules}, firing
    test = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": cases}]}  # fmt: skip
    path = tmp_path / "ops-alerts.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run([str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def healthy(ops, db_url: str, tmp_path: Path) -> dict[str, str]:
    store = _store(tmp_path)
    assert run_ops("refresh", env=env(db_url, store)).returncode == 0
    result = run_ops("health", "--prometheus", env=env(db_url, store))
    assert result.returncode in (0, 1), result.stdout
    return samples(result.stdout)


def test_a_healthy_instance_raises_no_alert(ops, ops_db_url, tmp_path):
    promtool(tmp_path, series(healthy(ops, ops_db_url, tmp_path)), set())


def test_a_monitor_that_stopped_raises_ops_health_stale(ops, ops_db_url, tmp_path):
    promtool(tmp_path, series(healthy(ops, ops_db_url, tmp_path), stopped=True), {"OpsHealthStale"})


def test_a_database_down_raises_database_down_and_health_critical_only(tmp_path):
    store = local_store(tmp_path / "store")
    result = run_ops("health", "--prometheus", "--timeout", "5", env=env(DOWN_URL, store))
    assert result.returncode == 2 and "ops_database_up 0" in result.stdout
    promtool(tmp_path, series(samples(result.stdout)), {"OpsDatabaseDown", "OpsHealthCritical"})


def test_a_doctor_that_could_not_run_raises_doctor_check_failed(tmp_path):
    """Both textfiles as the monitor writes them while the database is down."""
    store = local_store(tmp_path / "store")
    health = run_ops("health", "--prometheus", "--timeout", "5", env=env(DOWN_URL, store))
    doctor = run_ops("doctor", "--prometheus", env=env(DOWN_URL, store))
    assert doctor.returncode == 3, doctor.stderr
    found = samples(doctor.stdout)
    assert float(found["ops_doctor_status"]) == 3 and len(found) > 40  # every series, whatever failed
    promtool(tmp_path, series(samples(health.stdout) | found),
             {"OpsDatabaseDown", "OpsHealthCritical", "OpsDoctorCheckFailed"})  # fmt: skip


def _health(db_url: str, tmp_path: Path, *options: str) -> dict[str, str]:
    result = run_ops("health", "--prometheus", *options, env=env(db_url, _store(tmp_path)))
    assert result.returncode in (0, 1, 2, 3), result.stderr
    return samples(result.stdout)


def _doctor(db_url: str, tmp_path: Path) -> dict[str, str]:
    result = run_ops("doctor", "--prometheus", env=env(db_url, _store(tmp_path)))
    assert result.returncode in (0, 1), result.stderr
    return samples(result.stdout)


def test_no_health_textfile_raises_health_missing(ops, ops_db_url, tmp_path):
    """the monitor never wrote ops.prom (its directory unwritable, its loop never started): only doctor's file"""
    promtool(tmp_path, series(_doctor(ops_db_url, tmp_path)), {"OpsHealthMissing"})


def test_a_schema_ops_has_not_built_raises_schema_not_ready(ops, empty_db_url, tmp_path):
    """a database with PostGIS and nothing else: neither ops nor Panoramax built it"""
    found = _health(empty_db_url, tmp_path)
    assert found["ops_schema_ready"] == "0.0" and found["ops_database_up"] == "1.0"
    promtool(tmp_path, series(found), {"OpsSchemaNotReady", "OpsHealthCritical"})


def test_a_job_ready_for_seven_hours_raises_queue_stuck_and_slow(ops, ops_db_url, ops_conn, tmp_path):
    assert run_ops("refresh", env=env(ops_db_url, _store(tmp_path))).returncode == 0
    ops_conn.execute("INSERT INTO job_queue (task, picture_to_delete_id, ts) "
                     "VALUES ('delete', gen_random_uuid(), now() - interval '7 hours')")  # fmt: skip
    found = _health(ops_db_url, tmp_path)
    waited = humanize_duration(float(found["ops_jobs_oldest_ready_age_seconds"]))
    promtool(tmp_path, series(found), {
        "OpsQueueStuck": [{"summary": f"The oldest ready job has waited {waited}"}],
        "OpsQueueSlow": [{"summary": f"The oldest ready job has waited {waited}"}],
        "OpsHealthCritical": [{}],
    })  # fmt: skip


def _failed_jobs(conn, count: int) -> None:
    for _ in range(count):
        conn.execute("INSERT INTO job_history (job_id, picture_to_delete_id, job_task, finished_at, error) "
                     "VALUES (gen_random_uuid(), gen_random_uuid(), 'delete', now(), 'permission denied')")  # fmt: skip


def test_eleven_jobs_given_up_within_an_hour_raise_failures_rising(ops, ops_db_url, ops_conn, tmp_path):
    assert run_ops("refresh", env=env(ops_db_url, _store(tmp_path))).returncode == 0
    before = _health(ops_db_url, tmp_path)
    _failed_jobs(ops_conn, 11)
    after = _health(ops_db_url, tmp_path)
    assert after['ops_jobs_failed_24h{task="delete"}'] == "11.0"
    summary = "More than 10 delete jobs given up in the last hour"
    promtool(tmp_path, series(before, minutes=75, then=(60, after)),
             {"OpsJobFailuresRising": [{"task": "delete", "summary": summary}]}, minutes=75)  # fmt: skip


def test_a_job_given_up_an_hour_ago_raises_jobs_failed(ops, ops_db_url, ops_conn, tmp_path):
    assert run_ops("refresh", env=env(ops_db_url, _store(tmp_path))).returncode == 0
    _failed_jobs(ops_conn, 2)
    found = _health(ops_db_url, tmp_path)
    summary = "2 delete jobs given up in the last 24 hours"
    promtool(tmp_path, series(found, minutes=70), {"OpsJobsFailed": [{"task": "delete", "summary": summary}]},
             minutes=70)  # fmt: skip


def test_a_map_not_refreshed_for_two_days_raises_refresh_overdue(ops, ops_db_url, ops_conn, tmp_path):
    ops_conn.execute("UPDATE ops_views SET refreshed_at = now() - interval '2 days'")
    found = _health(ops_db_url, tmp_path)
    age = humanize_duration(float(found["ops_refresh_age_seconds"]))
    promtool(tmp_path, series(found), {"OpsRefreshOverdue": [{"summary": f"The map has not been refreshed for {age}"}],
                                       "OpsHealthCritical": [{}]})  # fmt: skip


def test_a_missing_picture_folder_raises_storage_down(ops, ops_db_url, tmp_path):
    store = _store(tmp_path)
    assert run_ops("refresh", env=env(ops_db_url, store)).returncode == 0
    shutil.rmtree(store.root / "permanent")  # unmounted
    found = _health(ops_db_url, tmp_path)
    assert found['ops_storage_up{area="permanent"}'] == "0.0"
    promtool(tmp_path, series(found), {
        "OpsStorageDown": [{"area": "permanent", "summary": "The permanent picture storage is missing or does not answer"}],
        "OpsHealthCritical": [{}],
    })  # fmt: skip


def test_a_check_that_did_not_answer_in_time_raises_health_check_failing(ops, ops_db_url, ops_conn, tmp_path):
    """the job queue locked by another session: the queue check gets no reading within --timeout"""
    assert run_ops("refresh", env=env(ops_db_url, _store(tmp_path))).returncode == 0
    with ops_conn.transaction():
        ops_conn.execute("LOCK TABLE job_queue IN ACCESS EXCLUSIVE MODE")
        found = _health(ops_db_url, tmp_path, "--timeout", "2")
    failing = [m.split('"')[1] for m, v in found.items() if m.startswith("ops_check_up{") and v == "0.0"
               and found[m.replace("ops_check_up", "ops_check_status")] != "3.0"]  # fmt: skip
    assert failing, found
    summaries = [{"check": c, "summary": f"The {c} check of ops health got no reading"} for c in failing]
    promtool(tmp_path, series(found), {"OpsHealthCheckFailing": summaries, "OpsHealthCritical": [{}]})


def test_an_error_found_by_doctor_raises_doctor_errors(ops, ops_db_url, ops_conn, tmp_path):
    """the default account's token deleted (ACC002, an error): health stays quiet, doctor's file alerts"""
    ops_conn.execute("DELETE FROM tokens WHERE account_id IN (SELECT id FROM accounts WHERE is_default)")
    found = healthy(ops, ops_db_url, tmp_path) | _doctor(ops_db_url, tmp_path)
    assert float(found['ops_doctor_findings{code="ACC002",severity="error"}']) >= 1
    promtool(tmp_path, series(found), {"OpsDoctorErrors": [{"summary": "ops doctor found 1 error(s)"}]})


def test_a_doctor_that_stopped_two_days_ago_raises_doctor_not_run(ops, ops_db_url, tmp_path):
    """health still written every minute; doctor's file left as it was 52 hours ago"""
    found = healthy(ops, ops_db_url, tmp_path) | _doctor(ops_db_url, tmp_path)
    minutes = 52 * 60
    promtool(tmp_path, series(found, stopped=("ops_doctor_last_run_timestamp_seconds",), minutes=minutes),
             {"OpsDoctorNotRun"}, minutes=minutes)  # fmt: skip


def test_every_alert_has_a_case_that_raises_it():
    rules = {r["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]}
    text = Path(__file__).read_text()
    assert {name for name in rules if f'"{name}"' not in text} == set()
