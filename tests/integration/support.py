"""Helpers for tests against a real broker: the worker as a real process, topic readers,
and the expected outcome of every produced sample (from worker.dev.samples, an independent
oracle written from the reference document)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from worker.dev.samples import ExpectedRecord, SampleMessage, generate

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Topics:
    input: str
    output: str
    dead: str


@dataclass
class Produced:
    """Where each sample landed, so outputs can be checked against its expectations."""

    expected: dict[tuple[int, int], tuple[ExpectedRecord, ...]] = field(default_factory=dict)

    def counts(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for records in self.expected.values():
            for r in records:
                c[r.outcome] += 1
                if r.outcome == "classified":
                    c[f"category.{r.category}"] += 1
        return c


def produce_samples(bootstrap: str, topic: str, messages: Iterable[SampleMessage],
                    produced: Produced | None = None) -> Produced:
    produced = produced or Produced()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    failures: list[str] = []

    for sample in messages:
        def report(err: Any, msg: Any, sample: SampleMessage = sample) -> None:
            if err is not None:
                failures.append(str(err))
            else:
                produced.expected[(msg.partition(), msg.offset())] = sample.expected
        while True:
            try:
                producer.produce(topic, sample.value, sample.key, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(30) == 0, "input not delivered"
    assert not failures, failures
    return produced


def samples(count: int, seed: int, bad_ratio: float = 0.02) -> list[SampleMessage]:
    return list(generate(count, seed=seed, bad_ratio=bad_ratio))


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict[str, Any]
    headers: dict[str, bytes]
    raw: bytes = b""  # the value as it is on the wire
    raw_headers: list[tuple[str, bytes]] = field(default_factory=list)


def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 120.0,
               settle: float = 2.0) -> list[Record]:
    """Read committed records until ``expect`` arrived, then ``settle`` more seconds so
    duplicates would show; fails if fewer arrive in time."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while True:
            now = time.monotonic()
            if settle_until is None and len(records) >= expect:
                settle_until = now + settle
            if settle_until is not None and now > settle_until:
                return records
            if now > deadline:
                raise AssertionError(f"{topic}: {len(records)} of {expect} records after "
                                     f"{timeout:.0f}s")
            for m in consumer.consume(1000, 0.5):
                if m.error() is None:
                    records.append(Record(m.topic() or "", m.partition() or 0, m.offset() or 0,
                                          m.key(), orjson.loads(m.value() or b"null"),
                                          dict(m.headers() or []), m.value() or b"",
                                          list(m.headers() or [])))
    finally:
        consumer.close()


def source_of(record: Record) -> tuple[int, int, int]:
    """(input partition, input offset, record index) of an output or dead letter."""
    h = record.headers
    index = record.value["source"]["recordIndex"]
    return int(h["x-source-partition"]), int(h["x-source-offset"]), index or 0


def check_against_oracle(outputs: list[Record], dead: list[Record], produced: Produced) -> None:
    """Every good input exactly once with the expected category; every bad one exactly once
    in dead letters; successes nowhere."""
    seen = Counter(source_of(r) for r in outputs)
    dupes = [k for k, n in seen.items() if n > 1]
    assert not dupes, f"duplicated outputs: {dupes[:5]}"
    dead_seen = Counter(source_of(r) for r in dead)
    assert not [k for k, n in dead_seen.items() if n > 1], "duplicated dead letters"
    for r in outputs:
        p, off, idx = source_of(r)
        expected = produced.expected[(p, off)][idx]
        assert expected.outcome == "classified", (r.value["source"], expected)
        assert r.value["failureCategory"] == expected.category, (r.value, expected)
    for r in dead:
        p, off, idx = source_of(r)
        assert produced.expected[(p, off)][idx].outcome == "dead_letter"
    counts = produced.counts()
    assert len(outputs) == counts["classified"]
    assert len(dead) == counts["dead_letter"]


def read_and_check(bootstrap: str, topics: Topics,
                   produced: Produced) -> tuple[list[Record], list[Record]]:
    """Read the output and dead-letter topics until the oracle's counts arrived, then judge
    them with check_against_oracle; returns (outputs, dead letters)."""
    counts = produced.counts()
    outputs = read_topic(bootstrap, topics.output, expect=counts["classified"])
    dead = read_topic(bootstrap, topics.dead, expect=counts["dead_letter"])
    check_against_oracle(outputs, dead, produced)
    return outputs, dead


class WorkerProcess:
    """``python -m worker run`` as a real child process, configured through the environment;
    ``command`` runs another subcommand (a batch job) with the same configuration."""

    def __init__(self, bootstrap: str, topics: Topics, group: str, *,
                 guarantee: str = "exactly-once", transactional_id: str | None = None,
                 env: dict[str, str] | None = None, log_dir: Path,
                 port: int | None = None, command: tuple[str, ...] = ("run",)) -> None:
        self.port = port or free_port()  # a restarted worker keeps its scrape address
        self.command = command
        self.env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "CLASSIFIER_INPUT_TOPIC": topics.input,
                    "CLASSIFIER_OUTPUT_TOPIC": topics.output,
                    "CLASSIFIER_DEAD_LETTER_TOPIC": topics.dead,
                    "CLASSIFIER_GROUP_ID": group, "CLASSIFIER_GUARANTEE": guarantee,
                    "CLASSIFIER_TRANSACTIONAL_ID": transactional_id or f"it-{uuid.uuid4().hex}",
                    "CLASSIFIER_METRICS_PORT": str(self.port),
                    "CLASSIFIER_METRICS_ADDRESS": "127.0.0.1",
                    "CLASSIFIER_STATS_INTERVAL_MS": "1000",
                    "RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS": "10000",
                    **(env or {})}
        self.log_path = log_dir / f"worker-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "worker", *self.command], cwd=ROOT,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        wait_for(lambda: self.ready() or not self.alive(), timeout, "worker readiness")
        assert self.alive(), self.logs()
        return self

    def status(self) -> dict[str, Any]:
        _, body = self.get("/readyz")
        return orjson.loads(body) if body else {}  # type: ignore[no-any-return]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, body = self.get("/metrics")
        assert code == 200
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def metric_if_up(self, name: str, *, unreachable: float = 0.0, **labels: str) -> float:
        """Like metric(), but ``unreachable`` while the port does not answer (a worker that
        was just killed or is still starting)."""
        if self.get("/metrics")[0] != 200:
            return unreachable
        return self.metric(name, **labels)

    def metric_sum(self, name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in self.metrics().items()
                   if n == name and all(dict(ls).get(k) == val for k, val in labels.items()))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took)."""
        assert self.proc is not None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - start

    def wait(self, timeout: float = 120.0) -> int:
        """Wait for the process to end by itself (a batch job); its exit code."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout:.0f}s:\n{self.logs()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def close(self) -> None:
        self.kill()
        if hasattr(self, "log"):
            self.log.close()
