"""``python -m worker replay-dead-letters``: dead letters back through the current classifier.

Each dead letter's original bytes are recovered exactly (:mod:`worker.jobs.dead_letters`) and
classified again as if read at their original coordinates, so outputs carry the ids and
provenance headers the worker would have given them, plus ``x-replayed-from-topic``,
``-partition`` and ``-offset``: the dead letter they came from. A dead letter that is still
unreadable is counted, and with ``--to-topic`` copied there byte for byte (value, key and
headers); one that is now partly readable publishes its readable records and sends the new
dead letters of the rest to ``--to-topic``. The dead-letter topic itself is never changed,
so nothing is lost.
"""

from __future__ import annotations

from typing import Final, cast

from confluent_kafka import Message

from worker.classify.core import Classified, CoreOptions, DeadLetter, classify_message
from worker.jobs.counts import JobCounts
from worker.jobs.dead_letters import Recovered, recover
from worker.jobs.runner import Emit, Job
from worker.stream.clients import Headers, provenance_headers

_JSON: Final[Headers] = [("content-type", b"application/json")]


def replay_job(dead_letter_topic: str, output_topic: str, to_topic: str | None,
               options: CoreOptions) -> Job:
    def step(message: Message, emit: Emit, counts: JobCounts) -> None:
        letter = recover(message.value())
        if not isinstance(letter, Recovered):
            counts.group(letter.error_class).refuse(letter.reason)
            _copy(message, emit, counts, to_topic)
            return
        src = letter.source
        outcomes = classify_message(letter.payload, src, options)
        counts.group(letter.error_class).add(outcomes)
        if all(isinstance(o, DeadLetter) for o in outcomes):
            _copy(message, emit, counts, to_topic)
            return
        headers = [*provenance_headers(src.topic, src.partition, src.offset, letter.index),
                   *_JSON, *replayed_from(message)]
        published = 0
        for outcome in outcomes:
            if outcome.__class__ is Classified:
                emit(output_topic, outcome.value, outcome.key, headers)
                published += 1
            elif isinstance(outcome, DeadLetter) and to_topic is not None:
                emit(to_topic, outcome.value, message.key(),
                     [*provenance_headers(src.topic, src.partition, src.offset, outcome.index),
                      ("x-error-class", outcome.error_class.encode()), *_JSON,
                      *replayed_from(message)])
        counts.published += published
    return Job("replay-dead-letters", dead_letter_topic, "error class", step)


def replayed_from(message: Message) -> Headers:
    """Which dead letter an output was replayed from."""
    return [("x-replayed-from-topic", cast(str, message.topic()).encode()),
            ("x-replayed-from-partition", b"%d" % cast(int, message.partition())),
            ("x-replayed-from-offset", b"%d" % cast(int, message.offset()))]


def _copy(message: Message, emit: Emit, counts: JobCounts, to_topic: str | None) -> None:
    if to_topic is not None:
        emit(to_topic, message.value(), message.key(), cast(Headers, message.headers() or []))
        counts.copied += 1
