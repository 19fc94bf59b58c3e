"""Category spellings and the precedence rule (worker/classify/normalize.py's docstring)."""

from __future__ import annotations

import pytest

from tests.helpers import classify, one_event
from worker.classify.core import Skipped
from worker.classify.taxonomy import FailureCategory

MEMBERS = list(FailureCategory)


def _snake(name: str) -> str:
    return "".join(f"_{ch}" if ch.isupper() else ch for ch in name)


def spellings(member: FailureCategory) -> list[object]:
    name = member.name
    snake = _snake(name)
    return [name, name[0].upper() + name[1:], snake.upper(), snake.replace("_", "-"),
            snake.replace("_", " "), f"  {name}\t", name.upper(), int(member), str(int(member)),
            f" {int(member)} ", float(int(member))]


@pytest.mark.parametrize("member", MEMBERS, ids=[m.name for m in MEMBERS])
def test_every_member_in_every_spelling(member: FailureCategory) -> None:
    for value in spellings(member):
        event = one_event({"failureCategory": value})
        assert event["failureCategory"] == member.name, value
        assert event["failureCategoryCode"] == int(member)
        assert event["classification"]["evidence"] == "category"
        assert event["classification"]["rule"] == "category-field"
        assert event["remediation"][0]["scope"] == "category"


@pytest.mark.parametrize("value", ["someFutureMember", "unknownFutureValue", 12, -1, 99999,
                                   "12", 3.5, "🙂", "x" * 10_000])
def test_unrecognized_values_are_unknown_not_errors(value: object) -> None:
    event = one_event({"failureCategory": value})
    assert event["failureCategory"] == "unknown"
    assert event["classification"]["rule"] == "unrecognized-category"
    assert event["classification"]["confidence"] == "low"


@pytest.mark.parametrize("value", [None, "", "   ", "Not Available", "N/A"])
def test_absent_category_with_no_reason_is_unknown(value: object) -> None:
    event = one_event({"failureCategory": value, "failureReason": "Something odd happened"})
    assert event["failureCategory"] == "unknown"
    assert event["classification"]["rule"] == "no-evidence"
    assert event["classification"]["rawReason"] == "Something odd happened"


@pytest.mark.parametrize("category", [None, "", "unknown", "Unknown", 0, "Not Available",
                                      "aFutureMember"])
def test_specific_evidence_beats_uninformative_category(category: object) -> None:
    event = one_event({"failureCategory": category, "failureReason": "0x80180018"})
    assert event["failureCategory"] == "userValidation"
    assert event["detailReason"] == "userNotLicensed"
    assert event["classification"]["rule"] == "detail-over-uninformative-category"
    assert event["remediation"][0]["scope"] == "detailReason"
    assert event["remediation"][1]["scope"] == "category"


def test_named_category_kept_when_text_adds_nothing() -> None:
    event = one_event({"failureCategory": "Authentication",
                       "failureReason": "The user could not finish signing in"})
    assert event["failureCategory"] == "authentication"
    assert event["detailReason"] is None
    assert event["classification"]["rule"] == "category-field"


def test_agreeing_signals_keep_the_detail() -> None:
    event = one_event({"failureCategory": "UserValidation", "failureReason": "UserNotLicensed"})
    assert (event["failureCategory"], event["detailReason"]) == ("userValidation", "userNotLicensed")
    assert event["classification"]["rule"] == "category-and-detail-agree"
    assert event["classification"]["confidence"] == "high"


def test_conflict_keeps_the_events_own_category_and_reports_the_detail() -> None:
    event = one_event({"failureCategory": "authorization", "failureReason": "0x80180018"})
    assert event["failureCategory"] == "authorization"
    assert event["detailReason"] is None
    assert event["classification"]["rule"] == "category-over-conflicting-detail"
    assert event["classification"]["confidence"] == "medium"
    assert event["classification"]["conflict"] == {"detailReason": "userNotLicensed",
                                                   "detailCategory": "userValidation"}


def test_detail_with_an_alternative_category_is_not_a_conflict() -> None:
    # 0x80180014 is a platform restriction in Intune, else "device not supported".
    event = one_event({"failureCategory": "DeviceNotSupported", "failureReason": "0x80180014"})
    assert (event["failureCategory"], event["detailReason"]) == ("deviceNotSupported",
                                                                 "platformBlocked")
    assert event["classification"]["rule"] == "category-and-detail-agree"


def test_exact_name_beats_code_beats_phrase() -> None:
    assert one_event({"failureReason": "DeviceCap"})["classification"]["evidence"] == "detail_name"
    mixed = one_event({"failureReason": "device limit hit, error 0x80180018"})
    assert mixed["detailReason"] == "userNotLicensed"


@pytest.mark.parametrize(("text", "detail", "evidence"), [
    ("The user made token request twice", "tokenServiceError", "cue"),  # not 'm|ade token'
    ("Retry after the maintenance window", "accountInMaintenance", "cue"),  # no phrase here
    ("Unlicensed user", "userNotLicensed", "cue"),
    ("No Intune licence assigned", "userNotLicensed", "cue"),
    ("No license assigned", "userNotLicensed", "cue"),
    ("user not licensed for Intune", "userNotLicensed", "phrase"),  # the name, written as prose
    ("Enrollment blocked: device cap reached (15)", "deviceCap", "phrase"),
    ("Blocked because of the Device Cap policy", "deviceCap", "phrase"),  # 'DeviceCap' in prose
    ("ERROR=XPC_TYPE_ERROR;", "appleNetworkError", "phrase"),
    ("ade-token expired", "adeTokenInvalid", "phrase"),
    ("The Knox licence could not be activated on this network", "networkConnectivity", "cue"),
])
def test_phrases_and_cues_match_only_where_a_word_starts(text: str, detail: str,
                                                         evidence: str) -> None:
    event = one_event({"failureReason": text})
    assert event["detailReason"] == detail, text
    assert event["classification"]["evidence"] == evidence, text


def test_second_reason_field_is_consulted_when_the_first_says_nothing() -> None:
    event = one_event({"failureReason": "failed", "errorCode": -2145910760})
    assert event["detailReason"] == "userNotLicensed"
    assert event["classification"]["rawReason"] == "failed"


def test_graph_beta_troubleshooting_details_are_evidence() -> None:
    event = one_event({"failureCategory": "unknown", "troubleshootingErrorDetails": {
        "failure": "Enrollment failed", "failureDetails": "Device cap reached for this user"}})
    assert event["detailReason"] == "deviceCap"


def test_unknown_codes_and_lookalikes_are_not_evidence() -> None:
    for text in ("0x80180099", "80000000", "order 2149056536000", "id a0x80180018b",
                 "build 10.0.2149056536"):
        event = one_event({"failureCategory": "badRequest", "failureReason": text})
        assert event["detailReason"] is None, text
        assert event["classification"]["rule"] == "category-field", text


def test_long_reason_is_scanned_only_at_its_start_and_truncated_in_output() -> None:
    late = "x " * 10_000 + "0x80180018"
    event = one_event({"failureReason": late})
    assert event["failureCategory"] == "unknown"
    assert len(event["classification"]["rawReason"]) == 1024


@pytest.mark.parametrize("row", [
    {"operationName": "Enrollment", "resultType": "Success",
     "properties": {"FailureCategory": "Not Applicable", "FailureReason": "None"}},
    {"operationName": "Enrollment", "resultType": "succeeded", "properties": {}},
    {"OperationName": "Enrollment", "Result": "Success", "Properties": "{}"},
    {"properties": {"FailureCategory": "Not Applicable", "FailureReason": "Unknown"}},
    {"failureCategory": "NotApplicable"},
])
def test_success_rows_are_skipped(row: dict[str, object]) -> None:
    outcomes = classify(row)
    assert outcomes == [Skipped("success", None)]


def test_failed_row_marked_not_applicable_is_still_a_failure() -> None:
    outcomes = classify({"operationName": "Enrollment", "resultType": "Fail",
                         "properties": {"FailureCategory": "Not Applicable",
                                        "FailureReason": "UserAbandonment"}})
    assert outcomes[0].category is FailureCategory.userAbandonment  # type: ignore[union-attr]


def test_rows_about_other_operations_are_skipped() -> None:
    outcomes = classify({"operationName": "Compliance", "resultType": "Fail", "properties": {}})
    assert outcomes == [Skipped("not_enrollment", None)]
