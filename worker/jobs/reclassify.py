"""``python -m worker reclassify --since TIME``: input records of a time range classified again.

Reads the input topic from the offsets at ``--since`` (``offsets_for_times``) to the end
offsets taken at start (or ``--until``) and publishes each classified record to the output
topic (``--output-topic`` to send them elsewhere) with the worker's id, key and provenance
headers, plus ``x-reclassified: <classifier version>``. Records that are unreadable or skipped
are counted only: they were dead-lettered or skipped the first time too, and
``replay-dead-letters`` is the tool for the dead letters.
"""

from __future__ import annotations

from typing import Final, cast

from confluent_kafka import Message

from worker.classify.core import (
    CLASSIFIER_VERSION,
    Classified,
    CoreOptions,
    Source,
    classify_message,
)
from worker.jobs.counts import JobCounts
from worker.jobs.runner import Emit, Job
from worker.stream.clients import Headers, provenance_headers

GROUP: Final = "input"
RECLASSIFIED: Final[Headers] = [("content-type", b"application/json"),
                                ("x-reclassified", CLASSIFIER_VERSION.encode())]


def reclassify_job(input_topic: str, output_topic: str, options: CoreOptions) -> Job:
    def step(message: Message, emit: Emit, counts: JobCounts) -> None:
        topic, partition, offset = (cast(str, message.topic()), cast(int, message.partition()),
                                    cast(int, message.offset()))
        outcomes = classify_message(message.value(), Source(topic, partition, offset), options)
        counts.group(GROUP).add(outcomes)
        headers: Headers | None = None  # shared by every record of this message
        published = 0
        for outcome in outcomes:
            if outcome.__class__ is Classified:  # the common case first: this runs per record
                if headers is None:
                    headers = provenance_headers(topic, partition, offset, None) + RECLASSIFIED
                emit(output_topic, outcome.value, outcome.key, headers)
                published += 1
        counts.published += published
    return Job("reclassify", input_topic, "records", step)
