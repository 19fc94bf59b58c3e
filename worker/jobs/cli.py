"""The jobs' subcommands of ``python -m worker``: ``replay-dead-letters`` and ``reclassify``.

Both take every flag of ``run`` that a batch job uses (same environment variables), plus the
bounds of :mod:`worker.jobs.options`. Exit codes are :mod:`worker.jobs.runner`'s.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from worker.classify.core import CLASSIFIER_VERSION
from worker.contracts.exit_codes import EXIT_USAGE
from worker.jobs.options import JobOptions, add_job_arguments, job_options
from worker.jobs.runner import Job, run_job
from worker.stream import logs
from worker.stream.loop import stop_on_signals
from worker.stream.settings import ConfigError, Settings, core_options, for_command, load_settings

_EXIT_CODES = ("exit codes: 0 read to the end of the range (or --max-records), 2 bad "
               "configuration or missing topic, 3 fatal Kafka error, 4 stopped by SIGTERM/SIGINT "
               "after committing the open transaction (a rerun goes on from there)")


def add_job_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser(
        "replay-dead-letters", help="classify the dead-letter topic again; publish what is "
        "now readable", epilog=_EXIT_CODES,
        description="Read the dead-letter topic up to its end at start, recover each dead "
        "letter's original bytes, classify them with the current classifier and settings, and "
        "publish the readable ones to the output topic exactly once. Still unreadable ones are "
        "reported (and copied with --to-topic).")
    add_job_arguments(replay, default_job_id="replay-dead-letters")
    replay.add_argument("--to-topic", metavar="TOPIC",
                        help="copy dead letters that are still unreadable to this topic, byte "
                        "for byte")
    replay.set_defaults(handler=_handler(_replay))

    reclassify = sub.add_parser(
        "reclassify", help="classify a time range of the input topic again",
        epilog=_EXIT_CODES, description="Read the input topic from --since to its end at "
        "start (or --until), classify every record with the current classifier and publish "
        "it to the output topic (or --output-topic), marked x-reclassified.")
    add_job_arguments(reclassify, default_job_id=f"reclassify-{CLASSIFIER_VERSION}")
    reclassify.set_defaults(handler=_handler(_reclassify))


def _replay(settings: Settings, options: JobOptions) -> Job:
    from worker.jobs.replay import replay_job

    if options.to_topic in (settings.dead_letter_topic, settings.output_topic):
        raise ConfigError("--to-topic must be another topic than the dead-letter and output "
                          "topics")
    return replay_job(settings.dead_letter_topic, settings.output_topic, options.to_topic,
                      core_options(settings))


def _reclassify(settings: Settings, options: JobOptions) -> Job:
    from worker.jobs.reclassify import reclassify_job

    if options.since_ms is None:
        raise ConfigError("reclassify needs --since (where the range starts)")
    if settings.output_topic == settings.input_topic:
        raise ConfigError("--output-topic must not be the input topic")
    return reclassify_job(settings.input_topic, settings.output_topic, core_options(settings))


def _handler(make: Callable[[Settings, JobOptions], Job]
             ) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        settings = for_command(args, load_settings)
        if isinstance(settings, int):  # bad settings, or --print-config done
            return settings
        try:
            options = job_options(args)
            job = make(settings, options)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        logs.setup(settings.log_level)
        return run_job(job, settings, options, stop_on_signals(), out=sys.stdout,
                       progress_stream=sys.stderr)
    return handle
