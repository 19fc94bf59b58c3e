"""Schemas on disk match the models; the public surface is pinned (layering: test_layering.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson

import worker
import worker.classify.core
from tests.helpers import SCHEMAS, check_outcome
from worker.classify.core import Source, classify_message
from worker.contracts.models import json_schemas

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_match_the_models(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "worker", "schema", "--check", "--dir",
                           str(SCHEMAS)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    # And the check really detects drift.
    stale = tmp_path / "schemas"
    stale.mkdir()
    for p in SCHEMAS.glob("*.json"):
        (stale / p.name).write_bytes(p.read_bytes())
    (stale / "dead-letter.schema.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "worker", "schema", "--check", "--dir",
                           str(stale)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 1 and "dead-letter.schema.json" in proc.stderr


def test_schemas_are_draft_2020_12_and_their_examples_validate() -> None:
    for name, schema in json_schemas().items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["examples"], name
        for example in schema["examples"]:
            jsonschema.Draft202012Validator(schema).validate(example)


def test_output_schema_rejects_a_broken_event() -> None:
    (o,) = classify_message(orjson.dumps({"failureCategory": 1}), Source("t"))
    doc = check_outcome(o)
    assert doc is not None
    schema = json_schemas()["classified-event"]
    bad = {**doc, "failureCategory": "authentification"}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
    assert not jsonschema.Draft202012Validator(schema).is_valid({**doc, "remediation": []})


def test_public_surface_is_pinned() -> None:
    assert sorted(worker.__all__) == ["FailureCategory", "__version__", "classify_message", "core_build"]


def test_the_core_build_under_test_is_the_one_asked_for() -> None:
    # scripts/test.sh runs tests/unit a second time with CLASSIFIER_TEST_BUILD pointing at the
    # compiled core; without this check a path mistake would test plain Python twice.
    build = os.environ.get("CLASSIFIER_TEST_BUILD")
    if build:
        assert worker.core_build() == "mypyc"
        assert Path(worker.classify.core.__file__ or "").resolve().is_relative_to(Path(build).resolve())
    else:
        assert worker.core_build() == "plain Python"
