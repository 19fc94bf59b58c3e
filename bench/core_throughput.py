"""Benchmark (not a test): events/s of decode + classify + encode in one process, one core.

    python bench/core_throughput.py [--messages 20000] [--rounds 5] [--seed 7] [--compiled]

Generates a realistic mix of input shapes with ``worker.dev.samples`` (envelopes, Graph pages,
log rows, flat events, about 1 % unreadable), then times ``classify_message`` over the whole
set several times and prints the median. An "event" is one outcome (a record inside an
envelope counts once), which is what the worker publishes or dead-letters. ``--compiled``
first builds the mypyc-compiled core (``scripts/compile-core.sh``, what the container image
runs) and times that instead of the plain-Python modules.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compiled", action="store_true",
                        help="build and time the mypyc-compiled core (scripts/compile-core.sh)")
    args = parser.parse_args()
    if args.compiled:
        subprocess.run(["bash", str(ROOT / "scripts" / "compile-core.sh")], check=True,
                       stdout=sys.stderr)
    sys.path.insert(0, str(ROOT / "build" / "compiled" if args.compiled else ROOT))
    from worker import core_build
    from worker.classify import core
    from worker.classify.core import Source, classify_message
    from worker.dev.samples import generate

    build = core_build()
    if args.compiled and build != "mypyc":
        print(f"error: expected the compiled core, imported {core.__file__}", file=sys.stderr)
        return 1
    values = [m.value for m in generate(args.messages, seed=args.seed)]
    source = Source("bench", 0, 0)
    # Warm-up fills the lookup caches the way a long-running worker has them.
    events = sum(len(classify_message(v, source)) for v in values)
    rates, cpu_rates = [], []
    for r in range(args.rounds):
        start, cpu_start = time.perf_counter(), time.process_time()
        for v in values:
            classify_message(v, source)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        rates.append(events / elapsed)
        cpu_rates.append(events / cpu)
        print(f"round {r + 1}: {events} events in {elapsed:.3f} s wall, {cpu:.3f} s CPU = "
              f"{events / elapsed:,.0f} events/s wall, {events / cpu:,.0f} per CPU-second",
              file=sys.stderr)
    # Events per CPU-second is what one dedicated core sustains; wall-clock rates also carry
    # whatever else the (shared, virtual) machine was doing, so both are printed.
    print(f"messages={len(values)} events={events} rounds={args.rounds} "
          f"median={statistics.median(cpu_rates):,.0f} events per CPU-second "
          f"(min {min(cpu_rates):,.0f}, max {max(cpu_rates):,.0f}); wall-clock median "
          f"{statistics.median(rates):,.0f} events/s ({build} core, "
          f"python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
