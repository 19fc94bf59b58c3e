"""Every metric (and label value) referenced in deploy/ exists in the worker's contract, and
every PromQL expression in the dashboard and the Grafana alert rules parses.

To check against the real worker later, change only known_metric_names() in metric_names.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from worker.classify.catalog import DETAILS

from .conftest import DEPLOY, run
from .metric_names import (
    GRAPH_FAILURE_CATEGORIES,
    PROMETHEUS_SYNTHETIC_NAMES,
    WORKER_METRICS,
    dashboard_exprs,
    dashboard_template_queries,
    grafana_alert_exprs,
    known_metric_names,
    load_dashboard,
    metric_names_in_expr,
    metric_names_in_template_query,
    parse_exposition_names,
    prometheus_rule_file_exprs,
)

RULES_FILE = DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
PROMETHEUS_RULE = DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
GRAFANA_ALERTS = sorted((DEPLOY / "grafana" / "provisioning" / "alerting").glob("*.yaml"))

# Label values the worker's contract allows, per label.
ALLOWED_LABEL_VALUES: dict[str, set[str]] = {
    "failure_category": set(GRAPH_FAILURE_CATEGORIES),
    "outcome": {"classified", "dead_lettered", "skipped_success"},
    "result": {"committed", "aborted"},
    "kind": {"retriable", "abortable", "fatal"},
    "job": {"enrollment-classifier"},
    "freshness": {"fresh", "late"},
    "reason": {"success", "in_progress", "not_enrollment"},
    "shape": {"graph", "log_row", "flat", "export_row", "other"},
    "detail_reason": {"none", *(d.name for d in DETAILS)},
}

# Grafana macros, replaced by a plausible value before promtool parses an expression.
GRAFANA_MACROS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "5m",
    "${__interval}": "1m",
    "${__range}": "1h",
    "$job": "enrollment-classifier",
    "$instance": ".+",
    "$category": "unknown",
}


def all_referenced_exprs() -> list[tuple[str, str]]:
    exprs: list[tuple[str, str]] = []
    for path in (RULES_FILE, PROMETHEUS_RULE):
        exprs += [(f"{path.name}: {n}", e) for n, e in prometheus_rule_file_exprs(path)]
    for path in DASHBOARDS:
        exprs += [(f"{path.name}: {n}", e) for n, e in dashboard_exprs(load_dashboard(path))]
    for path in GRAFANA_ALERTS:
        exprs += [(f"{path.name}: {n}", e) for n, e in grafana_alert_exprs(path)]
    return exprs


# --- the scanner itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (le) (rate(a_bucket{x="y",z=~"w|v"}[5m]))', {"a_bucket"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("a_total / on (job) group_left (version) b_info", {"a_total", "b_info"}),
        ("rate(a[1h] offset 5m) > 3 * b and c unless d or e", {"a", "b", "c", "d", "e"}),
        ("time() - ts_seconds > 1e3 and inf_metric > Inf", {"ts_seconds", "inf_metric"}),
        ("avg_over_time(sum(rate(m[5m]))[1h:5m])", {"m"}),
        ('absent(up{job="enrollment-classifier"}) or x{l="by (x) and y"}', {"up", "x"}),
        ("count by (version, classifier_version) (build_info)", {"build_info"}),
        ("sum without (instance) (q) > bool 0", {"q"}),
    ],
)
def test_metric_names_in_expr(expr: str, names: set[str]) -> None:
    assert metric_names_in_expr(expr) == names


def test_template_query_names() -> None:
    assert metric_names_in_template_query("label_values(up{job='x'}, instance)") == {"up"}
    assert metric_names_in_template_query("label_values(instance)") == set()
    assert metric_names_in_template_query("query_result(topk(3, m_total))") == {"m_total"}


def test_known_names_match_prometheus_client_exposition() -> None:
    """known_metric_names() follows prometheus_client's naming (_total, _bucket, _created)."""
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    makers = {
        "counter": prometheus_client.Counter,
        "gauge": prometheus_client.Gauge,
        "histogram": prometheus_client.Histogram,
    }
    for base, kind in WORKER_METRICS.items():
        makers[kind](base, f"{base} ({kind})", registry=registry)
    exposed = parse_exposition_names(prometheus_client.generate_latest(registry).decode())
    assert exposed == known_metric_names()


def test_parse_exposition_counts_declared_families_without_samples() -> None:
    text = (
        "# HELP lag_messages Lag.\n# TYPE lag_messages gauge\n"
        "# TYPE d_seconds histogram\n"
        'c_total{kind="x"} 1.0\n'
    )
    assert parse_exposition_names(text) == {
        "lag_messages",
        "d_seconds_bucket",
        "d_seconds_sum",
        "d_seconds_count",
        "c_total",
    }


def test_contract_metrics_present() -> None:
    names = known_metric_names()
    for required in (
        "enrollment_failures_total",
        "enrollment_category_failures_total",
        "enrollment_failure_details_total",
        "enrollment_skipped_records_total",
        "enrollment_event_age_seconds_bucket",
        "enrollment_events_total",
        "enrollment_dead_letters_total",
        "enrollment_classifications_total",
        "enrollment_input_messages_total",
        "enrollment_batch_duration_seconds_bucket",
        "enrollment_batch_size_count",
        "enrollment_transactions_total",
        "enrollment_kafka_errors_total",
        "enrollment_consumer_lag_messages",
        "enrollment_worker_ready",
        "enrollment_last_progress_timestamp_seconds",
        "enrollment_worker_build_info",
    ):
        assert required in names


# --- what deploy/ references ----------------------------------------------------------------


def recorded_names() -> set[str]:
    """Series the rules file records (recording rules); rules and dashboards may read them."""
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return {r["record"] for g in data["groups"] for r in g["rules"] if "record" in r}


def test_recording_rules_read_worker_metrics_or_earlier_records() -> None:
    recorded = recorded_names()
    allowed = known_metric_names() | recorded
    for name, expr in prometheus_rule_file_exprs(RULES_FILE):
        if name in recorded:
            assert metric_names_in_expr(expr) <= allowed, name


def test_every_referenced_metric_is_known() -> None:
    allowed = known_metric_names() | PROMETHEUS_SYNTHETIC_NAMES | recorded_names()
    exprs = all_referenced_exprs()
    assert len(exprs) > 20, "expected the rules, dashboard and Grafana alerts to be scanned"
    unknown = {
        (where, name)
        for where, expr in exprs
        for name in metric_names_in_expr(expr)
        if name not in allowed
    }
    assert not unknown, f"metrics not exported by the worker: {sorted(unknown)}"
    for path in DASHBOARDS:
        for where, query in dashboard_template_queries(load_dashboard(path)):
            assert metric_names_in_template_query(query) <= allowed, (path.name, where)


def test_each_source_references_worker_metrics() -> None:
    worker = known_metric_names()
    for path in (RULES_FILE, PROMETHEUS_RULE, *DASHBOARDS, *GRAFANA_ALERTS):
        exprs = [e for w, e in all_referenced_exprs() if w.startswith(f"{path.name}:")]
        used = set().union(*(metric_names_in_expr(e) for e in exprs)) if exprs else set()
        assert used & worker, f"{path.name} references no worker metric"


def test_dashboard_covers_the_contract() -> None:
    """The dashboard shows every metric family of the contract at least once."""
    used: set[str] = set()
    for path in DASHBOARDS:
        for _, expr in dashboard_exprs(load_dashboard(path)):
            used |= metric_names_in_expr(expr)
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    assert set(WORKER_METRICS) <= families, sorted(set(WORKER_METRICS) - families)


_MATCHER = re.compile(r'\b([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def test_label_values_are_in_the_contract() -> None:
    for where, expr in all_referenced_exprs():
        for label, op, value in _MATCHER.findall(expr):
            if label not in ALLOWED_LABEL_VALUES:
                continue
            values = value.split("|") if op in ("=~", "!~") else [value]
            for v in values:
                if v.startswith("$"):
                    continue  # a Grafana template variable, chosen from label_values()
                assert v in ALLOWED_LABEL_VALUES[label], f"{where}: {label}{op}{value!r}"


def test_dashboard_and_grafana_exprs_parse(promtool: str, tmp_path: Path) -> None:
    """Wrap every dashboard / Grafana alert expression into a recording rule; promtool parses."""
    rules = []
    for index, (where, original) in enumerate(all_referenced_exprs()):
        expr = original
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr!r}"
        rules.append({"record": f"deploy_check:expr_{index}", "expr": expr})
    path = tmp_path / "wrapped.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "wrapped", "rules": rules}]}))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
