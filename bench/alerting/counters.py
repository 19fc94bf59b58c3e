"""The worker's counters for simulated records, as Prometheus scrapes them every 30 s.

Label sets follow /work/notes/metrics-contract.md (worker/stream/metrics.py): the new
per-category and per-detail counters, the event-age histogram and the skipped-records counter
are pre-created at zero when the worker starts; the breakdown counter's series appear on their
first increment (prometheus_client children), and are only written when asked for (the old
rules read it). A restart sets every counter back to zero; a scrape gap leaves no samples.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING

from bench.alerting import params

if TYPE_CHECKING:
    from bench.alerting.simulate import Disturbance, Labels, Record, Simulation

NAN = float("nan")
# Urgent single causes the rules read; pre-created like every (category, detail) pair.
URGENT_DETAILS = (
    ("accountValidation", "apnsCertificateExpired"),
    ("accountValidation", "apnsCertificateInvalid"),
    ("accountValidation", "adeTokenInvalid"),
)
INCIDENT_DETAILS = tuple(
    (k.category, k.detail) for k in params.INCIDENT_KINDS if k.category and k.detail != "none"
)


def detail_pairs() -> list[tuple[str, str]]:
    pairs = {(c, "none") for c in params.GRAPH_CATEGORIES}
    pairs |= {(c, d) for c, mix in params.DETAIL_MIX.items() for d in mix}
    pairs |= set(URGENT_DETAILS) | set(INCIDENT_DETAILS)
    return sorted(pairs)


def freshness(age_s: float) -> str:
    """The worker's `freshness` label for an event processed `age_s` after it happened."""
    return "late" if age_s > params.FRESH_EVENT_MAX_AGE_S else "fresh"


def _labels(**values: str) -> Labels:
    return tuple(values.items())


class CounterBook:
    """Per-scrape increments of every series, turned into scraped counter values by finish()."""

    def __init__(self, sim: Simulation, restarts: list[float], breakdown: bool) -> None:
        self._sim = sim
        self._restarts = restarts
        self._breakdown = breakdown
        self._inc: dict[tuple[str, Labels], array[float]] = {}
        self._lazy: set[tuple[str, Labels]] = set()  # breakdown: exist from first increment
        sim.families.update(
            {
                "enrollment_category_failures": "counter",
                "enrollment_failure_details": "counter",
                "enrollment_events": "counter",
                "enrollment_skipped_records": "counter",
                "enrollment_event_age_seconds": "histogram",
            }
        )
        if breakdown:
            sim.families["enrollment_failures"] = "counter"
        for category in params.GRAPH_CATEGORIES:
            for freshness in ("fresh", "late"):
                self._series(
                    "enrollment_category_failures_total",
                    _labels(failure_category=category, freshness=freshness),
                )
        for category, detail in detail_pairs():
            self._series(
                "enrollment_failure_details_total",
                _labels(failure_category=category, detail_reason=detail),
            )
        for outcome in ("classified", "dead_lettered", "skipped_success", "skipped_other"):
            self._series("enrollment_events_total", _labels(outcome=outcome))
        for reason in ("success", "in_progress", "not_enrollment"):
            self._series("enrollment_skipped_records_total", _labels(reason=reason))
        for le in (*params.EVENT_AGE_BUCKETS, math.inf):
            self._series(
                "enrollment_event_age_seconds_bucket", _labels(shape=params.SHAPE, le=_le(le))
            )
        for name in ("enrollment_event_age_seconds_sum", "enrollment_event_age_seconds_count"):
            self._series(name, _labels(shape=params.SHAPE))

    def _series(self, name: str, labels: Labels) -> array[float]:
        key = (name, labels)
        if key not in self._inc:
            self._inc[key] = array("d", bytes(8 * self._sim.scrapes))
        return self._inc[key]

    def _add(self, name: str, labels: Labels, slot: int, amount: float = 1.0) -> None:
        self._series(name, labels)[slot] += amount

    def count(self, record: Record, processed: float) -> None:
        slot = math.ceil((processed - self._sim.start) / params.SCRAPE_INTERVAL_S)
        if not 0 <= slot < self._sim.scrapes:
            return
        age = max(processed - record.event_time, 0.0)
        shape = _labels(shape=params.SHAPE)
        for le in (*params.EVENT_AGE_BUCKETS, math.inf):
            if age <= le:
                self._add(
                    "enrollment_event_age_seconds_bucket",
                    _labels(shape=params.SHAPE, le=_le(le)),
                    slot,
                )
        self._add("enrollment_event_age_seconds_sum", shape, slot, age)
        self._add("enrollment_event_age_seconds_count", shape, slot)
        if not record.failed:
            self._add("enrollment_events_total", _labels(outcome="skipped_success"), slot)
            self._add("enrollment_skipped_records_total", _labels(reason="success"), slot)
            return
        self._add("enrollment_events_total", _labels(outcome="classified"), slot)
        self._add(
            "enrollment_category_failures_total",
            _labels(failure_category=record.category, freshness=freshness(age)),
            slot,
        )
        self._add(
            "enrollment_failure_details_total",
            _labels(failure_category=record.category, detail_reason=record.detail),
            slot,
        )
        if self._breakdown:
            labels = _labels(
                failure_category=record.category,
                os=record.platform,
                enrollment_type=params.ENROLLMENT_TYPE[record.platform],
            )
            self._lazy.add(("enrollment_failures_total", labels))
            self._add("enrollment_failures_total", labels, slot)

    def finish(self, missing: list[Disturbance]) -> None:
        """Cumulative values with resets at restarts; NaN where no scrape happened."""
        start, step = self._sim.start, params.SCRAPE_INTERVAL_S
        resets = {math.ceil((r - start) / step) for r in self._restarts}
        absent = [
            (math.ceil((d.start - start) / step), math.ceil((d.end - start) / step))
            for d in missing
        ]
        for (name, labels), increments in sorted(self._inc.items()):
            lazy = (name, labels) in self._lazy
            values = array("d", increments)
            total, exists = 0.0, not lazy
            for slot, amount in enumerate(increments):
                if slot in resets:
                    total, exists = 0.0, not lazy
                total += amount
                exists = exists or amount > 0
                values[slot] = total if exists else NAN
            for first, last in absent:
                for slot in range(max(first, 0), min(last, len(values))):
                    values[slot] = NAN
            family = _family(name)
            self._sim.series.setdefault(family, {})[_key(name, labels)] = values


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def _family(sample_name: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def _key(name: str, labels: Labels) -> Labels:
    return (("__name__", name), *labels)
