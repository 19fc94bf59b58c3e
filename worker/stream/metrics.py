"""Every Prometheus metric the worker exports, declared on a registry passed in.

Counters that describe published events move only after the batch that produced them has
committed (see :class:`Tally`), so they equal what consumers of the output topic can read.
Label values come from closed sets, and hostile input cannot create new series: an unknown OS
or enrollment type is counted as ``other``.

Which series exist before their first increment (``rate()`` and ``increase()`` never count a
series' first sample, so a series born at 1 hides that failure from every alert):

* ``enrollment_category_failures_total{failure_category, freshness}``: all 12 x 2 = 24 series
  at start. Alert rules read this one.
* ``enrollment_failure_details_total{failure_category, detail_reason}``: every pair the
  classifier can emit, derived from the catalog: each detail under its own category and its
  ``also`` categories, plus ``none`` under all 12 categories (95 series with today's 79
  details). Normalize reports a detail under the event's own category only when that category
  is the detail's own or one of its ``also`` (a conflicting detail goes to
  ``classification.conflict``, and the event's detail reason is ``none``), so the full cross
  product would only add series that stay at zero forever: 960 series and 231 kB per scrape
  instead of 95 and 23 kB (measured with prometheus_client's exposition, ``_created``
  included). tests/unit/test_counters.py holds the classifier to that: every pair it emits
  is pre-created.
* ``enrollment_skipped_records_total{reason}`` (3) and ``enrollment_event_age_seconds{shape}``
  (5 shapes) likewise.
* ``enrollment_failures_total{failure_category, os, enrollment_type}``, the breakdown for
  dashboards, pre-creates only ``os="unknown", enrollment_type="unknown"``: all combinations
  would be 12 x 10 x 22 = 2,640 series and 700 kB per scrape; its other combinations appear
  on first use, so rules must not read it.

The whole exposition at start is 427 samples, 45 kB (it was 105 and 11 kB before these).
"""

from __future__ import annotations

import contextlib
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Final

import orjson
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from worker._version import __version__
from worker.classify import catalog
from worker.classify.core import (
    CLASSIFIER_VERSION,
    NO_DETAIL,
    SHAPE_LABELS,
    Classified,
    DeadLetter,
    Outcome,
    Skipped,
)
from worker.classify.decode import ERROR_CLASSES
from worker.classify.taxonomy import Evidence, FailureCategory

OUTCOMES: Final = ("classified", "dead_lettered", "skipped_success", "skipped_other")
OS_LABELS: Final = (*sorted(set(catalog.OPERATING_SYSTEMS.values())), "other", "unknown")
ENROLLMENT_TYPE_LABELS: Final = (*catalog.ENROLLMENT_TYPES, "other")
ERROR_CLASS_LABELS: Final = (*ERROR_CLASSES, "internal_error")
KAFKA_ERROR_KINDS: Final = ("retriable", "abortable", "fatal")
FRESHNESS_LABELS: Final = ("fresh", "late")
SKIPPED_REASONS: Final = ("success", "in_progress", "not_enrollment")
DETAIL_LABELS: Final = frozenset({NO_DETAIL, *(d.name for d in catalog.DETAILS)})
# Every (category, detail reason) the classifier can emit: see the module docstring.
DETAIL_SERIES: Final = tuple(sorted(
    {(d.category.name, d.name) for d in catalog.DETAILS}
    | {(c.name, d.name) for d in catalog.DETAILS for c in d.also}
    | {(c.name, NO_DETAIL) for c in FailureCategory}))
AGE_BUCKETS: Final = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0, 259200.0,
                      604800.0)


@dataclass(slots=True)
class Tally:
    """What one commit window produced; applied to the counters only once it commits."""

    messages: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # (category, os label, enrollment type label, detail reason, fresh): one key per event
    # feeds the breakdown, the category and the detail counters. Keyed by enum members, named
    # only when applied: Enum.name and .value are slow properties, and this runs per event.
    failures: Counter[tuple[FailureCategory, str, str, str, bool]] = field(
        default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    evidence: Counter[Evidence] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # by Skipped.reason
    ages: list[tuple[str, float]] = field(default_factory=list)  # (shape label, seconds)

    def add_all(self, outcomes: Iterable[Outcome], now: float, fresh_max_age: float) -> None:
        """Count one message's outcomes, processed at Unix time ``now``. A record whose own
        event time is more than ``fresh_max_age`` seconds before ``now`` is late; one without
        a readable event time cannot be told apart and counts as fresh."""
        outcome_counts, failures, evidence, ages = (
            self.outcomes, self.failures, self.evidence, self.ages)
        classified = 0
        for o in outcomes:
            if o.__class__ is Classified:  # the common case first
                c: Classified = o
                classified += 1
                fresh = True
                if c.event_time is not None:
                    age = now - c.event_time
                    fresh = age <= fresh_max_age
                    ages.append((c.shape_label, age))
                failures[(c.category, c.os_label, c.enrollment_type_label, c.detail_reason,
                          fresh)] += 1
                evidence[c.evidence] += 1
            elif isinstance(o, DeadLetter):
                outcome_counts["dead_lettered"] += 1
                self.dead_letters[o.error_class] += 1
            elif isinstance(o, Skipped):
                outcome_counts["skipped_success" if o.reason == "success"
                               else "skipped_other"] += 1
                self.skipped[o.reason] += 1
                if o.event_time is not None:
                    ages.append((o.shape_label, now - o.event_time))
        if classified:
            outcome_counts["classified"] += classified


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Held while a window's counts are applied and while /metrics renders, so a scrape
        # never sees half of a committed window.
        self.lock = threading.Lock()
        self.failures = PromCounter(
            "enrollment_failures", "Enrollment failures published, by Graph failure category.",
            ["failure_category", "os", "enrollment_type"], registry=registry)
        self.category_failures = PromCounter(
            "enrollment_category_failures",
            "Enrollment failures published, by Graph failure category and whether the event "
            "was fresh (its own time within --fresh-event-max-age) or late.",
            ["failure_category", "freshness"], registry=registry)
        self.failure_details = PromCounter(
            "enrollment_failure_details",
            "Enrollment failures published, by Graph failure category and detail reason.",
            ["failure_category", "detail_reason"], registry=registry)
        self.skipped = PromCounter(
            "enrollment_skipped_records",
            "Records read that are not failures (successes, attempts in progress, not about "
            "enrollment), by reason.", ["reason"], registry=registry)
        self.event_age = EventAgeHistogram(created=time.time())
        registry.register(self.event_age)
        self.events = PromCounter(
            "enrollment_events", "Records read from input messages, by outcome.", ["outcome"],
            registry=registry)
        self.dead_letters = PromCounter(
            "enrollment_dead_letters", "Dead-letter records published, by error class.",
            ["error_class"], registry=registry)
        self.classifications = PromCounter(
            "enrollment_classifications", "Classified events by the evidence that decided them.",
            ["evidence"], registry=registry)
        self.input_messages = PromCounter(
            "enrollment_input_messages", "Kafka messages consumed and committed.",
            registry=registry)
        self.batch_duration = Histogram(
            "enrollment_batch_duration_seconds", "Time from consuming a batch to its commit.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=registry)
        self.batch_size = Histogram(
            "enrollment_batch_size", "Kafka messages per consumed batch.",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000), registry=registry)
        self.transactions = PromCounter(
            "enrollment_transactions", "Commit windows ended, by result.", ["result"],
            registry=registry)
        self.kafka_errors = PromCounter(
            "enrollment_kafka_errors", "Kafka client errors, by what the worker does about them.",
            ["kind"], registry=registry)
        self.backpressure = PromCounter(
            "enrollment_backpressure_waits", "Times a full producer queue made the loop wait.",
            registry=registry)
        self.ready = Gauge("enrollment_worker_ready", "1 when the worker is ready.",
                           registry=registry)
        self.last_progress = Gauge(
            "enrollment_last_progress_timestamp_seconds",
            "Unix time the consume loop last made progress.", registry=registry)
        self.build_info = Gauge("enrollment_worker_build_info", "Always 1; labels say what runs.",
                                ["version", "classifier_version"], registry=registry)
        self.lag = ConsumerLagCollector()
        registry.register(self.lag)
        self._precreate()

    def report_readiness(self, ready: Callable[[], bool]) -> None:
        """The ready gauge asks ``ready`` at scrape time, as /readyz does: the two cannot
        disagree, even while the loop is blocked in a commit."""
        self.ready.set_function(lambda: 1.0 if ready() else 0.0)

    def _precreate(self) -> None:
        for category in FailureCategory:
            self.failures.labels(category.name, "unknown", "unknown")
            for freshness in FRESHNESS_LABELS:
                self.category_failures.labels(category.name, freshness)
        for category_name, detail in DETAIL_SERIES:
            self.failure_details.labels(category_name, detail)
        for reason in SKIPPED_REASONS:
            self.skipped.labels(reason)
        for outcome in OUTCOMES:
            self.events.labels(outcome)
        for error_class in ERROR_CLASS_LABELS:
            self.dead_letters.labels(error_class)
        for evidence in Evidence:
            self.classifications.labels(evidence.value)
        for result in ("committed", "aborted"):
            self.transactions.labels(result)
        for kind in KAFKA_ERROR_KINDS:
            self.kafka_errors.labels(kind)
        self.build_info.labels(__version__, CLASSIFIER_VERSION).set(1)

    def record(self, tally: Tally) -> None:
        """Apply a committed window's counts, atomically with respect to /metrics."""
        with self.lock:
            self._record(tally)

    def _record(self, tally: Tally) -> None:
        self.input_messages.inc(tally.messages)
        for outcome, n in tally.outcomes.items():
            self.events.labels(outcome).inc(n)
        breakdown: Counter[tuple[str, str, str]] = Counter()
        by_category: Counter[tuple[str, str]] = Counter()
        by_detail: Counter[tuple[str, str]] = Counter()
        for (category, os_label, et_label, detail, fresh), n in tally.failures.items():
            name = category.name
            breakdown[(name, _closed(os_label, OS_LABELS),
                       _closed(et_label, ENROLLMENT_TYPE_LABELS))] += n
            by_category[(name, "fresh" if fresh else "late")] += n
            by_detail[(name, detail if detail in DETAIL_LABELS else NO_DETAIL)] += n
        for combination, n in breakdown.items():
            self.failures.labels(*combination).inc(n)
        for pair, n in by_category.items():
            self.category_failures.labels(*pair).inc(n)
        for pair, n in by_detail.items():
            self.failure_details.labels(*pair).inc(n)
        for reason, n in tally.skipped.items():
            # Until the core names "in_progress", every reason but success is not_enrollment.
            self.skipped.labels(reason if reason in SKIPPED_REASONS else "not_enrollment").inc(n)
        self.event_age.observe_all(tally.ages)
        for error_class, n in tally.dead_letters.items():
            self.dead_letters.labels(_closed(error_class, ERROR_CLASS_LABELS)).inc(n)
        for evidence, n in tally.evidence.items():
            self.classifications.labels(evidence.value).inc(n)


def _closed(value: str, allowed: tuple[str, ...]) -> str:
    # The core already maps unknown values to "other"; this guard keeps that a promise.
    return value if value in allowed else "other"


class EventAgeHistogram(Collector):
    """``enrollment_event_age_seconds{shape}``: processing time minus the record's own event
    time, for classified and skipped records that carry one.

    A collector rather than prometheus_client's Histogram because a committed window brings
    its ages in bulk, and Histogram.observe costs about 2 us per call: per event, that is a
    sixth of the worker's CPU. The exposition is the same (buckets, sum, count, created). An
    event time in the future (clock skew) counts as age 0.
    """

    NAME: Final = "enrollment_event_age_seconds"

    def __init__(self, created: float) -> None:
        self._created = created
        self._counts = {shape: [0] * (len(AGE_BUCKETS) + 1) for shape in SHAPE_LABELS}
        self._sums = dict.fromkeys(SHAPE_LABELS, 0.0)

    def observe_all(self, ages: Iterable[tuple[str, float]]) -> None:
        counts, sums = self._counts, self._sums
        for shape, age in ages:
            label = shape if shape in counts else "other"
            seconds = max(age, 0.0)
            counts[label][bisect_left(AGE_BUCKETS, seconds)] += 1
            sums[label] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            self.NAME, "Processing time minus the record's own event time.", labels=["shape"])
        bounds = [*map(floatToGoString, AGE_BUCKETS), "+Inf"]
        for shape, counts in self._counts.items():
            family.add_metric([shape], list(zip(bounds, accumulate(counts), strict=True)),
                              self._sums[shape])
            family.samples.append(Sample(f"{self.NAME}_created", {"shape": shape},
                                         self._created))
        yield family


class ConsumerLagCollector(Collector):
    """Consumer lag per assigned partition, from the last librdkafka statistics report.

    librdkafka's own ``consumer_lag`` is measured from the committed offset, which it never
    learns in exactly-once mode (offsets are committed through the producer's transaction).
    So lag here is the end of the partition (last stable offset under read_committed) minus
    the position the worker has reached, falling back to the committed, then the earliest
    offset before the first message arrives.
    """

    def __init__(self) -> None:
        self._lag: dict[tuple[str, str], int] = {}
        self._states: dict[tuple[str, int], str] = {}  # librdkafka's fetch_state per partition

    def waiting(self) -> int:
        """Messages behind our position over all assigned partitions, per the last report."""
        return sum(self._lag.values())

    def fetch_states(self, partitions: Iterable[tuple[str, int]]) -> dict[str, int]:
        """How many of ``partitions`` are in each fetch state ("active" once the position is
        known; "none" or "offset-query" while the committed offset is still being read)."""
        states: dict[str, int] = {}
        for tp in partitions:
            state = self._states.get(tp)
            if state is not None:
                states[state] = states.get(state, 0) + 1
        return states

    def update(self, stats_json: str) -> None:
        try:
            stats = orjson.loads(stats_json)
        except orjson.JSONDecodeError:
            return
        lag: dict[tuple[str, str], int] = {}
        states: dict[tuple[str, int], str] = {}
        for topic, info in (stats.get("topics") or {}).items():
            for partition, p in (info.get("partitions") or {}).items():
                if partition == "-1":  # librdkafka's internal partition
                    continue
                with contextlib.suppress(ValueError):
                    states[(topic, int(partition))] = str(p.get("fetch_state"))
                # "none": not fetched (not ours, or its committed offset not read yet).
                if p.get("fetch_state") == "none":
                    continue
                value = partition_lag(p)
                if value is not None:
                    lag[(topic, partition)] = value
        self._lag, self._states = lag, states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("enrollment_consumer_lag_messages",
                                   "Messages behind the end of each assigned partition.",
                                   labels=["topic", "partition"])
        for (topic, partition), value in sorted(self._lag.items()):
            family.add_metric([topic, partition], value)
        yield family


def partition_lag(p: dict[str, object]) -> int | None:
    """End of partition minus our position, from one librdkafka partition statistics object."""
    def offset(name: str) -> int:
        value = p.get(name, -1)
        return value if isinstance(value, int) else -1

    end = offset("ls_offset") if offset("ls_offset") >= 0 else offset("hi_offset")
    position = next((o for o in (offset("app_offset"), offset("committed_offset"),
                                 offset("lo_offset")) if o >= 0), -1)
    if end < 0 or position < 0:
        return None
    return max(end - position, 0)


def brokers_up(stats_json: str) -> bool | None:
    """Whether librdkafka reports any broker connection UP; None if the report is unusable."""
    try:
        brokers = orjson.loads(stats_json).get("brokers") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers.values())
