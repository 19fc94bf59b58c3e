"""Benchmark (not a test): CPU per event of the batch jobs, to compare with the stream worker's.

    python bench/jobs_throughput.py                   # 20,000 messages (about 90,000 events)
    python bench/jobs_throughput.py --messages 50000

Preloads the benchmark's generator (worker.dev.samples) into a fresh topic on the local broker
(KAFKA_BOOTSTRAP_SERVERS, else one started from worker/dev/devbroker.py), then:

1. ``reclassify --since 0`` over all of it;
2. the worker with ``--max-message-bytes 1024`` (so that most envelopes and pages are
   dead-lettered as too large), stopped once it has committed every input message, then
   ``replay-dead-letters`` over its dead letters;
3. the worker over just the messages the small limit dead-lettered (the replay's events, read
   the ordinary way: envelopes and pages cost more per event than the average message).

and, for comparison on the same machine at the same time, the stream worker draining the same
input. Every process is measured the same way, start to exit: CPU seconds of all its threads
(librdkafka's included, start-up included) from ``wait4``, wall time, peak RSS. An event is a
record classified, skipped or left unreadable (the unit of docs/benchmarks.md). The jobs' own
summaries (``job_cpu_s``: from client creation on) are kept too. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import kit  # noqa: E402
from worker.dev import devbroker  # noqa: E402
from worker.dev.samples import generate  # noqa: E402

SMALL_LIMIT = 1024


@contextlib.contextmanager
def broker() -> Iterator[str]:
    if env := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield env
    else:
        with devbroker.LocalKafka() as kafka:
            yield kafka.bootstrap


def _cpu_and_rss(proc: subprocess.Popen[bytes]) -> tuple[int, float, float]:
    """Reap ``proc``: exit code, CPU seconds of its whole life (all threads, start-up
    included), peak RSS in MB."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _figures(name: str, events: int, cpu_s: float, elapsed_s: float, rss_mb: float
             ) -> dict[str, Any]:
    return {"contender": name, "events": events, "cpu_s": round(cpu_s, 2),
            "elapsed_s": round(elapsed_s, 1),
            "events_per_cpu_s": round(events / cpu_s) if cpu_s else None,
            "cpu_us_per_event": round(cpu_s / events * 1e6, 2) if events else None,
            "events_per_s": round(events / elapsed_s) if elapsed_s else None,
            "peak_rss_mb": round(rss_mb, 1)}


def run_job(env: dict[str, str], *args: str) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    code, cpu_s, rss_mb = _cpu_and_rss(proc)
    elapsed = time.monotonic() - started
    lines = [line for line in stderr.splitlines() if '"job finished"' in line]
    if code != 0 or not lines:
        raise RuntimeError(f"{args[0]} exited {code}:\n{stderr[-3000:]}")
    s = json.loads(lines[-1])["summary"]
    events = sum(g["classified"] + g["skipped"] + g["dead_lettered"] for g in s["groups"].values())
    return _figures(args[0], events, cpu_s, elapsed, rss_mb) | {
        "published": s["published"], "job_cpu_s": s["cpu_s"], "job_elapsed_s": s["elapsed_s"]}


def run_worker(env: dict[str, str], bootstrap: str, source: str, ends: dict[int, int],
               events: int, **settings: str) -> dict[str, Any]:
    """The stream worker draining the same input, start to stop, on the same basis."""
    group = f"bench-jobs-worker-{time.time_ns()}"
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "worker", "run"], cwd=ROOT,
                              env={**env, "CLASSIFIER_GROUP_ID": group, **settings},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watch = kit.CommitWatch(bootstrap, group, source, ends)
    try:
        if watch.wait(900, alive=lambda: worker.poll() is None) is None:
            raise RuntimeError("the worker did not commit every input message in time")
    finally:
        watch.close()
        worker.send_signal(signal.SIGTERM)
    code, cpu_s, rss_mb = _cpu_and_rss(worker)
    if code != 0:
        raise RuntimeError(f"the worker exited {code}")
    return _figures("worker run", events, cpu_s, time.monotonic() - started, rss_mb)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--partitions", type=int, default=3)
    args = p.parse_args(argv)
    with broker() as bootstrap:
        topics = kit.new_topics(bootstrap, args.partitions, "jobs-in", "jobs-out", "jobs-dlq",
                                "jobs-dlq-small", "jobs-replayed", append_time=False)
        source, output, dead, dead_small, replayed = topics
        pre = kit.preload(bootstrap, source, args.partitions,
                          generate(args.messages, seed=7, bad_ratio=0.01))
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "CLASSIFIER_INPUT_TOPIC": source, "CLASSIFIER_OUTPUT_TOPIC": output,
               "CLASSIFIER_DEAD_LETTER_TOPIC": dead, "CLASSIFIER_METRICS_PORT": "0",
               "CLASSIFIER_GROUP_ID": f"bench-jobs-{time.time_ns()}"}
        results: dict[str, Any] = {"messages": pre.messages, "events": pre.events}
        results["worker"] = run_worker(env, bootstrap, source, pre.end_offsets, pre.events)
        results["reclassify"] = run_job(env, "reclassify", "--since", "0")
        small_env = {**env, "CLASSIFIER_OUTPUT_TOPIC": replayed,
                     "CLASSIFIER_DEAD_LETTER_TOPIC": dead_small}
        small = run_worker(small_env, bootstrap, source, pre.end_offsets, pre.events,
                           CLASSIFIER_MAX_MESSAGE_BYTES=str(SMALL_LIMIT))
        results["worker_small_limit"] = small | {"note": "fills the dead-letter topic"}
        results["replay"] = run_job(small_env, "replay-dead-letters")
        # The worker on just the messages the small limit dead-lettered: the same events as the
        # replay, read the ordinary way (envelopes and pages are heavier than the average).
        large_topic, large_out = kit.new_topics(bootstrap, args.partitions, "jobs-large",
                                                "jobs-large-out", append_time=False)
        topics += [large_topic, large_out]
        large = kit.preload(bootstrap, large_topic, args.partitions,
                            (m for m in generate(args.messages, seed=7, bad_ratio=0.01)
                             if len(m.value or b"") > SMALL_LIMIT))
        results["worker_same_messages_as_replay"] = run_worker(
            {**env, "CLASSIFIER_INPUT_TOPIC": large_topic, "CLASSIFIER_OUTPUT_TOPIC": large_out},
            bootstrap, large_topic, large.end_offsets, large.events)
        kit.delete_topics(bootstrap, topics)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
