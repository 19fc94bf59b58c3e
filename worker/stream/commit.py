"""How offsets are committed: the one place that decides when input counts as done.

A *commit window* collects the outputs and input offsets of one or more consumed batches.
:class:`CommitPolicy` says when to close it (time passed in, so tests need no sleeps).

* :class:`TransactionalCommitter` (exactly-once, the default): outputs, dead letters and the
  consumer offsets go into one Kafka transaction (KIP-447: ``send_offsets_to_transaction``
  with the consumer's group metadata). On an abortable error the transaction is aborted and
  the consumer rewound to the window's first offsets, so the batch is read again.
* :class:`AckedCommitter` (at-least-once): offsets are committed synchronously only after the
  producer has flushed and every delivery report in the window was a success. A failed
  delivery rewinds instead; re-reading may publish duplicates, which is the contract.

Counts for the window (:class:`~worker.stream.metrics.Tally`) are handed back only on commit, so
metrics never count what an abort threw away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from worker.stream.clients import Headers, error_kind, kafka_error
from worker.stream.metrics import Tally

log = logging.getLogger("worker.stream.commit")
T = TypeVar("T")
Clock = Callable[[], float]


class WindowAborted(Exception):  # noqa: N818 - an outcome, not a bug
    """The window's outputs were discarded and its input will be read again."""


class FatalKafkaError(Exception):
    """The client cannot continue (fenced, misconfigured, unauthorised); exit and restart."""


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """Close a window after ``max_interval_s`` or ``max_messages``, whichever comes first."""

    max_interval_s: float = 0.1
    max_messages: int = 5000

    def due(self, now: float, opened_at: float | None, messages: int) -> bool:
        if opened_at is None:
            return False
        return messages >= self.max_messages or now - opened_at >= self.max_interval_s


IMMEDIATE = CommitPolicy(max_interval_s=0.0, max_messages=1)


@dataclass(slots=True)
class Window:
    first: dict[tuple[str, int], int] = field(default_factory=dict)  # rewind points
    next: dict[tuple[str, int], int] = field(default_factory=dict)  # offsets to commit
    tally: Tally = field(default_factory=Tally)
    opened_at: float | None = None
    delivery_errors: list[KafkaError] = field(default_factory=list)

    def track(self, topic: str, partition: int, offset: int, now: float) -> None:
        key = (topic, partition)
        self.first.setdefault(key, offset)
        self.next[key] = offset + 1
        self.tally.messages += 1
        if self.opened_at is None:
            self.opened_at = now

    def cover(self, topic: str, partition: int, offset: int) -> None:
        """Make sure a rewind goes back at least to this offset (keeps an earlier one)."""
        self.first.setdefault((topic, partition), offset)

    def offsets(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in sorted(self.next.items())]


class Committer(Protocol):
    window: Window

    def start(self) -> None: ...
    def on_delivery(self, err: KafkaError | None, msg: Message) -> None: ...
    def produce(self, topic: str, value: bytes, key: bytes | None,
                headers: Headers) -> None: ...
    def commit(self) -> Tally | None: ...
    def abort(self) -> None: ...
    def on_revoke(self, partitions: list[TopicPartition]) -> Tally | None: ...
    def on_lost(self, partitions: list[TopicPartition]) -> None: ...


class _Base:
    def __init__(self, consumer: Consumer, producer: Producer, *, clock: Clock,
                 op_timeout_s: float = 30.0, produce_block_s: float = 60.0,
                 on_backpressure: Callable[[], None] = lambda: None) -> None:
        self.consumer, self.producer, self.clock = consumer, producer, clock
        self.on_backpressure = on_backpressure
        self.op_timeout_s, self.produce_block_s = op_timeout_s, produce_block_s
        self.window = Window()
        self.leaving: set[tuple[str, int]] = set()  # partitions a rebalance is taking away

    def _while_leaving(self, partitions: list[TopicPartition], action: Callable[[], T]) -> T:
        self.leaving = {(p.topic, p.partition) for p in partitions}
        try:
            return action()
        finally:
            self.leaving = set()

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        """The producer's delivery callback; it only reports failures (see clients.py)."""
        if err is not None:
            self.window.delivery_errors.append(err)

    def produce(self, topic: str, value: bytes, key: bytes | None,
                headers: Headers) -> None:
        """Queue one output. Raises WindowAborted (re-read) or FatalKafkaError (exit)."""
        produce(self.producer, topic, value, key, headers, clock=self.clock,
                block_s=self.produce_block_s, on_backpressure=self.on_backpressure)

    def _rewind(self) -> None:
        # Partitions being revoked or lost are not ours to seek: the client unassigns them
        # when the callback returns, and a seek racing that makes librdkafka abort the process.
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        assigned -= self.leaving
        for (topic, partition), offset in self.window.first.items():
            if (topic, partition) in assigned:
                self.consumer.seek(TopicPartition(topic, partition, offset))
        self.window = Window()

    def _retry(self, what: str, op: Callable[[], T]) -> T:
        return retry(what, op, clock=self.clock, timeout_s=self.op_timeout_s)


def produce(producer: Producer, topic: str, value: bytes, key: bytes | None, headers: Headers,
            *, clock: Clock, block_s: float, on_backpressure: Callable[[], None]) -> None:
    """Queue one message, waiting (up to ``block_s``) while the local queue is full. Raises
    WindowAborted (abort and redo) or FatalKafkaError (exit)."""
    try:
        try:
            producer.produce(topic, value, key, headers=headers)
        except BufferError:
            _produce_when_room(producer, topic, value, key, headers, clock=clock,
                               block_s=block_s, on_backpressure=on_backpressure)
    except KafkaException as exc:
        err = kafka_error(exc)
        if err is not None and error_kind(err) == "fatal":
            raise FatalKafkaError(f"produce: {err}") from exc
        raise WindowAborted(f"produce to {topic}: {err}") from exc


def _produce_when_room(producer: Producer, topic: str, value: bytes, key: bytes | None,
                       headers: Headers, *, clock: Clock, block_s: float,
                       on_backpressure: Callable[[], None]) -> None:
    # Backpressure: the local queue is full. Serve delivery reports to make room and try
    # the same message again; never drop it.
    deadline = clock() + block_s
    while True:
        if clock() > deadline:
            raise WindowAborted(f"producer queue still full after {block_s:.0f}s")
        on_backpressure()
        producer.poll(0.1)
        try:
            producer.produce(topic, value, key, headers=headers)
            return
        except BufferError:
            continue


def retry(what: str, op: Callable[[], T], *, clock: Clock, timeout_s: float) -> T:
    """Run a Kafka operation, retrying retriable errors until ``timeout_s`` has passed.
    Raises WindowAborted (abortable, or retries ran out) or FatalKafkaError."""
    deadline = clock() + timeout_s
    delay = 0.05
    while True:
        try:
            return op()
        except KafkaException as exc:
            err = kafka_error(exc)
            kind = error_kind(err) if err is not None else "fatal"
            if kind == "retriable" and clock() < deadline:
                log.warning("retrying Kafka operation", extra={"op": what, "error": str(err)})
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if kind == "fatal":
                raise FatalKafkaError(f"{what}: {err}") from exc
            raise WindowAborted(f"{what}: {err}") from exc


class TransactionalCommitter(_Base):
    """Exactly-once: one Kafka transaction per commit window."""

    in_transaction = False

    def start(self) -> None:
        self._retry("init_transactions",
                    lambda: self.producer.init_transactions(self.op_timeout_s))

    def produce(self, topic: str, value: bytes, key: bytes | None,
                headers: Headers) -> None:
        self._begin()
        super().produce(topic, value, key, headers)

    def _begin(self) -> None:
        if not self.in_transaction:
            self._retry("begin_transaction", self.producer.begin_transaction)
            self.in_transaction = True

    def commit(self) -> Tally | None:
        window = self.window
        if not window.next:
            return None
        self._begin()  # a window of skipped records still has offsets to commit
        try:
            meta = self.consumer.consumer_group_metadata()
            self._retry("send_offsets_to_transaction", lambda: self.producer
                        .send_offsets_to_transaction(window.offsets(), meta, self.op_timeout_s))
            self._retry("commit_transaction",
                        lambda: self.producer.commit_transaction(self.op_timeout_s))
        except WindowAborted:
            self.abort()
            raise
        self.in_transaction = False
        self.window = Window()
        return window.tally

    def abort(self) -> None:
        if self.in_transaction:
            try:
                self._retry("abort_transaction",
                            lambda: self.producer.abort_transaction(self.op_timeout_s))
            except WindowAborted as exc:  # an abort that fails to abort leaves us unusable
                raise FatalKafkaError(str(exc)) from exc
            self.in_transaction = False
        self._rewind()

    def on_revoke(self, partitions: list[TopicPartition]) -> Tally | None:
        # Offsets of revoked partitions can still be committed inside the callback, before
        # they are handed over; committing the whole window keeps the logic in one path.
        return self._while_leaving(partitions, self.commit)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        # Lost partitions may already belong to another member: nothing of ours may commit.
        self._while_leaving(partitions, self.abort)


class AckedCommitter(_Base):
    """At-least-once: commit offsets after every output of the window is acknowledged."""

    def start(self) -> None:
        return None

    def commit(self) -> Tally | None:
        window = self.window
        if not window.next:
            return None
        remaining = self.producer.flush(self.op_timeout_s)
        if remaining or window.delivery_errors:
            first = window.delivery_errors[0] if window.delivery_errors else "flush timed out"
            self._rewind()
            raise WindowAborted(f"{len(window.delivery_errors)} deliveries failed, "
                                f"{remaining} unconfirmed: {first}")
        try:
            self._retry("commit", lambda: self.consumer.commit(
                offsets=window.offsets(), asynchronous=False))
        except WindowAborted:
            # Typically a rebalance took the partitions: the new owner re-reads from the last
            # commit, so these outputs will appear twice. That is at-least-once.
            self.window = Window()
            raise
        self.window = Window()
        return window.tally

    def abort(self) -> None:
        self._rewind()

    def on_revoke(self, partitions: list[TopicPartition]) -> Tally | None:
        return self._while_leaving(partitions, self.commit)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        self.producer.flush(self.op_timeout_s)
        self._while_leaving(partitions, self._rewind)


def make_committer(guarantee: str, consumer: Consumer, producer: Producer, *,
                   clock: Clock, **kwargs: Any) -> Committer:
    if guarantee == "exactly-once":
        return TransactionalCommitter(consumer, producer, clock=clock, **kwargs)
    return AckedCommitter(consumer, producer, clock=clock, **kwargs)
