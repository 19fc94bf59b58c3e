"""Runner-side helpers for bench/run.py: the preloaded input, fresh topics, and how a run is
observed from the broker's side (committed offsets, output records).

Every loop here is bounded by a deadline; every address is the local broker on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from worker.dev.devbroker import create_topics
from worker.dev.samples import SampleMessage

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUTPUT_OUTCOMES = ("classified", "dead_letter")  # skipped records produce no output record


@dataclass
class Preloaded:
    """What was written to an input topic, counted the way every contender is measured."""

    topic: str
    partitions: int
    messages: int = 0
    events: int = 0  # records inside the messages (one outcome each): the unit of "events/s"
    classified: int = 0
    dead_letters: int = 0
    skipped: int = 0
    bytes: int = 0
    end_offsets: dict[int, int] = field(default_factory=dict)
    produced_at: dict[tuple[int, int], int] = field(default_factory=dict)  # (p, off) -> ms

    @property
    def outputs(self) -> int:
        return self.classified + self.dead_letters

    @property
    def events_per_message(self) -> float:
        return self.events / self.messages if self.messages else 0.0


def count(pre: Preloaded, sample: SampleMessage) -> None:
    pre.messages += 1
    pre.bytes += len(sample.value or b"")
    for record in sample.expected:
        pre.events += 1
        if record.outcome == "classified":
            pre.classified += 1
        elif record.outcome == "dead_letter":
            pre.dead_letters += 1
        else:
            pre.skipped += 1


def describe(samples: Iterable[SampleMessage], partitions: int) -> Preloaded:
    """The counts of a sample set that is not produced anywhere."""
    pre = Preloaded("", partitions)
    for sample in samples:
        count(pre, sample)
    return pre


def input_producer(bootstrap: str, **extra: object) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                     "compression.type": "lz4", "queue.buffering.max.kbytes": 262144, **extra})


def produce(producer: Producer, topic: str, sample: SampleMessage, deadline: float, *,
            on_delivery: object = None, timestamp: int = 0) -> None:
    """Produce one message; a full local queue waits (bounded by ``deadline``), never drops."""
    while True:
        try:
            producer.produce(topic, sample.value, sample.key, on_delivery=on_delivery,
                             timestamp=timestamp)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise TimeoutError("input producer queue stayed full") from None
            producer.poll(0.05)


def preload(bootstrap: str, topic: str, partitions: int, samples: Iterable[SampleMessage],
            timeout: float = 1800.0) -> Preloaded:
    """Create ``topic`` and write every sample to it; counts come from the samples' oracle."""
    create_topics(bootstrap, [topic], partitions)
    pre, failures = Preloaded(topic, partitions), []
    producer = input_producer(bootstrap)
    deadline = time.monotonic() + timeout

    def report(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for sample in samples:
        produce(producer, topic, sample, deadline, on_delivery=report)
        producer.poll(0)
        count(pre, sample)
    if producer.flush(max(1.0, deadline - time.monotonic())) or failures:
        raise RuntimeError(f"preload of {topic} failed: {failures[:3]}")
    pre.end_offsets = end_offsets(bootstrap, topic, partitions)
    return pre


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10.0)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def new_topics(bootstrap: str, partitions: int, *names: str,
               append_time: bool = True) -> list[str]:
    """Fresh topics. Output topics stamp records with the broker's append time, so "first
    output" means the same for every contender (Quix copies the input's timestamp to its
    outputs; the others let the client stamp produce time)."""
    tag = uuid.uuid4().hex[:8]
    topics = [f"bench-{n}-{tag}" for n in names]
    config = {"message.timestamp.type": "LogAppendTime"} if append_time else {}
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1, config=config)
           for t in topics]
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})  # outlives futures
    for fut in admin.create_topics(new).values():
        fut.result(30)
    create_topics(bootstrap, topics, partitions)  # waits until every partition has a leader
    return topics


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Best effort: the outputs of a run are not needed once counted (keeps the disk small)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures = admin.delete_topics(topics, operation_timeout=10)
    for fut in futures.values():
        with contextlib.suppress(Exception):
            fut.result(15)


class CommitWatch:
    """Polls a group's committed input offsets (cheap OffsetFetch requests, not a member)."""

    def __init__(self, bootstrap: str, group: str, topic: str, ends: dict[int, int]) -> None:
        self.ends, self.topic = ends, topic
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False,
                                  "isolation.level": "read_uncommitted"})

    def done(self) -> bool:
        tps = [TopicPartition(self.topic, p) for p in self.ends]
        try:
            got = {tp.partition: tp.offset for tp in self.consumer.committed(tps, timeout=5.0)}
        except Exception:
            return False
        # an empty partition never gets a committed offset, and needs none
        return all(end == 0 or got.get(p, -1) >= end for p, end in self.ends.items())

    def wait(self, timeout: float, alive: object = None, interval: float = 0.025) -> float | None:
        """Wall-clock time (s) at which every partition was committed to its end, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.done():
                return time.time()
            if callable(alive) and not alive():
                return None
            time.sleep(interval)
        return None

    def close(self) -> None:
        self.consumer.close()


class OutputWatch(CommitWatch):
    """For a contender that commits nothing (the bare ceiling): done when ``topic`` (not
    transactional) holds ``count`` records, i.e. the last output is appended and visible."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, count: int) -> None:
        super().__init__(bootstrap, "bench-watermarks", topic, dict.fromkeys(range(partitions), 0))
        self.count = count

    def done(self) -> bool:
        try:
            return sum(self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), 5.0)[1]
                       for p in self.ends) >= self.count
        except Exception:
            return False


@dataclass
class OutputStats:
    records: dict[str, int]
    first_ms: int | None
    last_ms: int | None
    duplicates: int


def read_outputs(bootstrap: str, topics: list[str], partitions: int,
                 timeout: float = 600.0) -> OutputStats:
    """Read every committed record (read_committed) of ``topics`` once, counting duplicates
    by source coordinates (headers) where the records carry them."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": True, "fetch.max.bytes": 52428800})
    assignment = [TopicPartition(t, p, -2) for t in topics for p in range(partitions)]
    consumer.assign(assignment)
    pending = {(tp.topic, tp.partition) for tp in assignment}
    records = dict.fromkeys(topics, 0)
    first = last = None
    seen: set[int] = set()
    duplicates = 0
    deadline = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            for m in consumer.consume(5000, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard((m.topic(), m.partition()))
                    continue
                records[m.topic()] += 1
                ts = m.timestamp()[1]
                first = ts if first is None or ts < first else first
                last = ts if last is None or ts > last else last
                if _has_provenance(m.headers()):
                    # Outputs are deterministic and name their source record in the body,
                    # so equal bytes mean the same input record was published twice.
                    key = hash(m.value())
                    duplicates += key in seen
                    seen.add(key)
    finally:
        consumer.close()
    if pending:
        raise TimeoutError(f"outputs not read to the end within {timeout:.0f}s: {pending}")
    return OutputStats(records, first, last, duplicates)


def _has_provenance(headers: list[tuple[str, bytes]] | None) -> bool:
    return any(name == "x-source-offset" for name, _ in headers or ())
