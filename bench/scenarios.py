"""The measured scenarios: drain a preloaded topic (throughput, memory) and a fixed offered
load (end-to-end latency). Each returns a plain dict that goes into latest.json as it is."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kit
import procs
from confluent_kafka import KafkaError, Message

from worker.dev.samples import SampleMessage

CONTENDERS = ("ceiling", "ceiling_alo", "worker_alo", "worker_eos", "peer_alo", "peer_eos")
LATENCY_CONTENDERS = ("worker_alo", "worker_eos", "peer_alo", "peer_eos")
GUARANTEE = {"alo": "at-least-once", "eos": "exactly-once"}
# librdkafka tuning the worker ships with, given to the peer too (not its semantics)
PEER_CONSUMER = {"queued.max.messages.kbytes": 16384}
PEER_PRODUCER = {"linger.ms": 5, "compression.type": "lz4", "queue.buffering.max.kbytes": 65536}


@dataclass(frozen=True)
class Conf:
    bootstrap: str
    partitions: int
    batch_size: int
    batch_timeout_ms: int
    peer_python: str | None
    log_dir: Path
    broker: procs.Monitor | None = None
    worker_env: tuple[tuple[str, str], ...] = ()  # extra CLASSIFIER_*/RDKAFKA_* for the worker
    # Where `worker` is imported from, by the worker and the peer alike: the checkout (plain
    # Python) or build/compiled (the mypyc-compiled core, what the container image runs).
    core_path: Path = kit.ROOT


def contender(name: str, conf: Conf, *, source: str, output: str, dead: str,
              group: str) -> procs.Contender:
    env = procs.base_env()
    if name.startswith("ceiling"):
        cmd = [sys.executable, str(kit.BENCH / "ceiling.py"), "--bootstrap", conf.bootstrap,
               "--input", source, "--output", output, "--group", group,
               "--batch-size", str(conf.batch_size),
               "--batch-timeout-ms", str(conf.batch_timeout_ms),
               *(["--commit"] if name == "ceiling_alo" else [])]
    elif name.startswith("worker_"):
        # -P: not the working directory's worker/ first, but core_path's
        cmd = [sys.executable, "-P", "-m", "worker", "run"]
        env |= {"PYTHONPATH": str(conf.core_path),
                "KAFKA_BOOTSTRAP_SERVERS": conf.bootstrap, "CLASSIFIER_INPUT_TOPIC": source,
                "CLASSIFIER_OUTPUT_TOPIC": output, "CLASSIFIER_DEAD_LETTER_TOPIC": dead,
                "CLASSIFIER_GROUP_ID": group, "CLASSIFIER_GUARANTEE": GUARANTEE[name[-3:]],
                "CLASSIFIER_TRANSACTIONAL_ID": f"bench-{uuid.uuid4().hex}",
                "CLASSIFIER_METRICS_PORT": "0", "CLASSIFIER_METRICS_ADDRESS": "127.0.0.1",
                "CLASSIFIER_BATCH_SIZE": str(conf.batch_size),
                "CLASSIFIER_BATCH_TIMEOUT_MS": str(conf.batch_timeout_ms), **dict(conf.worker_env)}
    elif name.startswith("peer_") and conf.peer_python:
        cmd = [conf.peer_python, str(kit.BENCH / "peer_quix.py"), "--bootstrap", conf.bootstrap,
               "--input", source, "--output", output, "--dead-letter", dead, "--group", group,
               "--guarantee", GUARANTEE[name[-3:]],
               "--commit-interval-ms", str(conf.batch_timeout_ms),
               "--consumer-config", json.dumps(PEER_CONSUMER),
               "--producer-config", json.dumps(PEER_PRODUCER)]
        env |= {"BENCH_WORKER_PATH": str(conf.core_path)}
    else:
        raise ValueError(f"unknown or unavailable contender {name}")
    return procs.Contender(name, cmd, env, conf.log_dir)


def drain(name: str, conf: Conf, pre: kit.Preloaded, timeout: float) -> dict[str, Any]:
    """Run one contender over the whole preloaded topic; time from the first output to the
    last commit (the ceiling commits nothing: to its last output appended)."""
    out, dead = kit.new_topics(conf.bootstrap, conf.partitions, f"{name}-out", f"{name}-dlq")
    group = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    proc = contender(name, conf, source=pre.topic, output=out, dead=dead, group=group)
    watch = (kit.OutputWatch(conf.bootstrap, out, conf.partitions, pre.messages)
             if name == "ceiling" else
             kit.CommitWatch(conf.bootstrap, group, pre.topic, pre.end_offsets))
    started = time.time()
    with procs.running(proc):
        done_at = watch.wait(timeout, alive=proc.alive)
    watch.close()
    result: dict[str, Any] = {"contender": name, "ok": False, "exit_code": proc.exit_code,
                              "peak_rss_mb": _round(proc.monitor.peak_mb if proc.monitor else None),
                              "log": str(proc.log_path)}
    if done_at is None:
        kit.delete_topics(conf.bootstrap, [out, dead])
        result["error"] = f"not done within {timeout:.0f}s: {proc.log_tail(600)}"
        return result
    stats = kit.read_outputs(conf.bootstrap, [out, dead], conf.partitions)
    kit.delete_topics(conf.bootstrap, [out, dead])
    first = (stats.first_ms or 0) / 1000
    seconds = done_at - first
    if name.startswith("ceiling"):  # passthrough: one output per input message
        expected, got = {out: pre.messages, dead: 0}, stats.records
    else:
        expected, got = {out: pre.classified, dead: pre.dead_letters}, stats.records
    exact = got == expected and stats.duplicates == 0
    complete = all(got[t] >= n for t, n in expected.items())
    cpu = proc.monitor.cpu_between(first, done_at) if proc.monitor else None
    broker_cpu = conf.broker.cpu_between(first, done_at) if conf.broker else None
    threads = proc.monitor.threads_between(first, done_at) if proc.monitor else None
    result |= {
        "ok": complete and (exact or name.endswith("_alo")),
        "exact": exact, "duplicates": stats.duplicates,
        "outputs": {"expected": sum(expected.values()), "got": sum(got.values())},
        "seconds": round(seconds, 3), "startup_s": round(first - started, 2),
        "events_per_s": round(pre.events / seconds, 1),
        "messages_per_s": round(pre.messages / seconds, 1),
        "cpu_s": _round(cpu, 3), "cpu_us_per_event": _round(cpu and cpu / pre.events * 1e6),
        "cpu_us_per_event_by_thread": threads and {
            g: round(v / pre.events * 1e6, 1) for g, v in threads.items()},
        "broker_cpu_s": _round(broker_cpu, 3)}
    return result


def latency(name: str, conf: Conf, load: list[SampleMessage], rate: float, seconds: float, *,
            warmup: int = 20) -> dict[str, Any]:
    """Offer ``rate`` events/s for ``seconds`` to a running contender; each output's latency
    is its arrival at a read_committed consumer minus its input record's produce timestamp."""
    source, out, dead = kit.new_topics(conf.bootstrap, conf.partitions, f"lat-{name}-in",
                                       f"lat-{name}-out", f"lat-{name}-dlq")
    group = f"bench-lat-{name}-{uuid.uuid4().hex[:8]}"
    proc = contender(name, conf, source=source, output=out, dead=dead, group=group)
    producer = kit.input_producer(conf.bootstrap, **{"linger.ms": 1})
    produced: dict[tuple[int, int], int] = {}
    probe_file = conf.log_dir / f"probe-{name}-{uuid.uuid4().hex[:6]}.txt"
    result: dict[str, Any] = {"contender": name, "ok": False, "rate": rate,
                              "log": str(proc.log_path)}

    def note(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            produced[(msg.partition(), msg.offset())] = msg.timestamp()[1]

    with procs.running(proc):
        deadline = time.monotonic() + 120
        for sample in load[:warmup]:  # the contender joins its group and turns over once
            kit.produce(producer, source, sample, deadline)
        producer.flush(30)
        ends = kit.end_offsets(conf.bootstrap, source, conf.partitions)
        warm = kit.CommitWatch(conf.bootstrap, group, source, ends)
        ready = warm.wait(120, alive=proc.alive)
        warm.close()
        if ready is None:
            result["error"] = f"no warm-up output: {proc.log_tail(600)}"
            return result
        probe = subprocess.Popen(
            [sys.executable, str(kit.BENCH / "probe.py"), "--bootstrap", conf.bootstrap,
             "--topics", f"{out},{dead}", "--partitions", str(conf.partitions),
             "--out", str(probe_file), "--max-seconds", str(seconds + 300)],
            stdout=subprocess.PIPE, env=procs.base_env(), cwd=kit.ROOT)
        try:
            if probe.stdout is None or probe.stdout.readline().strip() != b"ready":
                raise RuntimeError("latency probe did not start")
            offered, expected, elapsed = _offer(producer, source, load[warmup:], rate, seconds,
                                                note=note)
            ends = kit.end_offsets(conf.bootstrap, source, conf.partitions)
            tail = kit.CommitWatch(conf.bootstrap, group, source, ends)
            drained = tail.wait(120, alive=proc.alive)
            tail.close()
            time.sleep(1.0)  # the probe's last fetch
        finally:
            probe.terminate()
            probe.wait(30)
    arrival, append, worst = _latencies(probe_file, produced)
    probe_file.unlink(missing_ok=True)
    result |= {"ok": drained is not None and len(arrival) >= expected,
               "offered_events_per_s": round(offered / elapsed, 1), "seconds": round(elapsed, 1),
               "samples": len(arrival), "expected_samples": expected,
               "peak_rss_mb": _round(proc.monitor.peak_mb if proc.monitor else None),
               **_summary(arrival, "ms"), **_summary(append, "append_ms"),
               "cdf_ms": _cdf(arrival), "worst_ms_by_second": worst}
    return result


def _offer(producer: Any, topic: str, load: list[SampleMessage], rate: float, seconds: float,
           *, note: Any) -> tuple[int, int, float]:
    """Produce at ``rate`` events/s (each message is due when its events are); bounded by
    ``seconds`` and by the number of prepared messages."""
    events = outputs = 0
    start = time.monotonic()
    deadline = start + seconds
    for sample in load:
        due = start + events / rate
        now = time.monotonic()
        if due >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        kit.produce(producer, topic, sample, deadline + 60, on_delivery=note,
                    timestamp=int(time.time() * 1000))
        producer.poll(0)
        events += len(sample.expected)
        outputs += sum(r.outcome in kit.OUTPUT_OUTCOMES for r in sample.expected)
    elapsed = time.monotonic() - start
    producer.flush(60)
    return events, outputs, elapsed


def _latencies(path: Path, produced: dict[tuple[int, int], int]
               ) -> tuple[list[float], list[float], list[float]]:
    """Latencies to arrival and to append, and the worst one per second of the load."""
    arrival, append, worst = [], [], {}
    start = min(produced.values(), default=0)
    if path.is_file():
        for line in path.read_text().splitlines():
            p, off, at, ts = line.split()
            if (sent := produced.get((int(p), int(off)))) is not None:
                arrival.append(latency := float(at) - sent)
                append.append(float(ts) - sent)
                second = (sent - start) // 1000
                worst[second] = max(worst.get(second, 0.0), latency)
    return arrival, append, [round(worst[s], 1) for s in sorted(worst)]


def _summary(values: list[float], unit: str) -> dict[str, float | None]:
    if len(values) < 2:
        return {f"p50_{unit}": None, f"p99_{unit}": None, f"max_{unit}": None}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {f"p50_{unit}": round(q[49], 1), f"p90_{unit}": round(q[89], 1),
            f"p99_{unit}": round(q[98], 1), f"max_{unit}": round(max(values), 1)}


def _cdf(values: list[float], points: int = 200) -> list[float]:
    """Latency at ``points`` evenly spaced quantiles (enough to draw the CDF)."""
    if len(values) < 2:
        return []
    ordered = sorted(values)
    return [round(ordered[min(len(ordered) - 1, int(i * len(ordered) / points))], 2)
            for i in range(points)] + [round(ordered[-1], 2)]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def env_versions(peer_python: str | None, core_path: Path = kit.ROOT) -> dict[str, Any]:
    """Versions of what runs: ours in this interpreter, the peer's in its own."""
    import confluent_kafka
    import orjson

    import worker
    versions: dict[str, Any] = {
        "python": sys.version.split()[0], "worker": worker.__version__,
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0], "orjson": orjson.__version__,
        "classifier_core": core_build(sys.executable, core_path)}
    if peer_python:
        code = ("import quixstreams, confluent_kafka, sys, json; print(json.dumps({"
                "'quixstreams': quixstreams.__version__, 'python': sys.version.split()[0], "
                "'confluent_kafka': confluent_kafka.__version__, "
                "'librdkafka': confluent_kafka.libversion()[0]}))")
        res = subprocess.run([peer_python, "-c", code], capture_output=True, text=True,
                             timeout=60, check=False, env=os.environ.copy())
        versions["peer"] = json.loads(res.stdout) if res.returncode == 0 else None
        if versions["peer"] is not None:
            versions["peer"]["classifier_core"] = core_build(peer_python, core_path)
    return versions


def core_build(python: str, core_path: Path) -> str:
    """The build of the classifier core that `python` imports from core_path."""
    res = subprocess.run([python, "-P", "-c", "import worker; print(worker.core_build())"],
                         capture_output=True, text=True, timeout=60, check=False,
                         env=procs.base_env() | {"PYTHONPATH": str(core_path)})
    return res.stdout.strip() if res.returncode == 0 else f"unknown ({res.stderr.strip()[-200:]})"
