"""A real broker works end to end: plain round trip, transactions, restart after a crash and
the SASL_SSL/mTLS listeners. The last two use private LocalKafka instances."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from worker.dev.devbroker import LocalKafka


def _produce(conf: dict[str, Any], topic: str, values: list[bytes]) -> None:
    errors: list[Any] = []
    producer = Producer({**conf, "acks": "all"})
    for i, value in enumerate(values):
        producer.produce(topic, key=str(i % 7).encode(), value=value,
                         on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None] * len(values)


def _consume(conf: dict[str, Any], topic: str, group: str,
             done: Callable[[list[bytes]], bool], timeout: float = 60.0,
             **extra: Any) -> list[bytes]:
    """Read ``topic`` from the beginning until ``done(values)`` or ``timeout``."""
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", **extra})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(values) and time.monotonic() < deadline:
            msg: Message | None = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_produce_and_consume_100(kafka_bootstrap: str, new_topic: Callable[..., str],
                                 unique_group: str) -> None:
    topic = new_topic(partitions=3)
    sent = [f"message-{i}".encode() for i in range(100)]
    conf = {"bootstrap.servers": kafka_bootstrap}
    _produce(conf, topic, sent)
    got = _consume(conf, topic, unique_group, lambda v: len(v) >= 100)
    assert sorted(got) == sorted(sent)


def test_transactions_commit_visible_abort_hidden(kafka_bootstrap: str,
                                                  new_topic: Callable[..., str],
                                                  unique_group: str) -> None:
    topic = new_topic()
    producer = Producer({"bootstrap.servers": kafka_bootstrap,
                         "transactional.id": f"smoke-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    for outcome in ("committed", "aborted", "end"):
        producer.begin_transaction()
        for i in range(1 if outcome == "end" else 5):
            producer.produce(topic, value=f"{outcome}-{i}".encode())
        if outcome == "aborted":
            assert producer.flush(30) == 0  # the aborted records really reach the log
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)

    conf = {"bootstrap.servers": kafka_bootstrap}
    committed = _consume(conf, topic, unique_group, lambda v: b"end-0" in v,
                         **{"isolation.level": "read_committed"})
    assert committed == [f"committed-{i}".encode() for i in range(5)] + [b"end-0"]
    everything = _consume(conf, topic, unique_group + "-ru", lambda v: b"end-0" in v,
                          **{"isolation.level": "read_uncommitted"})
    assert [v for v in everything if v.startswith(b"aborted")] == [
        f"aborted-{i}".encode() for i in range(5)]


@pytest.mark.slow
def test_restart_after_kill_keeps_committed_data(unique_group: str) -> None:
    with LocalKafka() as kafka:
        topic, bootstrap = "restart-smoke", kafka.bootstrap
        kafka.create_topics([topic], partitions=2)
        sent = [f"durable-{i}".encode() for i in range(20)]
        _produce({"bootstrap.servers": bootstrap}, topic, sent)

        kafka.kill()
        assert not kafka.is_running()
        kafka.start()

        assert kafka.is_running() and kafka.bootstrap == bootstrap
        got = _consume({"bootstrap.servers": bootstrap}, topic, unique_group,
                       lambda v: len(v) >= 20)
        assert sorted(got) == sorted(sent)


def _first_error(conf: dict[str, Any], timeout: float = 20.0) -> Any:
    errors: list[Any] = []
    producer = Producer({**conf, "error_cb": errors.append})
    deadline = time.monotonic() + timeout
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors, f"no client error within {timeout}s"
    return errors[0]


@pytest.mark.slow
def test_security_listeners(unique_group: str) -> None:
    with LocalKafka(security=True) as kafka:
        sec = kafka.security_info
        for name, conf in (("sasl-ssl", sec.sasl_ssl_config()), ("mtls", sec.mtls_config())):
            topic = f"secure-{name}"
            kafka.create_topics([topic])
            _produce(conf, topic, [name.encode()])
            got = _consume(conf, topic, f"{unique_group}-{name}", lambda v: len(v) >= 1)
            assert got == [name.encode()]

        wrong = _first_error(sec.sasl_ssl_config(password="not-the-password"))
        assert wrong.code() == KafkaError._AUTHENTICATION
        assert "invalid credentials" in wrong.str()

        no_cert = {k: v for k, v in sec.mtls_config().items()
                   if k not in ("ssl.certificate.location", "ssl.key.location")}
        refused = _first_error(no_cert)  # the SSL listener requires a client certificate
        assert refused.code() in (KafkaError._TRANSPORT, KafkaError._SSL), refused.str()
