"""Grafana-managed twins of the failure alerts, derived from the Prometheus rules file.

One Grafana rule per alert of the `enrollment-classifier.failures` group: query A is the
alert's PromQL (instant), B reduces it to the last value, C fires when B > 0 (every failure
alert returns only series that breach, with a positive value). `for`, `keep_firing_for`
(Grafana's `keepFiringFor`), labels and annotations are the Prometheus rule's, with `$value`
spelled the Grafana way ($values.B.Value). The alerts read the recording rules of
`enrollment-classifier.baselines`, so the Prometheus that Grafana queries must load the rules
file (or the PrometheusRule) too.
"""

from __future__ import annotations

import re
from typing import Any

HEADER = """\
# GENERATED FILE - DO NOT EDIT.
# Source: deploy/prometheus/rules/enrollment-classifier.rules.yaml
#         (group enrollment-classifier.failures)
# Regenerate: python deploy/prometheus/sync_prometheusrule.py
# Grafana-managed copies of the failure alerts, for teams that alert from Grafana instead of
# Alertmanager. Load with Grafana file provisioning (/etc/grafana/provisioning/alerting/) or,
# with the grafana Helm chart, from a ConfigMap labelled `grafana_alert` (sidecar.alerts).
# The queries read the recording rules of the Prometheus rules file: Prometheus must load it.
# datasourceUid "prometheus" is the uid deploy/grafana/provisioning/datasources/prometheus.yaml
# gives the data source. Grafana expands $NAME in labels: keep `$` out of them.
"""
FAILURE_GROUP = "enrollment-classifier.failures"
_VALUE = re.compile(r"\{\{\s*\$value\s*\|\s*printf\s+(\"[^\"]*\")\s*\}\}")


def uid(alert: str) -> str:
    words = re.findall(r"[A-Z][a-z]*", alert)
    return "-".join(w.lower() for w in words)[:40]


def grafana_template(text: str) -> str:
    """`{{ $value | printf "%.1f" }}` becomes `{{ printf "%.1f" $values.B.Value }}`."""
    return _VALUE.sub(lambda m: "{{ printf " + m.group(1) + " $values.B.Value }}", text)


def _lookback_s(expr: str) -> int:
    """Seconds the query looks back (largest range plus offset), for relativeTimeRange."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    found = [int(n) * units[u] for n, u in re.findall(r"(\d+)([smhdw])\b", expr)]
    return max([600, *found])


def rule(alert: dict[str, Any], interval: str) -> dict[str, Any]:
    del interval
    return {
        "uid": uid(alert["alert"]),
        "title": alert["alert"],
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": _lookback_s(alert["expr"]), "to": 0},
                "datasourceUid": "prometheus",
                "model": {
                    "refId": "A",
                    "datasource": {"type": "prometheus", "uid": "prometheus"},
                    "instant": True,
                    "range": False,
                    "intervalMs": 60000,
                    "maxDataPoints": 43200,
                    "expr": alert["expr"],
                },
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "B",
                    "type": "reduce",
                    "expression": "A",
                    "reducer": "last",
                    "settings": {"mode": "dropNN"},
                },
            },
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": "gt", "params": [0]}}],
                },
            },
        ],
        # The query returns only the breaching series: "no data" is the healthy state.
        "noDataState": "OK",
        "execErrState": "Error",
        "for": alert["for"],
        **({"keepFiringFor": alert["keep_firing_for"]} if "keep_firing_for" in alert else {}),
        "labels": {**alert.get("labels", {}), "team": "endpoint-management"},
        "annotations": {k: grafana_template(v) for k, v in alert["annotations"].items()},
        "isPaused": False,
    }


def provisioning(rules: dict[str, Any]) -> dict[str, Any]:
    group = next(g for g in rules["groups"] if g["name"] == FAILURE_GROUP)
    interval = group.get("interval", "1m")
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": "enrollment-classifier",
                "folder": "Enrollment classifier",
                "interval": interval,
                "rules": [rule(a, interval) for a in group["rules"] if "alert" in a],
            }
        ],
    }
