"""Every Prometheus metric the worker exports, declared on a registry passed in.

Counters that describe published events move only after the batch that produced them has
committed (see :class:`Tally`), so ``enrollment_failures_total`` equals what consumers of
the output topic can read. Label values come from closed sets, pre-created at zero so rates
exist before the first event, and hostile input cannot create new series: an unknown OS or
enrollment type is counted as ``other``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import orjson
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from worker._version import __version__
from worker.classify import catalog
from worker.classify.core import CLASSIFIER_VERSION, Classified, DeadLetter, Outcome, Skipped
from worker.classify.decode import ERROR_CLASSES
from worker.classify.taxonomy import Evidence, FailureCategory

OUTCOMES: Final = ("classified", "dead_lettered", "skipped_success", "skipped_other")
OS_LABELS: Final = (*sorted(set(catalog.OPERATING_SYSTEMS.values())), "other", "unknown")
ENROLLMENT_TYPE_LABELS: Final = (*catalog.ENROLLMENT_TYPES, "other")
ERROR_CLASS_LABELS: Final = (*ERROR_CLASSES, "internal_error")
KAFKA_ERROR_KINDS: Final = ("retriable", "abortable", "fatal")


@dataclass(slots=True)
class Tally:
    """What one commit window produced; applied to the counters only once it commits."""

    messages: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # Keyed by enum members, named only when applied: Enum.name and .value are slow
    # properties, and this runs once per event.
    failures: Counter[tuple[FailureCategory, str, str]] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    evidence: Counter[Evidence] = field(default_factory=Counter)

    def add_all(self, outcomes: Iterable[Outcome]) -> None:
        """Count one message's outcomes."""
        outcome_counts, failures, evidence = self.outcomes, self.failures, self.evidence
        classified = 0
        for o in outcomes:
            if o.__class__ is Classified:  # the common case first
                c: Classified = o
                classified += 1
                failures[(c.category, c.os_label, c.enrollment_type_label)] += 1
                evidence[c.evidence] += 1
            elif isinstance(o, DeadLetter):
                outcome_counts["dead_lettered"] += 1
                self.dead_letters[o.error_class] += 1
            elif isinstance(o, Skipped):
                outcome_counts["skipped_success" if o.reason == "success"
                               else "skipped_other"] += 1
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
        for (category, os_label, et_label), n in tally.failures.items():
            self.failures.labels(category.name, _closed(os_label, OS_LABELS),
                                 _closed(et_label, ENROLLMENT_TYPE_LABELS)).inc(n)
        for error_class, n in tally.dead_letters.items():
            self.dead_letters.labels(_closed(error_class, ERROR_CLASS_LABELS)).inc(n)
        for evidence, n in tally.evidence.items():
            self.classifications.labels(evidence.value).inc(n)


def _closed(value: str, allowed: tuple[str, ...]) -> str:
    # The core already maps unknown values to "other"; this guard keeps that a promise.
    return value if value in allowed else "other"


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

    def update(self, stats_json: str) -> None:
        try:
            stats = orjson.loads(stats_json)
        except orjson.JSONDecodeError:
            return
        lag: dict[tuple[str, str], int] = {}
        for topic, info in (stats.get("topics") or {}).items():
            for partition, p in (info.get("partitions") or {}).items():
                # Partition -1 is librdkafka's internal one; "none" means not fetched by us.
                if partition == "-1" or p.get("fetch_state") == "none":
                    continue
                value = partition_lag(p)
                if value is not None:
                    lag[(topic, partition)] = value
        self._lag = lag

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
