"""Property: no success, attempt in progress or non-enrollment record, of any shape and with
any other fields beside the ones that say so, is ever published as a failure.

Records are generated per shape from the words that make them a non-failure (in any case,
as codes where Graph has them), buried in arbitrary other fields (failure categories,
reasons and HRESULTs included), alone, in Event Hubs envelopes or Graph pages, with log-row
properties as objects or JSON strings. A dead letter is allowed (a field of the wrong type
can make a record unreadable); a classified event is not.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import check_outcome
from worker.classify import catalog
from worker.classify.catalog import fold
from worker.classify.core import Classified, Skipped, Source, classify_message

SOURCE = Source("property", 0, 0)
NOISE_KEYS = st.sampled_from([
    "failureCategory", "FailureCategory", "failureReason", "FailureReason", "errorCode",
    "enrollmentFailureDetails", "Failure", "FailureDetails", "Remediation", "id", "MessageId",
    "troubleshootingErrorDetails", "deviceSetupStatus", "accountSetupStatus",
    "enrollmentState", "Status", "EnrollmentState"]) | st.text(max_size=10)
NOISE_VALUES = (st.none() | st.booleans() | st.integers(-5, 20) | st.text(max_size=30)
                | st.sampled_from(["0x80180018", "userValidation", "DeviceCap", "failure",
                                   "Failed", "Timeout", "UserNotLicensed", "3"]))
NOISE = st.dictionaries(NOISE_KEYS, NOISE_VALUES, max_size=8)


def any_case(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    def recase(word: str, flips: list[bool]) -> str:
        return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=False))
    return st.sampled_from(words).flatmap(
        lambda w: st.lists(st.booleans(), min_size=len(w), max_size=len(w)).map(
            lambda flips: recase(w, flips)))


def states(verdicts: set[str]) -> st.SearchStrategy[Any]:
    words = tuple(w for w, v in catalog.DEPLOYMENT_VERDICTS.items() if v in verdicts)
    codes = [catalog.DEPLOYMENT_STATES.index(w) for w in words]
    return any_case(words) | st.sampled_from(codes)


NOT_FAILED_DEPLOYMENT = states({"success", "in_progress", "not_enrollment"})
AUTOPILOT_TYPE = st.sampled_from(["#microsoft.graph.deviceManagementAutopilotEvent",
                                  "microsoft.graph.deviceManagementAutopilotEvent", None])
FAILING_TYPES = {fold("enrollmentTroubleshootingEvent"), fold("deviceManagementAutopilotEvent")}
OTHER_TYPE = (st.sampled_from(["#microsoft.graph.deviceManagementTroubleshootingEvent",
                               "#microsoft.graph.mobileAppTroubleshootingEvent"])
              | st.text(max_size=40).filter(
                  lambda t: fold(t.rpartition(".")[2]) not in FAILING_TYPES))
ENROLLMENT_OPS = catalog.ENROLLMENT_OPERATIONS_FOLDED
OTHER_OPERATION = (any_case(("Compliance", "Devices", "AuditLogs"))
                   | st.text(min_size=1, max_size=20).filter(
                       lambda t: fold(t) not in ENROLLMENT_OPS))
SUCCESS_RESULT = any_case(catalog.SUCCESS_RESULTS)
NO_RESULT = any_case(("None", "Unknown", "NotApplicable")) | st.just("")
NOT_APPLICABLE = any_case(catalog.NOT_APPLICABLE[:2]) | st.sampled_from(catalog.NOT_APPLICABLE)
ESP_NOT_FAILED = any_case(tuple(w for w, v in catalog.ESP_STATUS_VERDICTS.items()
                                if v != "failure"))


@st.composite
def autopilot(draw: st.DrawFn) -> dict[str, Any]:
    record = {**draw(NOISE), "deploymentState": draw(NOT_FAILED_DEPLOYMENT)}
    odata_type = draw(AUTOPILOT_TYPE)
    if odata_type is not None:
        record["@odata.type"] = odata_type
    return record


@st.composite
def other_graph_type(draw: st.DrawFn) -> dict[str, Any]:
    return {**draw(NOISE), "@odata.type": draw(OTHER_TYPE)}


@st.composite
def log_row(draw: st.DrawFn) -> dict[str, Any]:
    props = draw(NOISE)
    kind = draw(st.sampled_from(["other_operation", "success", "not_applicable", "esp"]))
    row: dict[str, Any] = {"category": "OperationalLogs", "operationName": "Enrollment"}
    if kind == "other_operation":
        row |= {"operationName": draw(OTHER_OPERATION),
                "resultType": draw(st.none() | st.text(max_size=10) | SUCCESS_RESULT)}
    elif kind == "success":
        row["resultType"] = draw(SUCCESS_RESULT)
    elif kind == "not_applicable":
        row["resultType"] = draw(NO_RESULT)
        props["FailureCategory"] = draw(NOT_APPLICABLE)
    else:
        row["operationName"] = draw(any_case(("ESPEnrollment",)))
        if draw(st.booleans()):
            row["resultType"] = draw(SUCCESS_RESULT)
        else:
            props["Status"] = draw(ESP_NOT_FAILED)
    as_string = draw(st.booleans())
    row["properties"] = orjson.dumps(props).decode() if as_string else props
    return row


@st.composite
def export_success(draw: st.DrawFn) -> dict[str, Any]:
    row = {k: v for k, v in draw(NOISE).items() if k not in catalog.EXPORT_FAILURE_COLUMNS
           and k not in catalog.EXPORT_STATUS_COLUMNS and not k.endswith("_loc")}
    none_word = any_case(tuple(w for w in catalog.EXPORT_NO_FAILURE if w))
    for column in catalog.EXPORT_FAILURE_COLUMNS:
        if draw(st.booleans()):
            row[column] = draw(none_word | st.just(""))
    row[draw(st.sampled_from(catalog.EXPORT_REPORT_SIGNATURES["EnrollmentActivity"]))] = "x"
    return row


RECORD = autopilot() | other_graph_type() | log_row() | export_success()


@st.composite
def message(draw: st.DrawFn) -> dict[str, Any]:
    wrapper = draw(st.sampled_from(["alone", "envelope", "page"]))
    if wrapper == "alone":
        return draw(RECORD)
    if wrapper == "envelope":
        return {"records": draw(st.lists(log_row(), min_size=1, max_size=5))}
    return {"@odata.context": "https://graph.microsoft.com/beta/$metadata#x",
            "value": draw(st.lists(autopilot() | other_graph_type(), min_size=1, max_size=5))}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_no_success_in_progress_or_non_enrollment_record_is_published(doc: dict[str, Any]) -> None:
    outcomes = classify_message(orjson.dumps(doc), SOURCE)
    for outcome in outcomes:
        check_outcome(outcome)
        assert not isinstance(outcome, Classified), (doc, orjson.loads(outcome.value))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(autopilot() | other_graph_type() | export_success())
def test_records_that_say_what_they_are_are_skipped_not_dead_lettered(
        doc: dict[str, Any]) -> None:
    # The deciding field alone makes the record readable: noise cannot turn it into a dead
    # letter, so the skip is counted under its reason.
    (outcome,) = classify_message(orjson.dumps(doc), SOURCE)
    assert isinstance(outcome, Skipped), outcome
    assert outcome.reason in ("success", "in_progress", "not_enrollment")


def test_a_report_row_with_a_stray_autopilot_field_is_still_a_report_row() -> None:
    # Found by the property above: an Autopilot status beside a report column made the row an
    # Autopilot failure.
    outcomes = classify_message(orjson.dumps({"deviceSetupStatus": 3, "EnrollmentActivityId": "x"}),
                                SOURCE)
    assert [o.__class__ for o in outcomes] == [Skipped], outcomes
