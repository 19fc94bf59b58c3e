"""The stream worker: consume a batch, classify, produce, commit; repeat until told to stop.

The loop is a thin shell around :func:`worker.classify.core.classify_message`. Commit policy and
offset handling live in :mod:`worker.stream.commit`, error classification in
:mod:`worker.stream.clients`, metrics in :mod:`worker.stream.metrics`, probes in
:mod:`worker.stream.probes`.

Shutdown (SIGTERM/SIGINT): stop consuming, commit (or abort) the open window, close the
consumer so the group rebalances at once, flush the producer, exit 0, all within the shutdown
budget (:mod:`worker.stream.budget`): every blocking call gets at most what is left, a
transaction that cannot be committed in time is abandoned (never committed, so its input is
read again), and if a client call overstays anyway the signal thread ends the process (exit 4).

Broker outages of any length are ridden out: timeouts abort the window and are retried with
back-off, never fatal. Fenced after our own transaction outlived ``transaction.timeout.ms`` (a
frozen or cut-off worker), the worker carries on with a fresh producer; fenced while its
transaction was young means another process has our transactional id: exit 3.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Final, cast

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import CollectorRegistry

from worker import core_build
from worker.classify.core import Classified, DeadLetter, Source, classify_message
from worker.contracts.exit_codes import EXIT_FATAL, EXIT_OK, EXIT_SHUTDOWN_OVERRUN, EXIT_USAGE
from worker.stream import logs, probes
from worker.stream.budget import Deadline, ShutdownSignals, within
from worker.stream.clients import (
    AUTH_CODES,
    Headers,
    consumer_error_kind,
    create_clients,
    create_producer,
    fenced,
    kafka_error,
    provenance_headers,
    transaction_timeout_s,
)
from worker.stream.commit import (
    CommitPolicy,
    Committer,
    FatalKafkaError,
    WindowAborted,
    make_committer,
)
from worker.stream.metrics import WorkerMetrics, brokers_up
from worker.stream.settings import Settings, core_options, for_command, load_settings

log = logging.getLogger("worker")
_JSON: Final[Headers] = [("content-type", b"application/json")]
_NO_TRANSACTIONS = frozenset({KafkaError.UNSUPPORTED_VERSION, KafkaError._UNSUPPORTED_FEATURE,
                              KafkaError.INVALID_REQUEST})


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``python -m worker run``: settings, logging, signals, then run()."""
    settings = for_command(args, load_settings)
    if isinstance(settings, int):
        return settings
    logs.setup(settings.log_level)
    stop = threading.Event()
    shutdown = Deadline(time.monotonic)
    signals = ShutdownSignals(stop, shutdown, settings.shutdown_budget_ms / 1000,
                              exit_code=EXIT_SHUTDOWN_OVERRUN).install()
    try:
        code = run(settings, stop, CollectorRegistry(), shutdown=shutdown)
    finally:
        signals.done.set()
    if shutdown.abandoned:
        # The interpreter's exit would destroy the clients, and their destructors wait for
        # the broker that made us abandon them: end here, within the budget.
        logging.shutdown()
        os._exit(code)
    return code


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set (for the Graph source; the worker itself uses
    ShutdownSignals, which also starts its shutdown budget)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    return stop


def run(settings: Settings, stop: threading.Event, registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time, *,
        shutdown: Deadline | None = None) -> int:
    """Run until ``stop`` is set. Returns an exit code; raises nothing for Kafka trouble.
    ``clock`` times intervals; ``wall_clock`` (Unix time) dates progress and ages events.
    ``shutdown`` is the budget the caller starts when it sets ``stop`` (see ShutdownSignals);
    without one, the budget starts when the loop sees ``stop``."""
    health = probes.Health(clock)
    metrics = WorkerMetrics(registry)
    metrics.report_readiness(health.ready)
    try:
        server, _ = probes.serve(settings.metrics_address, settings.metrics_port, registry, health,
                                 metrics.lock)
    except OSError as exc:
        log.error("cannot open the metrics port", extra={
            "address": settings.metrics_address, "port": settings.metrics_port, "error": str(exc)})
        return EXIT_FATAL
    log.info("worker starting", extra={"settings": str(settings), "core": core_build(),
                                       "metrics_port": server.server_port})
    try:
        worker = StreamWorker(settings, metrics, health, clock, wall_clock,
                              shutdown=shutdown or Deadline(clock))
    except KafkaException as exc:
        log.error("invalid Kafka client configuration", extra={"error": str(exc.args[0])})
        server.shutdown()
        return EXIT_USAGE
    try:
        return worker.run(stop)
    finally:
        server.shutdown()


class StreamWorker:
    def __init__(self, settings: Settings, metrics: WorkerMetrics, health: probes.Health,
                 clock: Callable[[], float],
                 wall_clock: Callable[[], float] = time.time, *,
                 shutdown: Deadline | None = None) -> None:
        self.settings, self.metrics, self.health, self.clock = settings, metrics, health, clock
        self.wall_clock = wall_clock
        self.shutdown = shutdown if shutdown is not None else Deadline(clock)
        self.options = core_options(settings)
        self.fatal: KafkaError | None = None  # from error_cb
        self.callback_fatal: FatalKafkaError | None = None  # raised in a rebalance callback
        self.consumer, producer = create_clients(
            settings, on_stats=self._on_stats, on_error=self._on_error,
            on_delivery=self._on_delivery)
        self.committer: Committer = make_committer(
            settings.guarantee, self.consumer, producer, clock=clock, deadline=shutdown,
            transaction_timeout_s=transaction_timeout_s(settings), new_producer=self._producer,
            on_backpressure=metrics.backpressure.inc)
        # Once the budget runs, a commit under way keeps this much for closing the clients.
        self.committer.reserve_s = self.close_reserve_s = min(
            5.0, settings.shutdown_budget_ms / 4000)
        self.policy = CommitPolicy(max_interval_s=settings.batch_timeout_ms / 1000)
        self.assigned: set[tuple[str, int]] = set()
        self.stop = threading.Event()  # run()'s, so that a back-off ends at shutdown
        self.aborts_in_row = 0
        self.stall_reported = False  # "input waiting, nothing consumed" logged for this stall

    # ------------------------------------------------------------------ lifecycle
    def run(self, stop: threading.Event) -> int:
        self.stop = stop
        try:
            if not self._start(stop):
                return self._close(EXIT_OK)
            # Everything allocated so far lives as long as the process: keep it out of the
            # cyclic collector's full passes, which otherwise show up as latency spikes.
            gc.freeze()
            self.consumer.subscribe([self.settings.input_topic], on_assign=self._on_assign,
                                    on_revoke=self._on_revoke, on_lost=self._on_lost)
            while not stop.is_set():
                try:
                    self._turn()
                    self._raise_fatal()
                except (FatalKafkaError, KafkaException) as exc:
                    # poll() and consume() raise a client's fatal error as KafkaException.
                    fatal = (exc if isinstance(exc, FatalKafkaError)
                             else FatalKafkaError(str(exc), kafka_error(exc)))
                    if self._renew_if_fenced_by_timeout(fatal):
                        continue
                    if fatal is exc:
                        raise
                    raise fatal from exc
        except (FatalKafkaError, KafkaException) as exc:
            # KafkaException: consume() itself raises only for errors the client cannot
            # recover from; the rest arrive as message errors or through error_cb.
            log.error("fatal Kafka error; exiting so the platform restarts the worker",
                      extra={"error": str(exc), "hint": _hint(exc)})
            self.metrics.kafka_errors.labels("fatal").inc()
            return self._close(EXIT_FATAL, commit=False)
        return self._close(EXIT_OK)

    def _start(self, stop: threading.Event) -> bool:
        """Initialise transactions, retrying with back-off while the broker is away."""
        delay = 0.5
        while not stop.is_set():
            try:
                self.committer.start()
                self.health.started = True
                log.info("Kafka clients ready", extra={"guarantee": self.settings.guarantee})
                return True
            except WindowAborted as exc:
                # error_cb runs only inside poll(), which init_transactions() does not serve:
                # without this a refused login or certificate looked like "not reachable"
                # and the worker retried forever instead of exiting with a clear error.
                self.committer.producer.poll(0)
                self._raise_fatal()
                self.health.beat()
                log.warning("Kafka not reachable yet; retrying", extra={
                    "error": str(exc), "retry_in_s": delay, "rate_key": "start"})
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
            self._raise_fatal()
        return False

    def _raise_fatal(self) -> None:
        if self.callback_fatal is not None:
            exc, self.callback_fatal = self.callback_fatal, None
            raise exc
        if self.fatal is not None:
            raise FatalKafkaError(str(self.fatal), self.fatal)

    def _renew_if_fenced_by_timeout(self, exc: FatalKafkaError) -> bool:
        """Fenced because our own transaction outlived transaction.timeout.ms: the broker has
        aborted it (nothing of it is visible or committed), so a fresh producer with the same
        transactional id carries on safely. Any other fatal error ends the worker."""
        # Once our transaction outlived the timeout the coordinator has aborted it, whatever
        # the client makes of that (fenced, INVALID_TXN_STATE, _STATE on produce); only bad
        # credentials are not the timeout's doing.
        if not self.committer.outlived_transaction() or (
                exc.error is not None and exc.error.code() in AUTH_CODES):
            return False
        log.warning("fenced after our transaction outlived transaction.timeout.ms (the worker "
                    "was frozen or cut off from the broker); the broker aborted it and its "
                    "input is read again; going on with a fresh producer",
                    extra={"error": str(exc),
                           "fenced": exc.error is not None and fenced(exc.error)})
        self.metrics.transactions.labels("aborted").inc()
        # Whatever else the old producer reported is about the same aborted transaction: an
        # abort that failed in a rebalance callback would otherwise end the fresh producer's
        # first turn (poll() raised the fence before the callback's error was taken).
        self.fatal = self.callback_fatal = None
        self.committer.renew(self._producer())
        self.aborts_in_row += 1
        return True

    def _close(self, code: int, *, commit: bool = True) -> int:
        """Leave cleanly within the shutdown budget, whatever the broker does."""
        self.health.stopping = True
        self.shutdown.start(self.settings.shutdown_budget_ms / 1000)  # no-op after a signal
        self.committer.reserve_s = self.close_reserve_s
        if commit:
            self._commit()
        else:
            with contextlib.suppress(FatalKafkaError):
                self.committer.abort()  # so that the revoke callback has nothing to commit
        self.committer.reserve_s = 0.0
        abandoned = self.committer.open_transaction
        # Leaves the group now instead of after the session timeout. close() takes no
        # timeout and waits for the coordinator, so it gets what is left of the budget.
        closed, exc = within(self.consumer.close, self.shutdown.cap(10.0, reserve_s=0.5))
        if exc is not None:
            log.warning("consumer close failed", extra={"error": str(exc)})
        try:
            left = self.committer.producer.flush(self.shutdown.cap(10.0, reserve_s=0.5))
        except (KafkaException, RuntimeError) as flush_exc:  # a fenced producer raises here
            log.warning("producer flush failed", extra={"error": str(flush_exc)})
            left = 0
        self.shutdown.abandoned = not closed or abandoned or left > 0
        log.info("worker stopped", extra={
            "exit_code": code, "abandoned_transaction": abandoned, "consumer_closed": closed,
            "shutdown_left_s": round(self.shutdown.remaining() or 0.0, 3)})
        return code

    # ------------------------------------------------------------------ one turn of the loop
    def _turn(self) -> None:
        aborts = self.aborts_in_row
        messages = self._next_batch()
        now, wall = self.clock(), self.wall_clock()
        self.health.beat()
        self.metrics.last_progress.set(wall)
        if messages:
            self.health.input_waiting_since = None
            self.metrics.batch_size.observe(len(messages))
            try:
                for message in messages:
                    self._process(message, now, wall)
            except WindowAborted as exc:
                self._aborted(exc)
                # Messages of this batch after the failure were consumed but not processed:
                # the rewind must go back to them too, or they would be skipped.
                for message in messages:
                    if message.error() is None:
                        self.committer.window.cover(cast(str, message.topic()),
                                                    cast(int, message.partition()),
                                                    cast(int, message.offset()))
                self.committer.abort()
        elif (self.health.pending_since is not None and not self.committer.window.next
              and self.committer.settle()):
            # Nothing consumed and nothing open: idle, once a failure's leftovers are done.
            self.health.pending_since = None
        self.committer.producer.poll(0)  # serve delivery failures and producer errors
        if self.policy.due(self.clock(), self.committer.window.opened_at,
                           self.committer.window.tally.messages):
            self._commit()
        if self.aborts_in_row > aborts:
            # The same input is read again at once: a lasting cause (a missing output topic)
            # must not become a hot loop of aborts. 0.1 s, doubling up to 5 s.
            self.stop.wait(min(0.1 * 2 ** min(self.aborts_in_row - 1, 6), 5.0))

    def _next_batch(self) -> list[Message]:
        """What is waiting now, without waiting; else wait for the first message only.

        consume(n, timeout) waits the whole timeout unless n messages arrive, which at a low
        rate adds the timeout to every event's latency. poll() returns with the first.
        """
        size = self.settings.batch_size
        messages = self.consumer.consume(size, 0)
        if messages:
            return messages
        opened = self.committer.window.opened_at
        wait = self.settings.batch_timeout_ms / 1000
        if opened is not None:  # wake up in time to close the open window
            wait = max(0.0, min(wait, opened + self.policy.max_interval_s - self.clock()))
        first = self.consumer.poll(wait)
        if first is None:
            return []
        return [first, *self.consumer.consume(size - 1, 0)] if size > 1 else [first]

    def _process(self, message: Message, now: float, wall: float) -> None:
        err = message.error()
        if err is not None:
            self._on_error(err)
            return
        self.health.broker_reachable = True
        # A message without an error always has its coordinates.
        topic, partition, offset = (cast(str, message.topic()), cast(int, message.partition()),
                                    cast(int, message.offset()))
        outcomes = classify_message(message.value(), Source(topic, partition, offset),
                                    self.options)
        window = self.committer.window
        produce, output_topic = self.committer.produce, self.settings.output_topic
        output_headers: Headers | None = None  # shared by every record of this message
        for outcome in outcomes:
            if outcome.__class__ is Classified:
                if output_headers is None:
                    output_headers = provenance_headers(topic, partition, offset, None) + _JSON
                produce(output_topic, outcome.value, outcome.key, output_headers)
            elif isinstance(outcome, DeadLetter):
                headers = [*(message.headers() or []),
                           *provenance_headers(topic, partition, offset, outcome.index),
                           ("x-error-class", outcome.error_class.encode()), *_JSON]
                produce(self.settings.dead_letter_topic, outcome.value, message.key(), headers)
        window.tally.add_all(outcomes, wall, self.settings.fresh_event_max_age)
        window.track(topic, partition, offset, now)
        if self.health.pending_since is None:
            self.health.pending_since = now

    def _commit(self) -> None:
        opened = self.committer.window.opened_at
        self.health.commit_started = self.clock()
        try:
            tally = self.committer.commit()
        except WindowAborted as exc:
            self._aborted(exc)
            return
        finally:
            self.health.commit_started = None
        if tally is not None:
            self.aborts_in_row = 0
            self.health.pending_since = None
            self.metrics.record(tally)
            self.metrics.transactions.labels("committed").inc()
            if opened is not None:
                self.metrics.batch_duration.observe(self.clock() - opened)
            self.health.broker_reachable = True

    def _aborted(self, exc: Exception) -> None:
        self.aborts_in_row += 1
        if self.health.pending_since is None:
            self.health.pending_since = self.clock()
        self.metrics.transactions.labels("aborted").inc()
        self.metrics.kafka_errors.labels("abortable").inc()
        log.warning("commit window aborted; its input will be read again",
                    extra={"error": str(exc), "rate_key": "window-aborted"})

    # ------------------------------------------------------------------ client callbacks
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # A partition paused while its committed offsets were unreadable and then lost stays
        # paused in librdkafka when it comes back; assigned anew it starts from the committed
        # offset, so it may be read at once.
        if partitions:
            consumer.resume(partitions)
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        self.health.joined, self.health.broker_reachable = True, True
        self.health.assigned = len(self.assigned)
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    # An exception escaping a rebalance callback would leave the client's assignment half
    # updated; a fatal error is kept and raised by the loop once poll() has returned.
    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            tally = self.committer.on_revoke(partitions)
            if tally is not None:
                self.health.pending_since = None
                self.metrics.record(tally)
                self.metrics.transactions.labels("committed").inc()
        except WindowAborted as exc:
            self._aborted(exc)
        except FatalKafkaError as exc:
            self.callback_fatal = self.callback_fatal or exc
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        self.health.assigned = len(self.assigned)
        log.info("partitions revoked", extra={"partitions": _names(partitions)})

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            self.committer.on_lost(partitions)
        except FatalKafkaError as exc:
            self.callback_fatal = self.callback_fatal or exc
        self.metrics.transactions.labels("aborted").inc()
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        self.health.assigned = len(self.assigned)
        self.health.joined = False  # out of the group until the next assignment
        log.warning("partitions lost; their open window was aborted",
                    extra={"partitions": _names(partitions)})

    def _on_stats(self, stats_json: str) -> None:
        lag = self.metrics.lag
        lag.update(stats_json)
        up = brokers_up(stats_json)
        if up is not None:
            self.health.broker_reachable = up
        # Input waits when the client reports messages behind our position, or holds one of
        # our partitions without fetching it: its committed offset cannot be read (a
        # transaction with offsets for the group still open) or is not read yet.
        health, states = self.health, lag.fetch_states(self.assigned)
        if not lag.waiting() and states.keys() <= {"active"}:
            health.input_waiting_since, self.stall_reported = None, False
        elif health.input_waiting_since is None:
            health.input_waiting_since = self.clock()
        elif (not self.stall_reported
              and (health.input_waited() or 0.0) > health.progress_timeout_s):
            self.stall_reported = True  # once per stall
            log.warning("input is waiting but nothing was consumed; the worker reports "
                        "unready until it is", extra={
                            "waiting_messages": lag.waiting(),
                            "seconds": round(health.input_waited() or 0.0, 1),
                            "fetch_states": states})

    def _on_error(self, err: KafkaError) -> None:
        kind = consumer_error_kind(err)
        self.metrics.kafka_errors.labels(kind).inc()
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.health.broker_reachable = False
        if kind == "fatal" and self.fatal is None:
            self.fatal = err
        log.warning("Kafka client error", extra={"error": str(err), "kind": kind,
                                                 "rate_key": f"client:{err.name()}"})

    def _producer(self) -> Producer:
        """A fresh producer (same transactional id) for a fenced or wedged one."""
        return create_producer(self.settings, on_error=self._on_error,
                               on_delivery=self._on_delivery)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        self.committer.on_delivery(err, msg)


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]


def _hint(exc: Exception) -> str:
    """One sentence telling the operator what to change, for the common fatal errors."""
    cause = exc.__cause__
    err = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
    code = err.code() if isinstance(err, KafkaError) else None
    text = str(exc).lower()
    if code in _NO_TRANSACTIONS or ("transaction" in text and "not supported" in text):
        return ("the cluster does not support Kafka transactions (Azure Event Hubs Standard "
                "does not); set CLASSIFIER_GUARANTEE=at-least-once")
    if code in AUTH_CODES or "authentic" in text or "ssl" in text:
        return "check the SASL credentials or TLS certificates (RDKAFKA_* settings)"
    if "fenced" in text or "epoch" in text:
        # Fenced by a transaction timeout is recovered without exiting; this one was not.
        return ("another process took over this transactional id while our transaction was "
                "young; give each replica its own CLASSIFIER_TRANSACTIONAL_ID")
    return "the worker exits so that it can be restarted cleanly"
