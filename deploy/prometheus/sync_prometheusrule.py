#!/usr/bin/env python3
"""Generate the Prometheus Operator PrometheusRule from the plain Prometheus rule file.

deploy/prometheus/rules/enrollment-classifier.rules.yaml is the only hand-edited copy of the
alerting rules. kustomize cannot embed a file into a custom resource's spec, so this script
writes deploy/kubernetes/base/prometheusrule.yaml with the same groups under `.spec`.

    python deploy/prometheus/sync_prometheusrule.py          # rewrite the PrometheusRule
    python deploy/prometheus/sync_prometheusrule.py --check  # exit 1 if it is out of date

tests/deploy/test_prometheus_rules.py runs the --check comparison, so a rule edit without a
re-sync fails the test suite. Needs PyYAML only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
RULES_FILE = DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
PROMETHEUS_RULE_FILE = DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml"

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
    body: str = yaml.dump(
        build_prometheus_rule(rules),
        Dumper=_BlockDumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args(argv)
    wanted = render(load_rules())
    current = (
        PROMETHEUS_RULE_FILE.read_text(encoding="utf-8") if PROMETHEUS_RULE_FILE.exists() else ""
    )
    if args.check:
        if current != wanted:
            print(
                f"{PROMETHEUS_RULE_FILE} is out of date; run "
                "python deploy/prometheus/sync_prometheusrule.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if current != wanted:
        PROMETHEUS_RULE_FILE.write_text(wanted, encoding="utf-8")
        print(f"wrote {PROMETHEUS_RULE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
