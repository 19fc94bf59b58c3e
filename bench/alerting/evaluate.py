"""Evaluate a Prometheus rules file over backfilled history, as the rule manager would.

Recording rules are evaluated by the server and backfilled one layer at a time (a rule that
reads another rule's output goes into a later layer: it can only read what the server already
holds). The server runs with a lookback delta just under the evaluation interval, which stands
in for the staleness markers Prometheus writes when a scrape fails or a recorded series ends
(backfilled blocks cannot carry them). Alerting rules are then run as
range queries at every evaluation step; `for:` is applied the way Prometheus applies it: an
alert becomes pending at the first step its series is returned, fires at the first step at
least `for` later, and resolves at the first step the series is missing; with
`keep_firing_for`, a firing alert whose series goes missing stays firing until that long after
the first missing step, and a series that returns before then continues the same episode.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from bench.alerting.promserver import PrometheusServer, backfill_openmetrics, move_blocks

MAX_STEPS = 10_000  # Prometheus refuses range queries over 11,000 points per series
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_s(text: str | None) -> float:
    if not text:
        return 0.0
    parts = re.findall(r"(\d+)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class Firing:
    """One firing episode of one alert series."""

    alert: str
    labels: tuple[tuple[str, str], ...]
    pending_at: int
    fired_at: int
    resolved_at: int  # first step it was gone (or the end of the range)

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


def load_groups(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    groups: list[dict[str, Any]] = data["groups"]
    return groups


def recording_layers(groups: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Recording rules split into layers; a layer reads only raw series and earlier layers."""
    rules = [r for g in groups for r in g["rules"] if "record" in r]
    names = {r["record"] for r in rules}
    layer_of: dict[str, int] = {}
    for _ in range(len(rules) + 1):
        for rule in rules:
            used = {
                n for n in names if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", rule["expr"])
            }
            if used <= set(layer_of):
                layer_of[rule["record"]] = 1 + max((layer_of[n] for n in used), default=-1)
    missing = names - set(layer_of)
    if missing:
        raise ValueError(f"recording rules with a dependency cycle: {sorted(missing)}")
    depth = 1 + max(layer_of.values(), default=-1)
    return [[r for r in rules if layer_of[r["record"]] == level] for level in range(depth)]


def _om_value(value: str) -> str:
    return {"inf": "+Inf", "+inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}.get(value.lower(), value)


def _write_recorded(
    server: PrometheusServer,
    layer: list[dict[str, Any]],
    out: TextIO,
    *,
    span: tuple[int, int],
    step: int,
) -> None:
    """Evaluate each rule at every step (range queries) and write what it would record."""
    for rule in layer:
        name, extra = rule["record"], {k: str(v) for k, v in (rule.get("labels") or {}).items()}
        out.write(f"# TYPE {name} gauge\n")
        series: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for chunk_start, chunk_end in _chunks(*span, step):
            for result in server.query_range(rule["expr"], chunk_start, chunk_end, step):
                labels = {k: v for k, v in result["metric"].items() if k != "__name__"}
                key = tuple(sorted({**labels, **extra}.items()))
                lines = series.setdefault(key, [])
                lines += [f"{_om_value(v)} {int(float(t))}\n" for t, v in result["values"]]
        for key, lines in series.items():
            inner = ",".join(f'{k}="{v}"' for k, v in key)
            prefix = f"{name}{{{inner}}} "
            out.writelines(prefix + line for line in lines)


def backfill_recording_rules(
    server: PrometheusServer, groups: list[dict[str, Any]], start: int, end: int, step: int
) -> int:
    """Backfill every recording rule over [start, end]; returns the number of layers.

    Each layer is evaluated by the running server with range queries at the evaluation steps
    (what the rule manager computes at each evaluation), written as OpenMetrics and loaded with
    `promtool tsdb create-blocks-from openmetrics`; the server restarts to see the new blocks.
    (Prometheus 2.42's `create-blocks-from rules` writes one block per rule per two hours,
    thousands for a month, which the server then spends minutes compacting.)
    """
    layers = recording_layers(groups)
    for index, layer in enumerate(layers):
        with tempfile.TemporaryDirectory(dir=server.tsdb.parent) as scratch:
            source = Path(scratch) / f"layer{index}.om"
            with source.open("w", encoding="utf-8") as out:
                _write_recorded(server, layer, out, span=(start, end), step=step)
                out.write("# EOF\n")
            blocks = Path(scratch) / "blocks"
            backfill_openmetrics(source, blocks)
            server.stop()
            move_blocks(blocks, server.tsdb)
            server.start()
    return len(layers)


def _chunks(start: int, end: int, step: int) -> Iterator[tuple[int, int]]:
    chunk = start
    while chunk <= end:
        chunk_end = min(end, chunk + (MAX_STEPS - 1) * step)
        yield chunk, chunk_end
        chunk = chunk_end + step


def _present_steps(
    server: PrometheusServer, expr: str, start: int, end: int, step: int
) -> dict[tuple[tuple[str, str], ...], set[int]]:
    present: dict[tuple[tuple[str, str], ...], set[int]] = {}
    for chunk, chunk_end in _chunks(start, end, step):
        for series in server.query_range(expr, chunk, chunk_end, step):
            labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__"))
            present.setdefault(labels, set()).update(int(float(t)) for t, _ in series["values"])
    return present


def _runs(steps: set[int], step: int) -> list[tuple[int, int]]:
    """Consecutive evaluation steps as (first, last) pairs."""
    runs: list[tuple[int, int]] = []
    for t in sorted(steps):
        if runs and t == runs[-1][1] + step:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def _episodes(
    alert: str,
    labels: tuple[tuple[str, str], ...],
    steps: set[int],
    *,
    step: int,
    hold_s: float,
    end: int,
    keep_s: float = 0.0,
) -> list[Firing]:
    found: list[Firing] = []
    hold_steps, keep_steps = int(-(-hold_s // step)), int(-(-keep_s // step))
    firing: tuple[int, int] | None = None  # (pending_at, fired_at) of the open episode
    resolves_at = 0
    for first, last in _runs(steps, step):
        if firing is not None and first <= resolves_at:
            # back before keep_firing_for ran out (a present series never resolves): the
            # same firing episode
            resolves_at = last + step + keep_steps * step
            continue
        if firing is not None:
            found.append(Firing(alert, labels, *firing, min(resolves_at, end)))
            firing = None
        # fires at the first evaluation at least `for` after it became pending
        fired = first + hold_steps * step
        if fired <= last:
            firing, resolves_at = (first, fired), last + step + keep_steps * step
    if firing is not None:
        found.append(Firing(alert, labels, *firing, min(resolves_at, end)))
    return found


def evaluate_alerts(
    server: PrometheusServer,
    groups: list[dict[str, Any]],
    *,
    span: tuple[int, int],
    step: int,
    skip_groups: frozenset[str] = frozenset(),
) -> list[Firing]:
    """Every firing episode of every alerting rule (rule labels added) over [start, end]."""
    start, end = span
    firings: list[Firing] = []
    for group in groups:
        if group["name"] in skip_groups:
            continue
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            extra = {k: str(v) for k, v in (rule.get("labels") or {}).items()}
            hold, keep = duration_s(rule.get("for")), duration_s(rule.get("keep_firing_for"))
            for labels, steps in _present_steps(server, rule["expr"], start, end, step).items():
                merged = tuple(sorted({**dict(labels), **extra}.items()))
                firings += _episodes(
                    rule["alert"], merged, steps, step=step, hold_s=hold, end=end, keep_s=keep
                )
    return sorted(firings, key=lambda f: f.fired_at)
