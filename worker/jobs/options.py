"""What a batch job is asked to do: its flags on top of the worker's own settings.

The jobs share the worker's :class:`~worker.stream.settings.Settings` (same flags, same
environment variables, same secrets handling) and add only what a bounded run needs. A job
keeps its progress in a consumer group of its own, ``<group id>.<job id>``, which is also its
transactional id: stable across restarts, so a rerun fences a crashed predecessor at once and
its open transaction is aborted before the rerun reads the progress offsets.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.stream.settings import ConfigError, Settings, add_run_arguments

# Settings the jobs have no use for: no HTTP port, no lag statistics, and the transactional
# id is derived from the job's progress group (see the module docstring).
_UNUSED_SETTINGS = ("metrics_port", "metrics_address", "stats_interval_ms", "transactional_id")


@dataclass(frozen=True, slots=True)
class JobOptions:
    job_id: str
    since_ms: int | None = None
    until_ms: int | None = None
    max_records: int | None = None
    dry_run: bool = False
    to_topic: str | None = None  # replay: where still-unreadable dead letters are copied
    commit_every: int = 5000  # messages per transaction at most


def add_job_arguments(parser: argparse.ArgumentParser, *, default_job_id: str) -> None:
    add_run_arguments(parser, only=[f for f in Settings.model_fields
                                    if f not in _UNUSED_SETTINGS])
    parser.add_argument("--since", type=timestamp_ms, metavar="TIME",
                        help="first message timestamp to read (ISO 8601, UTC if no offset, "
                        "or Unix milliseconds)")
    parser.add_argument("--until", type=timestamp_ms, metavar="TIME",
                        help="stop before the first message with this timestamp")
    parser.add_argument("--max-records", type=int, metavar="N",
                        help="stop after N messages (progress is kept: the next run goes on)")
    parser.add_argument("--dry-run", action="store_true",
                        help="publish nothing, commit no progress, print what a run would do")
    parser.add_argument("--commit-every", type=int, default=5000, metavar="N",
                        help="messages per transaction at most (default 5000; each also "
                        "closes after a second): smaller redoes less after a crash, larger "
                        "is faster")
    parser.add_argument("--job-id", default=default_job_id, metavar="NAME",
                        help="names the job's progress group <group-id>.<NAME> (default "
                        f"{default_job_id}); a new name starts from the beginning again")


def job_options(args: argparse.Namespace) -> JobOptions:
    """Check the job flags against each other. Raises ConfigError."""
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError("--max-records must be at least 1")
    if args.commit_every < 1:
        raise ConfigError("--commit-every must be at least 1")
    if args.since is not None and args.until is not None and args.until <= args.since:
        raise ConfigError("--until must be later than --since")
    if not args.job_id or any(c.isspace() for c in args.job_id):
        raise ConfigError("--job-id must be a non-empty name without spaces")
    return JobOptions(job_id=args.job_id, since_ms=args.since, until_ms=args.until,
                      max_records=args.max_records, dry_run=args.dry_run,
                      to_topic=getattr(args, "to_topic", None), commit_every=args.commit_every)


def job_settings(settings: Settings, options: JobOptions) -> Settings:
    """The worker's settings with the job's own group and transactional id."""
    group = progress_group(settings, options)
    changes: dict[str, Any] = {"group_id": group, "transactional_id": group,
                               "stats_interval_ms": 0}
    return settings.model_copy(update=changes)


def progress_group(settings: Settings, options: JobOptions) -> str:
    return f"{settings.group_id}.{options.job_id}"


def timestamp_ms(text: str) -> int:
    """ISO 8601 (``2026-11-30T08:00:00Z``; no offset means UTC) or Unix milliseconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a timestamp (ISO 8601 such as 2026-11-30T08:00:00Z, or Unix "
            "milliseconds)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
