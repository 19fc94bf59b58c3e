"""``python -m worker pull-graph``: poll Graph, publish new events exactly once, repeat.

Exit codes: 0 stopped (SIGTERM/SIGINT) or ``--once`` done, 2 bad configuration, 3 fatal (Graph
refused the credentials or a permission, Kafka fenced or refused us, a checkpoint cannot be
read), 4 ``--once`` could not finish a poll (Graph kept failing; nothing half-published).
"""

from __future__ import annotations

import argparse
import logging
import random
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from confluent_kafka import KafkaError, KafkaException, Producer
from prometheus_client import CollectorRegistry

from worker._version import __version__
from worker.contracts.exit_codes import EXIT_FATAL, EXIT_OK, EXIT_POLL_FAILED, EXIT_USAGE
from worker.sources.graph import settings as source_settings
from worker.sources.graph.auth import MsalTokens, certificate_credential
from worker.sources.graph.backoff import BackoffPolicy, RequestBudget
from worker.sources.graph.checkpoint import Checkpoint, CheckpointError, select_new
from worker.sources.graph.client import GraphReader, Pacing, PollAbandoned, Stopped
from worker.sources.graph.endpoints import COLLECTIONS, Collection
from worker.sources.graph.errors import GraphFatalError
from worker.sources.graph.events import Event, Unreadable, read_event
from worker.sources.graph.export import export_rows
from worker.sources.graph.health import SourceHealth
from worker.sources.graph.metrics import GraphMetrics
from worker.sources.graph.paging import collection_url
from worker.sources.graph.publish import Publisher
from worker.stream import logs, probes
from worker.stream.clients import producer_config
from worker.stream.commit import FatalKafkaError, WindowAborted
from worker.stream.loop import stop_on_signals
from worker.stream.settings import for_command

log = logging.getLogger("worker.sources.graph")
T = TypeVar("T")


def run_from_args(args: argparse.Namespace) -> int:
    settings = for_command(args, source_settings.load)
    if isinstance(settings, int):
        return settings
    logs.setup(settings.kafka.log_level)
    # httpx logs every request's URL at INFO; a report download's URL carries its signature.
    # The source logs what matters (retries, outcomes) itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return run(settings, stop_on_signals(), CollectorRegistry(),
               once=bool(getattr(args, "once", False)))


@dataclass(frozen=True, slots=True)
class Clocks:
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time


def run(settings: source_settings.SourceSettings, stop: threading.Event,
        registry: CollectorRegistry, *, once: bool, clocks: Clocks = Clocks()) -> int:
    """Run until stopped (or one round with ``once``). Returns an exit code."""
    graph = settings.graph
    try:
        credential = _credential(graph)
    except ValueError as exc:
        print(f"error: --certificate-file / GRAPH_CERTIFICATE_FILE: {exc}", file=sys.stderr)
        return EXIT_USAGE
    health = SourceHealth(clocks.monotonic)
    metrics = GraphMetrics(registry, graph.collection_names(), clocks.wall)
    metrics.ready.set_function(lambda: 1.0 if health.ready() else 0.0)
    try:
        server, _ = probes.serve(settings.kafka.metrics_address, settings.kafka.metrics_port,
                                 registry, health)
    except OSError as exc:
        log.error("cannot open the metrics port", extra={"error": str(exc)})
        return EXIT_FATAL
    log.info("Graph source starting", extra={"settings": str(settings),
                                             "metrics_port": server.server_port})
    http = _http_client(graph)
    try:
        try:
            source = GraphSource(settings, http, credential=credential, health=health,
                                 metrics=metrics, stop=stop, clocks=clocks)
        except KafkaException as exc:
            log.error("invalid Kafka client configuration", extra={"error": str(exc.args[0])})
            return EXIT_USAGE
        return source.run(once)
    finally:
        health.stopping = True
        http.close()
        server.shutdown()


def _credential(graph: source_settings.GraphSettings) -> str | dict[str, str]:
    """The secret, else the certificate (the settings hold exactly one). Raises ValueError."""
    if graph.client_secret is not None:
        return graph.client_secret.get_secret_value()
    if graph.certificate_file is None:
        raise ValueError("no credential")
    return certificate_credential(graph.certificate_file)


def _http_client(graph: source_settings.GraphSettings) -> httpx.Client:
    verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=str(graph.ca_file))
                                     if graph.ca_file else True)
    return httpx.Client(verify=verify, timeout=graph.request_timeout_s,
                        headers={"User-Agent": f"enrollment-classifier/{__version__}"},
                        follow_redirects=False)


class GraphSource:
    def __init__(self, settings: source_settings.SourceSettings, http: httpx.Client, *,
                 credential: str | dict[str, str], health: SourceHealth,
                 metrics: GraphMetrics, stop: threading.Event, clocks: Clocks) -> None:
        graph = settings.graph
        self.graph, self.health, self.metrics, self.stop = graph, health, metrics, stop
        self.clocks = clocks
        tokens = MsalTokens(authority_url=graph.authority_url, tenant_id=graph.tenant_id,
                            client_id=graph.client_id, credential=credential,
                            graph_url=graph.graph_url, http=http)
        self.reader = GraphReader(
            http, tokens, graph_url=graph.graph_url,
            policy=BackoffPolicy(graph.backoff_base_s, graph.backoff_cap_s, graph.max_attempts),
            budget=RequestBudget(graph.requests_per_minute),
            pacing=Pacing(clocks.monotonic, clocks.wall, self.sleep, random.random),
            observer=metrics)
        self.producer = Producer({**producer_config(settings.kafka), "error_cb": _kafka_error,
                                  "logger": logging.getLogger("librdkafka.producer")})
        self.publisher = Publisher(self.producer, settings.kafka,
                                   checkpoint_topic=graph.checkpoint_topic,
                                   tenant=graph.tenant_id, clock=clocks.monotonic,
                                   on_backpressure=lambda: None)
        self.checkpoints: dict[str, Checkpoint] = {}

    def sleep(self, seconds: float) -> bool:
        """Wait, beating the liveness clock; True when told to stop."""
        deadline = self.clocks.monotonic() + seconds
        while not self.stop.is_set():
            self.health.beat()
            left = deadline - self.clocks.monotonic()
            if left <= 0:
                return False
            self.stop.wait(min(left, 5.0))
        return True

    def run(self, once: bool) -> int:
        try:
            self._start()
            while True:
                failed = [name for name in self.graph.collection_names()
                          if not self.poll(name)]
                if once:
                    return EXIT_POLL_FAILED if failed else EXIT_OK
                if self.sleep(self.graph.poll_interval_s):
                    return EXIT_OK
        except Stopped:
            return EXIT_OK
        except (GraphFatalError, FatalKafkaError, CheckpointError) as exc:
            log.error("Graph source stopped", extra={
                "error": str(exc), "kind": type(exc).__name__, "hint": _HINTS[type(exc)]})
            return EXIT_FATAL
        finally:
            self.producer.flush(10)

    def _start(self) -> None:
        self._until_kafka_answers(self.publisher.start)
        self.health.started = True
        self.checkpoints = self._until_kafka_answers(
            lambda: self.publisher.load_checkpoints(self.graph.collection_names()))
        for name, checkpoint in self.checkpoints.items():
            if checkpoint.updated_at is not None:
                self.metrics.checkpoints.updated[name] = checkpoint.updated_at
        self.health.checkpoints_loaded = True
        self.health.beat()

    def _until_kafka_answers(self, op: Callable[[], T]) -> T:
        """Brokers not reachable yet (a cluster starting with us): keep trying, 5 s apart."""
        while True:
            try:
                return op()
            except WindowAborted as exc:
                log.warning("Kafka not ready", extra={"error": str(exc)})
                if self.sleep(5.0):
                    raise Stopped() from exc

    def _read(self, collection: Collection) -> list[Any]:
        if collection.kind == "export":
            return export_rows(self.reader, collection, poll_s=self.graph.export_poll_s,
                               timeout_s=self.graph.export_timeout_s)
        return list(self.reader.items(collection, collection_url(
            self.graph.graph_url, collection.path, None)))

    def poll(self, name: str) -> bool:
        """Read one collection completely and publish what is new. True when committed."""
        collection = COLLECTIONS[name]
        self.health.beat()
        try:
            items = self._read(collection)
            events, unreadable = _readable(collection, items)
            selection = select_new(self.checkpoints[name], events,
                                   overlap_s=self.graph.overlap_s, now=self.clocks.wall())
            self.publisher.commit_poll(name, selection.new, selection.checkpoint)
        except (PollAbandoned, WindowAborted) as exc:
            self.metrics.polls.labels(name, "abandoned").inc()
            log.warning("poll abandoned; nothing was published", extra={
                "collection": name, "error": str(exc)})
            return False
        self.checkpoints[name] = selection.checkpoint
        skipped = selection.skipped + Counter({"unreadable": unreadable})
        self.metrics.committed(name, len(selection.new), skipped,
                               selection.checkpoint.updated_at or self.clocks.wall())
        log.info("poll committed", extra={"collection": name, "read": len(items),
                                          "published": len(selection.new), **skipped})
        return True


_HINTS: dict[type[Exception], str] = {
    GraphFatalError: "the error says what to change in the app registration or settings",
    FatalKafkaError: "fenced: another instance with this GRAPH_TRANSACTIONAL_ID took over (run "
                     "one per tenant); otherwise check the Kafka credentials, ACLs and topics",
    CheckpointError: "see deploy/RUNBOOK.md, Graph source: an unreadable checkpoint",
}


def _readable(collection: Collection, items: list[Any]) -> tuple[list[Event], int]:
    events: list[Event] = []
    refused: list[Unreadable] = []
    for item in items:
        read = read_event(item, id_field=collection.id_field, time_field=collection.time_field,
                          shape=collection.shape)
        if isinstance(read, Event):
            events.append(read)
        else:
            refused.append(read)
    if refused:
        log.warning("events without a readable time are not published", extra={
            "collection": collection.name, "field": collection.time_field, "count": len(refused),
            "examples": [f"{u.id} ({u.reason})" for u in refused[:5]]})
    return events, len(refused)


def _kafka_error(err: KafkaError) -> None:
    log.warning("Kafka client error", extra={"error": str(err), "fatal": err.fatal()})
