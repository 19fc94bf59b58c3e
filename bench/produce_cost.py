"""Benchmark (not a test): CPU cost of one ``Producer.produce()`` call, in the caller's thread.

    python bench/produce_cost.py [--calls 100000] [--rounds 3]

Every output of the worker (and of the Quix peer) is one ``produce()`` call on the Python
thread, with a ~1.5 KB value, a device-id key and the provenance headers. This measures what
that call alone costs with and without headers, using the worker's own producer settings
(``worker.stream.clients.producer_config``) and no broker: the bootstrap address is a closed local
port, so messages only queue (the queue is purged between rounds) and nothing leaves
127.0.0.1. It is the floor under the per-event cost of any librdkafka-based Python worker that
publishes one record per event; docs/benchmarks.md uses it to explain the targets.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Producer

from worker.stream.clients import producer_config, provenance_headers
from worker.stream.settings import Settings

VALUE = b"x" * 1500
KEY = b"3f2c9a51-8b7e-4c1d-9f0a-2b6d8e4c7a10"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(bootstrap_servers="127.0.0.1:9", guarantee="at-least-once",
                        stats_interval_ms=0)
    config = producer_config(settings) | {
        "queue.buffering.max.messages": 2 * args.calls, "queue.buffering.max.kbytes": 2**21,
        "log_level": 0}  # the closed port would log a connection error every second
    headers = [*provenance_headers("enrollment-raw", 3, 1234567, None),
               ("content-type", b"application/json")]
    producer = Producer(config)
    cases: dict[str, Callable[[], None]] = {
        f"value + key + {len(headers)} headers (what the worker sends)":
            lambda: producer.produce("out", VALUE, KEY, headers=headers),
        "value + key, no headers": lambda: producer.produce("out", VALUE, KEY),
    }
    for name, call in cases.items():
        best = float("inf")
        for _ in range(args.rounds):
            start = time.thread_time()
            for _ in range(args.calls):
                call()
            best = min(best, time.thread_time() - start)
            producer.purge()
            producer.poll(0)
        print(f"{best / args.calls * 1e6:6.2f} us CPU per produce(): {name} "
              f"(best of {args.rounds} x {args.calls:,} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
