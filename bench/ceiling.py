"""The ceiling contender: a bare confluent-kafka consume -> produce passthrough, no parsing.

    python bench/ceiling.py --bootstrap HOST:PORT --input T --output T --group G [--commit]

The upper bound for any Python worker on this machine and broker: the worker's own librdkafka
settings (``worker.stream.clients``: read_committed consumer, idempotent lz4 producer with
linger 5 ms) and the same ``consume(batch_size, batch_timeout)`` batches, each message's value
and key produced unchanged to the output topic. It commits no offsets, so it pays for no guarantee;
``--commit`` adds the barest at-least-once protocol (every ``batch_timeout_ms``, or 5,000
messages: flush, then commit the window's offsets synchronously) to show what that alone costs.
Runs until SIGTERM/SIGINT; stops by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from worker.stream.clients import consumer_config, producer_config
from worker.stream.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-timeout-ms", type=int, default=100)
    parser.add_argument("--commit", action="store_true", help="at-least-once offset commits")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    timer = threading.Timer(args.max_seconds, stop.set)
    timer.daemon = True
    timer.start()
    settings = Settings(bootstrap_servers=args.bootstrap, group_id=args.group,
                        guarantee="at-least-once", stats_interval_ms=0,
                        batch_size=args.batch_size, batch_timeout_ms=args.batch_timeout_ms)
    consumer = Consumer(consumer_config(settings))
    producer = Producer(producer_config(settings))
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    consumer.subscribe([args.input])
    window: dict[int, int] = {}
    opened: float | None = None
    in_window, timeout_s = 0, args.batch_timeout_ms / 1000
    try:
        while not stop.is_set():
            for m in consumer.consume(args.batch_size, timeout_s):
                if m.error() is not None:
                    continue
                while True:
                    try:
                        producer.produce(args.output, m.value(), m.key(), on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.1)
                window[m.partition()] = m.offset() + 1
                in_window += 1
                opened = opened or time.monotonic()
            producer.poll(0)
            # the worker's commit policy: a window closes after batch_timeout or 5000 messages
            if args.commit and opened is not None and (
                    time.monotonic() - opened >= timeout_s or in_window >= 5000):
                commit(consumer, producer, args.input, window, failed)
                window, opened, in_window = {}, None, 0
        if args.commit and window:
            commit(consumer, producer, args.input, window, failed)
    finally:
        consumer.close()
        producer.flush(10)
    return 1 if failed else 0


def commit(consumer: Consumer, producer: Producer, topic: str, window: dict[int, int],
           failed: list[KafkaError]) -> None:
    if producer.flush(30) or failed:
        raise SystemExit(f"ceiling: deliveries failed or timed out: {failed[:3]}")
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in window.items()],
                    asynchronous=False)


if __name__ == "__main__":
    sys.exit(main())
