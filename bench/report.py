"""Figures from the raw runs: medians, spreads, within-round ratios, the lead's targets, and
their three renderings (latest.json is written by run.py; here the markdown and the PNG)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

LABELS = {"ceiling": "ceiling (bare passthrough)",
          "ceiling_alo": "ceiling + at-least-once commits", "worker_alo": "worker at-least-once",
          "worker_eos": "worker exactly-once", "peer_alo": "Quix at-least-once",
          "peer_eos": "Quix exactly-once"}
SHORT = {"ceiling": "ceiling\nbare", "ceiling_alo": "ceiling\n+ commits",
         "worker_alo": "worker\nat-least-once", "worker_eos": "worker\nexactly-once",
         "peer_alo": "Quix\nat-least-once", "peer_eos": "Quix\nexactly-once"}
COLOURS = {"ceiling": "#8a8a8a", "ceiling_alo": "#b5b5b5", "worker_alo": "#2f6db3",
           "worker_eos": "#183f73", "peer_alo": "#e0a050", "peer_eos": "#a8651c"}
RATIOS = {"worker_alo/ceiling": ("worker_alo", "ceiling"),
          "worker_eos/ceiling": ("worker_eos", "ceiling"),
          "worker_alo/ceiling_alo": ("worker_alo", "ceiling_alo"),
          "worker_eos/ceiling_alo": ("worker_eos", "ceiling_alo"),
          "worker_alo/peer_alo": ("worker_alo", "peer_alo"),
          "worker_eos/peer_eos": ("worker_eos", "peer_eos")}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarize(rounds: list[dict[str, Any]], latency: list[dict[str, Any]],
              backlog: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures: medians over rounds, spreads, and ratios taken within a round."""
    fig: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for name in LABELS:
        eps = [r[name]["events_per_s"] for r in rounds if r.get(name, {}).get("ok")]
        fig[f"{name}_eps"] = _median(eps)
        spread[name] = {"min": min(eps, default=None), "max": max(eps, default=None),
                        "runs": len(eps)}
        cpu = [r[name]["cpu_us_per_event"] for r in rounds
               if r.get(name, {}).get("ok") and r[name].get("cpu_us_per_event")]
        fig[f"cpu_us_per_event_{name}"] = _median(cpu)
    ratios: dict[str, Any] = {}
    for key, (a, b) in RATIOS.items():
        pairs = [(r[a], r[b]) for r in rounds if r.get(a, {}).get("ok") and r.get(b, {}).get("ok")]
        per_round = [x["events_per_s"] / y["events_per_s"] for x, y in pairs]
        # CPU per event (all threads of the process), the other way round: how many times
        # cheaper the worker is; it suffers much less than events/s from a busy machine
        cpu = [y["cpu_us_per_event"] / x["cpu_us_per_event"] for x, y in pairs
               if x.get("cpu_us_per_event") and y.get("cpu_us_per_event")]
        ratios[key] = {"median": _median(per_round), "rounds": [round(v, 3) for v in per_round],
                       "cpu_median": _median(cpu), "cpu_rounds": [round(v, 3) for v in cpu]}
        fig[f"ratio_{a}_over_{b}"] = ratios[key]["median"]
    for run in latency:
        name = run["contender"]
        for q in ("p50", "p99"):
            values = [r[f"{q}_ms"] for r in latency
                      if r["contender"] == name and r.get("ok") and r.get(f"{q}_ms") is not None]
            fig[f"{q}_ms_{name}"] = _median(values)
    rss: dict[str, float] = {}
    for run in [*(x for r in rounds for x in r.values()), *latency, *backlog]:
        if run.get("peak_rss_mb") is not None:
            name = run["contender"]
            rss[name] = max(rss.get(name, 0.0), run["peak_rss_mb"])
    fig["peak_rss_mb_worker"] = max((v for k, v in rss.items() if k.startswith("worker")),
                                    default=None)
    fig["peak_rss_mb"] = rss
    for run in backlog:
        fig[f"backlog_peak_rss_mb_{run['contender']}"] = run.get("peak_rss_mb")
        fig[f"backlog_{run['contender']}_eps"] = run.get("events_per_s")
    fig["spread_eps"], fig["ratios"] = spread, ratios
    return fig


def targets(fig: dict[str, Any], backlog_events: int | None) -> list[dict[str, Any]]:
    """The lead's targets, each with the measured value and whether it was met."""
    r = fig["ratios"]

    def check(name: str, value: float | None, limit: float, higher: bool) -> dict[str, Any]:
        met = None if value is None else (value >= limit if higher else value <= limit)
        return {"target": name, "value": value, "limit": limit, "met": met}

    rows = [check("worker at-least-once / ceiling >= 0.60", r["worker_alo/ceiling"]["median"],
                  0.60, True),
            check("worker exactly-once / ceiling >= 0.50", r["worker_eos/ceiling"]["median"],
                  0.50, True),
            check("worker / peer at-least-once >= 2.0", r["worker_alo/peer_alo"]["median"],
                  2.0, True),
            check("worker / peer exactly-once >= 2.0", r["worker_eos/peer_eos"]["median"],
                  2.0, True),
            check("p99 at-least-once <= 50 ms", fig.get("p99_ms_worker_alo"), 50, False),
            check("p99 exactly-once <= 300 ms", fig.get("p99_ms_worker_eos"), 300, False)]
    backlog_rss = [v for k, v in fig.items() if k.startswith("backlog_peak_rss_mb_worker") and v]
    row = check("peak RSS <= 150 MB draining 1,000,000 events", max(backlog_rss, default=None),
                150, False)
    if not backlog_events:
        row["target"] += " (not run: --backlog 1000000)"
    elif backlog_events < 1_000_000:  # a smaller backlog says nothing about this target
        row["target"] += f" (only {backlog_events:,} drained: not judged)"
        row["met"] = None
    return [*rows, row]


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(result: dict[str, Any]) -> str:
    fig, inp, mach = result["figures"], result["input"], result["machine"]
    rounds = result["rounds"]
    ran = [name for name, runs in (("throughput", rounds), ("latency", result["latency_runs"]),
                                   ("backlog", result["backlog_runs"])) if runs]
    mode = ("quick" if result["quick"] else "full" if rounds and result["latency_runs"]
            else f"partial ({', '.join(ran)})")
    drained = (f"{inp['messages']:,} messages = {inp['events']:,} events "
               f"({inp['events_per_message']:.2f} events/message; {inp['dead_letters']} dead "
               f"letters) on {inp['partitions']} partitions; {len(rounds)} rounds"
               if rounds else "No throughput rounds")
    lines = [
        f"### {result['finished_at']} — {mode} run", "",
        f"{drained}; batch {result['batch_size']} / {result['batch_timeout_ms']} ms. "
        f"{mach['cpus']} CPUs ({mach['cpu_model']}), load average {mach['load_before']} before "
        f"and {mach['load_after']} after. Versions: {result['versions_line']}.", ""]
    if rounds or result["latency_runs"]:
        lines += ["| contender | events/s (median) | min - max | CPU µs/event | p50 / p99 ms "
                  "| peak RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for name, label in LABELS.items():
        if not (rounds or result["latency_runs"]):
            break
        s = fig["spread_eps"][name]
        lat = (f"{_fmt(fig.get(f'p50_ms_{name}'))} / {_fmt(fig.get(f'p99_ms_{name}'))}"
               if fig.get(f"p99_ms_{name}") is not None else "-")
        lines.append(f"| {label} | {_fmt(fig[f'{name}_eps'])} | {_fmt(s['min'])} - "
                     f"{_fmt(s['max'])} | {_fmt(fig[f'cpu_us_per_event_{name}'], '.1f')} | "
                     f"{lat} | {_fmt(fig['peak_rss_mb'].get(name))} |")
    if result.get("backlog"):
        b = result["backlog"]
        lines += ["", f"Backlog: {b['events']:,} events ({b['messages']:,} messages, "
                  f"{b['mib']:,.0f} MiB) preloaded, then drained by each contender in turn:", "",
                  "| backlog contender | events/s | CPU µs/event | peak RSS MB |",
                  "|---|---:|---:|---:|"]
        for run in result["backlog_runs"]:
            lines.append(f"| {LABELS.get(run['contender'], run['contender'])} | "
                         f"{_fmt(run.get('events_per_s'))} | "
                         f"{_fmt(run.get('cpu_us_per_event'), '.1f')} | "
                         f"{_fmt(run.get('peak_rss_mb'))} |")
    lines += ["", "| within each round, median of rounds | events/s ratio | "
              "CPU/event, peer over worker |", "|---|---:|---:|"] if rounds else []
    for key, r in fig["ratios"].items() if rounds else ():
        cpu = _fmt(r["cpu_median"], ".2f") if "peer" in key else "-"
        lines.append(f"| {key.replace('_', ' ')} | {_fmt(r['median'], '.2f')} | {cpu} |")
    lines += ["", "| target | measured | met |", "|---|---:|:-:|"]
    for t in result["targets"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        spec = ".2f" if t["limit"] < 10 else ",.0f"
        lines.append(f"| {t['target']} | {_fmt(t['value'], spec)} | {met} |")
    if result.get("worker_env"):
        lines += ["", f"Worker settings added for this run: `{' '.join(result['worker_env'])}`."]
    if result["quick"]:
        lines += ["", "Quick run: small input and short latency runs; read it as a smoke test."]
    if result.get("notes"):
        lines += ["", *(f"- {n}" for n in result["notes"])]
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_data = result["figures"]
    names = [n for n in LABELS if fig_data[f"{n}_eps"] is not None]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    for i, name in enumerate(names):
        med, s = fig_data[f"{name}_eps"], fig_data["spread_eps"][name]
        ax1.bar(i, med, color=COLOURS[name], alpha=0.85)
        ax1.errorbar(i, med, yerr=[[med - s["min"]], [s["max"] - med]], color="black",
                     capsize=6)
        runs = [r[name]["events_per_s"] for r in result["rounds"]
                if r.get(name, {}).get("ok")]
        ax1.scatter([i] * len(runs), runs, color="black", s=12, zorder=3)
        ax1.text(i, med * 0.03, f"{med:,.0f}", ha="center", va="bottom", color="white",
                 fontsize=9, fontweight="bold")
    ax1.set_xticks(range(len(names)), [SHORT[n] for n in names], fontsize=8)
    ax1.set_ylabel("input events (records) per second")
    ax1.set_title(f"Throughput: median of {len(result['rounds'])} rounds, bars = min-max, "
                  "dots = rounds", fontsize=10)
    for name, label in LABELS.items():  # of several rounds, the run with the median p99
        runs = sorted((r for r in result["latency_runs"]
                       if r["contender"] == name and r.get("ok") and r.get("cdf_ms")),
                      key=lambda r: r["p99_ms"])
        if runs:
            run = runs[len(runs) // 2]
            ys = [i / (len(run["cdf_ms"]) - 1) for i in range(len(run["cdf_ms"]))]
            ax2.plot(run["cdf_ms"], ys, color=COLOURS[name],
                     label=f"{label} (p50 {run['p50_ms']:.0f}, p99 {run['p99_ms']:.0f} ms)")
    for limit, what in ((50, "p99 target, at-least-once"), (300, "p99 target, exactly-once")):
        ax2.axvline(limit, color="#555555", linestyle="--", linewidth=0.8)
        ax2.text(limit * 1.05, 0.42, what, rotation=90, fontsize=7, color="#555555",
                 bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    ax2.set_xscale("log")
    ax2.set_xlabel("end-to-end latency, ms (input produce -> visible to read_committed)")
    ax2.set_ylabel("fraction of events")
    ax2.set_title(f"Latency CDF at {result['latency_rate']:,.0f} events/s offered", fontsize=10)
    ax2.grid(True, which="both", alpha=0.3)
    if result["latency_runs"]:
        ax2.legend(fontsize=8, loc="lower right")
    mode = "quick run (smoke test)" if result["quick"] else "full run"
    fig.suptitle(f"enrollment-classifier benchmarks, {mode}, {result['finished_at']}, "
                 f"{result['machine']['cpus']} CPUs (broker on the same machine)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
