"""The peer contender: a Quix Streams application running our own classification function.

    bench/.venv-peer/bin/python bench/peer_quix.py --bootstrap HOST:PORT --input T \
        --output T --dead-letter T --group G --guarantee exactly-once

Runs in its own virtualenv (bench/requirements-peer.txt): quixstreams pins confluent-kafka
below the worker's version. It publishes what the worker publishes for each record: the
classified event to the output topic (keyed by device), dead letters (with the input's key
and headers) to the dead-letter topic, provenance headers on both; skipped records produce
nothing. Stateless, so no state store is touched. Stops on SIGTERM, or after --max-seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bench/run.py says where to import the worker's classifier from (plain or compiled core).
sys.path.insert(0, os.environ.get("BENCH_WORKER_PATH")
                or str(Path(__file__).resolve().parent.parent))

from quixstreams import Application, message_context
from quixstreams.models.serializers import Serializer
from quixstreams.models.topics import Topic

from worker.classify.core import Classified, DeadLetter, Source, classify_message
from worker.stream.clients import provenance_headers

_JSON = [("content-type", b"application/json")]


@dataclass(slots=True)
class Out:
    """One record to publish: where, with which key, bytes and headers."""

    topic: Topic
    key: bytes | None
    value: bytes
    headers: list[tuple[str, Any]]


class OutBytes(Serializer):
    """The value is already encoded by the classifier; pass its bytes through."""

    def __call__(self, value: Out, ctx: Any) -> bytes:
        return value.value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("--bootstrap", "--input", "--output", "--dead-letter", "--group"):
        parser.add_argument(name, required=True)
    parser.add_argument("--guarantee", choices=("exactly-once", "at-least-once"),
                        default="exactly-once")
    parser.add_argument("--commit-interval-ms", type=int, default=100)
    parser.add_argument("--consumer-config", default="{}", help="JSON: librdkafka extras")
    parser.add_argument("--producer-config", default="{}", help="JSON: librdkafka extras")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    window_s = args.commit_interval_ms / 1000
    state_dir = tempfile.mkdtemp(prefix="bench-quix-state-")
    app = Application(
        broker_address=args.bootstrap, consumer_group=args.group,
        auto_offset_reset="earliest", processing_guarantee=args.guarantee,
        # the worker's commit window (batch_timeout_ms), and the same longest wait per poll
        commit_interval=window_s, consumer_poll_timeout=window_s,
        consumer_extra_config=json.loads(args.consumer_config),
        producer_extra_config=json.loads(args.producer_config),
        state_dir=state_dir, loglevel="WARNING")
    source = app.topic(args.input, key_deserializer="bytes", value_deserializer="bytes")
    output = app.topic(args.output, key_serializer="bytes", value_serializer=OutBytes())
    dead = app.topic(args.dead_letter, key_serializer="bytes", value_serializer=OutBytes())

    def classify(value: bytes | None, key: bytes | None, _ts: int,
                 headers: list[tuple[str, Any]] | None) -> list[Out]:
        ctx = message_context()
        topic, partition, offset = ctx.topic, ctx.partition, ctx.offset
        outs = []
        for outcome in classify_message(value, Source(topic, partition, offset)):
            if isinstance(outcome, Classified):
                outs.append(Out(output, outcome.key, outcome.value,
                                provenance_headers(topic, partition, offset, None) + _JSON))
            elif isinstance(outcome, DeadLetter):
                outs.append(Out(dead, key, outcome.value, [
                    *(headers or []), *provenance_headers(topic, partition, offset, outcome.index),
                    ("x-error-class", outcome.error_class.encode()), *_JSON]))
        return outs

    sdf = app.dataframe(source)
    sdf = sdf.apply(classify, expand=True, metadata=True)
    sdf = sdf.set_headers(lambda out, _key, _ts, _headers: out.headers)
    sdf.to_topic(lambda out, _key, _ts, _headers: out.topic, key=lambda out: out.key)
    timer = threading.Timer(args.max_seconds, app.stop)
    timer.daemon = True
    timer.start()
    try:
        app.run()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
