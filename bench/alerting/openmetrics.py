"""Write a Simulation as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

Families are written one after the other and, within one, series by series (OpenMetrics does
not allow a family's samples to be interleaved with another's); timestamps are in seconds.
Every sample also carries the job and instance labels Prometheus would attach to a scrape.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TextIO

from bench.alerting import params
from bench.alerting.simulate import Simulation


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series_prefix(key: tuple[tuple[str, str], ...]) -> str:
    name = key[0][1]
    labels = [("job", params.JOB), ("instance", params.INSTANCE), *key[1:]]
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} "


def write_stream(sim: Simulation, out: TextIO) -> int:
    """Write every sample; returns how many were written."""
    written = 0
    times = [f" {sim.start + i * params.SCRAPE_INTERVAL_S}\n" for i in range(sim.scrapes)]
    for family, kind in sim.families.items():
        out.write(f"# TYPE {family} {kind}\n")
        for key, values in sim.series.get(family, {}).items():
            prefix = _series_prefix(key)
            lines = [
                f"{prefix}{value:.17g}{times[i]}"
                for i, value in enumerate(values)
                if not math.isnan(value)
            ]
            out.writelines(lines)
            written += len(lines)
    out.write("# EOF\n")
    return written


def write(sim: Simulation, path: Path) -> int:
    with path.open("w", encoding="utf-8") as out:
        return write_stream(sim, out)
