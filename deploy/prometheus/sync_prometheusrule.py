#!/usr/bin/env python3
"""Keep every generated copy of the alerting rules in step with their sources.

Sources (hand-edited):
  deploy/prometheus/spike-alerting.yaml                 parameters of the failure-spike rules
  deploy/prometheus/rules/enrollment-classifier.rules.yaml   outside its GENERATED markers
Generated:
  the GENERATED section of the rules file               (deploy/prometheus/spike_rules.py)
  deploy/kubernetes/base/prometheusrule.yaml            the rules file's groups under .spec
  deploy/grafana/provisioning/alerting/enrollment-classifier-alerts.yaml
                                                        Grafana-managed twins of the failure alerts

    python deploy/prometheus/sync_prometheusrule.py          # rewrite what is out of date
    python deploy/prometheus/sync_prometheusrule.py --check  # exit 1 if anything is

tests/deploy runs the --check comparison, so an edit without a re-sync fails the suite.
Needs PyYAML only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grafana_alerts
import spike_rules

DEPLOY = Path(__file__).resolve().parent.parent
RULES_FILE = DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
PROMETHEUS_RULE_FILE = DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml"
GRAFANA_ALERTS_FILE = (
    DEPLOY / "grafana" / "provisioning" / "alerting" / "enrollment-classifier-alerts.yaml"
)
BEGIN = "# BEGIN GENERATED"
END = "# END GENERATED"

HEADER = """\
# GENERATED FILE - DO NOT EDIT.
# Source: deploy/prometheus/rules/enrollment-classifier.rules.yaml
# Regenerate: python deploy/prometheus/sync_prometheusrule.py
# kube-prometheus-stack only loads PrometheusRules whose labels match the Prometheus
# resource's ruleSelector (by default `release: <helm release name>`); adjust the `release`
# label in an overlay if your release is not called kube-prometheus-stack.
"""


class _BlockDumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type stubs
    """SafeDumper that writes multi-line strings as literal blocks (readable PromQL)."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def dump(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_BlockDumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )
    return text


def render_rules_text(current: str, params: dict[str, Any]) -> str:
    """The rules file with its GENERATED section rewritten from the parameters."""
    if BEGIN not in current or END not in current:
        raise ValueError(f"{RULES_FILE}: missing the {BEGIN} / {END} markers")
    head, rest = current.split(BEGIN, 1)
    marker_line, rest = rest.split("\n", 1)
    _, tail = rest.split(END, 1)
    body = dump(spike_rules.build_groups(params))
    indented = "".join(f"  {line}\n" if line else "\n" for line in body.splitlines())
    return f"{head}{BEGIN}{marker_line}\n{indented}{END}{tail}"


def load_rules(path: Path = RULES_FILE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict) or "groups" not in data:
        raise ValueError(f"{path}: expected a Prometheus rule file with top-level 'groups'")
    return data


def build_prometheus_rule(rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "enrollment-classifier",
            "labels": {
                "app.kubernetes.io/name": "enrollment-classifier",
                "app.kubernetes.io/component": "worker",
                "release": "kube-prometheus-stack",
            },
        },
        "spec": {"groups": rules["groups"]},
    }


def render(rules: dict[str, Any]) -> str:
    return HEADER + dump(build_prometheus_rule(rules))


def render_grafana(rules: dict[str, Any]) -> str:
    return grafana_alerts.HEADER + dump(grafana_alerts.provisioning(rules))


def wanted_files() -> dict[Path, str]:
    """Every generated file and the text it should have."""
    rules_text = render_rules_text(
        RULES_FILE.read_text(encoding="utf-8"), spike_rules.load_params()
    )
    rules = yaml.safe_load(rules_text)
    return {
        RULES_FILE: rules_text,
        PROMETHEUS_RULE_FILE: render(rules),
        GRAFANA_ALERTS_FILE: render_grafana(rules),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for path, wanted in wanted_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == wanted:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(wanted, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(DEPLOY.parent)) for p in stale)
        print(
            f"out of date: {names}; run python deploy/prometheus/sync_prometheusrule.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
