"""The Kafka side of the Graph source: one transaction per poll of a collection, holding its
new events (to the input topic) and its next checkpoint (to the compacted checkpoint topic).

Exactly once: ``init_transactions`` with the source's stable transactional id fences any
earlier instance and aborts its open transaction, *then* the checkpoints are read with
read_committed. What a crash left half-written is thus gone before anything is decided, and
what committed is in the checkpoint. Kafka errors are judged by stream.clients.error_kind and
retried by stream.commit.retry, as the worker's own commits are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from worker.sources.graph.checkpoint import Checkpoint, checkpoint_key, decode, encode
from worker.sources.graph.endpoints import COLLECTION_HEADER
from worker.sources.graph.events import Event
from worker.stream.clients import consumer_config, consumer_error_kind, kafka_error
from worker.stream.commit import FatalKafkaError, WindowAborted, produce, retry
from worker.stream.settings import Settings

log = logging.getLogger("worker.sources.graph")
Clock = Callable[[], float]
_JSON: Final = ("content-type", b"application/json")


class Publisher:
    def __init__(self, producer: Producer, settings: Settings, *, checkpoint_topic: str,
                 tenant: str, clock: Clock, on_backpressure: Callable[[], None],
                 op_timeout_s: float = 30.0) -> None:
        self.producer, self.settings, self.clock = producer, settings, clock
        self.checkpoint_topic, self.tenant = checkpoint_topic, tenant
        self.on_backpressure, self.op_timeout_s = on_backpressure, op_timeout_s

    def start(self) -> None:
        """Fence earlier instances. Raises FatalKafkaError or WindowAborted (retry later)."""
        self._retry("init_transactions", lambda: self.producer.init_transactions(
            self.op_timeout_s))

    def commit_poll(self, collection: str, events: Iterable[Event],
                    checkpoint: Checkpoint) -> None:
        """Publish the events and the checkpoint atomically. Raises WindowAborted (nothing
        was published; poll again) or FatalKafkaError."""
        headers: list[tuple[str, str | bytes | None]] = [
            (COLLECTION_HEADER, collection.encode()), _JSON]
        self._retry("begin_transaction", self.producer.begin_transaction)
        try:
            for event in events:
                self._produce(self.settings.input_topic, event.value, event.key, headers)
            self._produce(self.checkpoint_topic,
                          encode(checkpoint, tenant=self.tenant, collection=collection),
                          checkpoint_key(self.tenant, collection), [_JSON])
            self._retry("commit_transaction",
                        lambda: self.producer.commit_transaction(self.op_timeout_s))
        except WindowAborted:
            self._abort()
            raise

    def _produce(self, topic: str, value: bytes, key: bytes,
                 headers: list[tuple[str, str | bytes | None]]) -> None:
        produce(self.producer, topic, value, key, headers, clock=self.clock, block_s=60.0,
                on_backpressure=self.on_backpressure)

    def _abort(self) -> None:
        try:
            self._retry("abort_transaction",
                        lambda: self.producer.abort_transaction(self.op_timeout_s))
        except WindowAborted as exc:  # an abort that fails leaves the producer unusable
            raise FatalKafkaError(str(exc)) from exc

    def _retry(self, what: str, op: Callable[[], Any]) -> None:
        retry(what, op, clock=self.clock, timeout_s=self.op_timeout_s)

    # ------------------------------------------------------------------ checkpoints
    def load_checkpoints(self, collections: Iterable[str], *, timeout_s: float = 60.0
                         ) -> dict[str, Checkpoint]:
        """The latest committed checkpoint of each collection (an empty one when none).
        Creates the compacted topic if it is missing. Raises WindowAborted (the cluster did
        not answer in time: try again), FatalKafkaError, or CheckpointError for a record that
        cannot be read."""
        try:
            return self._load(collections, timeout_s)
        except KafkaException as exc:  # metadata or admin requests that timed out
            err = kafka_error(exc)
            # Judged like a consumer's errors: timeouts and transport are transient here.
            if err is not None and consumer_error_kind(err) == "fatal":
                raise FatalKafkaError(f"checkpoints: {err}") from exc
            raise WindowAborted(f"checkpoints: {err or exc}") from exc

    def _load(self, collections: Iterable[str], timeout_s: float) -> dict[str, Checkpoint]:
        self._ensure_topic()
        wanted = {checkpoint_key(self.tenant, c): c for c in collections}
        found: dict[str, Checkpoint] = {c: Checkpoint() for c in wanted.values()}
        consumer = Consumer({**consumer_config(self.settings), "enable.partition.eof": True,
                             "statistics.interval.ms": 0,
                             "logger": logging.getLogger("librdkafka.checkpoints")})
        try:
            for key, value in _read_to_end(consumer, self.checkpoint_topic, self.clock,
                                           timeout_s):
                if key in wanted:
                    name = wanted[key]
                    found[name] = Checkpoint() if value is None else decode(value)
        finally:
            consumer.close()
        return found

    def _ensure_topic(self) -> None:
        common = {k: v for k, v in self.settings.rdkafka().items()
                  if not k.startswith(("consumer.", "producer."))}
        admin = AdminClient({"bootstrap.servers": self.settings.bootstrap_servers, **common})
        if self.checkpoint_topic in admin.list_topics(timeout=self.op_timeout_s).topics:
            return
        topic = NewTopic(self.checkpoint_topic, num_partitions=1, replication_factor=-1,
                         config={"cleanup.policy": "compact"})
        future = admin.create_topics([topic], operation_timeout=self.op_timeout_s)[
            self.checkpoint_topic]
        try:
            future.result(self.op_timeout_s)
            log.info("created the checkpoint topic", extra={"topic": self.checkpoint_topic})
        except Exception as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else exc
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return
            raise FatalKafkaError(f"checkpoint topic {self.checkpoint_topic} is missing and "
                                  f"cannot be created ({err}); create it with "
                                  "cleanup.policy=compact") from exc


def _read_to_end(consumer: Consumer, topic: str, clock: Clock, timeout_s: float
                 ) -> Iterable[tuple[bytes | None, bytes | None]]:
    """Every committed record of ``topic`` from the start to its end (read_committed)."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
    consumer.assign(partitions)
    pending = {p.partition for p in partitions}
    deadline = clock() + timeout_s
    while pending:
        if clock() > deadline:
            raise FatalKafkaError(f"could not read {topic} to its end in {timeout_s:.0f}s")
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition() or 0)
                continue
            if error.fatal():
                raise FatalKafkaError(f"reading {topic}: {error}")
            continue  # transient: the client reconnects
        yield message.key(), message.value()
