"""Grafana dashboard JSON, its ConfigMap, and the Grafana-managed alert rule."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, missing_tool, run
from .metric_names import iter_panels, load_dashboard

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
ALERTING = sorted((DEPLOY / "grafana" / "provisioning" / "alerting").glob("*.yaml"))
RULES_FILE = DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
LINTER_CANDIDATES = (Path(sys.prefix) / "bin" / "dashboard-linter", Path.home() / "go" / "bin" / "dashboard-linter")


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_dashboard(request.param)


def test_dashboards_exist() -> None:
    assert DASHBOARDS


def test_unique_uids() -> None:
    uids = [load_dashboard(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    for uid in uids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{8,40}", uid), uid


def test_dashboard_model(dashboard: dict[str, Any]) -> None:
    assert dashboard["id"] is None, "provisioned dashboards must not carry a database id"
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_panel_ids_unique(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in iter_panels(dashboard["panels"])]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), ids


def test_grid_positions(dashboard: dict[str, Any]) -> None:
    boxes = []
    for panel in iter_panels(dashboard["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["y"] >= 0, panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, f"{panel['title']} exceeds 24 columns"
        boxes.append((panel["title"], grid))
    for (a, ga), (b, gb) in combinations(boxes, 2):
        overlap_x = ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
        overlap_y = ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]
        assert not (overlap_x and overlap_y), f"panels overlap: {a!r} and {b!r}"


def test_targets_and_datasources(dashboard: dict[str, Any]) -> None:
    for panel in iter_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no queries"
        refs = [t.get("refId") for t in panel["targets"]]
        assert all(refs) and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{panel['title']} {target.get('refId')}"
            assert target.get("datasource") == DATASOURCE, panel["title"]


def test_required_panels(dashboard: dict[str, Any]) -> None:
    panels = list(iter_panels(dashboard["panels"]))
    exprs = "\n".join(t["expr"] for p in panels for t in p.get("targets", []))
    by_title = {p["title"]: p for p in panels}

    stacked = by_title["Failures/s by category (stacked)"]
    assert stacked["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "by (failure_category)" in stacked["targets"][0]["expr"]
    assert "offset 1d" in exprs, "top categories now vs a day ago"
    assert "by (evidence)" in exprs, "classification evidence mix"
    assert "enrollment_dead_letters_total" in exprs, "dead-letter rate"
    assert "enrollment_consumer_lag_messages" in exprs, "consumer lag"
    assert "enrollment_input_messages_total" in exprs, "throughput"
    assert re.search(
        r"histogram_quantile\(0\.99,\s*sum by \(le\) \(rate\(enrollment_batch_duration_seconds_bucket",
        exprs,
    ), "p99 batch duration"


def test_dashboard_configmap(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in rendered.items():
        maps = [
            d
            for d in docs
            if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"].get("labels", {})
        ]
        assert len(maps) == 1, name
        cm = maps[0]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        for path in DASHBOARDS:
            assert json.loads(cm["data"][path.name]) == load_dashboard(path), name


# --- Grafana-managed alert rule ---------------------------------------------------------------


def _prometheus_failure_alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    group = next(g for g in rules["groups"] if g["name"] == "enrollment-classifier.failures")
    return [r for r in group["rules"] if "alert" in r]


def _normalise(expr: str) -> str:
    return " ".join(expr.split())


@pytest.fixture(params=ALERTING, ids=lambda p: p.name)
def alerting(request: pytest.FixtureRequest) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(request.param.read_text(encoding="utf-8"))
    return data


def test_alert_provisioning_structure(alerting: dict[str, Any]) -> None:
    assert alerting["apiVersion"] == 1
    uids = []
    for group in alerting["groups"]:
        for key in ("orgId", "name", "folder", "interval", "rules"):
            assert key in group, key
        for rule in group["rules"]:
            for key in ("uid", "title", "condition", "data", "for"):
                assert key in rule, f"{rule.get('uid')}: missing {key}"
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule["uid"])
            uids.append(rule["uid"])
            refs = {q["refId"]: q for q in rule["data"]}
            assert rule["condition"] in refs
            for query in rule["data"]:
                assert query["model"]["refId"] == query["refId"]
                if query["datasourceUid"] == "__expr__":
                    assert query["model"]["expression"] in refs, query["refId"]
                else:
                    assert query["model"]["expr"].strip()
                    assert "relativeTimeRange" in query
            # Grafana expands $VARS in labels (not in annotations): keep templates out of them.
            for value in rule.get("labels", {}).values():
                assert "$" not in value, f"{rule['uid']}: '$' in a label is env-expanded"
    assert len(uids) == len(set(uids))


def test_grafana_alerts_match_prometheus_rules(alerting: dict[str, Any]) -> None:
    """One source of truth: every failure alert has a Grafana twin with the same query."""
    twins = {r["title"]: r for g in alerting["groups"] for r in g["rules"]}
    prometheus = _prometheus_failure_alerts()
    assert set(twins) == {a["alert"] for a in prometheus}
    for alert in prometheus:
        rule = twins[alert["alert"]]
        query = next(q for q in rule["data"] if q["datasourceUid"] != "__expr__")
        assert _normalise(query["model"]["expr"]) == _normalise(alert["expr"]), alert["alert"]
        assert query["model"].get("instant") is True
        assert rule["for"] == alert["for"]
        assert rule.get("keepFiringFor") == alert.get("keep_firing_for"), alert["alert"]
        assert rule["labels"]["severity"] == alert["labels"]["severity"]
        assert rule["annotations"]["runbook_url"] == alert["annotations"]["runbook_url"]
        assert rule["annotations"]["summary"] == alert["annotations"]["summary"]
        assert "$value " not in rule["annotations"]["description"], "Grafana spells it $values.B"
        assert rule["noDataState"] == "OK", "no breaching series must not page as NoData"
        threshold = next(q for q in rule["data"] if q["model"].get("type") == "threshold")
        assert threshold["refId"] == rule["condition"]


def _dashboard_linter() -> str:
    found = shutil.which("dashboard-linter") or next(
        (str(p) for p in LINTER_CANDIDATES if p.is_file() and os.access(p, os.X_OK)), None
    )
    if not found:
        missing_tool("dashboard-linter (scripts/install-deploy-tools.sh builds it with Go)")
    return found


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_passes_grafana_dashboard_linter(path: Path) -> None:
    linter = _dashboard_linter()
    config = path.parent / ".lint"
    result = run([linter, "lint", "--strict", "-c", str(config), str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_categories_against_baseline_and_event_age(
    dashboard: dict[str, Any],
) -> None:
    exprs = "\n".join(t["expr"] for p in iter_panels(dashboard["panels"]) for t in p.get("targets", []))
    assert "category:enrollment_fresh_failures:expected1h" in exprs, "baseline per category"
    assert 'freshness="fresh"' in exprs and 'freshness="late"' in exprs
    assert "enrollment_event_age_seconds_bucket" in exprs, "event age"
    repeated = [p for p in iter_panels(dashboard["panels"]) if p.get("repeat") == "category"]
    assert repeated, "one baseline panel per category"
