"""Metric names the deploy/ artefacts may reference, and helpers to find the ones they do.

`known_metric_names()` is the single switch point. It returns the sample names of the worker's
REAL exposition: `worker.stream.metrics.WorkerMetrics` declared on a fresh registry (no broker
needed), with one consumer-lag report applied so that the labelled lag gauge has a sample,
rendered by `prometheus_client.generate_latest()` (what GET /metrics serves) and parsed by
`prometheus_client.parser`. `worker_exposition()` returns that text, e.g. for
`promtool check metrics` (tests/integration/test_prometheus_e2e.py).

WORKER_METRICS is the hand-written contract (base name -> type) the README documents;
`contract_metric_names()` is the names it implies, and test_metric_names.py compares them with
what the worker really exposes. PROMETHEUS_SYNTHETIC_NAMES (up, ...) are allowed separately.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

# The worker's metric contract: base name -> Prometheus type.
# Counter base names carry no `_total` (prometheus_client appends it in the exposition).
WORKER_METRICS: dict[str, str] = {
    "enrollment_failures": "counter",
    # issue 14/17 contract (/work/notes/metrics-contract.md): pre-created at zero, what the
    # alert rules read
    "enrollment_category_failures": "counter",
    "enrollment_failure_details": "counter",
    "enrollment_skipped_records": "counter",
    "enrollment_event_age_seconds": "histogram",
    "enrollment_events": "counter",
    "enrollment_dead_letters": "counter",
    "enrollment_classifications": "counter",
    "enrollment_input_messages": "counter",
    "enrollment_transactions": "counter",
    "enrollment_kafka_errors": "counter",
    "enrollment_backpressure_waits": "counter",
    "enrollment_batch_duration_seconds": "histogram",
    "enrollment_batch_size": "histogram",
    "enrollment_consumer_lag_messages": "gauge",
    "enrollment_worker_ready": "gauge",
    "enrollment_last_progress_timestamp_seconds": "gauge",
    "enrollment_worker_build_info": "gauge",
}

# Series Prometheus itself creates for every target or rule; not exported by the worker.
PROMETHEUS_SYNTHETIC_NAMES: frozenset[str] = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

GRAPH_FAILURE_CATEGORIES: tuple[str, ...] = (
    "unknown",
    "authentication",
    "authorization",
    "accountValidation",
    "userValidation",
    "deviceNotSupported",
    "inMaintenance",
    "badRequest",
    "featureNotSupported",
    "enrollmentRestrictionsEnforced",
    "clientDisconnected",
    "userAbandonment",
)


def _exposition_names(base: str, kind: str) -> set[str]:
    if kind == "counter":
        # prometheus_client also exposes <name>_created unless disabled.
        return {f"{base}_total", f"{base}_created"}
    if kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
    if kind == "summary":
        return {base, f"{base}_sum", f"{base}_count", f"{base}_created"}
    return {base}


def contract_metric_names() -> frozenset[str]:
    """Every sample name the hand-written contract (WORKER_METRICS) implies."""
    names: set[str] = set()
    for base, kind in WORKER_METRICS.items():
        names |= _exposition_names(base, kind)
    return frozenset(names)


# One librdkafka statistics report with a single partition: the consumer-lag gauge is built
# from these reports and exposes no sample (only its # TYPE line) until one arrives.
LAG_STATS_SAMPLE = '{"topics":{"t":{"partitions":{"0":{"ls_offset":2,"app_offset":1}}}}}'


@functools.cache
def worker_exposition() -> str:
    """What the worker's GET /metrics serves, from its real metric declarations (no broker)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from worker.stream.metrics import WorkerMetrics

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.lag.update(LAG_STATS_SAMPLE)
    return generate_latest(registry).decode()


def sample_names(text: str) -> frozenset[str]:
    """Names of the samples in a text exposition, as prometheus_client's parser reads them."""
    from prometheus_client.parser import text_string_to_metric_families

    return frozenset(
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    )


def known_metric_names() -> frozenset[str]:
    """Every sample name the worker exposes on /metrics (taken from its real exposition)."""
    return sample_names(worker_exposition())


_SAMPLE_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{|\s)")
_TYPE_LINE = re.compile(r"^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+)")


def parse_exposition_names(text: str) -> frozenset[str]:
    """Sample names in a Prometheus text exposition (e.g. the body of GET /metrics).

    Families declared by `# TYPE` but without samples yet (a labelled gauge before its first
    observation, e.g. consumer lag before partitions are assigned) count too.
    """
    names: set[str] = set()
    for line in text.splitlines():
        if not line:
            continue
        declared = _TYPE_LINE.match(line)
        if declared:
            name, kind = declared.groups()
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {name, f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE_LINE.match(line)
        if match:
            names.add(match.group(1))
    return frozenset(names)


# --- PromQL scanning ----------------------------------------------------------------------

_PROMQL_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{[^}]*\})?\s*,)?"
)


def metric_names_in_expr(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (Grafana variables allowed).

    A pragmatic scanner, not a parser: strings, label matchers, ranges, durations and grouping
    clauses are removed; what remains and is not a keyword, a function call or part of a number
    is a metric name. test_metric_names.py pins its behaviour on tricky cases.
    """
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VAR.sub(" ", text)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        token = match.group(0)
        before = text[match.start() - 1] if match.start() > 0 else " "
        after = text[match.end() :].lstrip()
        if before.isdigit() or before == ".":
            continue  # exponent of a number (1e3) or unit of a duration (5m)
        if token.lower() in _PROMQL_KEYWORDS:
            continue
        if after.startswith("("):
            continue  # function or aggregation
        names.add(token)
    return names


def metric_names_in_template_query(query: str) -> set[str]:
    """Metric names in a Grafana template-variable query (label_values(...) or PromQL)."""
    if query.strip().startswith("label_values("):
        match = _LABEL_VALUES.match(query)
        return {match.group(1)} if match and match.group(1) else set()
    if query.strip().startswith(("label_names(", "metrics(")):
        return set()
    inner = re.match(r"^\s*query_result\((.*)\)\s*$", query, re.S)
    return metric_names_in_expr(inner.group(1) if inner else query)


# --- Expression collectors ----------------------------------------------------------------


def rule_exprs(groups: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(rule name, expr) for every rule of Prometheus rule groups."""
    for group in groups:
        for rule in group.get("rules", []):
            yield rule.get("alert") or rule.get("record") or "?", rule["expr"]


def prometheus_rule_file_exprs(path: Path) -> list[tuple[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    groups = data["spec"]["groups"] if data.get("kind") == "PrometheusRule" else data["groups"]
    return list(rule_exprs(groups))


def iter_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                found.append((f"panel {panel.get('id')} {target.get('refId')}", target["expr"]))
    return found


def dashboard_template_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            if isinstance(query, dict):
                query = query.get("query", "")
            found.append((f"variable {var.get('name')}", query or ""))
    return found


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def grafana_alert_exprs(path: Path) -> list[tuple[str, str]]:
    """PromQL of every Prometheus query in a Grafana alerting provisioning file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = []
    for group in data.get("groups", []):
        for rule in group.get("rules", []):
            for query in rule.get("data", []):
                if query.get("datasourceUid") == "__expr__":
                    continue
                found.append((f"{rule['uid']} {query['refId']}", query["model"]["expr"]))
    return found
