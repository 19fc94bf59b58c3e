"""The Graph source's metrics, on the worker's conventions: a registry passed in, snake_case
``enrollment_`` names, ``_total`` counters, closed label sets pre-created at zero. Counts of
published events move only after their transaction committed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from worker.sources.graph.checkpoint import SKIP_REASONS
from worker.sources.graph.errors import ACTIONS

WAIT_REASONS: Final = ("throttled", "retry", "budget", "export")
SKIPPED_LABELS: Final = (*SKIP_REASONS, "unreadable")
POLL_RESULTS: Final = ("committed", "abandoned")


class GraphMetrics:
    """Implements client.Observer."""

    def __init__(self, registry: CollectorRegistry, collections: Iterable[str],
                 wall: Callable[[], float]) -> None:
        self.collections = tuple(collections)
        self.requests = PromCounter(
            "enrollment_graph_requests", "Graph and login requests, by what their answer meant.",
            ["collection", "outcome"], registry=registry)
        self.waits = PromCounter(
            "enrollment_graph_waits", "Waits before a Graph request: throttled (429, or 500/503 "
            "saying so), retry (faults), budget (requests per minute), export (a report job "
            "not ready yet).",
            ["collection", "reason"], registry=registry)
        self.wait_seconds = PromCounter(
            "enrollment_graph_wait_seconds", "Seconds spent in those waits.",
            ["collection", "reason"], registry=registry)
        self.published = PromCounter(
            "enrollment_graph_events_published", "Events committed to the input topic.",
            ["collection"], registry=registry)
        self.skipped = PromCounter(
            "enrollment_graph_events_skipped", "Events read and not published: "
            "already_published, repeated_in_read, before_window (older than the overlap "
            "window below the newest event), unreadable (no eventDateTime, not an object).",
            ["collection", "reason"], registry=registry)
        self.polls = PromCounter(
            "enrollment_graph_polls", "Polls of a collection, by result.",
            ["collection", "result"], registry=registry)
        self.ready = Gauge("enrollment_graph_source_ready", "1 when the Graph source is ready.",
                           registry=registry)
        self.checkpoints = CheckpointAgeCollector(wall)
        registry.register(self.checkpoints)
        for c in self.collections:
            for action in ACTIONS:
                self.requests.labels(c, action)
            for reason in WAIT_REASONS:
                self.waits.labels(c, reason)
                self.wait_seconds.labels(c, reason)
            self.published.labels(c)
            for reason in SKIPPED_LABELS:
                self.skipped.labels(c, reason)
            for result in POLL_RESULTS:
                self.polls.labels(c, result)

    def request(self, collection: str, action: str) -> None:
        self.requests.labels(collection, action).inc()

    def wait(self, collection: str, reason: str, seconds: float) -> None:
        reason = reason if reason in WAIT_REASONS else "retry"
        self.waits.labels(collection, reason).inc()
        self.wait_seconds.labels(collection, reason).inc(seconds)

    def committed(self, collection: str, published: int, skipped: Mapping[str, int],
                  checkpoint_time: float) -> None:
        self.published.labels(collection).inc(published)
        for reason, n in skipped.items():
            self.skipped.labels(collection, reason).inc(n)
        self.polls.labels(collection, "committed").inc()
        self.checkpoints.updated[collection] = checkpoint_time


class CheckpointAgeCollector(Collector):
    """Seconds since each collection's checkpoint was last committed (or restored), computed
    at scrape time: it grows while polls fail, which is what an alert wants to see."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self.wall = wall
        self.updated: dict[str, float] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("enrollment_graph_checkpoint_age_seconds",
                                   "Seconds since the collection's checkpoint was committed.",
                                   labels=["collection"])
        now = self.wall()
        for collection, at in sorted(self.updated.items()):
            family.add_metric([collection], max(now - at, 0.0))
        yield family
