"""Benchmarks (not tests): throughput, latency and memory of the worker against the
passthrough ceiling and a Quix Streams peer, on one local broker, in one run.

    python bench/run.py --quick                 # under five minutes: a smoke test of it all
    python bench/run.py                         # the full run (see docs/benchmarks.md)
    python bench/run.py --backlog 1000000       # ... plus peak RSS draining 1M events

An "event" is one input record (one outcome of classify_message: an envelope of 12 rows is 12
events), the unit for every contender; the ceiling counts messages and converts with the
preloaded set's events per message. Writes bench/results/latest.json, latest.png and a
stamped copy of the JSON, and appends a table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEER_VENV_PYTHON = ROOT / "bench" / ".venv-peer" / "bin" / "python"
QUIX_PIN = "3.28.1"
INSTALL = f"""Install them with:
    .venv/bin/pip install -r bench/requirements.txt          # matplotlib, psutil
    python3.11 -m venv bench/.venv-peer                       # the peer's own venv:
    bench/.venv-peer/bin/pip install -r bench/requirements-peer.txt   # quixstreams=={QUIX_PIN}
(quixstreams pins confluent-kafka<2.13, so it must not go into the worker's .venv.)
Or pass --no-peer to run without the peer."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--quick", action="store_true", help="small input, short latency runs")
    p.add_argument("--messages", type=int, help="preloaded input messages (default 100000; "
                   "quick 25000)")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds (min 3)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--batch-timeout-ms", type=int, default=100)
    p.add_argument("--latency-rate", type=float, default=5000.0, help="offered events/s")
    p.add_argument("--latency-seconds", type=float, help="default 60; quick 12")
    p.add_argument("--latency-rounds", type=int, help="default 3; quick 1")
    p.add_argument("--backlog", type=int, metavar="EVENTS",
                   help="also drain a backlog of this many events (e.g. 1000000)")
    p.add_argument("--backlog-contenders", default="worker_eos,worker_alo")
    p.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra setting for the worker only, e.g. "
                   "RDKAFKA_PRODUCER_LINGER_MS=1 (repeatable; recorded in the results)")
    p.add_argument("--skip", action="append", default=[],
                   choices=("throughput", "latency"), help="leave out a scenario")
    p.add_argument("--no-peer", action="store_true", help="run without the Quix peer")
    p.add_argument("--core", choices=("compiled", "python"), default="compiled",
                   help="classifier core for the worker and the peer alike: the mypyc-compiled "
                   "build the container image ships (built first by scripts/compile-core.sh), "
                   "or plain Python from the checkout")
    p.add_argument("--peer-python", default=str(PEER_VENV_PYTHON))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = p.parse_args(argv)
    args.messages = args.messages or (25_000 if args.quick else 100_000)
    args.latency_seconds = args.latency_seconds or (12.0 if args.quick else 60.0)
    args.latency_rounds = args.latency_rounds or (1 if args.quick else 3)
    args.rounds = max(3, args.rounds)
    if bad := [kv for kv in args.worker_env
               if not kv.startswith(("CLASSIFIER_", "RDKAFKA_")) or "=" not in kv]:
        p.error(f"--worker-env takes CLASSIFIER_*=... or RDKAFKA_*=..., not {bad}")
    return args


def check_dependencies(args: argparse.Namespace) -> str | None:
    """None if all is there, else what to tell the user."""
    missing = [m for m in ("psutil", "matplotlib") if importlib.util.find_spec(m) is None]
    if not args.no_peer:
        try:
            found = subprocess.run(
                [args.peer_python, "-c", "import quixstreams; print(quixstreams.__version__)"],
                capture_output=True, text=True, timeout=60, check=False).stdout.strip()
        except OSError:
            found = ""
        if found != QUIX_PIN:
            missing.append(f"quixstreams=={QUIX_PIN} in {args.peer_python} (found: "
                           f"{found or 'nothing'})")
    return f"missing benchmark dependencies: {'; '.join(missing)}.\n{INSTALL}" if missing else None


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown") if Path("/proc/cpuinfo").is_file() else "?"
    import psutil
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def show(run: dict[str, Any]) -> None:
    if not run.get("ok"):
        print(f"    {run['contender']:<11} FAILED: {run.get('error') or run}", flush=True)
    elif "events_per_s" in run:
        print(f"    {run['contender']:<11} {run['events_per_s']:>10,.0f} events/s  "
              f"{run['seconds']:6.2f} s  cpu {run['cpu_us_per_event'] or 0:5.1f} us/event  "
              f"rss {run['peak_rss_mb'] or 0:5.0f} MB  outputs {run['outputs']['got']:,}"
              f"{'' if run['exact'] else ' (dup ' + str(run['duplicates']) + ')'}", flush=True)
        if run.get("cpu_us_per_event_by_thread"):
            print("                cpu us/event by thread: " + ", ".join(
                f"{g} {v}" for g, v in run["cpu_us_per_event_by_thread"].items()), flush=True)
    else:
        print(f"    {run['contender']:<11} p50 {run['p50_ms']} ms  p99 {run['p99_ms']} ms  "
              f"max {run['max_ms']} ms  ({run['samples']:,} events at "
              f"{run['offered_events_per_s']:,.0f}/s; rss {run['peak_rss_mb']} MB)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if (problem := check_dependencies(args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import kit
    import procs
    import scenarios

    from worker.dev.devbroker import KAFKA_VERSION, LocalKafka
    from worker.dev.samples import generate
    peer_python = None if args.no_peer else args.peer_python
    names = [n for n in scenarios.CONTENDERS if peer_python or not n.startswith("peer")]
    started, mach = time.monotonic(), machine()
    core_path = ROOT
    if args.core == "compiled":
        core_path = ROOT / "build" / "compiled"
        subprocess.run(["bash", str(ROOT / "scripts" / "compile-core.sh"), str(core_path)],
                       check=True)
    versions = scenarios.env_versions(peer_python, core_path) | {"kafka_broker": KAFKA_VERSION}
    print(f"versions: {json.dumps(versions)}", flush=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    runs: dict[str, list[Any]] = {"rounds": [], "latency": [], "backlog": []}
    with LocalKafka() as broker:
        proc = getattr(broker, "_proc", None)
        broker_mon = procs.Monitor(proc.pid, 0.25) if proc is not None else None
        conf = scenarios.Conf(broker.bootstrap, args.partitions, args.batch_size,
                              args.batch_timeout_ms, peer_python, log_dir, broker_mon,
                              tuple(tuple(kv.split("=", 1)) for kv in args.worker_env),
                              core_path)
        if "throughput" in args.skip:  # nothing drains it: only its counts are needed
            pre = kit.describe(generate(min(args.messages, 20_000), seed=args.seed),
                               args.partitions)
        else:
            print(f"broker {broker.bootstrap}; preloading {args.messages:,} messages", flush=True)
            pre = kit.preload(broker.bootstrap, "bench-input", args.partitions,
                              generate(args.messages, seed=args.seed))
        print(f"input: {pre.messages:,} messages, {pre.events:,} events "
              f"({pre.events_per_message:.3f}/message), {pre.outputs:,} output records, "
              f"{pre.bytes / 2**20:.0f} MiB", flush=True)
        timeout = 120 + pre.events / 500  # bounded: no contender is slower than 500 events/s
        if "throughput" not in args.skip:
            throughput(args, names, conf, pre, runs["rounds"], timeout=timeout)
        if "latency" not in args.skip:
            latency(args, names, conf, pre, runs["latency"])
        backlog_info = backlog(args, conf, runs["backlog"]) if args.backlog else None
        if broker_mon is not None:
            broker_mon.stop()
        gc.collect()  # drop our idle Kafka handles before the broker goes (no reconnect noise)
    return finish(args, mach=mach, versions=versions, pre=pre, runs=runs,
                  backlog_info=backlog_info, started=started, log_dir=log_dir)


def throughput(args: argparse.Namespace, names: list[str], conf: Any, pre: Any,
               rounds: list[dict[str, Any]], *, timeout: float) -> None:
    import scenarios
    print("warm-up (ceiling, not counted)", flush=True)
    scenarios.drain("ceiling", conf, pre, timeout)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # alternate who goes first
        print(f"round {r + 1}/{args.rounds}: {' -> '.join(order)}", flush=True)
        rounds.append({})
        for name in order:
            rounds[-1][name] = scenarios.drain(name, conf, pre, timeout)
            show(rounds[-1][name])


def latency(args: argparse.Namespace, names: list[str], conf: Any, pre: Any,
            runs: list[dict[str, Any]]) -> None:
    import scenarios

    from worker.dev.samples import generate
    lat_names = [n for n in scenarios.LATENCY_CONTENDERS if n in names]
    need = int(args.latency_rate * args.latency_seconds / pre.events_per_message * 1.2)
    load = list(generate(need + 100, seed=args.seed + 1))
    for r in range(args.latency_rounds):
        order = lat_names[r % len(lat_names):] + lat_names[:r % len(lat_names)]
        print(f"latency {r + 1}/{args.latency_rounds}: {args.latency_rate:,.0f} events/s "
              f"for {args.latency_seconds:.0f} s each: {' -> '.join(order)}", flush=True)
        for name in order:
            runs.append(scenarios.latency(name, conf, load, args.latency_rate,
                                          args.latency_seconds))
            show(runs[-1])


def backlog(args: argparse.Namespace, conf: Any, runs: list[dict[str, Any]]) -> dict[str, Any]:
    import kit
    import scenarios

    from worker.dev.samples import generate
    print(f"backlog: preloading {args.backlog:,} events", flush=True)
    pre = kit.preload(conf.bootstrap, "bench-backlog", args.partitions,
                      _until_events(generate(10**9, seed=args.seed + 2), args.backlog))
    print(f"backlog: {pre.messages:,} messages = {pre.events:,} events "
          f"({pre.bytes / 2**20:.0f} MiB)", flush=True)
    for name in args.backlog_contenders.split(","):
        runs.append(scenarios.drain(name.strip(), conf, pre, 120 + pre.events / 500))
        show(runs[-1])
    return {"messages": pre.messages, "events": pre.events, "output_records": pre.outputs,
            "mib": round(pre.bytes / 2**20, 1), "contenders": args.backlog_contenders}


def _until_events(samples: Any, events: int) -> Any:
    total = 0
    for sample in samples:
        if total >= events:
            return
        total += len(sample.expected)
        yield sample


def finish(args: argparse.Namespace, *, mach: dict[str, Any], versions: dict[str, Any],
           pre: Any, runs: dict[str, list[Any]], backlog_info: dict[str, Any] | None,
           started: float, log_dir: Path) -> int:
    import report
    mach["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    figures = report.summarize(runs["rounds"], runs["latency"], runs["backlog"])
    peer = versions.get("peer") or {}
    result: dict[str, Any] = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
        "events_definition": "input records per second: every record inside a message is one "
        "event (classified, dead-lettered or skipped); the ceiling's messages/s is converted "
        "with the input's events per message",
        **{k: v for k, v in figures.items() if not isinstance(v, dict)},
        "figures": figures, "partitions": args.partitions,
        "N": {"messages": pre.messages, "events": pre.events},
        "input": {"messages": pre.messages, "events": pre.events,
                  "events_per_message": round(pre.events_per_message, 4),
                  "classified": pre.classified, "dead_letters": pre.dead_letters,
                  "skipped": pre.skipped, "mib": round(pre.bytes / 2**20, 1),
                  "partitions": args.partitions, "seed": args.seed},
        "batch_size": args.batch_size, "batch_timeout_ms": args.batch_timeout_ms,
        "worker_env": args.worker_env,
        "latency_rate": args.latency_rate, "latency_seconds": args.latency_seconds,
        "backlog": backlog_info, "machine": mach, "versions": versions,
        "versions_line": f"worker {versions['worker']} (classifier core: "
        f"{versions['classifier_core']}, for the peer too), confluent-kafka "
        f"{versions['confluent_kafka']} (librdkafka {versions['librdkafka']}), Kafka "
        f"{versions['kafka_broker']}, Python {versions['python']}"
        + (f"; quixstreams {peer['quixstreams']} with confluent-kafka "
           f"{peer['confluent_kafka']}" if peer else ""),
        "wall_seconds": round(time.monotonic() - started, 1), "rounds": runs["rounds"],
        "latency_runs": runs["latency"], "backlog_runs": runs["backlog"]}
    result["targets"] = report.targets(figures, backlog_info and backlog_info["events"])
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=1) + "\n"
    (args.results / "latest.json").write_text(text)
    (args.results / f"run-{stamp}{'-quick' if args.quick else ''}.json").write_text(text)
    report.chart(result, args.results / "latest.png")
    with args.docs.open("a") as docs:
        docs.write("\n" + report.markdown(result))
    print("\n" + report.markdown(result))
    print(f"wrote {args.results / 'latest.json'}, {args.results / 'latest.png'}; appended to "
          f"{args.docs}; {result['wall_seconds']:.0f} s")
    failed = [r["contender"] for r in _all(runs) if not r.get("ok")]
    if failed:
        print(f"FAILED runs: {', '.join(failed)}; contender logs kept in {log_dir}")
        return 1
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


def _all(runs: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [*(x for r in runs["rounds"] for x in r.values()), *runs["latency"], *runs["backlog"]]


if __name__ == "__main__":
    sys.exit(main())
