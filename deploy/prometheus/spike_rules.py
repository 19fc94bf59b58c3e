"""Generate the failure-spike rule groups from deploy/prometheus/spike-alerting.yaml.

`build_groups(params)` returns two rule groups: `enrollment-classifier.baselines` (recording
rules: windowed counts, the baseline share of each category, failures per attempt, expected
counts) and `enrollment-classifier.failures` (the alerts). sync_prometheusrule.py writes them
into the rules file, keeping its hand-written groups (the pipeline alerts), then derives the
PrometheusRule and the Grafana alert provisioning from that file. Needs PyYAML only.

Series (see docs/alerting.md, part 3):
  k  category:enrollment_fresh_failures:increase<W>   fresh failures in the window
  A  enrollment_attempts:increase<W>                  classified + skipped successes
  p  category:enrollment_failure_share:<range>_offset<O>      (n_c + a) / (N + 12 a)
  f  enrollment_failures_per_attempt:<range>_offset<O>        N / attempts
  mu category:enrollment_fresh_failures:expected<W>   p * f * A
  b  category:enrollment_failures:<range>_offset<O>   n_c + a, the baseline's own count
and for the detail-reason tests (one per pre-created (category, detail reason) pair):
  kd detail:enrollment_failures:increase<W>           failures in the window, fresh and late
  Ab enrollment_attempts:<range>_offset<O>             attempts in the baseline range
  bd detail:enrollment_failures:<range>_offset<O>     n_d + a_d
  mud detail:enrollment_failures:expected<W>          bd * A / Ab
The alerts compare k with mu, carrying the baseline's own uncertainty (b): given k + b
failures in window and baseline together, how unlikely is it that k or more fell in the window
(a binomial tail with q = mu / (mu + b), Chernoff bound with Stirling's correction):
  surprise = k ln(k (mu + b) / ((k + b) mu)) + b ln((mu + b) / (k + b)) + ln(2 pi k b / (k + b)) / 2
which is the Poisson tail k ln(k/mu) - k + mu + ln(2 pi k)/2 when b is much larger than k.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path(__file__).resolve().parent / "spike-alerting.yaml"
GENERATED_GROUPS = ("enrollment-classifier.baselines", "enrollment-classifier.failures")
CATEGORIES = 12  # Graph's deviceEnrollmentFailureReason members
FAILURES = "enrollment_category_failures_total"
FRESH = FAILURES + '{freshness="fresh"}'
ATTEMPTS = 'enrollment_events_total{outcome=~"classified|skipped_success"}'
DETAILS = "enrollment_failure_details_total"
RUNBOOK = "deploy/RUNBOOK.md"
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> int:
    parts = re.findall(r"(\d+)([mhdw])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"unsupported duration {duration!r} (use m, h, d, w)")
    return sum(int(n) * _UNIT[u] for n, u in parts)


def threshold(
    params: dict[str, Any], window: str, categories: int = CATEGORIES, budget: float | None = None
) -> float:
    """Surprise a test must reach: a Bonferroni bound over the month's windows."""
    windows = 28 * 86400 / seconds(window)
    allowed = budget if budget is not None else params["false_alerts_per_28d"]
    return round(math.log(categories * windows / allowed), 1)


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _per_window(prefix: str) -> Callable[[str], str]:
    """Names of the recorded series of one window, e.g. ...increase2h."""
    return lambda window: prefix + window


def _per_baseline(prefix: str) -> Callable[[dict[str, Any], str], str]:
    """Names of the recorded series of a baseline range and offset, e.g. ...:7d_offset6h."""
    return lambda baseline, offset: f"{prefix}:{baseline['range']}_offset{offset}"


_k = _per_window("category:enrollment_fresh_failures:increase")
_attempts = _per_window("enrollment_attempts:increase")
_mu = _per_window("category:enrollment_fresh_failures:expected")
_detail_k = _per_window("detail:enrollment_failures:increase")
_detail_mu = _per_window("detail:enrollment_failures:expected")
_share = _per_baseline("category:enrollment_failure_share")
_baseline_count = _per_baseline("category:enrollment_failures")
_per_attempt = _per_baseline("enrollment_failures_per_attempt")
_detail_baseline = _per_baseline("detail:enrollment_failures")
_baseline_attempts = _per_baseline("enrollment_attempts")


def _long(window: str) -> bool:
    """Windows of a day or more are summed from hourly counts (cheap to evaluate)."""
    return seconds(window) >= 86400


def _window_rules(window: str) -> list[dict[str, Any]]:
    if _long(window):
        return [
            {
                "record": _k(window),
                "expr": f"sum_over_time({_k('1h')}[{window}:1h])",
            },
            {
                "record": _attempts(window),
                "expr": f"sum_over_time(enrollment_attempts:increase1h[{window}:1h])",
            },
        ]
    return [
        {
            "record": _k(window),
            "expr": f"sum by (failure_category) (increase({FRESH}[{window}]))",
        },
        {"record": _attempts(window), "expr": f"sum(increase({ATTEMPTS}[{window}]))"},
    ]


def _baseline_rules(baseline: dict[str, Any], offset: str) -> list[dict[str, Any]]:
    span, alpha = baseline["range"], baseline["pseudo_count"]
    counts = f"sum_over_time(category:enrollment_failures:increase1h[{span}:1h] offset {offset})"
    total = (
        f"sum(sum_over_time(category:enrollment_failures:increase1h[{span}:1h] offset {offset}))"
    )
    attempts = f"sum_over_time(enrollment_attempts:increase1h[{span}:1h] offset {offset})"
    hours = math.ceil(baseline["min_coverage"] * seconds(span) / 3600)
    covered = f"count_over_time(enrollment_attempts:increase1h[{span}:1h] offset {offset})"
    return [
        {"record": _baseline_count(baseline, offset), "expr": f"{counts} + {alpha}"},
        {
            "record": _share(baseline, offset),
            "expr": (
                f"({counts} + {alpha})\n/ on () group_left ()\n({total} + {CATEGORIES * alpha})"
            ),
        },
        {
            "record": _per_attempt(baseline, offset),
            "expr": f"{total}\n/\n{attempts} > 0\nand on () {covered} >= {hours}",
        },
    ]


def _expected_rule(baseline: dict[str, Any], offset: str, window: str) -> dict[str, Any]:
    return {
        "record": _mu(window),
        "expr": (
            f"{_share(baseline, offset)}\n* on () group_left () {_per_attempt(baseline, offset)}\n"
            f"* on () group_left () {_attempts(window)}"
        ),
    }


def _detail_rules(params: dict[str, Any], windows: list[str]) -> list[dict[str, Any]]:
    """Counts of each (category, detail reason) pair, fresh and late together: the detail
    counter has no freshness label, so its expectation scales with all attempts (late ones
    included) and a catch-up of ordinary traffic raises both sides alike; the alert itself is
    gated by the category's fresh test (see _detail_alert)."""
    baseline, offset = params["baseline"], params["baseline"]["offset"]
    span, alpha = baseline["range"], params["detail_tests"]["pseudo_count"]
    hours = math.ceil(baseline["min_coverage"] * seconds(span) / 3600)
    by_pair = "sum by (failure_category, detail_reason)"
    covered = f"count_over_time(enrollment_attempts:increase1h[{span}:1h] offset {offset})"
    records: list[dict[str, Any]] = [
        {"record": _detail_k("1h"), "expr": f"{by_pair} (increase({DETAILS}[1h]))"},
        {
            "record": _detail_baseline(baseline, offset),
            "expr": f"sum_over_time({_detail_k('1h')}[{span}:1h] offset {offset}) + {alpha}",
        },
        {
            "record": _baseline_attempts(baseline, offset),
            "expr": (
                f"sum_over_time(enrollment_attempts:increase1h[{span}:1h] offset {offset}) > 0\n"
                f"and on () {covered} >= {hours}"
            ),
        },
    ]
    for window in windows:
        if window != "1h":
            records.append(
                {"record": _detail_k(window), "expr": f"{by_pair} (increase({DETAILS}[{window}]))"}
            )
        records.append(
            {
                "record": _detail_mu(window),
                "expr": (
                    f"{_detail_baseline(baseline, offset)}\n* on () group_left () "
                    f"({_attempts(window)} / {_baseline_attempts(baseline, offset)})"
                ),
            }
        )
    return records


def surprise(k: str, mu: str) -> str:
    """-ln P(X >= k) for X ~ Poisson(mu), k > mu (Chernoff bound, Stirling-corrected)."""
    return f"{k} * ln({k} / {mu}) - {k} + {mu} + 0.5 * ln(6.283 * {k})"


def surprise_two_sample(k: str, mu: str, b: str) -> str:
    """-ln P(K >= k | K + B = k + b) when the window's count K and the baseline's count B
    come from one rate and the window's exposure is mu/b of the baseline's: the Poisson test
    without taking the baseline's share as exact (a one-week share is noisy when the window is
    days long). Chernoff bound, Stirling-corrected; k > mu and b > 0."""
    return (f"{k} * ln({k} * ({mu} + {b}) / (({k} + {b}) * {mu}))"
            f" + {b} * ln(({mu} + {b}) / ({k} + {b}))"
            f" + 0.5 * ln(6.283 * {k} * {b} / ({k} + {b}))")


def _annotations(summary: str, description: str, anchor: str) -> dict[str, str]:
    return {"summary": summary, "description": description, "runbook_url": f"{RUNBOOK}#{anchor}"}


def _alert(rule: dict[str, Any], expr: str, annotations: dict[str, str]) -> dict[str, Any]:
    """One alerting rule from its parameters (alert, for, severity; window, keep_firing_for
    if set)."""
    labels = {"severity": rule["severity"]}
    if "window" in rule:
        labels["window"] = rule["window"]
    alert = {"alert": rule["alert"], "expr": expr, "for": rule["for"]}
    if "keep_firing_for" in rule:
        alert["keep_firing_for"] = rule["keep_firing_for"]
    return {**alert, "labels": labels, "annotations": annotations}


def _test_alert(test: dict[str, Any], params: dict[str, Any],
                offset_of: dict[str, str]) -> dict[str, Any]:
    window, confirm = test["window"], test["confirm_window"]
    limit = threshold(params, window, budget=test["false_alerts_per_28d"])
    baseline = params["baseline"]
    b, b_confirm = (_baseline_count(baseline, offset_of[w]) for w in (window, confirm))

    def test_of(k: str, mu: str, b: str) -> str:
        if baseline.get("uncertain", True):
            return surprise_two_sample(k, mu, b)
        return surprise(k, mu)

    # Only excesses count (k > mu): the surprise is large for a deficit too.
    expr = (
        f"(\n  {test_of(_k(window), _mu(window), b)}\n) >= {limit}\n"
        f"and {_k(window)} >= {test['min_count']}\n"
        f"and {_k(window)} > {_mu(window)}\n"
        f"and (\n  {test_of(_k(confirm), _mu(confirm), b_confirm)}\n)"
        f" >= {test.get('confirm_surprise', params['confirm_surprise'])}\n"
        f"and {_k(confirm)} > {_mu(confirm)}"
    )
    test = {**test, "surprise": limit}
    return _alert(
        test,
        expr,
        _annotations(
            'Unusually many "{{ $labels.failure_category }}" Intune enrollment failures'
            f" ({window})",
            "More fresh {{ $labels.failure_category }} enrollment failures in the last "
            f"{window} "
            "than the baseline share of that category makes plausible for this many enrollment "
            f'attempts (surprise {{{{ $value | printf "%.1f" }}}}, alerts at {test["surprise"]}; '
            "a surprise of s means about one chance in e^s).",
            "spike-{{ $labels.failure_category }}",
        ),
    )


def _detail_alert(test: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    baseline, window = params["baseline"], test["window"]
    limit = threshold(
        params, window, params["detail_tests"]["series"], budget=test["false_alerts_per_28d"]
    )
    k, mu = _detail_k(window), _detail_mu(window)
    bd = _detail_baseline(baseline, baseline["offset"])
    kc, muc = _k(window), _mu(window)
    bc = _baseline_count(baseline, baseline["offset"])
    # The category's FRESH failures in the same window must be unusual too: a catch-up of
    # old events (even of an old incident) raises the detail count but not the fresh one.
    expr = (
        f"(\n  {surprise_two_sample(k, mu, bd)}\n) >= {limit}\n"
        f"and {k} >= {test['min_count']}\n"
        f"and {k} > {mu}\n"
        f"and on (failure_category) (\n  {surprise_two_sample(kc, muc, bc)}\n)"
        f" >= {params['confirm_surprise']}\n"
        f"and on (failure_category) {kc} > {muc}"
    )
    return _alert(
        test,
        expr,
        _annotations(
            'Unusually many Intune enrollment failures for one cause: "{{ $labels.detail_reason'
            ' }}" ({{ $labels.failure_category }}, ' f"{window})",
            "More {{ $labels.detail_reason }} enrollment failures in the last "
            f"{window} than that cause's usual share of enrollment attempts makes plausible "
            f'(surprise {{{{ $value | printf "%.1f" }}}}, alerts at {limit}), and the '
            "category's fresh failures confirm it.",
            "spike-{{ $labels.failure_category }}",
        ),
    )


def _unknown_alert(rule: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    baseline = params["baseline"]
    window = rule["window"]
    limit = threshold(params, window, rule["categories"], budget=rule["false_alerts_per_28d"])
    rule = {**rule, "surprise": limit}
    unknown = '{failure_category="unknown"}'
    k, mu = _k(window) + unknown, _mu(window) + unknown
    b = _baseline_count(baseline, baseline["offset"]) + unknown
    # Per enrollment attempt, not per failure: a big incident of another category in the
    # baseline week lowers unknown's share of failures (seed 1, large tenant: an expired APNs
    # certificate's 3,000 failures took it from 5 % to 3 %) and would make this alert
    # over-sensitive for a week; its rate per attempt does not move. Where a source shows
    # failures only, attempts are failures and this is the share of failures.
    expr = (
        f"(\n  {surprise_two_sample(k, mu, b)}\n) >= {rule['surprise']}\n"
        f"and {k} >= {rule['min_count']}\n"
        f"and {k} > {rule['share_ratio']} * {mu}"
    )
    return _alert(
        rule,
        expr,
        _annotations(
            "A growing share of Intune enrollment failures has no known reason",
            f"Over the last {window} the fresh enrollment failures the classifier could not "
            f"attribute (unknown) are more than {rule['share_ratio']}x their usual share of "
            'enrollment attempts (surprise {{ $value | printf "%.1f" }}): probably a new '
            "failure mode.",
            "enrollmentunknownfailuresharerising",
        ),
    )


def _urgent_alert(rule: dict[str, Any]) -> dict[str, Any]:
    reasons = "|".join(rule["detail_reasons"])
    expr = (
        f"sum by (failure_category, detail_reason) (\n"
        f'  increase({DETAILS}{{detail_reason=~"{reasons}"}}[{rule["window"]}])\n) > 0'
    )
    return _alert(
        {k: v for k, v in rule.items() if k != "window"},  # no window label: one is enough
        expr,
        _annotations(
            "Intune enrollment failed for an urgent reason: {{ $labels.detail_reason }}",
            f"At least one enrollment failed with {{{{ $labels.detail_reason }}}} in the last "
            f'{rule["window"]} ({{{{ $value | printf "%.0f" }}}} counted); one is enough: '
            "every enrollment of that kind fails until it is fixed.",
            "enrollmenturgentfailurereason",
        ),
    )


def build_groups(params: dict[str, Any]) -> list[dict[str, Any]]:
    baseline = params["baseline"]
    keep = params.get("keep_firing_for")

    def with_defaults(rule: dict[str, Any]) -> dict[str, Any]:
        """A rule's parameters with the file-wide budget and keep_firing_for unless it sets its
        own."""
        defaults = {"false_alerts_per_28d": params["false_alerts_per_28d"]}
        if keep:
            defaults["keep_firing_for"] = keep
        return {**defaults, **rule}

    tests = [with_defaults(t) for t in params["tests"]]
    unknown = with_defaults(params["unknown_share"])
    offset_of: dict[str, str] = {}
    for test in tests:
        offset = test.get("baseline_offset", baseline["offset"])
        offset_of[test["window"]] = offset
        offset_of.setdefault(test["confirm_window"], offset)
    offset_of.setdefault(unknown["window"], baseline["offset"])
    detail_tests = [with_defaults(t) for t in params["detail_tests"]["tests"]]
    detail_windows = sorted({t["window"] for t in detail_tests}, key=seconds)
    for window in detail_windows:
        offset_of.setdefault(window, baseline["offset"])
    windows = sorted(offset_of, key=seconds)
    records: list[dict[str, Any]] = [
        {
            "record": "category:enrollment_failures:increase1h",
            "expr": f"sum by (failure_category) (increase({FAILURES}[1h]))",
        },
    ]
    for window in sorted({"1h", *windows}, key=seconds):
        records += _window_rules(window)
    for offset in sorted(set(offset_of.values()), key=seconds):
        records += _baseline_rules(baseline, offset)
    records += [_expected_rule(baseline, offset_of[w], w) for w in windows]
    records += _detail_rules(params, detail_windows)
    alerts = [_test_alert(t, params, offset_of) for t in tests]
    alerts += [_detail_alert(t, params) for t in detail_tests]
    alerts.append(_unknown_alert(unknown, params))
    alerts.append(_urgent_alert(with_defaults(params["urgent_details"])))
    interval = params["evaluation_interval"]
    return [
        {"name": GENERATED_GROUPS[0], "interval": interval, "rules": records},
        {"name": GENERATED_GROUPS[1], "interval": interval, "rules": alerts},
    ]


def merge_into(rules: dict[str, Any], generated: list[dict[str, Any]]) -> dict[str, Any]:
    """The rules file with its generated groups replaced (or put first), other groups kept."""
    kept = [g for g in rules.get("groups", []) if g["name"] not in GENERATED_GROUPS]
    return {**rules, "groups": [*generated, *kept]}


def to_yaml(data: Any) -> str:
    dumped: str = yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)
    return dumped
