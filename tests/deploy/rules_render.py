"""Render the alerting rules with short windows, for an end-to-end run against a real Prometheus.

The production rules use windows of minutes and hours ([5m], [1h] offset 5m, for: 10m). An
end-to-end test cannot wait that long, so `short_window_rules()` divides every duration in a
range selector, a subquery, an `offset` and a rule's `for:`/`keep_firing_for:` by a factor
(60 by default: a minute becomes a second, an hour a minute). Thresholds are per-second rates
and are left alone, so the same synthetic traffic crosses them at the same rates.

`render_prometheus_config()` fills tests/deploy/prometheus-e2e.yml.tmpl: a Prometheus that
scrapes one worker on 127.0.0.1 every second and loads the rendered rules.

Instant selectors look back `--query.lookback-delta` (5m by default) for their last sample;
EnrollmentFailureCategorySpike uses one (`... offset 1h`) to tell new categories from old, so
the end-to-end Prometheus must shorten that too: `prometheus_command()` passes the scaled value.

Example (what an end-to-end test would do):

    rules = write_short_window_rules(tmp_path / "rules.yaml")
    config = tmp_path / "prometheus.yml"
    config.write_text(render_prometheus_config("127.0.0.1:9108", rules))
    argv = prometheus_command(config, tmp_path / "tsdb", listen="127.0.0.1:19090")
    # subprocess.Popen(argv) ... poll http://127.0.0.1:19090/api/v1/alerts ... terminate()
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from string import Template
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "deploy" / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
PROMETHEUS_TEMPLATE = Path(__file__).with_name("prometheus-e2e.yml.tmpl")

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|[smhdwy])")
# [5m]  [1h:5m]  [1h:]   and   offset 5m   offset -5m
_RANGE = re.compile(r"\[\s*([0-9a-z]+)\s*(?::\s*([0-9a-z]*)\s*)?\]")
_OFFSET = re.compile(r"(\boffset\s+)(-?)([0-9a-z]+)")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as 5m, 1h30m or 250ms."""
    if not _DURATION.match(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Compact Prometheus duration for a whole number of seconds."""
    whole = round(seconds)
    if whole <= 0:
        raise ValueError("duration must be positive")
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def scale_duration(text: str, factor: float, minimum_seconds: float = 1) -> str:
    return format_duration(max(parse_duration(text) / factor, minimum_seconds))


def shorten_expr(expr: str, factor: float = 60, minimum_seconds: float = 1) -> str:
    """Divide every range, subquery and offset duration in a PromQL expression by factor."""

    def _range(match: re.Match[str]) -> str:
        window = scale_duration(match.group(1), factor, minimum_seconds)
        if match.group(2) is None:
            return f"[{window}]"
        step = match.group(2)
        step = scale_duration(step, factor, minimum_seconds) if step else ""
        return f"[{window}:{step}]"

    def _offset(match: re.Match[str]) -> str:
        return (
            match.group(1)
            + match.group(2)
            + scale_duration(match.group(3), factor, minimum_seconds)
        )

    return _OFFSET.sub(_offset, _RANGE.sub(_range, expr))


def short_window_rules(
    rules: dict[str, Any] | None = None, factor: float = 60, minimum_seconds: float = 1
) -> dict[str, Any]:
    """A copy of the rule groups with every window divided by factor."""
    source = rules if rules is not None else yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    rendered = copy.deepcopy(source)
    for group in rendered["groups"]:
        if "interval" in group:
            group["interval"] = scale_duration(group["interval"], factor, minimum_seconds)
        for rule in group["rules"]:
            rule["expr"] = shorten_expr(rule["expr"], factor, minimum_seconds)
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = scale_duration(rule[key], factor, minimum_seconds)
    return rendered


def write_short_window_rules(destination: Path, factor: float = 60) -> Path:
    destination.write_text(
        yaml.safe_dump(short_window_rules(factor=factor), sort_keys=False), encoding="utf-8"
    )
    return destination


def render_prometheus_config(
    target: str,
    rule_file: Path,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> str:
    """prometheus.yml scraping `target` (host:port on 127.0.0.1) with the given rule file."""
    host = target.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        raise ValueError("end-to-end Prometheus may only scrape the loopback interface")
    template = Template(PROMETHEUS_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        target=target,
        rule_file=str(rule_file),
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
    )


def prometheus_command(
    config_file: Path,
    storage_path: Path,
    listen: str = "127.0.0.1:19090",
    factor: float = 60,
    binary: str = "prometheus",
) -> list[str]:
    """argv for a throwaway Prometheus server that evaluates the short-window rules."""
    if not listen.startswith(("127.0.0.1:", "localhost:", "[::1]:")):
        raise ValueError("end-to-end Prometheus must listen on the loopback interface")
    return [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={storage_path}",
        f"--web.listen-address={listen}",
        f"--query.lookback-delta={scale_duration('5m', factor)}",
        "--storage.tsdb.retention.time=1h",
    ]
