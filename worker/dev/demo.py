"""``python -m worker demo``: see the worker classify a live stream in under a minute.

Starts the local Kafka broker (:mod:`worker.dev.devbroker`) unless ``KAFKA_BOOTSTRAP_SERVERS``
names one, creates the three topics, feeds realistic sample events (:mod:`worker.dev.samples`)
at a steady rate, runs the real worker on them, and prints per-category counts every few
seconds while ``/metrics`` serves the same numbers. Ctrl-C stops everything and cleans up.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from worker.classify.taxonomy import FailureCategory
from worker.dev.devbroker import LocalKafka, create_topics
from worker.dev.samples import generate
from worker.stream import logs
from worker.stream.loop import run
from worker.stream.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=50.0,
                        help="sample messages per second (each may hold many events)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--metrics-port", type=int, default=9108)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--status-every", type=float, default=5.0, metavar="SECONDS")


@contextlib.contextmanager
def _broker() -> Iterator[str]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        print(f"using the Kafka cluster at {existing}", flush=True)
        yield existing
        return
    print("starting a local Kafka broker (first run downloads Kafka from Maven Central)...",
          flush=True)
    with LocalKafka() as broker:
        print(f"local Kafka broker on {broker.bootstrap}", flush=True)
        yield broker.bootstrap


def _feed(bootstrap: str, topic: str, rate: float, stop: threading.Event) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    for message in generate(10**9, seed=int(time.time())):
        if stop.is_set():
            break
        producer.produce(topic, message.value, message.key)
        producer.poll(0)
        next_at += interval
        stop.wait(max(0.0, next_at - time.monotonic()))
    producer.flush(10)


def _status(registry: CollectorRegistry, stop: threading.Event, every: float) -> None:
    started = time.monotonic()
    while not stop.wait(every):
        per_category = dict.fromkeys((c.name for c in FailureCategory), 0.0)
        outcomes: dict[str, float] = {}
        for metric in registry.collect():
            for sample in metric.samples:
                if sample.name == "enrollment_failures_total":
                    per_category[sample.labels["failure_category"]] += sample.value
                elif sample.name == "enrollment_events_total":
                    outcomes[sample.labels["outcome"]] = sample.value
        top = sorted(per_category.items(), key=lambda kv: -kv[1])[:4]
        print(f"[{time.monotonic() - started:4.0f}s] "
              + " ".join(f"{k}={v:.0f}" for k, v in sorted(outcomes.items()))
              + " | top categories: " + ", ".join(f"{k}={v:.0f}" for k, v in top), flush=True)


def main(args: argparse.Namespace) -> int:
    logs.setup("WARNING")  # keep the terminal for the status lines; errors still show
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stop.set())
    if args.duration > 0:
        threading.Timer(args.duration, stop.set).start()
    with _broker() as bootstrap:
        settings = Settings(bootstrap_servers=bootstrap, metrics_port=args.metrics_port,
                            metrics_address="127.0.0.1", transactional_id=f"demo-{os.getpid()}")
        create_topics(bootstrap, [settings.input_topic, settings.output_topic,
                                  settings.dead_letter_topic], partitions=args.partitions)
        registry = CollectorRegistry()
        threads = [threading.Thread(target=_feed, args=(bootstrap, settings.input_topic,
                                                          args.rate, stop), daemon=True),
                   threading.Thread(target=_status, args=(registry, stop, args.status_every),
                                    daemon=True)]
        for t in threads:
            t.start()
        print(f"worker running: curl -s http://127.0.0.1:{args.metrics_port}/metrics | grep "
              "enrollment_failures_total   (Ctrl-C stops)", flush=True)
        code = run(settings, stop, registry)
        stop.set()
        for t in threads:
            t.join(15)
    logging.shutdown()
    print("demo stopped; the local broker and its data were removed", file=sys.stderr)
    return code
