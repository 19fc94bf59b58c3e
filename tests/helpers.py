"""Shared assertions: every output the tests see is checked against the published contracts."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from worker.classify.core import Classified, DeadLetter, Outcome, Skipped, Source, classify_message
from worker.contracts.models import ClassifiedEvent, DeadLetterRecord

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
SOURCE = Source("raw", 3, 17)


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def check_outcome(outcome: Outcome) -> dict[str, Any] | None:
    """Validate an outcome's bytes against its model and checked-in schema; return the JSON."""
    if isinstance(outcome, Skipped):
        return None
    doc = orjson.loads(outcome.value)
    if isinstance(outcome, Classified):
        ClassifiedEvent.model_validate(doc)
        validator("classified-event").validate(doc)
    else:
        assert isinstance(outcome, DeadLetter)
        DeadLetterRecord.model_validate(doc)
        validator("dead-letter").validate(doc)
    return doc  # type: ignore[no-any-return]


def classify(value: Any) -> list[Outcome]:
    """Classify a Python object (encoded as JSON) or raw bytes, validating every output."""
    raw = value if isinstance(value, bytes | None) else orjson.dumps(value)
    outcomes = classify_message(raw, SOURCE)
    for o in outcomes:
        check_outcome(o)
    return outcomes


def one_event(value: Any) -> dict[str, Any]:
    """Classify input that must yield exactly one classified event, and return it."""
    outcomes = classify(value)
    assert len(outcomes) == 1, outcomes
    assert isinstance(outcomes[0], Classified), outcomes[0]
    doc = check_outcome(outcomes[0])
    assert doc is not None
    return doc
