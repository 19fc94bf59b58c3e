"""Tests for worker.dev.samples, the deterministic sample-message generator and test oracle."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.dev.samples import (
    DW_REASONS,
    HRESULTS,
    MEMBERS,
    OUTCOMES,
    SHAPE_WEIGHTS,
    UNREADABLE_SHAPES,
    SampleMessage,
    generate,
    summarize,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "enrollment-failures.md"
LOG_SHAPES = {"la_row", "la_row_json_properties"}


def _records(message: SampleMessage) -> list[Any]:
    """The records inside a readable message, as the expectations count them."""
    assert message.value is not None
    obj = json.loads(message.value)
    if message.shape == "eventhubs_envelope":
        return list(obj["records"])
    if message.shape == "graph_page":
        return list(obj["value"])
    return [obj]


def _props(row: dict[str, Any]) -> dict[str, Any]:
    props = row["properties"]
    return json.loads(props) if isinstance(props, str) else dict(props)


def _member(value: Any) -> str | None:
    """The member a category value names: the test's own, deliberately simple, normaliser."""
    if isinstance(value, int):
        return MEMBERS[value]
    text = re.sub(r"[\s_-]", "", str(value)).lower()
    if text.isdigit():
        return MEMBERS[int(text)]
    return next((m for m in MEMBERS if m.lower() == text), None)


def _hresult_spellings(code: int) -> list[str]:
    return [f"{code:08x}", str(code), str(code - (1 << 32))]


def test_same_seed_gives_identical_bytes_and_other_seeds_differ() -> None:
    first = list(generate(1_000, seed=7))
    assert first == list(generate(1_000, seed=7))
    assert [m.value for m in first] != [m.value for m in generate(1_000, seed=8)]
    assert first[:300] == list(generate(300, seed=7))  # a shorter run is a prefix


def test_every_shape_and_every_category_appears_in_2000_messages() -> None:
    messages = list(generate(2_000))
    assert {m.shape for m in messages} == set(SHAPE_WEIGHTS) | set(UNREADABLE_SHAPES)
    categories = {r.category for m in messages for r in m.expected if r.outcome == "classified"}
    assert categories == set(MEMBERS)
    outcomes = {r.outcome for m in messages for r in m.expected}
    assert outcomes == set(OUTCOMES)


def test_successes_dominate_autopilot_esp_and_export_shapes_as_in_a_tenant() -> None:
    by_shape: dict[str, list[str]] = {}
    for message in generate(6_000, seed=21):
        if message.shape in UNREADABLE_SHAPES:
            continue
        for raw, expected in zip(_records(message), message.expected, strict=True):
            kind = (raw.get("operationName") if message.shape == "eventhubs_envelope"
                    and isinstance(raw, dict) else message.shape)
            by_shape.setdefault(str(kind), []).append(expected.outcome)
    for kind in ("autopilot_event", "ESPEnrollment", "export_row"):
        outcomes = by_shape[kind]
        assert outcomes.count("skipped_success") > outcomes.count("classified") > 0, kind
    assert set(by_shape["autopilot_event"]) == {"classified", "skipped_success",
                                                "skipped_in_progress", "skipped_not_enrollment"}
    assert set(by_shape["Compliance"]) <= {"skipped_not_enrollment", "dead_letter"}
    assert set(by_shape["graph_other_type"]) == {"skipped_not_enrollment"}


@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.1, 0.5])
def test_bad_ratio_is_roughly_honoured(ratio: float) -> None:
    n = 20_000
    messages = list(generate(n, seed=3, bad_ratio=ratio))
    bad = sum(m.shape in UNREADABLE_SHAPES for m in messages)
    sigma = (n * ratio * (1 - ratio)) ** 0.5
    assert abs(bad - n * ratio) <= 4 * sigma + 1
    assert all(m.expected == (m.expected[0],) and m.expected[0].outcome == "dead_letter"
               for m in messages if m.shape in UNREADABLE_SHAPES)
    if ratio == 0.0:
        assert summarize(messages)["dead_letter"] == 0


def test_envelopes_and_pages_have_one_expectation_per_record() -> None:
    sizes = set()
    for message in generate(3_000, seed=5):
        if message.shape in ("eventhubs_envelope", "graph_page"):
            records = _records(message)
            assert len(message.expected) == len(records) >= 1
            assert message.key is None
            sizes.add(len(records))
        elif message.shape not in UNREADABLE_SHAPES:
            assert len(message.expected) == 1
    assert {1, 10, 20} <= sizes


def test_log_rows_success_is_skipped_and_bad_rows_alone_are_dead_letters() -> None:
    bad_rows = successes = 0
    for message in generate(3_000, seed=11, bad_ratio=0.2):
        if message.shape not in LOG_SHAPES | {"eventhubs_envelope"}:
            continue
        for row, expected in zip(_records(message), message.expected, strict=True):
            if not isinstance(row, dict):
                assert expected.outcome == "dead_letter"
                bad_rows += 1
                continue
            try:
                props = _props(row)
            except json.JSONDecodeError:
                assert expected.outcome == "dead_letter"
                bad_rows += 1
                continue
            if row["operationName"] == "Compliance":
                assert expected.outcome == "skipped_not_enrollment"
                continue
            if row["operationName"] == "ESPEnrollment":
                assert expected.outcome == ("skipped_success" if row["resultType"] == "Success"
                                            else "classified")
                assert props["Status"] == ("Completed" if row["resultType"] == "Success"
                                           else "Failed")
                continue
            if row["resultType"] == "Success":
                successes += 1
                assert expected.outcome == "skipped_success"
                assert props["FailureCategory"] == "Not Applicable"
                assert props["FailureReason"] in ("None", "Unknown")
            else:
                assert row["resultType"] == "Fail"
                assert expected.outcome == "classified"
        if message.shape == "eventhubs_envelope" and len(message.expected) > 1:
            outcomes = [e.outcome for e in message.expected]
            assert outcomes.count("dead_letter") <= 1  # one bad row; neighbours stay readable
    assert bad_rows > 0
    assert successes > 0


def test_keys_are_device_ids() -> None:
    for message in generate(2_000, seed=2):
        if message.shape in LOG_SHAPES:
            assert message.key == _props(_records(message)[0])["IntuneDeviceId"].encode()
        elif message.shape == "autopilot_event":
            assert message.key == _records(message)[0]["deviceId"].encode()
        elif message.shape == "export_row":
            row = _records(message)[0]
            assert message.key is not None
            assert "DeviceId" not in row or message.key == row["DeviceId"].encode()
        elif message.shape in ("graph_event", "graph_event_beta", "hresult_text",
                               "graph_other_type"):
            device = _records(message)[0].get("managedDeviceIdentifier")
            assert message.key == (device.encode() if device else None)
        elif message.shape in ("flat", "graph_page", "eventhubs_envelope"):
            assert message.key is None
        elif message.shape == "unreadable_tombstone":
            assert message.value is None
            assert message.key is not None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), bad_ratio=st.floats(0.0, 0.3))
def test_expectations_agree_with_the_evidence_in_the_message(seed: int, bad_ratio: float) -> None:
    for message in generate(200, seed=seed, bad_ratio=bad_ratio):
        for record in message.expected:
            assert (record.category in MEMBERS) == (record.outcome == "classified")
        if message.shape in UNREADABLE_SHAPES:
            continue
        for raw, expected in zip(_records(message), message.expected, strict=True):
            if expected.outcome != "classified":
                continue
            category, reason = _evidence(message.shape, raw)
            named = _member(category) if category is not None else None
            hint = expected.detail_hint
            if hint is None:  # no specific evidence: the category alone decides
                assert (named or "unknown") == expected.category
                continue
            if named not in (None, "unknown"):
                assert named == expected.category  # a named category always agrees
            if hint in DW_REASONS:
                assert reason == hint
                assert DW_REASONS[hint] == expected.category
            else:
                code = int(hint, 16)
                assert HRESULTS[code][0] == expected.category
                assert any(s in str(reason).lower() for s in _hresult_spellings(code))


def _evidence(shape: str, raw: dict[str, Any]) -> tuple[Any, Any]:
    """The (category, reason) a classified record carries, where its shape puts them."""
    if shape in LOG_SHAPES or shape == "eventhubs_envelope":
        props = _props(raw)
        if raw["operationName"] == "ESPEnrollment":  # no category; "Timeout" is the reason
            assert props["FailureReason"] == "Timeout"
            return "clientDisconnected", None
        return props["FailureCategory"], props["FailureReason"]
    if shape == "autopilot_event":
        assert raw["deploymentState"] == "failure"
        return None, raw["enrollmentFailureDetails"]
    if shape == "export_row":
        reason = raw.get("Failure_loc") or raw["FailureReason_loc"]
        return raw["FailureReason_loc"] or None, reason
    return raw.get("failureCategory"), raw.get("failureReason")


def test_summarize_counts_expectations() -> None:
    messages = list(generate(1_000, seed=4, bad_ratio=0.05))
    counts = summarize(messages)
    records = [r for m in messages for r in m.expected]
    assert counts["messages"] == 1_000
    assert counts["records"] == len(records)
    assert counts["records"] == sum(counts[o] for o in OUTCOMES)
    assert counts["classified"] == sum(counts[f"classified.{m}"] for m in MEMBERS)
    assert counts["classified.userValidation"] == sum(
        r.category == "userValidation" for r in records)


def test_cli_writes_one_parseable_message_per_line() -> None:
    args = ["--count", "400", "--seed", "9", "--bad-ratio", "0.2", "--summary"]
    done = subprocess.run([sys.executable, "-m", "worker.dev.samples", *args], cwd=ROOT,
                          capture_output=True, check=True, timeout=60)
    lines = done.stdout.split(b"\n")
    assert lines[-1] == b""
    values = [json.loads(line) for line in lines[:-1]]
    summary = json.loads(done.stderr)
    assert summary["messages"] == len(values)
    assert summary["messages"] + summary["skipped_unwritable"] == 400
    assert summary["skipped_unwritable"] > 0  # tombstones, empty values, invalid UTF-8 or JSON
    written = [m for m in generate(400, seed=9, bad_ratio=0.2)
               if m.shape not in ("unreadable_not_json", "unreadable_invalid_utf8",
                                  "unreadable_empty", "unreadable_tombstone")]
    assert [m.value for m in written] == lines[:-1]
    assert summarize(written) | {"skipped_unwritable": 400 - len(written)} == summary


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference is not beside this checkout")
def test_oracle_tables_match_the_reference_document() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    hresult_section = text.split("### 4.1")[1].split("### 4.2")[0]
    documented: dict[int, str] = {}
    for line in hresult_section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| 0x"):
            for code in cells[0].split("/"):
                documented[int(code, 16)] = cells[-1].split()[0]
    assert documented == {code: category for code, (category, _) in HRESULTS.items()}
    mapping = text.split("## Mapping table")[1]
    rows = {cells[1]: cells[2] for line in mapping.splitlines()
            if (cells := [c.strip() for c in line.strip("|").split("|")])[0].isdigit()}
    assert set(rows) == set(MEMBERS)
    for reason, category in DW_REASONS.items():
        assert f"`{reason}`" in rows[category], reason
        assert f"| {reason} |" in text  # a documented Data Warehouse reason name
