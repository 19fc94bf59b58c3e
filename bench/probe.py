"""Latency probe: a read_committed consumer that notes when each output record arrives.

    python bench/probe.py --bootstrap HOST:PORT --topics OUT,DEAD --partitions 3 --out FILE

Writes one line per output record, ``<source partition> <source offset> <arrival ms>
<record timestamp ms>``: from the record's provenance headers, this process's wall clock at the
moment ``consume()`` handed it over, and the record's own timestamp (the broker's append time
on the benchmark's output topics). A separate process, so that the load generator's GIL never
delays a timestamp. Prints ``ready`` once it has read every partition to its end (so its own
start-up is not in the figures); stops on SIGTERM or after --max-seconds.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from confluent_kafka import Consumer, TopicPartition


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fetch-wait-ms", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": "bench-latency-probe",
        "enable.auto.commit": False, "isolation.level": "read_committed",
        # A read_committed fetch may wait this long after a transaction commits before it
        # returns; a short wait keeps the probe's own delay small (it is part of the figure).
        "fetch.wait.max.ms": args.fetch_wait_ms, "enable.partition.eof": True})
    assignment = [TopicPartition(t, p, -2) for t in args.topics.split(",")
                  for p in range(args.partitions)]
    consumer.assign(assignment)
    behind = {(tp.topic, tp.partition) for tp in assignment}
    lines: list[str] = []
    deadline = time.monotonic() + args.max_seconds
    ready_by = time.monotonic() + 30
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.005)
            now_ms = time.time() * 1000
            for m in batch:
                if m.error() is not None:
                    behind.discard((m.topic(), m.partition()))  # end of partition reached
                    continue
                h = dict(m.headers() or [])
                if "x-source-offset" in h:
                    lines.append(f"{int(h['x-source-partition'])} {int(h['x-source-offset'])} "
                                 f"{now_ms:.3f} {m.timestamp()[1]}\n")
            if ready_by and (not behind or time.monotonic() > ready_by):
                print("ready", flush=True)  # fetching, and caught up with the warm-up output
                ready_by = 0.0
    finally:
        consumer.close()
        with open(args.out, "w") as out:
            out.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
