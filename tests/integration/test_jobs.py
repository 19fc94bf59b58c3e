"""The batch jobs against a real broker: replay-dead-letters after a worker with a too-small
--max-message-bytes (dry run, real run, second run, SIGKILL and rerun, --to-topic copies) and
reclassify over a time range. Expectations come from the sample oracle, not the classifier."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.support import (
    Produced,
    Record,
    Topics,
    WorkerProcess,
    check_against_oracle,
    produce_samples,
    read_topic,
    samples,
    source_of,
    wait_for,
)
from worker.classify.core import CLASSIFIER_VERSION

SMALL_LIMIT = "1024"  # the smallest the worker accepts: most envelopes and pages exceed it


@dataclass
class DeadLettered:
    topics: Topics
    group: str
    produced: Produced
    outputs: list[Record]  # what the worker published itself
    dead: list[Record]


def _job(bootstrap: str, t: Topics, group: str, log_dir: Path, *args: str) -> WorkerProcess:
    return WorkerProcess(bootstrap, t, group, log_dir=log_dir, command=args).start()


def _summary(job: WorkerProcess) -> dict[str, Any]:
    for line in reversed(job.log_path.read_text(errors="replace").splitlines()):
        if '"job finished"' in line:
            summary: dict[str, Any] = orjson.loads(line)["summary"]
            return summary
    raise AssertionError(f"no summary in the job's log:\n{job.logs()}")


def _run(bootstrap: str, t: Topics, group: str, log_dir: Path, *args: str) -> dict[str, Any]:
    job = _job(bootstrap, t, group, log_dir, *args)
    try:
        code = job.wait(180)
        assert code == 0, job.logs()
        return _summary(job)
    finally:
        job.close()


@pytest.fixture
def dead_lettered(kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
                  tmp_path: Path) -> DeadLettered:
    t = topics(3)
    produced = produce_samples(kafka_bootstrap, t.input, samples(400, seed=32, bad_ratio=0.03))
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path,
                           env={"CLASSIFIER_MAX_MESSAGE_BYTES": SMALL_LIMIT}).start()
    try:
        worker.wait_ready()
        wait_for(lambda: worker.metric_if_up("enrollment_input_messages_total")
                 == len(produced.expected), 120, "the worker to commit every input message")
        classified = int(worker.metric("enrollment_events_total", outcome="classified"))
        dead_count = int(worker.metric_sum("enrollment_dead_letters_total"))
        code, _ = worker.terminate()
        assert code == 0, worker.logs()
    finally:
        worker.close()
    outputs = read_topic(kafka_bootstrap, t.output, expect=classified, settle=0.5)
    dead = read_topic(kafka_bootstrap, t.dead, expect=dead_count, settle=0.5)
    too_large = [d for d in dead if d.value["errorClass"] == "too_large"]
    assert len(too_large) > 50 and len(dead) > len(too_large), "the fixture must dead-letter"
    return DeadLettered(t, unique_group, produced, outputs, dead)


def _halfway(d: DeadLettered, bootstrap: str, new_topic: Callable[..., str], log_dir: Path
             ) -> tuple[WorkerProcess, str, tuple[str, ...]]:
    """A replay (with a copies topic) started with one transaction per dead letter (slow enough
    to be caught), once its progress group has committed some but not all of the dead-letter
    topic; returns it with the copies topic and the arguments a rerun needs."""
    copies_topic = new_topic(1, "copies")
    args = ("replay-dead-letters", "--to-topic", copies_topic)
    # Caught once at least one too-large letter is done and at least one is left, so that a
    # rerun has both something to skip and something to replay.
    too_large = sorted(r.offset for r in d.dead if r.value["errorClass"] == "too_large")
    first, last = too_large[0] + 1, too_large[len(too_large) * 2 // 3]
    job = _job(bootstrap, d.topics, d.group, log_dir, *args, "--commit-every", "1")
    progress = Consumer({"bootstrap.servers": bootstrap,
                         "group.id": f"{d.group}.replay-dead-letters"})
    try:
        def halfway() -> bool:
            (tp,) = progress.committed([TopicPartition(d.topics.dead, 0)], timeout=10)
            return first <= tp.offset <= last or not job.alive()
        wait_for(halfway, 120, "the replay to commit its first transactions", interval=0.02)
    finally:
        progress.close()
    assert job.alive(), "the replay ended before it could be stopped:\n" + job.logs()
    return job, copies_topic, args


def _replayed(records: list[Record]) -> list[Record]:
    return [r for r in records if "x-replayed-from-offset" in r.headers]


def _check_replay(d: DeadLettered, bootstrap: str, copies_topic: str, published: int
                  ) -> tuple[list[Record], list[Record]]:
    """The worker's outputs plus the replayed ones hold every readable input record exactly
    once with the oracle's category; the copies topic holds exactly the oracle's dead ones."""
    outputs = read_topic(bootstrap, d.topics.output, expect=len(d.outputs) + published)
    replayed = _replayed(outputs)
    assert len(replayed) == published == len(outputs) - len(d.outputs)
    expected_dead = d.produced.counts()["dead_letter"]
    copies = read_topic(bootstrap, copies_topic, expect=expected_dead)
    check_against_oracle(outputs, copies, d.produced)
    letters = {(r.partition, r.offset): r for r in d.dead}
    for r in replayed:  # same coordinates, ids and headers as the worker would have given
        letter = letters[(int(r.headers["x-replayed-from-partition"]),
                          int(r.headers["x-replayed-from-offset"]))]
        assert r.headers["x-replayed-from-topic"].decode() == d.topics.dead
        assert letter.value["errorClass"] == "too_large"
        assert r.value["source"]["topic"] == d.topics.input == r.headers["x-source-topic"].decode()
        assert r.value["source"]["offset"] == letter.value["source"]["offset"]
        assert r.headers["x-classifier-version"].decode() == CLASSIFIER_VERSION
    return outputs, copies


def test_replay_dry_run_then_run_then_rerun(dead_lettered: DeadLettered, kafka_bootstrap: str,
                                             new_topic: Callable[..., str],
                                             tmp_path: Path) -> None:
    d = dead_lettered
    copies_topic = new_topic(1, "copies")
    args = ("replay-dead-letters", "--to-topic", copies_topic)

    dry = _run(kafka_bootstrap, d.topics, d.group, tmp_path, *args, "--dry-run")
    assert dry["dry_run"] is True and dry["published"] > len(d.dead)
    assert len(read_topic(kafka_bootstrap, d.topics.output, expect=len(d.outputs))) == \
        len(d.outputs), "a dry run published something"
    assert read_topic(kafka_bootstrap, copies_topic, expect=0, settle=1.0) == []

    real = _run(kafka_bootstrap, d.topics, d.group, tmp_path, *args)
    assert real["groups"] == dry["groups"], "the dry run's table differs from the real run"
    assert (real["published"], real["copied"]) == (dry["published"], dry["copied"])
    assert real["groups"]["too_large"]["unreadable"] == 0
    outputs, copies = _check_replay(d, kafka_bootstrap, copies_topic, real["published"])

    # Still unreadable dead letters are copied byte for byte, headers included.
    originals = {r.raw: r for r in d.dead}
    copied = [c for c in copies if "x-replayed-from-offset" not in c.headers]
    assert len(copied) == real["copied"] > 0
    for c in copied:
        assert c.raw in originals and c.raw_headers == originals[c.raw].raw_headers
        assert c.key == originals[c.raw].key

    again = _run(kafka_bootstrap, d.topics, d.group, tmp_path, *args)
    assert (again["published"], again["copied"], again["groups"]) == (0, 0, {})
    total = len(outputs)
    assert len(read_topic(kafka_bootstrap, d.topics.output, expect=total)) == total
    assert len(read_topic(kafka_bootstrap, copies_topic, expect=len(copies))) == len(copies)


def test_replay_killed_halfway_and_rerun_publishes_each_record_once(
        dead_lettered: DeadLettered, kafka_bootstrap: str, new_topic: Callable[..., str],
        tmp_path: Path) -> None:
    d = dead_lettered
    job, copies_topic, args = _halfway(d, kafka_bootstrap, new_topic, tmp_path)
    try:
        assert job.proc is not None
        job.proc.send_signal(signal.SIGKILL)
        job.proc.wait(10)
    finally:
        job.close()
    rerun = _run(kafka_bootstrap, d.topics, d.group, tmp_path, *args)
    assert 0 < rerun["groups"]["too_large"]["messages"] < len(
        [r for r in d.dead if r.value["errorClass"] == "too_large"]), "the rerun did not resume"
    outputs = read_topic(kafka_bootstrap, d.topics.output, expect=len(d.outputs) + 1)
    _check_replay(d, kafka_bootstrap, copies_topic, len(outputs) - len(d.outputs))


def test_replay_stopped_by_sigterm_commits_its_transaction_and_exits_4(
        dead_lettered: DeadLettered, kafka_bootstrap: str, new_topic: Callable[..., str],
        tmp_path: Path) -> None:
    d = dead_lettered
    job, copies_topic, args = _halfway(d, kafka_bootstrap, new_topic, tmp_path)
    try:
        code, took = job.terminate(timeout=30)
        assert code == 4 and took < 30, job.logs()
        stopped = _summary(job)
    finally:
        job.close()
    assert stopped["exit_code"] == 4 and stopped["published"] > 0, stopped
    # What the summary says was published is exactly what is committed: nothing half-done.
    outputs = read_topic(kafka_bootstrap, d.topics.output,
                         expect=len(d.outputs) + stopped["published"])
    assert len(_replayed(outputs)) == stopped["published"]
    rerun = _run(kafka_bootstrap, d.topics, d.group, tmp_path, *args)
    _check_replay(d, kafka_bootstrap, copies_topic, stopped["published"] + rerun["published"])


def test_reclassify_republishes_exactly_the_records_of_the_range(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        tmp_path: Path) -> None:
    t = topics(3)

    def now_ms() -> int:
        return int(time.time() * 1000)

    def boundary() -> int:
        mark = now_ms() + 2
        wait_for(lambda: now_ms() > mark, 5, "the clock to pass the boundary", interval=0.001)
        return mark

    produce_samples(kafka_bootstrap, t.input, samples(120, seed=41))
    since = boundary()
    inside = produce_samples(kafka_bootstrap, t.input, samples(120, seed=42))
    until = boundary()
    produce_samples(kafka_bootstrap, t.input, samples(120, seed=43))

    args = ("reclassify", "--since", str(since), "--until", str(until))
    summary = _run(kafka_bootstrap, t, unique_group, tmp_path, *args)
    expected = {(p, off, i): r.category for (p, off), records in inside.expected.items()
                for i, r in enumerate(records) if r.outcome == "classified"}
    assert summary["published"] == len(expected)
    outputs = read_topic(kafka_bootstrap, t.output, expect=len(expected))
    seen = Counter(source_of(r) for r in outputs)
    assert set(seen) == set(expected) and max(seen.values()) == 1
    for r in outputs:
        assert r.value["failureCategory"] == expected[source_of(r)]
        assert r.headers["x-reclassified"].decode() == CLASSIFIER_VERSION
        assert r.headers["x-source-topic"].decode() == t.input

    again = _run(kafka_bootstrap, t, unique_group, tmp_path, *args)
    assert again["published"] == 0
    assert len(read_topic(kafka_bootstrap, t.output, expect=len(expected))) == len(expected)
