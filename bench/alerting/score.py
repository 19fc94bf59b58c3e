"""Score a Prometheus rules file on the simulated month (docs/alerting.md).

    python -m bench.alerting.score deploy/prometheus/rules/enrollment-classifier.rules.yaml
    python -m bench.alerting.score RULES --seed 2 --days 28 --tenants small,medium,large

For each tenant: simulate (bench/alerting/simulate.py), write OpenMetrics, backfill a TSDB with
promtool, start a real `prometheus` on 127.0.0.1, backfill the recording rules, evaluate every
alerting rule at each evaluation step (then `for:`), and match the firings with the injected
incidents. The raw TSDB of a (tenant, seed, days) is cached under --work, so scoring another
rules file only redoes the rules. Pipeline alerts (group enrollment-classifier.pipeline) watch
the worker, not the failures, and are not scored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.alerting import openmetrics
from bench.alerting.evaluate import backfill_recording_rules, evaluate_alerts, load_groups
from bench.alerting.promserver import PrometheusServer, backfill_openmetrics
from bench.alerting.report import TenantScore, format_report, score_tenant
from bench.alerting.simulate import Simulation, simulate

DEFAULT_WORK = Path(__file__).resolve().parent / "work"
SKIP_GROUPS = frozenset({"enrollment-classifier.pipeline"})
CACHE_VERSION = "1"


def _progress(line: str) -> None:
    print(f"==> {line}", file=sys.stderr, flush=True)


def _raw_tsdb(tenant: str, seed: int, days: int, work: Path) -> tuple[Simulation, Path]:
    """Simulate and backfill once per (tenant, seed, days); later runs reuse the blocks."""
    _progress(f"{tenant}: simulating {days} days (seed {seed})")
    sim = simulate(tenant, seed, days, breakdown=True)
    cache = work / f"raw-v{CACHE_VERSION}-{tenant}-s{seed}-d{days}"
    if not (cache / "done").exists():
        _progress(f"{tenant}: backfilling the worker's series into a TSDB (once per seed)")
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        source = cache / "series.om"
        openmetrics.write(sim, source)
        backfill_openmetrics(source, cache / "tsdb")
        source.unlink()
        (cache / "done").write_text("ok\n")
    return sim, cache / "tsdb"


def run_tenant(
    rules: Path, tenant: str, *, seed: int, days: int, step: int, work: Path
) -> TenantScore:
    sim, raw = _raw_tsdb(tenant, seed, days, work)
    run_dir = work / f"run-{tenant}-s{seed}-d{days}-{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    tsdb = run_dir / "tsdb"
    shutil.copytree(raw, tsdb)
    groups = load_groups(rules)
    with PrometheusServer(tsdb, run_dir, lookback_s=step - 1) as server:
        _progress(f"{tenant}: evaluating and backfilling the recording rules")
        backfill_recording_rules(server, groups, sim.start, sim.end, step)
        _progress(f"{tenant}: evaluating the alerting rules")
        firings = evaluate_alerts(
            server, groups, span=(sim.start, sim.end), step=step, skip_groups=SKIP_GROUPS
        )
    shutil.rmtree(run_dir, ignore_errors=True)
    return score_tenant(sim, firings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", type=Path, help="Prometheus rules file to score")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--tenants", default="small,medium,large")
    parser.add_argument("--eval-interval", type=int, default=60, help="seconds (default 60)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, help="also write the scores as JSON here")
    args = parser.parse_args(argv)
    if not args.rules.is_file():
        parser.error(f"{args.rules}: no such rules file")
    began = time.monotonic()
    scores = [
        run_tenant(
            args.rules,
            tenant,
            seed=args.seed,
            days=args.days,
            step=args.eval_interval,
            work=args.work,
        )
        for tenant in args.tenants.split(",")
    ]
    print(format_report(str(args.rules), args.seed, args.days, scores))
    print(f"(scored in {time.monotonic() - began:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in scores], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
