"""The alerting rules and the Grafana dashboard of monitoring/: valid (the rules' YAML shape as Prometheus
loads it, every expression parsed as PromQL by a real parser), and querying only metrics that
`ops health --prometheus` and `ops doctor --prometheus` emit."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import yaml

from tests.conftest import REPO
from tests.storage_helpers import env, local_store

RULES = REPO / "monitoring" / "ops-alerts.rules.yml"
DASHBOARD = REPO / "monitoring" / "grafana-dashboard.json"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
SEVERITIES = {"info", "warning", "critical"}


def metric_names(node: Any) -> set[str]:
    """Every metric a parsed PromQL expression selects."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        return {node.name} if node.name else set()
    found: set[str] = set()
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            found |= metric_names(child)
    for arg in getattr(node, "args", None) or []:
        found |= metric_names(arg)
    return found


def emitted(ops, db_url, tmp_path) -> set[str]:
    names: set[str] = set()
    store = local_store(tmp_path)
    for command in ("health", "doctor"):
        result = ops(command, "--prometheus", env=env(db_url, store))
        assert result.exit_code in (0, 1, 2), result.stderr
        names |= {line.split("{")[0].split()[0] for line in result.stdout.splitlines() if line and line[0] != "#"}
    assert {"ops_health_status", "ops_doctor_findings"} <= names
    return names


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    rules = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"]
        rules += group["rules"]
    return rules


def test_the_alerting_rules_are_valid_and_query_only_what_ops_emits(ops, db_url, tmp_path):
    metrics = emitted(ops, db_url, tmp_path)
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)) >= 8
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule["alert"]
        assert DURATION.match(rule.get("for", "0s")), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES and rule["annotations"]["summary"], rule["alert"]
        used = metric_names(promql_parser.parse(rule["expr"]))  # raises on invalid PromQL
        assert used and used <= metrics, (rule["alert"], used - metrics)
    wanted = {"ops_jobs_oldest_ready_age_seconds", "ops_jobs_failed_24h", "ops_refresh_age_seconds",
              "ops_storage_up", "ops_schema_ready", "ops_database_up", "ops_doctor_findings"}  # fmt: skip
    assert wanted <= set().union(*(metric_names(promql_parser.parse(r["expr"])) for r in rules))


def test_the_dashboard_queries_only_what_ops_emits_and_shows_each_family(ops, db_url, tmp_path):
    metrics = emitted(ops, db_url, tmp_path)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "label_values(ops_health_status, instance)" in json.dumps(variables["instance"]["query"])
    queried: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"] and set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
        for target in panel["targets"]:
            used = metric_names(promql_parser.parse(target["expr"]))
            assert used <= metrics, (panel["title"], used - metrics)
            queried |= used
    assert queried == metrics  # every family ops emits is on the dashboard
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_says_what_a_state_means_and_works_with_file_provisioning():
    """a critical 2 shown red and named, not a green number; no ${DS_...} input that only the import dialog
    fills; every query follows the instance selector; tables are instant; the provisioning file is shipped"""
    dashboard = json.loads(DASHBOARD.read_text())
    assert "__inputs" not in dashboard and "DS_PROMETHEUS" not in DASHBOARD.read_text()
    panels = {p["title"]: p for p in dashboard["panels"]}
    for panel in panels.values():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for name in metric_names(promql_parser.parse(target["expr"])):
                assert f'{name}{{instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
            if panel["type"] == "table":
                assert target["instant"] is True and target["format"] == "table", panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit") or panel["fieldConfig"]["overrides"], panel["title"]

    def texts(mappings: list[dict]) -> dict[str, tuple[str, str]]:
        found = {}
        for m in mappings:
            if m["type"] == "value":
                found |= {k: (v["text"], v["color"]) for k, v in m["options"].items()}
        return found

    health = panels["Health"]["fieldConfig"]["defaults"]
    assert texts(health["mappings"])["2"] == ("CRITICAL", "red") and texts(health["mappings"])["0"][1] == "green"
    assert [s["color"] for s in health["thresholds"]["steps"]][:3] == ["green", "orange", "red"]
    assert any(m["type"] == "special" and m["options"]["match"] == "nan" for m in health["mappings"])  # db down
    for title in ("Database up", "Schema ready", "Storage areas up"):
        assert texts(panels[title]["fieldConfig"]["defaults"]["mappings"])["0"][1] == "red", title
    checks = panels["Checks (0 ok, 1 warning, 2 critical, 3 not checked)"]["fieldConfig"]["overrides"]
    status_column = next(o for o in checks if o["matcher"]["options"] == "Value #A")
    assert texts(status_column["properties"][0]["value"])["2"] == ("CRITICAL", "red")
    for title in ("Oldest ready job", "Time since the map's refresh"):
        assert panels[title]["fieldConfig"]["defaults"]["unit"] == "s"

    provisioning = yaml.safe_load((DASHBOARD.parent / "grafana-provisioning.yml").read_text())
    provider = provisioning["providers"][0]
    assert provisioning["apiVersion"] == 1 and provider["type"] == "file" and provider["options"]["path"]
