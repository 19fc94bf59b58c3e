"""Where the worker's CPU goes while it drains a backlog: py-spy on the real process.

    python bench/profile_worker.py [--messages 30000] [--guarantee exactly-once,at-least-once]

Starts the local broker, preloads the same realistic input as bench/run.py, runs
``python -m worker run`` on it under ``py-spy record`` (non-blocking sampling, idle threads
left out, or kept with --idle for a wall-clock view) and prints the hottest functions, by their
own time and including callees, as a share of the samples taken inside the consume loop. The
folded stacks are kept in bench/results/profile-<guarantee>-<cpu|wall>.txt (flamegraph.pl or
speedscope read them).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kit
import procs
import scenarios

from worker.dev.devbroker import LocalKafka
from worker.dev.samples import generate

ROOT = kit.ROOT
LOOP_FRAME = "_turn (worker/stream/loop.py"  # samples inside one turn of the consume loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--guarantee", default="exactly-once,at-least-once")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--idle", action="store_true",
                        help="wall-clock profile: keep samples of waiting threads too (where the "
                        "loop blocks in consume, flush or commit)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("error: py-spy not found (.venv/bin/pip install py-spy)", file=sys.stderr)
        return 2
    args.results.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    with LocalKafka() as broker:
        conf = scenarios.Conf(broker.bootstrap, args.partitions, 500, 100, None, log_dir)
        pre = kit.preload(broker.bootstrap, "bench-input", args.partitions,
                          generate(args.messages, seed=args.seed))
        print(f"input: {pre.messages:,} messages, {pre.events:,} events", flush=True)
        for guarantee in args.guarantee.split(","):
            name = "worker_eos" if guarantee.strip() == "exactly-once" else "worker_alo"
            kind = "wall" if args.idle else "cpu"
            folded = args.results / f"profile-{guarantee.strip()}-{kind}.txt"
            if not profile(spy, name, conf, pre, folded, rate=args.rate, idle=args.idle):
                print(f"{name}: the worker did not drain the input; logs in {log_dir}")
                return 1
            report(name, folded, args.top)
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


def profile(spy: str, name: str, conf: scenarios.Conf, pre: kit.Preloaded, folded: Path, *,
            rate: int, idle: bool) -> bool:
    out, dead = kit.new_topics(conf.bootstrap, conf.partitions, "prof-out", "prof-dlq")
    group = f"bench-prof-{uuid.uuid4().hex[:8]}"
    proc = scenarios.contender(name, conf, source=pre.topic, output=out, dead=dead, group=group)
    watch = kit.CommitWatch(conf.bootstrap, group, pre.topic, pre.end_offsets)
    with procs.running(proc):
        assert proc.proc is not None
        recorder = subprocess.Popen(
            [spy, "record", "--pid", str(proc.proc.pid), "--rate", str(rate), "--format", "raw",
             "--output", str(folded), "--nonblocking", *(["--idle"] if idle else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = watch.wait(120 + pre.events / 500, alive=proc.alive)
    recorder.wait(60)  # py-spy writes its file when the worker exits
    watch.close()
    kit.delete_topics(conf.bootstrap, [out, dead])
    return done is not None


def report(name: str, folded: Path, top: int) -> None:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if LOOP_FRAME not in stack:
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"\n{name}: {total} samples inside the consume loop ({folded})")
    for title, counter in (("own time", own), ("including callees", inclusive)):
        print(f"  hottest by {title}:")
        for frame, n in counter.most_common(top):
            print(f"    {100 * n / max(total, 1):5.1f} %  {frame}")


def _function(frame: str) -> str:
    """'produce (worker/stream/commit.py:97)' -> 'produce (worker/stream/commit.py)'."""
    head, sep, where = frame.partition(" (")
    return f"{head} ({where.rsplit(':', 1)[0]})" if sep else frame


if __name__ == "__main__":
    sys.exit(main())
