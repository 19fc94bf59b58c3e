"""Match alert firings with the injected incidents and print the per-tenant figures."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.alerting import params
from bench.alerting.evaluate import Firing
from bench.alerting.simulate import Incident, Simulation

DISTURBANCE_WINDOW_S = 2 * 3600  # a false alert this soon after a disturbance is blamed on it


@dataclass
class IncidentResult:
    kind: str
    category: str
    start: str
    end: str
    detected_by: str | None = None
    minutes_to_detect: float | None = None


@dataclass
class FalseAlert:
    alert: str
    category: str | None
    fired: str
    blamed_on: str | None


@dataclass
class TenantScore:
    tenant: str
    incidents: list[IncidentResult] = field(default_factory=list)
    false_alerts: list[FalseAlert] = field(default_factory=list)
    firings: list[str] = field(default_factory=list)

    @property
    def detected(self) -> int:
        return sum(1 for i in self.incidents if i.minutes_to_detect is not None)

    def ttd(self) -> list[float]:
        return sorted(
            i.minutes_to_detect for i in self.incidents if i.minutes_to_detect is not None
        )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a %m-%d %H:%M")


def _matches(firing: Firing, incident: Incident) -> bool:
    category = firing.label("failure_category")
    in_time = incident.start <= firing.fired_at <= incident.end + params.DETECTION_GRACE_S
    return in_time and category in (None, incident.category)


def _blame(sim: Simulation, ts: float) -> str | None:
    for item in sim.disturbances:
        if item.start <= ts <= item.end + DISTURBANCE_WINDOW_S:
            return item.kind
    return None


def score_tenant(sim: Simulation, firings: list[Firing]) -> TenantScore:
    score = TenantScore(sim.tenant)
    matched: set[int] = set()
    for incident in sim.incidents:
        result = IncidentResult(
            incident.kind, incident.category, _when(incident.start), _when(incident.end)
        )
        hits = [(i, f) for i, f in enumerate(firings) if _matches(f, incident)]
        matched |= {i for i, _ in hits}
        if hits:
            first = min(hits, key=lambda h: h[1].fired_at)[1]
            result.detected_by = first.alert
            result.minutes_to_detect = round((first.fired_at - incident.start) / 60, 1)
        score.incidents.append(result)
    for index, firing in enumerate(firings):
        category = firing.label("failure_category")
        line = f"{_when(firing.fired_at)}  {firing.alert} {category or ''}"
        score.firings.append(line + ("" if index in matched else "  [false]"))
        if index not in matched:
            score.false_alerts.append(
                FalseAlert(
                    firing.alert, category, _when(firing.fired_at), _blame(sim, firing.fired_at)
                )
            )
    return score


def median_minutes(soonest: list[float | None]) -> str:
    """The median over every incident, one never detected counting as the latest.

    Times are seconds after the incident's start. The median over detected incidents alone
    gets better when a rule misses its slowest incidents; this one does not.
    """
    ordered = sorted(soonest, key=lambda s: math.inf if s is None else s)
    middle = (len(ordered) - 1) / 2
    low, high = ordered[math.floor(middle)], ordered[math.ceil(middle)]
    if low is None or high is None:
        return "never"
    return f"{(low + high) / 120:.0f} min"


def _summary(score: TenantScore) -> str:
    ttd = score.ttd()
    median = f"{statistics.median(ttd):.0f}" if ttd else "-"
    worst = f"{max(ttd):.0f}" if ttd else "-"
    over_all = median_minutes(
        [None if i.minutes_to_detect is None else i.minutes_to_detect * 60 for i in score.incidents]
    )
    blamed = sorted({f.blamed_on for f in score.false_alerts if f.blamed_on})
    return (
        f"{score.tenant:<7} detected {score.detected}/{len(score.incidents)}  "
        f"median TTD {median} min (all {len(score.incidents)}: {over_all})"
        f"  worst {worst} min  "
        f"false alerts {len(score.false_alerts)}"
        + (f" (near: {', '.join(blamed)})" if blamed else "")
        + f"  firings {len(score.firings)}"
    )


def format_report(rules: str, seed: int, days: int, scores: list[TenantScore]) -> str:
    lines = [f"rules {rules}  seed {seed}  {days} days"]
    total = sum(len(s.incidents) for s in scores)
    detected = sum(s.detected for s in scores)
    lines.append(f"ALL     detected {detected}/{total} ({100 * detected / max(total, 1):.0f} %)")
    lines += [_summary(s) for s in scores]
    for score in scores:
        lines.append(f"\n== {score.tenant}: incidents")
        for i in score.incidents:
            found = (
                f"{i.minutes_to_detect:.0f} min by {i.detected_by}" if i.detected_by else "MISSED"
            )
            lines.append(f"  {i.start} .. {i.end}  {i.kind:<26} {i.category:<31} {found}")
        lines.append(f"== {score.tenant}: firings ({len(score.firings)})")
        lines += [f"  {f}" for f in score.firings[:60]]
        if len(score.firings) > 60:
            lines.append(f"  ... {len(score.firings) - 60} more")
    return "\n".join(lines)
