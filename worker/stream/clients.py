"""Kafka clients for the worker, and the one place Kafka errors are classified.

``error_kind`` turns a librdkafka error into what the caller should do, following
confluent-kafka's documented rule for transactional producers: *retriable* (call the same
operation again), *abortable* (``txn_requires_abort``: abort the transaction and rewind the
consumer), and *fatal* (anything else: the client is unusable, exit and let the platform
restart us). No other module inspects error codes.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from worker._version import __version__
from worker.stream.settings import Settings

ErrorKind = Literal["retriable", "abortable", "fatal"]

# Consumer errors that only say "not right now": the client recovers by itself.
_TRANSIENT_CONSUMER_CODES = frozenset({
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
    KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.REQUEST_TIMED_OUT, KafkaError._RESOLVE,
    KafkaError._MAX_POLL_EXCEEDED, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
})
# Errors that mean the credentials or certificates are wrong: retrying will not help.
AUTH_CODES = frozenset({
    KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    KafkaError._SSL,
})

# produce() to a topic that does not exist (yet): not a broken client, so abort the window and
# read it again until the topic is created, instead of exiting (a restart would not create it).
_MISSING_TOPIC_CODES = frozenset({KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION,
                                  KafkaError.UNKNOWN_TOPIC_OR_PART})


def error_kind(err: KafkaError) -> ErrorKind:
    """What to do about an error from a transactional or producer operation."""
    if err.fatal():
        return "fatal"
    if err.txn_requires_abort() or err.code() in _MISSING_TOPIC_CODES:
        return "abortable"
    if err.retriable():
        return "retriable"
    return "fatal"  # confluent-kafka's rule: neither retriable nor abortable means fatal


# The coordinator no longer accepts this producer's transaction: a newer producer with our
# transactional id bumped the epoch, or the coordinator itself did when our transaction outlived
# transaction.timeout.ms (it aborted it; a pending EndTxn then meets INVALID_TXN_STATE, and an
# expired producer id INVALID_PRODUCER_ID_MAPPING).
_FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                           KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.INVALID_TXN_STATE,
                           KafkaError.INVALID_PRODUCER_ID_MAPPING})


def fenced(err: KafkaError) -> bool:
    """Whether a (fatal) error says the coordinator has taken this producer's transaction
    away (fenced it, or ended it on its own); which of the two, only the age of our open
    transaction tells (see TransactionalCommitter.outlived_transaction)."""
    if err.code() in _FENCED_CODES:
        return True
    # error_cb reports a fatal error as _FATAL; the cause is only in its text.
    text = err.str().lower()
    return err.code() == KafkaError._FATAL and ("fenced" in text or "epoch" in text)


def transaction_timeout_s(settings: Settings) -> float:
    """The producer's transaction.timeout.ms (librdkafka's default 60 s) in seconds."""
    common, _, producer = _split(settings.rdkafka())
    raw = producer.get("transaction.timeout.ms", common.get("transaction.timeout.ms"))
    try:
        return int(raw) / 1000 if raw is not None else 60.0
    except ValueError:
        return 60.0  # librdkafka refuses it when the client is created


def consumer_error_kind(err: KafkaError) -> ErrorKind:
    """What to do about an error delivered in place of a message, or to error_cb."""
    if err.fatal() or err.code() in AUTH_CODES or _certificate_refused(err):
        return "fatal"
    if err.code() in _TRANSIENT_CONSUMER_CODES or err.retriable():
        return "retriable"
    return "retriable"  # a consumer keeps reconnecting on its own; log it and go on


# A broker that refuses our client certificate sends a TLS alert, which librdkafka reports as
# a plain _TRANSPORT error ("ssl/tls alert bad certificate"); reconnecting will not fix it.
_CERTIFICATE_ALERTS = ("alert bad certificate", "alert certificate unknown", "alert unknown ca",
                       "alert certificate required", "alert certificate expired",
                       "alert certificate revoked", "alert unsupported certificate")


def _certificate_refused(err: KafkaError) -> bool:
    if err.code() != KafkaError._TRANSPORT:
        return False
    text = err.str().lower()
    return any(alert in text for alert in _CERTIFICATE_ALERTS)


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The KafkaError inside a KafkaException, if it is one."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def _split(config: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Pass-through properties for both clients, consumer only ("consumer." prefix), producer."""
    common, consumer, producer = {}, {}, {}
    for key, value in config.items():
        if key.startswith("consumer."):
            consumer[key.removeprefix("consumer.")] = value
        elif key.startswith("producer."):
            producer[key.removeprefix("producer.")] = value
        else:
            common[key] = value
    return common, consumer, producer


def consumer_config(settings: Settings) -> dict[str, Any]:
    common, only, _ = _split(settings.rdkafka())
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": settings.group_id,
        "client.id": f"enrollment-classifier-{socket.gethostname()}",
        # Offsets travel inside the transaction (exactly-once) or are committed after
        # delivery is confirmed (at-least-once); never on a timer.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Cheap rebalances: members keep their partitions while others join or leave.
        "partition.assignment.strategy": "cooperative-sticky",
        # librdkafka prefetches up to 64 MiB per consumer by default; 16 MiB keeps memory flat
        # under a backlog. With a smaller queue the fetcher hits the limit often, and its
        # default 1 s back-off then starves the loop; 20 ms keeps it fed.
        "queued.max.messages.kbytes": 16384,
        "fetch.queue.backoff.ms": 20,
        "statistics.interval.ms": settings.stats_interval_ms,
        **common,
        **only,
        # Set last so pass-through cannot undo them.
        "isolation.level": "read_committed",
    }


def producer_config(settings: Settings) -> dict[str, Any]:
    common, _, only = _split(settings.rdkafka())
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"enrollment-classifier-{socket.gethostname()}",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # The default 1 GiB queue would let a stalled broker eat the pod's memory.
        "queue.buffering.max.kbytes": 65536,
        # A Python callback per delivered message costs more than classifying it; failures
        # are all the committers need (transactions report the rest at commit).
        "delivery.report.only.error": True,
        **common,
        **only,
    }
    if settings.guarantee == "exactly-once":
        config["transactional.id"] = settings.transactional_id
        # When every broker is down, librdkafka's default re-bootstrap decommissions them;
        # send_offsets_to_transaction() then waits on the decommissioned group coordinator
        # forever, past its timeout (librdkafka #5456, #5511): a worker stuck after a broker
        # restart. Without re-bootstrap it reconnects to the same brokers and carries on.
        config.setdefault("metadata.recovery.strategy", "none")
    return config


def create_clients(settings: Settings, *, on_stats: Callable[[str], None],
                   on_error: Callable[[KafkaError], None],
                   on_delivery: Callable[[KafkaError | None, Any], None],
                   consumer_overrides: Mapping[str, Any] | None = None,
                   ) -> tuple[Consumer, Producer]:
    """Build both clients. Raises KafkaException on invalid configuration.

    ``consumer_overrides`` are set last on the consumer (the batch jobs ask for
    partition-EOF events, to know where a partition ends).
    """
    # librdkafka's own log lines go through Python logging, so they come out as JSON too.
    consumer = Consumer({**consumer_config(settings), **(consumer_overrides or {}),
                         "stats_cb": on_stats, "error_cb": on_error,
                         "logger": logging.getLogger("librdkafka.consumer")})
    return consumer, create_producer(settings, on_error=on_error, on_delivery=on_delivery)


def create_producer(settings: Settings, *, on_error: Callable[[KafkaError], None],
                    on_delivery: Callable[[KafkaError | None, Any], None]) -> Producer:
    """The producer alone: also a fenced producer's replacement."""
    return Producer({**producer_config(settings), "error_cb": on_error,
                     "on_delivery": on_delivery,
                     "logger": logging.getLogger("librdkafka.producer")})


Headers = list[tuple[str, str | bytes | None]]


def provenance_headers(topic: str, partition: int, offset: int, index: int | None) -> Headers:
    """Where an output came from, so any record can be traced to its input message."""
    headers: Headers = [
        ("x-source-topic", topic.encode()), ("x-source-partition", b"%d" % partition),
        ("x-source-offset", b"%d" % offset), ("x-classifier-version", __version__.encode())]
    if index is not None:
        headers.append(("x-record-index", b"%d" % index))
    return headers
