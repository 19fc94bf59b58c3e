"""Integration-test broker: $KAFKA_BOOTSTRAP_SERVERS if set, else testcontainers' Kafka when a
Docker engine answers, else a local KRaft broker from ``worker.dev.devbroker``.

Every test collected below this directory is marked ``kafka``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from worker.dev import devbroker

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.kafka)


def _docker_answers(timeout: float = 2.0) -> bool:
    """True only if a Docker engine answers /_ping quickly; any failure means "no Docker".

    Unix sockets are pinged by hand: docker-py leaks a socket (a ResourceWarning, i.e. an error
    under filterwarnings=error) when the daemon socket is missing.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(host.removeprefix("unix://"))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return sock.recv(32).split(b" ")[1:2] == [b"200"]
        client = importlib.import_module("docker").from_env(timeout=int(timeout) or 1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _kafka_container() -> Any:
    with warnings.catch_warnings():  # testcontainers.kafka is a deprecated alias since 4.x
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = importlib.import_module("testcontainers.community.kafka")
        except ImportError:
            module = importlib.import_module("testcontainers.kafka")
    return module.KafkaContainer().with_kraft()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """bootstrap.servers of the session broker; stops only what it started."""
    if env := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield env
    elif _docker_answers():
        container = _kafka_container()
        container.start()
        try:
            yield str(container.get_bootstrap_server())
        finally:
            container.stop()
    else:
        with devbroker.LocalKafka() as kafka:
            yield kafka.bootstrap


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: ``new_topic(partitions=1, prefix="it")`` creates a uuid-named topic, waits until
    every partition has a leader and returns its name; the topics are deleted afterwards."""
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "it") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        devbroker.create_topics(kafka_bootstrap, [name], partitions, timeout=30.0)
        created.append(name)
        return name

    yield make
    if created:  # best effort: an external broker may forbid deletes
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # keep a reference: a
        futures = admin.delete_topics(created, operation_timeout=10)  # GC'd client cancels
        for fut in futures.values():
            with contextlib.suppress(Exception):
                fut.result(15)


@pytest.fixture
def topics(new_topic: Callable[..., str]) -> Callable[[int], Any]:
    """Factory: ``topics(partitions)`` makes a worker's input, output and dead-letter topics."""
    from tests.integration.support import Topics

    def make(partitions: int = 3) -> Topics:
        return Topics(new_topic(partitions, "raw"), new_topic(partitions, "out"),
                      new_topic(1, "dlq"))
    return make


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    """Worker processes a test started (``WorkerProcess``), stopped when it ends."""
    started: list[Any] = []
    yield started
    for w in started:
        w.close()


@pytest.fixture
def unique_group() -> str:
    return f"it-group-{uuid.uuid4().hex[:12]}"
