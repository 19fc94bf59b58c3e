"""What detecting each injected incident costs in false alerts, for any count-based rule.

    python -m bench.alerting.detectability [--seed 1] [--tenants small,medium,large]
        [--budget 1]

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

It also prints the soonest such a rule could fire at one false alert a month (or --budget):
the time of the j-th failure in a window holding j, for the fewest j that the month affords.
Three rules: one that knows the cause; one that watches every category (12) or every
(category, detail reason) pair the worker exports (95) alike, as a real rule must, since it
cannot know which will fail; and that one again, estimating the rate from the rules' own
baseline (spike-alerting.yaml: 7 days ending 6 hours before the window) with their
two-sample test instead of knowing it. The first two bound any rule; the third is the best
the rules' own design could do if it chose its window after the fact and spent the whole
budget on one test. The median of
these times over a tenant's incidents (a never-detected one counts as the latest) is the
least median time to detect a rule of that kind can reach.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, partial
from itertools import accumulate
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from bench.alerting import params
from bench.alerting.counters import freshness
from bench.alerting.evaluate import duration_s
from bench.alerting.report import median_minutes
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
from worker import FailureCategory
from worker.stream.metrics import DETAIL_SERIES

GRID_S = 300
WINDOWS_S = (900, 1800, 3600, 7200, 4 * 3600, 6 * 3600, 8 * 3600, 86400, 2 * 86400, 4 * 86400)
TARGET_S = {"small": 3600, "medium": 900, "large": 900}
RULE_PARAMETERS = Path(__file__).resolve().parents[2] / "deploy/prometheus/spike-alerting.yaml"
CANDIDATES_PER_LENGTH = 4  # the most surprising windows of each length whose cost is computed


def _log_sum(terms: Iterable[float]) -> float:
    """ln of the sum of exp(term) over falling terms, ending once one is e^40 below the first."""
    kept: list[float] = []
    for term in terms:
        kept.append(term)
        if term < kept[0] - 40:
            break
    top = max(kept)
    return top + math.log(sum(math.exp(t - top) for t in kept))


def log_tail(mu: float, k: int) -> float:
    """ln P(Poisson(mu) >= k), exact (summed in log space), for mu > 0."""
    if k <= 0:
        return 0.0
    if k <= mu:  # the tail is large here: 1 - P(< k), summed directly
        below = sum(math.exp(i * math.log(mu) - mu - math.lgamma(i + 1)) for i in range(k))
        return math.log(max(1.0 - below, 1e-300))
    return _log_sum(i * math.log(mu) - mu - math.lgamma(i + 1) for i in range(k, k + 10_002))


def log_conditional_tail(baseline: int, share: float, k: int) -> float:
    """ln P(K >= k | K + B = k + baseline) when the window holds `share` of the attempts of
    window and baseline together and both count failures at one rate: the binomial tail of
    the two-sample test the rules make (exact, summed in log space)."""
    n = k + baseline
    if k <= 0:
        return 0.0
    if share <= 0:
        return -math.inf
    if share >= 1 or k <= n * share:
        return 0.0  # no excess: the tail is about one half or more, which no month affords
    return _log_sum(
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(share)
        + (n - i) * math.log1p(-share)
        for i in range(k, n + 1)
    )


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
        self._grid: dict[float, list[float]] = {}

    def expected(self, start: float, length: float) -> float:
        first = int((start - self.start) // 60)
        last = int((start + length - self.start) // 60)
        last = min(max(last, first), len(self._prefix) - 1)
        return self._prefix[last] - self._prefix[max(first, 0)]

    def comparable_windows(self, length: float, at_least: float) -> int:
        """Disjoint windows of `length` in the month expecting at least `at_least` attempts
        (the most a greedy pick on the 5-minute grid finds)."""
        stride = math.ceil(length / GRID_S)
        count, free = 0, 0
        for step, expected in enumerate(self._grid_expectations(length)):
            if step >= free and expected >= at_least * (1 - 1e-9):
                count += 1
                free = step + stride
        return count

    def _grid_expectations(self, length: float) -> list[float]:
        """The expected attempts of every window of `length` starting on the grid."""
        if length not in self._grid:
            steps = int((self.end - length - self.start) // GRID_S) + 1
            self._grid[length] = [
                self.expected(self.start + step * GRID_S, length) for step in range(steps)
            ]
        return self._grid[length]


@dataclass(frozen=True)
class Cost:
    false_alerts: float  # expected false alerts a month of a rule firing on this evidence
    count: int
    expected: float
    window_s: float
    offset_s: float  # window start after the incident's start
    counted: str  # what the window counts: the cause (category/detail) or the category


@dataclass(frozen=True)
class OracleFiring:
    after_s: float  # after the incident's start
    count: int  # the failures in the window when it fires
    expected: float
    window_s: float
    counted: str
    baseline: int | None  # the week before's failures, if the rule estimates the rate


def _counted_rates(incident: Incident) -> dict[str, float]:
    """What a rule could count for this incident (its category, and its cause unless the
    incident raises the whole category) with the true chance of a failure per attempt."""
    rates = {incident.category: params.FAILURE_SHARE * params.CATEGORY_MIX[incident.category]}
    if not incident_kind(incident.kind).raises_whole_category:
        pair = f"{incident.category}/{incident.detail}"
        rates[pair] = rates[incident.category] * params.DETAIL_MIX[incident.category].get(
            incident.detail, 0.0
        )
    return rates


def _between(times: list[float], start: float, length: float) -> tuple[int, int]:
    """The index range of the sorted `times` in [start, start + length)."""
    return bisect.bisect_left(times, start), bisect.bisect_left(times, start + length)


def _least_cost(
    incident: Incident,
    failures: dict[str, list[float]],
    attempts: list[float],
    curve: AttemptCurve,
    until: float,
) -> Cost | None:
    best: Cost | None = None
    for counted, rate in _counted_rates(incident).items():
        times = failures.get(counted, [])
        for length in WINDOWS_S:
            if incident.start + length > until:
                break
            found = []
            for step in range(int((until - length - incident.start) // GRID_S) + 1):
                a = incident.start + step * GRID_S
                first, last = _between(times, a, length)
                low, high = _between(attempts, a, length)
                k, mu = last - first, max(rate * (high - low), 1e-9)
                found.append((log_tail(mu, k), a, k, mu))
            for log_p, a, k, mu in sorted(found)[:CANDIDATES_PER_LENGTH]:
                windows = curve.comparable_windows(length, curve.expected(a, length))
                cost = Cost(windows * math.exp(log_p), k, mu, length, a - incident.start, counted)
                if best is None or cost.false_alerts < best.false_alerts:
                    best = cost
    return best


@cache
def rules_baseline() -> tuple[float, float]:
    """The range and offset of the rules' baseline (spike-alerting.yaml), in seconds."""
    baseline = yaml.safe_load(RULE_PARAMETERS.read_text(encoding="utf-8"))["baseline"]
    return duration_s(baseline["range"]), duration_s(baseline["offset"])


def watching_alike(counted: str) -> int:
    """The series a rule that does not know the cause watches alike: every category, or
    every (category, detail reason) pair the worker exports."""
    return len(DETAIL_SERIES) if "/" in counted else len(FailureCategory)


@dataclass(frozen=True)
class Oracle:
    """A rule that picks its window after the fact and spends the whole false-alert budget."""

    name: str  # in the per-incident lines
    description: str  # in the tenant's summary
    watched: Callable[[str], int]  # the series it watches alike (1: it knows the cause)
    estimates: bool  # the rate from the week before (a two-sample test), not the true one


def _earliest(
    incident: Incident,
    failures: dict[str, list[float]],
    attempts: list[float],
    curve: AttemptCurve,
    *,
    until: float,
    oracle: Oracle,
    budget: float = 1.0,
) -> OracleFiring | None:
    """The soonest after the incident's start that the oracle could fire on it: the time of
    the j-th failure of a window holding j, j the fewest whose cost fits `budget` false
    alerts a month. The cost falls as j grows, so j is found by bisection."""
    soonest: OracleFiring | None = None
    latest = until - incident.start
    baseline_s, baseline_offset_s = rules_baseline()
    for counted, rate in _counted_rates(incident).items():
        times = failures.get(counted, [])
        allowed = math.log(budget / oracle.watched(counted))
        for length in WINDOWS_S:
            step = 0
            while (a := incident.start + step * GRID_S) - incident.start < latest:
                step += 1
                first, last = _between(times, a, length)
                low, high = _between(attempts, a, length)
                if last == first:
                    continue
                mu = max(rate * (high - low), 1e-9)
                baseline: int | None = None
                if oracle.estimates:
                    before = a - baseline_offset_s - baseline_s
                    earlier, later = _between(times, before, baseline_s)
                    start_b, end_b = _between(attempts, before, baseline_s)
                    baseline = later - earlier
                    share = (high - low) / max(high - low + end_b - start_b, 1)
                    tail = partial(log_conditional_tail, baseline, share)
                else:
                    tail = partial(log_tail, mu)
                # ln(false alerts a month) = ln(series) + ln(windows) + ln P(>= j) <= ln(budget)
                if tail(last - first) > allowed:
                    continue  # not even one comparable window would allow it
                windows = curve.comparable_windows(length, curve.expected(a, length))
                fits = allowed - math.log(max(windows, 1))  # the window itself is one
                if tail(last - first) > fits:
                    continue
                fewest, most = 1, last - first
                while fewest < most:
                    middle = (fewest + most) // 2
                    if tail(middle) <= fits:
                        most = middle
                    else:
                        fewest = middle + 1
                fires = times[first + fewest - 1] - incident.start
                if fires < latest:
                    latest = fires
                    soonest = OracleFiring(fires, fewest, mu, length, counted, baseline)
    return soonest


ORACLES = (
    Oracle("knowing ", "knowing the cause", lambda _: 1, estimates=False),
    Oracle("alike   ", "watching every series alike", watching_alike, estimates=False),
    Oracle("estimate", "alike, estimating from the week before", watching_alike, estimates=True),
)


@dataclass(frozen=True)
class IncidentCost:
    incident: Incident
    to_detect: Cost | None  # before the end plus the scorer's grace
    in_target: Cost | None  # within the target time to detect
    soonest: tuple[OracleFiring | None, ...]  # the soonest firing of each of ORACLES


def incident_costs(
    tenant: str, seed: int, days: int = params.DAYS, budget: float = 1.0
) -> list[IncidentCost]:
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
    costs = []
    for incident in incidents:
        until = incident.end + params.DETECTION_GRACE_S
        costs.append(
            IncidentCost(
                incident,
                _least_cost(incident, failures, attempts, curve, until),
                _least_cost(incident, failures, attempts, curve, incident.start + TARGET_S[tenant]),
                tuple(
                    _earliest(
                        incident,
                        failures,
                        attempts,
                        curve,
                        until=until,
                        oracle=oracle,
                        budget=budget,
                    )
                    for oracle in ORACLES
                ),
            )
        )
    return costs


def _describe(cost: Cost | None) -> str:
    if cost is None:
        return f"{'-':>8}"
    return (
        f"{cost.false_alerts:8.3g}  ({cost.count} vs {cost.expected:.2g} in"
        f" {cost.window_s / 60:.0f} min from +{cost.offset_s / 60:.0f}, {cost.counted})"
    )


def _firing(firing: OracleFiring | None) -> str:
    if firing is None:
        return "never"
    week = "" if firing.baseline is None else f"; {firing.baseline} in the week before"
    return (
        f"+{firing.after_s / 60:.0f} min ({firing.count} vs {firing.expected:.2g} in"
        f" {firing.window_s / 60:.0f} min, {firing.counted}{week})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = month_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="false alerts a month the soonest firings may cost (default 1, the target of"
        " issue 14; the rules spend 0.1 per test)",
    )
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error("--budget must be more than 0")
    print(
        f"seed {args.seed}, {args.days} days: least false alerts a month of any rule that"
        " detects the incident (its best window)"
    )
    for tenant in args.tenants.split(","):
        target = TARGET_S[tenant] // 60
        print(f"== {tenant}  (target: detected within {target} min)")
        costs = incident_costs(tenant, args.seed, args.days, args.budget)
        for c in costs:
            print(f"  {c.incident.kind:26} {c.incident.category:31}")
            print(f"      to detect at all   {_describe(c.to_detect)}")
            print(f"      within {target:3} min     {_describe(c.in_target)}")
            for oracle, firing in zip(ORACLES, c.soonest, strict=True):
                print(f"      soonest, {oracle.name}  {_firing(firing)}")
        beyond = [c for c in costs if c.to_detect is None or c.to_detect.false_alerts > 1]
        late = [c for c in costs if c.in_target is None or c.in_target.false_alerts > 1]
        print(
            f"  {len(beyond)} of {len(costs)} cost more than 1 false alert a month to detect"
            f" at all; {len(late)} of {len(costs)} to detect within {target} min"
        )
        plural = "" if args.budget == 1 else "s"
        for index, oracle in enumerate(ORACLES):
            firings = [c.soonest[index] for c in costs]
            soonest = [None if f is None else f.after_s for f in firings]
            within = sum(1 for s in soonest if s is not None and s <= TARGET_S[tenant])
            print(
                f"  soonest firing at {args.budget:g} false alert{plural} a month,"
                f" {oracle.description}: median over all {len(costs)}"
                f" {median_minutes(soonest)}, {within} of {len(costs)} within {target} min"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
