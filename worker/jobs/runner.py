"""The shell every batch job runs in: plan the ranges, read them in batches, hand each message
to the job's step, commit, stop at the end offsets taken at start.

Exactly-once (the default guarantee) uses the worker's own
:class:`~worker.stream.commit.TransactionalCommitter`: each commit window is one transaction
holding the outputs and the job's progress offsets, sent to the job's own consumer group
(never the live worker's). A crash loses the open transaction and nothing else: the rerun
fences it (same transactional id), reads the committed progress and goes on from there, so
nothing is skipped and nothing published twice. An abortable error rewinds to the window's
first offsets and reads them again, as the worker does.

Exit codes: 0 the range was read to its end (or to ``--max-records``); 2 bad configuration
or a missing topic; 3 fatal Kafka error; 4 stopped by SIGTERM/SIGINT before the end (after
committing the open transaction; a rerun goes on from there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO, cast

from confluent_kafka import KafkaError, KafkaException, Message

from worker.contracts.exit_codes import EXIT_FATAL, EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from worker.jobs.counts import JobCounts, table
from worker.jobs.options import JobOptions, job_settings
from worker.jobs.progress import Progress
from worker.jobs.reading import BoundedReader, plan
from worker.stream.clients import Headers, consumer_error_kind, create_clients
from worker.stream.commit import (
    CommitPolicy,
    Committer,
    FatalKafkaError,
    WindowAborted,
    make_committer,
)
from worker.stream.settings import ConfigError, Settings

log = logging.getLogger("worker.jobs")
# Longer windows than the worker's: nobody waits on a batch job's latency, and fewer
# transactions mean more records per CPU second. Still bounded, so memory stays flat.
JOB_COMMIT_INTERVAL_S = 1.0
Emit = Callable[[str, bytes | None, bytes | None, Headers], None]
Step = Callable[[Message, Emit, JobCounts], None]


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # the subcommand
    topic: str  # what it reads
    group_title: str  # what the summary's rows are
    step: Step  # one message: classify, emit, count


def run_job(job: Job, settings: Settings, options: JobOptions, stop: threading.Event, *,
            out: TextIO, progress_stream: TextIO,
            clock: Callable[[], float] = time.monotonic) -> int:
    """Run ``job`` to the end of its range or until ``stop`` is set; returns an exit code."""
    own = job_settings(settings, options)
    try:
        runner = _Runner(job, own, options, stop, clock)
    except KafkaException as exc:
        log.error("invalid Kafka client configuration", extra={"error": str(exc.args[0])})
        return EXIT_USAGE
    code, progress = runner.run(progress_stream)
    summary = runner.total.as_dict() | {"exit_code": code, "dry_run": options.dry_run}
    if progress is not None:
        summary |= progress.figures(clock())
    summary["cpu_s"] = round(time.process_time() - runner.cpu_started, 2)
    log.info("job finished", extra={"job": job.name, "summary": summary})
    if code in (EXIT_OK, EXIT_STOPPED):
        title = f"{job.name}{' (dry run: nothing published)' if options.dry_run else ''}"
        verb = "would publish" if options.dry_run else "published"
        print(f"{title}\n{table(runner.total, job.group_title)}\n"
              f"{verb} {runner.total.published} records, copied {runner.total.copied} dead "
              "letters", file=out)
    return code


class _Runner:
    def __init__(self, job: Job, settings: Settings, options: JobOptions,
                 stop: threading.Event, clock: Callable[[], float]) -> None:
        self.job, self.settings, self.options, self.stop, self.clock = (
            job, settings, options, stop, clock)
        self.fatal: KafkaError | None = None
        self.cpu_started = time.process_time()
        self.consumer, self.producer = create_clients(
            settings, on_stats=lambda _stats: None, on_error=self._on_error,
            on_delivery=self._on_delivery, consumer_overrides={"enable.partition.eof": True})
        self.committer: Committer | None = None if options.dry_run else make_committer(
            settings.guarantee, self.consumer, self.producer, clock=clock)
        self.total = JobCounts()
        self.pending = self.total if options.dry_run else JobCounts()  # joins total on commit
        self.committed_messages, self.aborts_in_row = 0, 0
        self.policy = CommitPolicy(max_interval_s=JOB_COMMIT_INTERVAL_S,
                                   max_messages=options.commit_every)

    def run(self, progress_stream: TextIO) -> tuple[int, Progress | None]:
        progress: Progress | None = None
        try:
            if self.committer is not None:
                self.committer.start()  # fences a crashed predecessor, aborting its transaction
            ranges = plan(self.consumer, self.job.topic, since_ms=self.options.since_ms,
                          until_ms=self.options.until_ms)
            reader = BoundedReader(self.consumer, self.job.topic, ranges,
                                   batch_size=self.settings.batch_size,
                                   max_records=self.options.max_records)
            log.info("job starting", extra={
                "job": self.job.name, "topic": self.job.topic, "group": self.settings.group_id,
                "dry_run": self.options.dry_run,
                "ranges": {str(r.partition): [r.start, r.end] for r in ranges}})
            progress = Progress(self.job.name, reader.total, progress_stream, self.clock)
            reader.start()
            return self._loop(reader, progress), progress
        except ConfigError as exc:
            log.error("cannot run the job", extra={"error": str(exc)})
            return EXIT_USAGE, progress
        except (FatalKafkaError, WindowAborted, KafkaException) as exc:
            # WindowAborted here: transactions could not even be initialised in time.
            log.error("fatal Kafka error; the job stops (a rerun goes on from its progress)",
                      extra={"error": str(exc)})
            return EXIT_FATAL, progress
        finally:
            if progress is not None:
                progress.close()
            self._close()

    def _loop(self, reader: BoundedReader, progress: Progress) -> int:
        while True:
            if self.stop.is_set():
                self._commit(reader, progress)
                return EXIT_OK if reader.done() else EXIT_STOPPED
            if reader.done():
                self._commit(reader, progress)
                if reader.done():  # a failed last commit rewinds: read that part again
                    return EXIT_OK
            self._turn(reader, progress)
            if self.fatal is not None:
                raise FatalKafkaError(str(self.fatal))

    def _turn(self, reader: BoundedReader, progress: Progress) -> None:
        batch = reader.next_batch(0.5)
        now = self.clock()
        step, committer = self.job.step, self.committer
        # Straight to the committer (no wrapper: this runs per record). Its produce() passes the
        # value on to librdkafka, which takes None (a tombstone copied as it is).
        emit = cast(Emit, committer.produce) if committer is not None else _publish_nothing
        for i, message in enumerate(batch):
            try:
                step(message, emit, self.pending)
            except WindowAborted as exc:
                assert committer is not None  # a dry run produces nothing that could fail
                self._abort(exc, batch[i:], reader, progress)
                return
            if committer is not None:
                committer.window.track(cast(str, message.topic()), cast(int, message.partition()),
                                       cast(int, message.offset()), now)
                if committer.window.tally.messages >= self.options.commit_every:
                    for later in batch[i + 1:]:  # if the commit fails, read these again too
                        committer.window.cover(cast(str, later.topic()),
                                               cast(int, later.partition()),
                                               cast(int, later.offset()))
                    if not self._commit(reader, progress):
                        return
        progress.advance(len(batch))
        self.producer.poll(0)
        window = committer.window if committer is not None else None
        if window is not None and self.policy.due(self.clock(), window.opened_at,
                                                  window.tally.messages):
            self._commit(reader, progress)

    def _abort(self, exc: WindowAborted, unhandled: list[Message], reader: BoundedReader,
               progress: Progress) -> None:
        assert self.committer is not None
        for message in unhandled:  # consumed but not handled: the rewind must cover them too
            self.committer.window.cover(cast(str, message.topic()),
                                        cast(int, message.partition()),
                                        cast(int, message.offset()))
        first = self._first_offsets()
        self.committer.abort()
        self._rewound(exc, first, reader, progress)

    def _commit(self, reader: BoundedReader, progress: Progress) -> bool:
        """Commit the open window; False if it was aborted (and the reader rewound)."""
        if self.committer is None:
            return True
        first = self._first_offsets()
        try:
            tally = self.committer.commit()
        except WindowAborted as exc:  # the committer has aborted and rewound the consumer
            self._rewound(exc, first, reader, progress)
            return False
        if tally is not None:
            self.committed_messages += tally.messages
        self.total.merge(self.pending)
        self.pending = JobCounts()
        self.aborts_in_row = 0
        return True

    def _first_offsets(self) -> dict[int, int]:
        assert self.committer is not None
        return {p: o for (_t, p), o in self.committer.window.first.items()}

    def _rewound(self, exc: Exception, first: dict[int, int], reader: BoundedReader,
                 progress: Progress) -> None:
        log.warning("transaction aborted; its messages will be read again",
                    extra={"error": str(exc)})
        reader.rewind(first, self.committed_messages)
        progress.rewind(self.committed_messages)
        self.pending = JobCounts()
        self.aborts_in_row += 1
        # A lasting cause (a missing output topic) must not become a hot loop of aborts.
        self.stop.wait(min(0.1 * 2 ** min(self.aborts_in_row - 1, 6), 5.0))

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if self.committer is not None:
            self.committer.on_delivery(err, msg)

    def _on_error(self, err: KafkaError) -> None:
        kind = consumer_error_kind(err)
        if kind == "fatal" and self.fatal is None:
            self.fatal = err
        log.warning("Kafka client error", extra={"error": str(err), "kind": kind})

    def _close(self) -> None:
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("consumer close failed", extra={"error": str(exc)})
        self.producer.flush(10)


def _publish_nothing(_topic: str, _value: bytes | None, _key: bytes | None,
                     _headers: Headers) -> None:
    """A dry run's emit."""
