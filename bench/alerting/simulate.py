"""Deterministic month of one tenant's enrollment traffic, as the worker's counters see it.

`simulate()` draws attempts minute by minute (working-day curve, weekends, Monday wave, new-hire
day, Poisson noise), turns some into failures (ordinary mix plus the injected incidents), sends
each record through the ingestion path (5-minute flushes, held batches, one multi-hour delay and
its catch-up), and counts it at processing time into the series the worker exports, sampled
every 30 s with restarts (counter resets) and a scrape gap. `openmetrics.write()` turns the
result into a file for `promtool tsdb create-blocks-from openmetrics`.

Parameters: bench/alerting/params.py; documented in docs/alerting.md.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench.alerting import params

Labels = tuple[tuple[str, str], ...]
DAY = 86400


@dataclass(frozen=True)
class Incident:
    kind: str
    category: str
    detail: str
    start: float
    end: float


@dataclass(frozen=True)
class Disturbance:
    """Something that is not an incident and must not page: restart, gap, catch-up, new hires."""

    kind: str
    start: float
    end: float


@dataclass(frozen=True)
class Record:
    event_time: float
    failed: bool
    category: str
    detail: str
    platform: str


@dataclass
class Simulation:
    tenant: str
    seed: int
    start: int
    scrapes: int
    incidents: list[Incident]
    disturbances: list[Disturbance]
    # metric family name -> type, and its series: labels -> per-scrape values (NaN = no sample)
    families: dict[str, str] = field(default_factory=dict)
    series: dict[str, dict[Labels, array[float]]] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + (self.scrapes - 1) * params.SCRAPE_INTERVAL_S


def _at(day: int, hour: int, minute: int = 0) -> float:
    return float(params.START_EPOCH + day * DAY + hour * 3600 + minute * 60)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:  # normal approximation is exact enough at this size
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def hour_weights(day: int) -> list[float]:
    """Share of one business day's attempts in each hour of simulated day `day`."""
    weekday = day % 7
    if weekday >= 5:
        hours = list(params.WEEKEND_HOURS)
        return [params.WEEKEND_SHARE / len(hours) if h in hours else 0.0 for h in range(24)]
    weights = list(params.HOURLY_PROFILE)
    extras: list[tuple[float, range]] = []
    if weekday == 0:
        extras.append((params.MONDAY_FACTOR - 1, params.MONDAY_WAVE_HOURS))
    if day == params.NEW_HIRE_DAY:
        extras.append((params.NEW_HIRE_FACTOR - 1, params.NEW_HIRE_HOURS))
    for extra, wave in extras:
        for hour in wave:
            weights[hour] += extra / len(wave)
    return weights


def _business_days(days: int) -> list[int]:
    return [d for d in range(days) if d % 7 < 5]


def schedule_incidents(tenant: str, rng: random.Random, days: int) -> list[Incident]:
    """One incident per business day from FIRST_INCIDENT_DAY, never on a disturbance day."""
    blocked = {params.NEW_HIRE_DAY, params.INGESTION_DELAY[0]}
    kinds = [k for k in params.INCIDENT_KINDS if tenant in k.tenants]
    free = [d for d in _business_days(days) if d >= params.FIRST_INCIDENT_DAY and d not in blocked]
    # A creep needs four days before the end of the month.
    creep_days = [d for d in free if d + 4 < days]
    chosen: list[Incident] = []
    used: set[int] = set()
    for kind in kinds:
        pool = [d for d in (creep_days if kind.creep_categories else free) if d not in used]
        if not pool:
            continue
        day = rng.choice(pool)
        used.add(day)
        start = _at(day, rng.randrange(*params.INCIDENT_HOURS), rng.randrange(60))
        category = kind.category
        if kind.creep_categories:
            category = rng.choice(kind.creep_categories)
        elif kind.burst_categories:
            category = rng.choice(kind.burst_categories)
        chosen.append(Incident(kind.name, category, kind.detail, start, start + kind.duration_s))
    return sorted(chosen, key=lambda i: i.start)


def disturbances(days: int) -> list[Disturbance]:
    found = [
        Disturbance("restart", _at(*r), _at(*r) + params.RESTART_DOWN_S) for r in params.RESTARTS
    ]
    found.append(
        Disturbance(
            "scrape_gap", _at(*params.SCRAPE_GAP), _at(*params.SCRAPE_GAP) + params.SCRAPE_GAP_S
        )
    )
    delay = _at(*params.INGESTION_DELAY)
    found.append(
        Disturbance("ingestion_delay", delay, delay + params.INGESTION_DELAY_S + params.CATCH_UP_S)
    )
    found.append(
        Disturbance("new_hire_day", _at(params.NEW_HIRE_DAY, 0), _at(params.NEW_HIRE_DAY + 1, 0))
    )
    return [d for d in found if d.start < params.START_EPOCH + days * DAY]


def incident_kind(name: str) -> params.IncidentKind:
    return next(k for k in params.INCIDENT_KINDS if k.name == name)


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ordinary_failure(
    rng: random.Random, attempt_time: float, platform: str, creeps: list[Incident]
) -> Record | None:
    mix = dict(params.CATEGORY_MIX)
    for creep in creeps:
        if creep.start <= attempt_time < creep.end:
            ramp = incident_kind("slow_creep").creep_ramp_s
            mix[creep.category] *= 1 + min(1.0, (attempt_time - creep.start) / ramp)
    if rng.random() >= params.FAILURE_SHARE * sum(mix.values()):
        return None
    category = _weighted(rng, mix)
    return Record(
        attempt_time, True, category, _weighted(rng, params.DETAIL_MIX[category]), platform
    )


def _incident_failure(
    rng: random.Random, attempt_time: float, platform: str, active: list[Incident]
) -> Record | None:
    for incident in active:
        if not incident.start <= attempt_time < incident.end:
            continue
        kind = incident_kind(incident.kind)
        hit = platform == kind.platform if kind.platform else rng.random() < kind.share
        if hit:
            return Record(attempt_time, True, incident.category, incident.detail, platform)
    return None


def draw_records(
    tenant: params.Tenant, rng: random.Random, days: int, incidents: list[Incident]
) -> Iterator[Record]:
    """Every enrollment attempt (success or failure) and every burst failure, by event time."""
    rate_incidents = [
        i for i in incidents if incident_kind(i.kind).platform or incident_kind(i.kind).share
    ]
    creeps = [i for i in incidents if incident_kind(i.kind).creep_categories]
    platforms = list(params.PLATFORMS)
    platform_weights = list(params.PLATFORMS.values())
    for day in range(days):
        factor = math.exp(rng.gauss(0, params.DAY_FACTOR_SIGMA))
        for hour, weight in enumerate(hour_weights(day)):
            per_minute = tenant.attempts_per_business_day * factor * weight / 60
            for minute in range(60):
                base = _at(day, hour, minute)
                for _ in range(_poisson(rng, per_minute)):
                    when = base + rng.random() * 60
                    platform = rng.choices(platforms, weights=platform_weights)[0]
                    record = _incident_failure(rng, when, platform, rate_incidents)
                    record = record or _ordinary_failure(rng, when, platform, creeps)
                    yield record or Record(when, False, "", "", platform)
    for incident in incidents:
        kind = incident_kind(incident.kind)
        if kind.burst_range:
            for _ in range(rng.randint(*kind.burst_range)):
                when = incident.start + rng.random() * (incident.end - incident.start)
                detail = _weighted(rng, params.DETAIL_MIX[incident.category])
                yield Record(when, True, incident.category, detail, rng.choice(platforms))


class IngestionPath:
    """Event time -> processing time: 5-minute flushes, held batches, one long delay."""

    def __init__(self, rng: random.Random, delay_start: float) -> None:
        self._rng = rng
        self._batches: dict[int, float] = {}
        self._delay_start = delay_start
        self._delay_end = delay_start + params.INGESTION_DELAY_S

    def _flush_time(self, boundary: int) -> float:
        if boundary not in self._batches:
            extra = self._rng.uniform(*params.FLUSH_JITTER_S)
            if self._rng.random() < params.HELD_BATCH_SHARE:
                extra += self._rng.uniform(*params.HELD_BATCH_DELAY_S)
            self._batches[boundary] = boundary + extra
        return self._batches[boundary]

    def delivered(self, event_time: float) -> float:
        boundary = math.ceil((event_time + params.FLUSH_MIN_AGE_S) / params.FLUSH_PERIOD_S)
        flushed = self._flush_time(boundary * params.FLUSH_PERIOD_S)
        if self._delay_start <= flushed < self._delay_end:
            # The backlog comes back oldest first, spread over the catch-up period.
            progress = (event_time - self._delay_start) / params.INGESTION_DELAY_S
            return self._delay_end + min(max(progress, 0.0), 1.0) * params.CATCH_UP_S
        return flushed


def month_arguments(description: str) -> argparse.ArgumentParser:
    """The command-line choice of a simulated month: --seed, --days, --tenants."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=params.DAYS)
    parser.add_argument("--tenants", default="small,medium,large")
    return parser


def draw_month(
    tenant_name: str, seed: int, days: int = params.DAYS
) -> tuple[list[Incident], Iterator[Record]]:
    """The month's incidents and every record by event time: one seeded draw per tenant."""
    rng = random.Random(f"{seed}:{tenant_name}")
    incidents = schedule_incidents(tenant_name, rng, days)
    return incidents, draw_records(params.TENANTS[tenant_name], rng, days, incidents)


def simulate(
    tenant_name: str, seed: int, days: int = params.DAYS, breakdown: bool = False
) -> Simulation:
    """The whole month for one tenant; the same (tenant, seed, days) gives the same series."""
    from bench.alerting.counters import CounterBook

    incidents, records = draw_month(tenant_name, seed, days)
    found = disturbances(days)
    scrapes = days * DAY // params.SCRAPE_INTERVAL_S
    sim = Simulation(tenant_name, seed, params.START_EPOCH, scrapes, incidents, found)
    restarts = restart_times(found)
    book = CounterBook(sim, restarts, breakdown)
    for record, processed in processed_records(tenant_name, seed, records, restarts):
        book.count(record, processed)
    book.finish([d for d in found if d.kind in ("restart", "scrape_gap")])
    return sim


def restart_times(found: list[Disturbance]) -> list[float]:
    return sorted(d.start for d in found if d.kind == "restart")


def processed_records(
    tenant_name: str, seed: int, records: Iterator[Record], restarts: list[float]
) -> Iterator[tuple[Record, float]]:
    """Each record (in draw order) with the time the worker processes it."""
    path = IngestionPath(
        random.Random(f"{seed}:{tenant_name}:ingest"), _at(*params.INGESTION_DELAY)
    )
    for record in records:
        processed = path.delivered(record.event_time)
        # Records that arrive while the worker is down are processed once it is back.
        index = bisect.bisect_right(restarts, processed) - 1
        if index >= 0 and processed < restarts[index] + params.RESTART_DOWN_S:
            processed = restarts[index] + params.RESTART_DOWN_S + 1
        yield record, processed
