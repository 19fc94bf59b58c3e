"""What detecting each injected incident costs in false alerts, for any count-based rule.

    python -m bench.alerting.detectability [--seed 1] [--tenants small,medium,large]

A rule that fires when a cause has failed k times in a window of length L, where mu failures
are expected by chance, also fires by chance in an ordinary window with probability
P(Poisson(mu) >= k), and more often where more is expected. So if a month holds N disjoint
windows of length L with at least as many expected attempts, the rule raises at least N x P
false alerts a month on average, even if it watches this one cause only, knows its true rate
instead of estimating it. No rule that counts failures can do better: it can only add the
cost of watching every other cause and of estimating the rate from a week of data.

For each incident this prints the least such cost over every window an oracle could pick
after the fact (any length from 15 minutes to the incident's, starting on a 5-minute grid,
counting the incident's cause or its whole category, by processing time, as the worker
counts them: the Event Hubs delay is in it): once to detect the incident at all
(before its end plus the scorer's 30-minute grace), once to detect it within the target time
(60 minutes for the 2,000-device tenant, 15 for the others). An incident whose cost is above
one false alert a month cannot be detected within the target of issue 14 by any rule.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from itertools import accumulate

from bench.alerting import params
from bench.alerting.counters import freshness
from bench.alerting.simulate import (
    DAY,
    Incident,
    disturbances,
    draw_month,
    hour_weights,
    incident_kind,
    month_arguments,
    processed_records,
    restart_times,
)

GRID_S = 300
WINDOWS_S = (900, 1800, 3600, 7200, 4 * 3600, 6 * 3600, 8 * 3600, 86400, 2 * 86400, 4 * 86400)
TARGET_S = {"small": 3600, "medium": 900, "large": 900}
CANDIDATES_PER_LENGTH = 4  # the most surprising windows of each length whose cost is computed


def log_tail(mu: float, k: int) -> float:
    """ln P(Poisson(mu) >= k), exact (summed in log space), for mu > 0."""
    if k <= 0:
        return 0.0
    if k <= mu:  # the tail is large here: 1 - P(< k), summed directly
        below = sum(math.exp(i * math.log(mu) - mu - math.lgamma(i + 1)) for i in range(k))
        return math.log(max(1.0 - below, 1e-300))
    terms = []
    i = k
    while True:
        term = i * math.log(mu) - mu - math.lgamma(i + 1)
        terms.append(term)
        if term < terms[0] - 40 or i > k + 10_000:
            break
        i += 1
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


class AttemptCurve:
    """Expected attempts per minute of the month (no day factor), with prefix sums."""

    def __init__(self, tenant: str, days: int) -> None:
        per_day = params.TENANTS[tenant].attempts_per_business_day
        minutes = [
            per_day * weight / 60
            for day in range(days)
            for weight in hour_weights(day)
            for _ in range(60)
        ]
        self._prefix = [0.0, *accumulate(minutes)]
        self.start = float(params.START_EPOCH)
        self.end = self.start + days * DAY

    def expected(self, start: float, length: float) -> float:
        first = int((start - self.start) // 60)
        last = int((start + length - self.start) // 60)
        last = min(max(last, first), len(self._prefix) - 1)
        return self._prefix[last] - self._prefix[max(first, 0)]

    def comparable_windows(self, length: float, at_least: float) -> int:
        """Disjoint windows of `length` in the month expecting at least `at_least` attempts."""
        count, free, t = 0, self.start, self.start
        while t + length <= self.end:
            if t >= free and self.expected(t, length) >= at_least * (1 - 1e-9):
                count += 1
                free = t + length
            t += GRID_S
        return count


@dataclass(frozen=True)
class Cost:
    false_alerts: float  # expected false alerts a month of a rule firing on this evidence
    count: int
    expected: float
    window_s: float
    offset_s: float  # window start after the incident's start
    counted: str  # what the window counts: the cause (category/detail) or the category


def _least_cost(
    incident: Incident,
    failures: dict[str, list[float]],
    attempts: list[float],
    curve: AttemptCurve,
    until: float,
) -> Cost | None:
    rates = {incident.category: params.FAILURE_SHARE * params.CATEGORY_MIX[incident.category]}
    if not incident_kind(incident.kind).raises_whole_category:
        pair = f"{incident.category}/{incident.detail}"
        rates[pair] = rates[incident.category] * params.DETAIL_MIX[incident.category].get(
            incident.detail, 0.0
        )
    best: Cost | None = None
    for counted, rate in rates.items():
        times = failures.get(counted, [])
        for length in WINDOWS_S:
            if incident.start + length > until:
                break
            found = []
            for step in range(int((until - length - incident.start) // GRID_S) + 1):
                a = incident.start + step * GRID_S
                k = bisect.bisect_left(times, a + length) - bisect.bisect_left(times, a)
                n = bisect.bisect_left(attempts, a + length) - bisect.bisect_left(attempts, a)
                mu = max(rate * n, 1e-9)
                found.append((log_tail(mu, k), a, k, mu))
            for log_p, a, k, mu in sorted(found)[:CANDIDATES_PER_LENGTH]:
                windows = curve.comparable_windows(length, curve.expected(a, length))
                cost = Cost(windows * math.exp(log_p), k, mu, length, a - incident.start, counted)
                if best is None or cost.false_alerts < best.false_alerts:
                    best = cost
    return best


@dataclass(frozen=True)
class IncidentCost:
    incident: Incident
    to_detect: Cost | None  # before the end plus the scorer's grace
    in_target: Cost | None  # within the target time to detect


def incident_costs(tenant: str, seed: int, days: int = params.DAYS) -> list[IncidentCost]:
    incidents, drawn = draw_month(tenant, seed, days)  # the scorer's draw
    restarts = restart_times(disturbances(days))
    attempts: list[float] = []
    failures: dict[str, list[float]] = {}
    for record, processed in processed_records(tenant, seed, drawn, restarts):
        if freshness(processed - record.event_time) == "late":
            continue  # the rules read fresh failures only
        attempts.append(processed)
        if record.failed:
            failures.setdefault(record.category, []).append(processed)
            failures.setdefault(f"{record.category}/{record.detail}", []).append(processed)
    attempts.sort()
    for times in failures.values():
        times.sort()
    curve = AttemptCurve(tenant, days)
    return [
        IncidentCost(
            incident,
            _least_cost(
                incident, failures, attempts, curve, incident.end + params.DETECTION_GRACE_S
            ),
            _least_cost(incident, failures, attempts, curve, incident.start + TARGET_S[tenant]),
        )
        for incident in incidents
    ]


def _describe(cost: Cost | None) -> str:
    if cost is None:
        return f"{'-':>8}"
    return (
        f"{cost.false_alerts:8.3g}  ({cost.count} vs {cost.expected:.2g} in"
        f" {cost.window_s / 60:.0f} min from +{cost.offset_s / 60:.0f}, {cost.counted})"
    )


def main(argv: list[str] | None = None) -> int:
    args = month_arguments(__doc__.splitlines()[0]).parse_args(argv)
    print(
        f"seed {args.seed}, {args.days} days: least false alerts a month of any rule that"
        " detects the incident (its best window)"
    )
    for tenant in args.tenants.split(","):
        target = TARGET_S[tenant] // 60
        print(f"== {tenant}  (target: detected within {target} min)")
        costs = incident_costs(tenant, args.seed, args.days)
        for c in costs:
            print(f"  {c.incident.kind:26} {c.incident.category:31}")
            print(f"      to detect at all   {_describe(c.to_detect)}")
            print(f"      within {target:3} min     {_describe(c.in_target)}")
        beyond = [c for c in costs if c.to_detect is None or c.to_detect.false_alerts > 1]
        late = [c for c in costs if c.in_target is None or c.in_target.false_alerts > 1]
        print(
            f"  {len(beyond)} of {len(costs)} cost more than 1 false alert a month to detect"
            f" at all; {len(late)} of {len(costs)} to detect within {target} min"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
