"""The fault scenarios' rig (tests/integration/test_faults.py): an input feed thread, an
output collector thread with arrival times, the figures judged against the oracle, a /readyz
poller, and the Rig that owns one test's workers, threads and brokers."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.support import (
    Produced,
    Record,
    Topics,
    WorkerProcess,
    source_of,
    wait_for,
)
from worker.dev.samples import SampleMessage

Key = tuple[int, int, int]  # (input partition, input offset, record index)


class Feed:
    """A producer thread that keeps sending samples in small chunks until told to stop.

    Idempotent, so a broker restart cannot write an input twice; every delivered message's
    expectations land in ``produced`` under its (partition, offset).
    """

    def __init__(self, bootstrap: str, topic: str, messages: list[SampleMessage], *,
                 chunk: int = 40, pause: float = 0.25, max_seconds: float = 150.0) -> None:
        self.bootstrap, self.topic, self.messages = bootstrap, topic, messages
        self.chunk, self.pause, self.max_seconds = chunk, pause, max_seconds
        self.produced = Produced()
        self.sent = 0
        self.failures: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5,
                             "enable.idempotence": True, "message.timeout.ms": 120000,
                             "log_level": 2})  # no "connection refused" noise
        deadline = time.monotonic() + self.max_seconds
        try:
            for start in range(0, len(self.messages), self.chunk):
                if self._stop.is_set() or time.monotonic() > deadline:
                    break
                for sample in self.messages[start:start + self.chunk]:
                    self._produce(producer, sample, deadline)
                producer.poll(0)
                self._stop.wait(self.pause)
            remaining = producer.flush(120)
            if remaining:
                self.failures.append(f"{remaining} input messages not delivered")
        except BaseException as exc:  # reported by finish(), never an unhandled thread error
            self.error = exc

    def _produce(self, producer: Producer, sample: SampleMessage, deadline: float) -> None:
        def report(err: Any, msg: Any) -> None:
            if err is not None:
                self.failures.append(str(err))
            else:
                self.produced.expected[(msg.partition(), msg.offset())] = sample.expected
        while True:
            try:
                producer.produce(self.topic, sample.value, sample.key, on_delivery=report)
                self.sent += 1
                return
            except BufferError:
                if time.monotonic() > deadline + 60:
                    raise
                producer.poll(0.1)

    def stop(self) -> None:
        self._stop.set()

    def running(self) -> bool:
        """Still sending: neither stopped, out of messages nor past ``max_seconds``."""
        return self._thread.is_alive() and not self._stop.is_set()

    def finish(self, timeout: float = 150.0, *, stop: bool = True) -> Produced:
        """Stop sending (or, with ``stop=False``, send everything), flush, check, return."""
        if stop:
            self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "feed thread did not finish"
        if self.error is not None:
            raise AssertionError(f"feed failed: {self.error!r}") from self.error
        assert not self.failures, self.failures[:5]
        assert len(self.produced.expected) == self.sent
        return self.produced


@dataclass
class Arrival:
    at: float  # time.monotonic() when read
    record: Record


@dataclass
class Collector:
    """Reads the output and dead-letter topics (read_committed) on a thread, with arrival times."""

    bootstrap: str
    topics: Topics
    outputs: list[Arrival] = field(default_factory=list)
    dead: list[Arrival] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)

    def start(self) -> Collector:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            consumer = Consumer({"bootstrap.servers": self.bootstrap,
                                 "group.id": f"reader-{uuid.uuid4()}",
                                 "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                 "isolation.level": "read_committed",
                                 "topic.metadata.refresh.interval.ms": 2000, "log_level": 0})
        except BaseException as exc:
            self.error = exc
            return
        try:
            consumer.subscribe([self.topics.output, self.topics.dead])
            # This reader commits nothing: when its own group session expires during a long
            # broker outage it starts over from the beginning. A record read again (same
            # topic, partition and offset) is not a duplicate publication; skip it.
            read: set[tuple[str | None, int | None, int | None]] = set()
            while not self._stop.is_set():
                for m in consumer.consume(1000, 0.3):
                    if m.error() is not None:
                        continue
                    where = (m.topic(), m.partition(), m.offset())
                    if where in read:
                        continue
                    read.add(where)
                    rec = Record(m.topic() or "", m.partition() or 0, m.offset() or 0, m.key(),
                                 orjson.loads(m.value() or b"null"), dict(m.headers() or []))
                    with self._lock:
                        target = self.outputs if rec.topic == self.topics.output else self.dead
                        target.append(Arrival(time.monotonic(), rec))
        except BaseException as exc:
            self.error = exc
        finally:
            consumer.close()

    def snapshot(self) -> tuple[list[Arrival], list[Arrival]]:
        with self._lock:
            return list(self.outputs), list(self.dead)

    def wait_complete(self, produced: Produced, timeout: float, settle: float = 3.0) -> None:
        """Until every expected output and dead letter arrived, then ``settle`` more seconds
        so that late duplicates would show."""
        want_out, want_dead = expected_keys(produced)

        def complete() -> bool:
            outputs, dead = self.snapshot()
            return (want_out <= {source_of(a.record) for a in outputs}
                    and want_dead <= {source_of(a.record) for a in dead})
        deadline = time.monotonic() + timeout  # if it runs out, the figures say what is missing
        while self.error is None and not complete() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(settle)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def records(self) -> tuple[list[Record], list[Record]]:
        outputs, dead = self.snapshot()
        return [a.record for a in outputs], [a.record for a in dead]


def expected_keys(produced: Produced) -> tuple[set[Key], set[Key]]:
    out: set[Key] = set()
    dead: set[Key] = set()
    for (partition, offset), records in produced.expected.items():
        for index, rec in enumerate(records):
            if rec.outcome == "classified":
                out.add((partition, offset, index))
            elif rec.outcome == "dead_letter":
                dead.add((partition, offset, index))
    return out, dead


@dataclass
class Figures:
    messages: int
    events: int
    received: int
    lost: int
    duplicated: int
    unexpected: int


def figures(outputs: list[Record], dead: list[Record], produced: Produced) -> Figures:
    want_out, want_dead = expected_keys(produced)
    got_out, got_dead = Counter(map(source_of, outputs)), Counter(map(source_of, dead))
    lost = len(want_out - set(got_out)) + len(want_dead - set(got_dead))
    duplicated = (sum(n - 1 for n in got_out.values()) + sum(n - 1 for n in got_dead.values()))
    unexpected = len(set(got_out) - want_out) + len(set(got_dead) - want_dead)
    return Figures(len(produced.expected), len(want_out) + len(want_dead),
                   len(outputs) + len(dead), lost, duplicated, unexpected)


def report(name: str, f: Figures, **extra: Any) -> None:
    more = " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in extra.items())
    print(f"\nFAULT {name}: messages={f.messages} events={f.events} received={f.received} "
          f"lost={f.lost} duplicated={f.duplicated} {more}".rstrip(), flush=True)


def progress(worker: WorkerProcess) -> float:
    """Input messages the worker has committed; -1 while its metrics port does not answer."""
    return worker.metric_if_up("enrollment_input_messages_total", unreachable=-1.0)


class ReadyPoller:
    """Polls a worker's /readyz on a thread and keeps every transition with its time."""

    def __init__(self, worker: WorkerProcess, interval: float = 0.25) -> None:
        self.worker, self.interval = worker, interval
        self.transitions: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readyz", daemon=True)

    def start(self) -> ReadyPoller:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ready = self.worker.ready()
            if not self.transitions or self.transitions[-1][1] != ready:
                self.transitions.append((time.monotonic(), ready))
            self._stop.wait(self.interval)

    def first(self, value: bool, after: float) -> float | None:
        return next((t for t, v in list(self.transitions) if v is value and t >= after), None)

    def settled(self) -> tuple[float, bool]:
        """The last transition: since when the state has been what it is now."""
        return self.transitions[-1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (only stable ones: require_stable with read_committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


@dataclass
class Rig:
    """One test's worker processes, threads and brokers; all stopped at teardown."""

    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def worker(self, bootstrap: str, topics: Topics, group: str,
               **kwargs: Any) -> WorkerProcess:
        env = {"PYTHONFAULTHANDLER": "1", **kwargs.pop("env", {})}  # SIGABRT dumps stacks
        w = WorkerProcess(bootstrap, topics, group, log_dir=self.log_dir, env=env,
                          **kwargs).start()
        self.workers.append(w)
        return w

    def wait(self, condition: Callable[[], bool], timeout: float, what: str,
             worker: WorkerProcess) -> None:
        """wait_for; on a timeout the worker's Python stacks and log end the message."""
        try:
            wait_for(condition, timeout, what)
        except AssertionError as exc:
            if worker.alive() and worker.proc is not None:
                worker.proc.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(10)
            raise AssertionError(f"{exc}\n{worker.logs()}") from None

    def later(self, callback: Callable[[], None]) -> None:
        self.cleanups.append(callback)

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.logs()[-3000:]}" for w in self.workers)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        for callback in reversed(self.cleanups):  # threads first, brokers last
            callback()
