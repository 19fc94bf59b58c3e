"""Command line: ``run`` (the stream worker), ``pull-graph`` (the Graph source), ``classify``
(JSON Lines), ``schema``, and the batch jobs ``replay-dead-letters`` and ``reclassify``
(:mod:`worker.jobs.cli`).

Exit codes: 0 success, 1 a check failed (``schema --check``; ``classify``: rows of a report
export that could not be read, listed on stderr), 2 bad usage or unreadable file, 3 the worker
stopped on a fatal Kafka or configuration error, 4 the worker's shutdown budget ran out inside
a Kafka call (the jobs: stopped by a signal before the end, progress kept).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import orjson

from worker import core_build
from worker._version import __version__
from worker.classify.core import Classified, DeadLetter, Skipped, Source, classify_message
from worker.contracts.exit_codes import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE
from worker.sources import report_export


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    code: int = args.handler(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Classify Microsoft Intune enrollment failures (stream worker and tools).")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__} (classifier core: {core_build()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    classify = sub.add_parser("classify", help="classify JSON Lines, or a downloaded report "
                              "export (.csv / .zip), from a file or stdin",
                              description="Read one raw event (or envelope, or Graph page) per "
                              "line, or every row of an Intune enrollment report export "
                              "(EnrollmentActivity, DeviceEnrollmentFailures: the .zip Graph's "
                              "exportJobs gives, or the .csv inside it); write classified events "
                              "as JSON Lines to stdout.")
    classify.add_argument("file", nargs="?", type=Path,
                          help="JSON Lines, or a report export .csv/.zip (default: stdin, JSON "
                          "Lines)")
    classify.add_argument("--dead-letters", type=Path, metavar="FILE",
                          help="write dead-letter records here (default: stderr)")
    classify.set_defaults(handler=_classify)

    schema = sub.add_parser("schema", help="write or check the JSON Schemas in schemas/")
    schema.add_argument("--dir", type=Path, default=Path("schemas"))
    schema.add_argument("--check", action="store_true",
                        help="exit 1 when the files differ from what the models generate")
    schema.set_defaults(handler=_schema)

    from worker.stream.settings import add_run_arguments
    run = sub.add_parser("run", help="run the stream worker (Kafka in, Kafka out)",
                         description="Consume raw enrollment events, classify them and publish "
                         "the results. Every flag has an environment variable; see README.")
    add_run_arguments(run)
    run.set_defaults(handler=_run)

    from worker.sources.graph.settings import add_arguments as add_graph_arguments
    pull = sub.add_parser("pull-graph", help="poll Microsoft Graph for Intune troubleshooting "
                          "and Autopilot events and publish them to the input topic",
                          description="Read deviceManagement/troubleshootingEvents and "
                          "autopilotEvents (beta) for one tenant with app-only credentials and "
                          "publish each new event exactly once to the input topic. Every flag "
                          "has an environment variable; see README.")
    add_graph_arguments(pull)
    pull.set_defaults(handler=_pull_graph)

    from worker.jobs.cli import add_job_parsers
    add_job_parsers(sub)

    demo = sub.add_parser("demo", help="development: local broker + sample stream + worker, "
                          "with live counts", description="Start a local Kafka broker (or use "
                          "KAFKA_BOOTSTRAP_SERVERS), stream realistic sample events into it "
                          "and run the worker on them, printing per-category counts.")
    try:
        from worker.dev.demo import add_arguments
    except ImportError:  # the container image leaves the development tools out
        demo.set_defaults(handler=_no_dev_tools)
    else:
        add_arguments(demo)
        demo.set_defaults(handler=_demo)
    return parser


def _classify(args: argparse.Namespace) -> int:
    if args.file is not None and _is_export(args.file):
        return _classify_export(args)
    name = str(args.file) if args.file else "-"
    try:
        source = args.file.open("rb") if args.file else sys.stdin.buffer
        dead = args.dead_letters.open("wb") if args.dead_letters else sys.stderr.buffer
    except OSError as exc:
        print(f"error: cannot open {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    counts: Counter[str] = Counter()
    out = sys.stdout.buffer
    with source, dead if args.dead_letters else _nullcontext(dead):
        for lineno, line in enumerate(source, start=1):
            if not line.strip():
                counts["blank_lines"] += 1
                continue
            for outcome in classify_message(line.rstrip(b"\r\n"), Source(name, 0, lineno)):
                _write(outcome, out, dead, counts)
    out.flush()
    sys.stderr.write("summary: " + orjson.dumps(dict(sorted(counts.items()))).decode() + "\n")
    return EXIT_OK


def _is_export(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return path.suffix.lower() in (".csv", ".zip")  # _open reports the error
    return report_export.is_export_file(path, head)


def _classify_export(args: argparse.Namespace) -> int:
    name = str(args.file)
    try:
        rows = report_export.read_rows(args.file)
        dead = args.dead_letters.open("wb") if args.dead_letters else sys.stderr.buffer
    except OSError as exc:
        print(f"error: cannot open {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except report_export.ExportFileError as exc:
        print(f"error: {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    counts: Counter[str] = Counter()
    out = sys.stdout.buffer
    with dead if args.dead_letters else _nullcontext(dead):
        for row in rows:
            if isinstance(row, report_export.BadRow):
                print(f"error: {name} line {row.number}: {row.message}", file=sys.stderr)
                counts["bad_rows"] += 1
                continue
            for outcome in classify_message(row.value, Source(name, 0, row.number)):
                _write(outcome, out, dead, counts)
    out.flush()
    sys.stderr.write("summary: " + orjson.dumps(dict(sorted(counts.items()))).decode() + "\n")
    return EXIT_CHECK_FAILED if counts["bad_rows"] else EXIT_OK


def _write(outcome: Classified | DeadLetter | Skipped, out: BinaryIO, dead: BinaryIO,
           counts: Counter[str]) -> None:
    match outcome:
        case Classified(value=value, category=category):
            out.write(value + b"\n")
            counts["classified"] += 1
            counts[f"category.{category.name}"] += 1
        case DeadLetter(value=value):
            dead.write(value + b"\n")
            counts["dead_lettered"] += 1
        case Skipped(reason=reason):
            counts[f"skipped_{reason}"] += 1


class _nullcontext:  # noqa: N801 - stderr must not be closed by the with-block
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()


def _schema(args: argparse.Namespace) -> int:
    from worker.contracts.models import json_schemas

    wanted = {f"{name}.schema.json": orjson.dumps(schema, option=orjson.OPT_INDENT_2) + b"\n"
              for name, schema in json_schemas().items()}
    directory: Path = args.dir
    if args.check:
        stale = [n for n, content in wanted.items()
                 if not (directory / n).is_file() or (directory / n).read_bytes() != content]
        extra = sorted(p.name for p in directory.glob("*.schema.json") if p.name not in wanted)
        for n in stale:
            print(f"schema out of date: {directory / n} (run: python -m worker schema)",
                  file=sys.stderr)
        for n in extra:
            print(f"schema not generated by the models: {directory / n}", file=sys.stderr)
        return EXIT_CHECK_FAILED if stale or extra else EXIT_OK
    directory.mkdir(parents=True, exist_ok=True)
    for n, content in wanted.items():
        (directory / n).write_bytes(content)
    print(f"wrote {len(wanted)} schemas to {directory}", file=sys.stderr)
    return EXIT_OK


def _no_dev_tools(args: argparse.Namespace) -> int:
    print(f"error: '{args.command}' is a development tool (worker/dev), which this installation "
          "(the container image) leaves out; run it from a source checkout", file=sys.stderr)
    return EXIT_USAGE


def _demo(args: argparse.Namespace) -> int:
    from worker.dev.demo import main as demo_main

    return demo_main(args)


def _pull_graph(args: argparse.Namespace) -> int:
    from worker.sources.graph.command import run_from_args

    return run_from_args(args)


def _run(args: argparse.Namespace) -> int:
    from worker.stream.loop import run_from_args

    return run_from_args(args)
