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

Timeouts: every blocking client call waits at most ``call_slice_s`` at a time, and never longer
than what is left of the shutdown budget (:class:`~worker.stream.budget.Deadline`), so a stop
signal is honoured within one slice whatever the broker does. A timeout is never fatal: an
abort that cannot complete stays *pending* (the client goes on with it, the broker aborts the
transaction after ``transaction.timeout.ms`` anyway) and is finished before the next
transaction begins. Nothing of an aborted or abandoned transaction is visible to
read_committed consumers, and its input offsets were not committed, so it is read again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from worker.stream.budget import Deadline, within
from worker.stream.clients import Headers, error_kind, kafka_error
from worker.stream.metrics import Tally

log = logging.getLogger("worker.stream.commit")
T = TypeVar("T")
Clock = Callable[[], float]


class WindowAborted(Exception):  # noqa: N818 - an outcome, not a bug
    """The window's outputs were discarded and its input will be read again. ``abortable``:
    the broker refused (the transaction must be aborted), as opposed to no answer in time."""

    def __init__(self, message: str, *, abortable: bool = False) -> None:
        super().__init__(message)
        self.abortable = abortable


class FatalKafkaError(Exception):
    """The client cannot continue (fenced, misconfigured, unauthorised); exit and restart."""

    def __init__(self, message: str, error: KafkaError | None = None) -> None:
        super().__init__(message)
        self.error = error


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
    deadline: Deadline  # the shutdown budget every blocking call is capped by
    reserve_s: float  # budget kept back for closing the clients

    def start(self) -> None: ...
    def on_delivery(self, err: KafkaError | None, msg: Message) -> None: ...
    def produce(self, topic: str, value: bytes, key: bytes | None,
                headers: Headers) -> None: ...
    def commit(self) -> Tally | None: ...
    def abort(self) -> None: ...
    def on_revoke(self, partitions: list[TopicPartition]) -> Tally | None: ...
    def on_lost(self, partitions: list[TopicPartition]) -> None: ...
    def outlived_transaction(self) -> bool: ...
    def settle(self) -> bool: ...
    def renew(self, producer: Producer) -> None: ...
    @property
    def producer(self) -> Producer: ...
    @property
    def open_transaction(self) -> bool: ...


class _Base:
    def __init__(self, consumer: Consumer, producer: Producer, *, clock: Clock,
                 op_timeout_s: float = 30.0, produce_block_s: float = 60.0,
                 call_slice_s: float = 2.0, deadline: Deadline | None = None,
                 on_backpressure: Callable[[], None] = lambda: None) -> None:
        self.consumer, self._producer, self.clock = consumer, producer, clock
        self.on_backpressure = on_backpressure
        self.op_timeout_s, self.produce_block_s = op_timeout_s, produce_block_s
        self.call_slice_s = call_slice_s
        self.deadline = deadline if deadline is not None else Deadline(clock)
        self.reserve_s = 0.0  # budget kept back for closing the clients (set at shutdown)
        self.window = Window()
        self.leaving: set[tuple[str, int]] = set()  # partitions a rebalance is taking away

    @property
    def producer(self) -> Producer:
        return self._producer

    @property
    def open_transaction(self) -> bool:
        return False

    def outlived_transaction(self) -> bool:
        return False

    def settle(self) -> bool:
        """Finish what a failure left behind; False while that still cannot be done."""
        return True

    def renew(self, producer: Producer) -> None:
        """Go on with a fresh producer; the window is discarded and its input read again."""
        self._producer = producer
        self._rewind()

    def _time_left(self, seconds: float) -> float:
        return self.deadline.cap(seconds, self.reserve_s)

    def _while_leaving(self, partitions: list[TopicPartition], action: Callable[[], T]) -> T:
        self.leaving = {(p.topic, p.partition) for p in partitions}
        try:
            return action()
        finally:
            self.leaving = set()

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """The producer's delivery callback; it only reports failures (see clients.py)."""
        if err is not None:
            if not self.window.delivery_errors:  # the first of a window names the topic
                log.warning("delivery failed; the window will be aborted and read again",
                            extra={"error": f"produce to {msg.topic()}: {err}",
                                   "rate_key": "delivery-failed"})
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

    def _retry(self, what: str, op: Callable[[float], T], total_s: float | None = None, *,
               while_stopping: bool = True) -> T:
        """retry_sliced() with this committer's slice, timeout and shutdown budget."""
        return retry_sliced(
            what, op, clock=self.clock,
            timeout_s=self.op_timeout_s if total_s is None else total_s,
            slice_s=self.call_slice_s, budget=self.deadline, reserve_s=self.reserve_s,
            while_stopping=while_stopping)


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
            raise FatalKafkaError(f"produce: {err}", err) from exc
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
    return retry_sliced(what, lambda _timeout: op(), clock=clock, timeout_s=timeout_s,
                        slice_s=timeout_s)


def retry_sliced(what: str, op: Callable[[float], T], *, clock: Clock, timeout_s: float,
                 slice_s: float, budget: Deadline | None = None, reserve_s: float = 0.0,
                 while_stopping: bool = True) -> T:
    """Run a Kafka call taking a timeout, one slice at a time, retrying retriable errors
    until ``timeout_s`` or the shutdown ``budget`` (less ``reserve_s``) runs out; once the
    budget runs, not at all without ``while_stopping`` (work only worth starting when not
    stopping).

    Raises WindowAborted when time runs out or the error is abortable, FatalKafkaError
    for errors the client cannot recover from."""
    budget = budget if budget is not None else Deadline(clock)
    give_up = clock() + timeout_s
    delay = 0.05
    while True:
        left = budget.cap(give_up - clock(), reserve_s)
        if left <= 0:
            raise WindowAborted(f"{what}: no time left (shutdown budget or {timeout_s:.0f}s)")
        try:
            return op(min(slice_s, left))
        except KafkaException as exc:
            err = kafka_error(exc)
            kind = error_kind(err) if err is not None else "fatal"
            if kind == "fatal":
                raise FatalKafkaError(f"{what}: {err}", err) from exc
            if (kind == "retriable" and budget.cap(give_up - clock(), reserve_s) > delay
                    and (while_stopping or not budget.started)):
                log.warning("retrying Kafka operation", extra={
                    "op": what, "error": str(err),
                    "rate_key": f"retry:{what}:{err.name() if err else None}"})
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            raise WindowAborted(f"{what}: {err}", abortable=kind == "abortable") from exc


class TransactionalCommitter(_Base):
    """Exactly-once: one Kafka transaction per commit window."""

    # librdkafka's send_offsets_to_transaction() can wait past its timeout, for good, while
    # the group coordinator is away (librdkafka #5456, #5511). It runs on a helper thread; this
    # long after its timeout the producer counts as wedged and is replaced (its transaction is
    # then aborted by the new producer's init_transactions, and never committed).
    WEDGED_AFTER_S = 5.0

    def __init__(self, consumer: Consumer, producer: Producer, *, clock: Clock,
                 transaction_timeout_s: float = 60.0,
                 new_producer: Callable[[], Producer] | None = None, **kwargs: Any) -> None:
        super().__init__(consumer, producer, clock=clock, **kwargs)
        self.transaction_timeout_s = transaction_timeout_s
        self.new_producer = new_producer
        self.wedged = False  # a call never returned: the producer must not be used again
        # commit_transaction was called and did not confirm: whether the window committed is
        # known only to the broker, so a rewind goes to the group's committed offsets (read
        # with require_stable, i.e. after the outcome), never to the window's first offsets:
        # re-reading a window that did commit would publish it twice.
        self.outcome_unknown = False
        self.commit_pending = False  # commit_transaction called, not yet confirmed
        self.resetting = False  # partitions paused until the committed offsets are read
        self.in_transaction = False
        self.abort_pending = False  # an abort timed out; the client is still finishing it
        self.needs_init = False  # a fresh producer that has not initialised transactions
        self.began_at: float | None = None  # when the open transaction began

    @property
    def open_transaction(self) -> bool:
        return self.in_transaction

    def outlived_transaction(self) -> bool:
        """The open transaction is older than transaction.timeout.ms: the coordinator has
        aborted it and bumped our epoch, which is what fenced us (not another process)."""
        return (self.began_at is not None
                and self.clock() - self.began_at > self.transaction_timeout_s)

    def start(self, total_s: float | None = None) -> None:
        self._retry("init_transactions", self.producer.init_transactions, total_s,
                    while_stopping=False)
        self.needs_init = False

    def settle(self) -> bool:
        try:
            if self.commit_pending:
                self._finish_commit(total_s=self.call_slice_s)
            if self.abort_pending:
                self._abort_transaction(total_s=self.call_slice_s)
            if self.needs_init:
                self.start(total_s=self.call_slice_s)
        except WindowAborted as exc:
            if exc.abortable:
                self.abort()
            return False
        return not self.resetting or self._reset_to_committed()

    def _rewind(self) -> None:
        if not (self.outcome_unknown or self.commit_pending or self.resetting):
            super()._rewind()
            return
        self.outcome_unknown, self.resetting = False, True
        self.window = Window()
        self._reset_to_committed()

    def _reset_to_committed(self) -> bool:
        """Seek the partitions we keep to the group's committed offsets; until that succeeds
        they stay paused, so nothing is read from a position that may be wrong."""
        parts = [tp for tp in self.consumer.assignment()
                 if (tp.topic, tp.partition) not in self.leaving]
        if not parts:  # nothing kept: new owners start from the committed offsets anyway
            self.resetting = False
            return True
        try:
            self.consumer.pause(parts)
            committed = self.consumer.committed(parts, timeout=max(
                0.1, self._time_left(self.call_slice_s)))
            for tp in committed:
                # No commit yet: nothing of this partition was ever committed, start over.
                offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self.consumer.resume(parts)
        except KafkaException as exc:
            log.warning("committed offsets not readable yet; partitions stay paused",
                        extra={"error": str(exc), "rate_key": "reset-offsets"})
            return False
        self.resetting = False
        return True

    def renew(self, producer: Producer, *, purge: bool = True) -> None:
        old = self.producer
        with contextlib.suppress(KafkaException, RuntimeError):
            if purge:
                old.purge()  # its queued outputs belong to the fenced transaction
        self.in_transaction = self.abort_pending = self.commit_pending = False
        self.began_at = None
        self.needs_init = True
        self.outcome_unknown = True  # the old producer may have committed before it failed
        super().renew(producer)

    def produce(self, topic: str, value: bytes, key: bytes | None,
                headers: Headers) -> None:
        self._begin()
        super().produce(topic, value, key, headers)

    def _begin(self) -> None:
        if self.commit_pending:  # the last window's commit, resumed before anything new
            self._finish_commit(total_s=self.call_slice_s)
        if self.abort_pending:  # raises WindowAborted while the broker is still away
            self._abort_transaction(total_s=self.call_slice_s)
        if self.needs_init:
            self.start(total_s=self.call_slice_s)
        if not self.in_transaction:
            self._retry("begin_transaction", lambda _timeout: self.producer.begin_transaction())
            self.in_transaction = True
            self.began_at = self.clock()

    def _abort_transaction(self, total_s: float | None = None) -> None:
        self._retry("abort_transaction", self.producer.abort_transaction, total_s)
        self.in_transaction = self.abort_pending = False
        self.began_at = None

    def commit(self) -> Tally | None:
        window = self.window
        if not window.next:
            return None
        try:
            self._begin()  # a window of skipped records still has offsets to commit
            meta = self.consumer.consumer_group_metadata()
            self._retry("send_offsets_to_transaction",
                        lambda timeout: self._send_offsets(window, meta, timeout))
            self._finish_commit()
        except WindowAborted:
            self.abort()
            raise
        self.window = Window()
        return window.tally

    def _finish_commit(self, total_s: float | None = None) -> None:
        """commit_transaction, resumable: without an answer in time the commit goes on in the
        client and stays pending (it is never aborted, it may have committed); a refusal
        (abortable) ends it, and abort() then aborts the transaction."""
        self.commit_pending = True
        try:
            self._retry("commit_transaction", self.producer.commit_transaction, total_s)
        except WindowAborted as exc:
            self.commit_pending = not exc.abortable
            raise
        self.commit_pending = self.in_transaction = False
        self.began_at = None

    def _send_offsets(self, window: Window, meta: Any, timeout: float) -> None:
        producer = self.producer
        finished, exc = within(lambda: producer.send_offsets_to_transaction(
            window.offsets(), meta, timeout), timeout + self.WEDGED_AFTER_S)
        if not finished:
            self.wedged = True
            raise WindowAborted(f"send_offsets_to_transaction still waiting {timeout:.0f}+"
                                f"{self.WEDGED_AFTER_S:.0f}s after its timeout; replacing the "
                                "producer")
        if exc is not None:
            raise exc

    def abort(self) -> None:
        """Abort the open transaction and rewind. A timeout leaves the abort pending instead of
        failing: it is finished before the next transaction begins. A wedged producer is
        replaced instead."""
        if self.wedged:
            if self.new_producer is None:
                raise FatalKafkaError("the producer is wedged in send_offsets_to_transaction")
            log.warning("producer wedged (a call did not return after its timeout); going on "
                        "with a fresh one", extra={"rate_key": "wedged"})
            self.wedged = False
            self.renew(self.new_producer(), purge=False)  # purge would wait on it too
            return
        if self.commit_pending:  # never abort what may have committed; see _rewind
            self._rewind()
            return
        if self.in_transaction:
            try:
                self._abort_transaction(self.call_slice_s if self.abort_pending else None)
            except WindowAborted as exc:
                self.abort_pending = True
                log.warning("abort not confirmed yet; it is finished before the next "
                            "transaction (nothing of it is committed)",
                            extra={"error": str(exc), "rate_key": "abort-pending"})
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
        remaining = self.producer.flush(self._time_left(self.op_timeout_s))
        if remaining or window.delivery_errors:
            first = window.delivery_errors[0] if window.delivery_errors else "flush timed out"
            self._rewind()
            raise WindowAborted(f"{len(window.delivery_errors)} deliveries failed, "
                                f"{remaining} unconfirmed: {first}")
        try:
            self._retry("commit", lambda _timeout: self.consumer.commit(
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
        self.producer.flush(self._time_left(self.op_timeout_s))
        self._while_leaving(partitions, self._rewind)


def make_committer(guarantee: str, consumer: Consumer, producer: Producer, *,
                   clock: Clock, transaction_timeout_s: float = 60.0,
                   new_producer: Callable[[], Producer] | None = None,
                   **kwargs: Any) -> Committer:
    if guarantee == "exactly-once":
        return TransactionalCommitter(consumer, producer, clock=clock,
                                      transaction_timeout_s=transaction_timeout_s,
                                      new_producer=new_producer, **kwargs)
    return AckedCommitter(consumer, producer, clock=clock, **kwargs)
