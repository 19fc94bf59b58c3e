"""The batch jobs' pure parts: recovering a dead letter's bytes (made by the real core), the
counts and their table, time bounds and flags, the progress log, and usage errors from the CLI
(no broker: they fail before any client is built)."""

from __future__ import annotations

import argparse
import base64
import io
import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from worker.classify.core import CoreOptions, DeadLetter, Source, classify_message
from worker.jobs.counts import GroupCounts, JobCounts, table
from worker.jobs.dead_letters import Recovered, Refused, recover
from worker.jobs.options import JobOptions, job_settings, timestamp_ms
from worker.jobs.progress import Progress
from worker.stream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE = orjson.dumps({"records": [
    {"operationName": "Enrollment", "resultType": "Fail",
     "properties": {"FailureCategory": "Unknown", "FailureReason": "0x80180018",
                    "IntuneDeviceId": "dev-1"}},
    {"operationName": "Enrollment", "resultType": "Success",
     "properties": {"FailureCategory": "Not Applicable"}},
    "corrupted record"]})


SOURCE = Source("raw", 2, 77)


def _dead_letter(value: bytes | None, **limits: int) -> bytes:
    (outcome,) = [o for o in classify_message(value, SOURCE, CoreOptions(**limits))
                  if isinstance(o, DeadLetter)]
    return outcome.value


@pytest.mark.parametrize(("value", "encoding"), [
    (ENVELOPE + b" " * 1024, "utf-8"),  # too large: the whole message
    (b"\xff\xfe not utf-8 \x00", "base64"),
    (b'{"a": "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10"}', "base64"),  # escapes
    (b"", "utf-8"),  # empty
])
def test_recover_gives_back_the_exact_original_bytes_and_coordinates(value: bytes,
                                                                     encoding: str) -> None:
    letter = _dead_letter(value, max_message_bytes=1024)
    assert orjson.loads(letter)["payloadEncoding"] == encoding
    got = recover(letter)
    assert isinstance(got, Recovered), got
    assert got.payload == value
    assert got.source == Source("raw", 2, 77) and got.index is None


def test_recover_a_tombstone_as_none() -> None:
    got = recover(_dead_letter(None))
    assert isinstance(got, Recovered) and got.payload is None and got.error_class == "empty"


def test_recover_a_record_scope_letter_keeps_its_index() -> None:
    got = recover(_dead_letter(ENVELOPE))
    assert isinstance(got, Recovered)
    assert got.payload == b'"corrupted record"' and got.index == 2
    assert got.error_class == "not_object"


def test_truncated_and_tampered_letters_are_refused() -> None:
    big = b'{"failureReason": "' + b"x" * 4000 + b'"}'
    truncated = _dead_letter(big, max_message_bytes=1024, max_dead_letter_payload=100)
    assert recover(truncated) == Refused("too_large", "truncated")
    doc = orjson.loads(_dead_letter(b"\xff\xfe"))
    tampered = doc | {"payload": base64.b64encode(b"\xff\xfd").decode()}
    assert recover(orjson.dumps(tampered)) == Refused("not_utf8", "digest_mismatch")
    broken = doc | {"payload": "not base64!"}
    assert recover(orjson.dumps(broken)) == Refused("not_utf8", "bad_payload")
    for junk in (b"", b"{", b"[]", orjson.dumps({"schemaVersion": 1}), None):
        assert recover(junk) == Refused("not_a_dead_letter", "not_a_dead_letter")


def test_counts_by_message_and_record() -> None:
    g = GroupCounts()
    g.add(classify_message(ENVELOPE, Source("raw")))  # classified + skipped + dead: partly
    g.add(classify_message(b'{"failureCategory": "badRequest"}', Source("raw")))
    g.add(classify_message(b"nope", Source("raw")))
    g.refuse("truncated")
    assert (g.messages, g.readable, g.partly, g.unreadable) == (4, 1, 1, 2)
    assert (g.classified, g.skipped, g.dead_lettered) == (2, 1, 2)
    assert g.as_dict()["categories"] == {"userValidation": 1, "badRequest": 1}
    assert g.unrecoverable == {"truncated": 1}


def test_merge_and_table_add_up() -> None:
    a, b = JobCounts(), JobCounts()
    a.group("too_large").add(classify_message(ENVELOPE, Source("raw")))
    b.group("too_large").add(classify_message(b'{"failureCategory": 4}', Source("raw")))
    b.group("not_json").refuse("truncated")
    b.published, b.copied = 1, 1
    a.merge(b)
    assert a.messages == 3 and a.published == 1 and a.copied == 1
    assert a.as_dict()["groups"]["too_large"]["categories"] == {"userValidation": 2}
    lines = table(a, "error class").splitlines()
    assert lines[0].split()[:3] == ["error", "class", "messages"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["too_large"][1:7] == ["2", "1", "1", "0", "2", "1"]
    assert rows["total"][1:7] == ["3", "1", "1", "1", "2", "1"]
    assert "unrecoverable:truncated=1" in lines[2]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-30T08:00:00Z", 1796025600000),
    ("2026-11-30T08:00:00", 1796025600000),
    ("2026-11-30T09:00:00+01:00", 1796025600000),
    ("1796025600000", 1796025600000),
])
def test_timestamps(text: str, expected: int) -> None:
    assert timestamp_ms(text) == expected


def test_a_bad_timestamp_is_a_usage_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        timestamp_ms("yesterday")


def test_a_job_has_its_own_group_and_transactional_id() -> None:
    own = job_settings(Settings(group_id="live", transactional_id="live-pod"),
                       JobOptions(job_id="replay-dead-letters"))
    assert own.group_id == own.transactional_id == "live.replay-dead-letters"


def test_progress_logs_every_few_seconds_off_a_terminal(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    now = [100.0]
    progress = Progress("replay", 1000, io.StringIO(), lambda: now[0])
    with caplog.at_level(logging.INFO, logger="worker.jobs"):
        progress.advance(100)  # too soon
        now[0] += 5.0
        progress.advance(150)
        now[0] += 1.0
        progress.advance(50)  # too soon again
    (record,) = [r for r in caplog.records if r.getMessage() == "progress"]
    assert (record.done, record.total, record.per_second, record.eta_s) == (250, 1000, 50.0, 15.0)  # type: ignore[attr-defined]


def test_progress_bar_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("replay", 10, stream, lambda: 0.0, interactive=True)
    progress.advance(4)
    progress.rewind(2)
    progress.close()
    assert "replay" in stream.getvalue() and "2/10" in stream.getvalue()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("args", "message"), [
    (("reclassify",), "needs --since"),
    (("reclassify", "--since", "2026-11-30T08:00:00Z", "--until", "2026-11-29"),
     "--until must be later"),
    (("replay-dead-letters", "--max-records", "0"), "--max-records"),
    (("replay-dead-letters", "--to-topic", "intune-enrollment-dead-letter"), "--to-topic"),
    (("replay-dead-letters", "--commit-every", "0"), "--commit-every"),
])
def test_usage_errors_exit_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_bad_timestamp_from_the_cli() -> None:
    done = _cli("reclassify", "--since", "yesterday")
    assert done.returncode == 2 and "not a timestamp" in done.stderr


def test_print_config_shows_the_shared_settings() -> None:
    done = _cli("replay-dead-letters", "--print-config", "--dead-letter-topic", "dlq-x")
    assert done.returncode == 0, done.stderr
    assert "dead_letter_topic=dlq-x" in done.stdout


def _mutations(doc: dict[str, object]) -> list[dict[str, object]]:
    """The letter with each field that recovery reads missing, or of each wrong type."""
    from worker.jobs.dead_letters import _FIELDS

    out: list[dict[str, object]] = []
    wrong: list[object] = [None, "x", True, 1.5, 7, [], {}]
    for name in _FIELDS:
        out.append({k: v for k, v in doc.items() if k != name})
        out += [doc | {name: w} for w in wrong if type(w) is not type(doc[name])]
    source = doc["source"]
    assert isinstance(source, dict)
    for name in source:
        out += [doc | {"source": source | {name: w}} for w in wrong
                if type(w) is not type(source[name])]
    return out


@pytest.mark.parametrize("value", [ENVELOPE + b" " * 1024, b"\xff", b"", None])
def test_hand_checks_reject_what_the_contract_model_rejects(value: bytes | None) -> None:
    """recover() parses with orjson for speed; where a field it reads is missing or of the
    wrong type, it must refuse what the pydantic contract refuses (fields it does not read,
    and extra ones from a newer version, it leaves alone)."""
    from pydantic import ValidationError

    from worker.contracts.models import DeadLetterRecord

    doc = orjson.loads(_dead_letter(value, max_message_bytes=1024))
    DeadLetterRecord.model_validate(doc)
    assert isinstance(recover(orjson.dumps(doc)), Recovered)
    rejected = 0
    for mutated in _mutations(doc):
        try:
            DeadLetterRecord.model_validate_json(orjson.dumps(mutated))
        except ValidationError:
            rejected += 1
            assert isinstance(recover(orjson.dumps(mutated)), Refused), mutated
    assert rejected > 40
