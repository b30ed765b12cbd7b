"""The alerting rules (monitoring/ops-alerts.rules.yml) run by ``promtool test rules`` (Debian's prometheus
package, installed by ``make test``) on what ops really writes: the textfiles of ``ops health --prometheus``
and ``ops doctor --prometheus``, taken from real runs and replayed as series. Each situation raises exactly
the alerts the docs name for it, and no other: a healthy instance none, a database down OpsDatabaseDown and
OpsHealthCritical (never a schema, refresh or queue alert on values it could not read), a monitor that
stopped while node_exporter keeps serving its last file OpsHealthStale, a doctor that could not run
OpsDoctorCheckFailed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_ops
from tests.storage_helpers import env, local_store

RULES = REPO / "monitoring" / "ops-alerts.rules.yml"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make test installs Debian's prometheus)")
SAMPLE = re.compile(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$")
DOWN_URL = "postgresql://ops@127.0.0.1:1/nothing"  # nothing listens on port 1: the database is down
TIMESTAMPS = ("ops_health_last_run_timestamp_seconds", "ops_doctor_last_run_timestamp_seconds")
MINUTES = 40  # each case: 40 minutes of samples, one a minute, evaluated at the end


def samples(text: str) -> dict[str, str]:
    """The samples of a textfile (metric with labels -> value as written)."""
    return {m[1]: m[2] for line in text.splitlines() if (m := SAMPLE.match(line))}


def series(found: dict[str, str], *, stopped: bool = False) -> list[dict[str, str]]:
    """promtool input series: every sample constant, as node_exporter serves a file, except the run
    timestamps, which follow the clock (a file rewritten every minute) or stay at 0 (a monitor that stopped)."""
    out = []
    for metric, value in found.items():
        if metric in TIMESTAMPS:
            values = f"0x{MINUTES}" if stopped else f"0+60x{MINUTES}"
        else:
            values = f"{value}x{MINUTES}" if value != "NaN" else " ".join(["NaN"] * (MINUTES + 1))
        out.append({"series": metric, "values": values})
    return out


def _annotations(rule: dict) -> dict[str, str]:
    text = rule.get("annotations", {})
    assert not any("{{" in v for v in text.values()), f"{rule['alert']}: a templated alert needs its value here"
    return text


def promtool(tmp_path: Path, input_series: list[dict[str, str]], firing: set[str]) -> None:
    """Assert that at the end of the samples exactly ``firing`` fire, every other rule staying silent."""
    rules = [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]]
    cases = []
    for rule in rules:
        expected = []
        if rule["alert"] in firing:
            expected = [{"exp_labels": dict(rule.get("labels", {})), "exp_annotations": _annotations(rule)}]
        cases.append({"eval_time": f"{MINUTES}m", "alertname": rule["alert"], "exp_alerts": expected})
    assert firing <= {r["alert"] for r in rules}, firing
    test = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": cases}]}  # fmt: skip
    path = tmp_path / "ops-alerts.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run([str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def healthy(ops, db_url: str, tmp_path: Path) -> dict[str, str]:
    store = local_store(tmp_path / "store")
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
