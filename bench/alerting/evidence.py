"""How much evidence each injected incident leaves in the data, before any rule looks at it.

    python -m bench.alerting.evidence [--seed 1] [--tenants small,medium,large]

For every incident of the simulated month (the same draw as the scorer's) it prints how many
failures of the incident's category, and of its detail reason, happened during the incident,
against the same hours one week earlier: the counts any rule has to work with. An incident
whose count is within the week-before's noise cannot be told from chance by any test that
keeps to about one false alert a month; docs/alerting.md uses these counts to say which
misses are the rules' and which are the data's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bench.alerting import params
from bench.alerting.simulate import Incident, Record, draw_month, month_arguments

WEEK_S = 7 * 86400


@dataclass(frozen=True)
class IncidentEvidence:
    incident: Incident
    category_during: int
    category_week_before: int
    detail_during: int
    detail_week_before: int


def _counts(records: list[Record], start: float, end: float) -> tuple[Counter[str], Counter[str]]:
    failed = [r for r in records if r.failed and start <= r.event_time < end]
    return Counter(r.category for r in failed), Counter(f"{r.category}/{r.detail}" for r in failed)


def evidence(tenant: str, seed: int, days: int = params.DAYS) -> list[IncidentEvidence]:
    incidents, drawn = draw_month(tenant, seed, days)  # the scorer's draw
    records = list(drawn)
    found = []
    for incident in incidents:
        during = _counts(records, incident.start, incident.end)
        before = _counts(records, incident.start - WEEK_S, incident.end - WEEK_S)
        pair = f"{incident.category}/{incident.detail}"
        found.append(
            IncidentEvidence(
                incident,
                during[0][incident.category],
                before[0][incident.category],
                during[1][pair],
                before[1][pair],
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    args = month_arguments(__doc__.splitlines()[0]).parse_args(argv)
    print(f"seed {args.seed}, {args.days} days: failures during each incident (week before)")
    for tenant in args.tenants.split(","):
        print(f"== {tenant}")
        for e in evidence(tenant, args.seed, args.days):
            hours = (e.incident.end - e.incident.start) / 3600
            print(
                f"  {e.incident.kind:26} {hours:3.0f} h  {e.incident.category:31}"
                f" {e.category_during:5} ({e.category_week_before})"
                f"  {e.incident.detail:24} {e.detail_during:5} ({e.detail_week_before})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
