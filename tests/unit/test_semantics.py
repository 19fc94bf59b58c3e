"""Which records are enrollment failures at all (issue 12): event types, Autopilot deployment
states, diagnostic-log operations and result words, ESP rows, report-export rows, and
Microsoft's own remediation. One table per bullet; every row one case."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.helpers import classify, one_event
from worker.classify.core import Classified, DeadLetter, Skipped
from worker.contracts.examples import AUTOPILOT_EVENT, ESP_ROW, EXPORT_ROW, GRAPH_EVENT, LOG_ROW

GRAPH = "#microsoft.graph."


def skipped(value: Any) -> Skipped:
    outcomes = classify(value)
    assert len(outcomes) == 1 and isinstance(outcomes[0], Skipped), outcomes
    return outcomes[0]


# ------------------------------------------------------------------ 1. event types
@pytest.mark.parametrize(("odata_type", "label"), [
    (GRAPH + "deviceManagementTroubleshootingEvent", "deviceManagementTroubleshootingEvent"),
    (GRAPH + "mobileAppTroubleshootingEvent", "mobileAppTroubleshootingEvent"),
    ("microsoft.graph.mobileAppTroubleshootingEvent", "mobileAppTroubleshootingEvent"),
    (GRAPH + "appLogCollectionRequest", "other"),
    (GRAPH + "someFutureTroubleshootingEvent", "other"),
    ("", "other"),
    ("x" * 10_000, "other"),
])
def test_other_graph_types_are_not_enrollment_failures_even_with_failure_fields(
        odata_type: str, label: str) -> None:
    event = {**GRAPH_EVENT, "@odata.type": odata_type}  # carries failureCategory/Reason
    skip = skipped(event)
    assert (skip.reason, skip.event_type) == ("not_enrollment", label)


def test_the_base_type_without_failure_fields_is_not_an_unknown_failure() -> None:
    skip = skipped({"@odata.type": GRAPH + "deviceManagementTroubleshootingEvent",
                    "id": "1", "eventDateTime": "2026-11-02T09:15:27Z", "correlationId": "c"})
    assert skip.reason == "not_enrollment"
    # measured like any other skipped Graph record (event-age histogram, shape label)
    assert (skip.shape_label, skip.event_time) == ("graph", 1793610927.0)  # 09:15:27Z


@pytest.mark.parametrize("odata_type", [
    GRAPH + "enrollmentTroubleshootingEvent", "microsoft.graph.enrollmentTroubleshootingEvent",
    GRAPH + "EnrollmentTroubleshootingEvent"])
def test_enrollment_troubleshooting_events_are_failures(odata_type: str) -> None:
    event = one_event({**GRAPH_EVENT, "@odata.type": odata_type})
    assert event["failureCategory"] == "userValidation"
    assert event["source"]["shape"] == "graphEvent"


def test_a_page_mixing_event_types_publishes_only_the_enrollment_failures() -> None:
    page = {"@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/"
            "troubleshootingEvents", "value": [
                GRAPH_EVENT,
                {**GRAPH_EVENT, "@odata.type": GRAPH + "mobileAppTroubleshootingEvent"},
                {"@odata.type": GRAPH + "deviceManagementTroubleshootingEvent", "id": "b"}]}
    outcomes = classify(page)
    assert [type(o) for o in outcomes] == [Classified, Skipped, Skipped]
    assert [o.index for o in outcomes[1:] if isinstance(o, Skipped)] == [1, 2]


@pytest.mark.parametrize("odata_type", [42, ["x"], {"a": 1}, True])
def test_a_type_that_is_not_a_string_is_dead_lettered(odata_type: object) -> None:
    outcomes = classify({**GRAPH_EVENT, "@odata.type": odata_type})
    assert isinstance(outcomes[0], DeadLetter) and outcomes[0].error_class == "wrong_type"


def test_without_odata_type_todays_shape_detection_stays() -> None:
    event = {k: v for k, v in GRAPH_EVENT.items() if k != "@odata.type"}
    assert one_event(event)["source"]["shape"] == "graphEvent"
    assert one_event({"failureCategory": "badRequest"})["source"]["shape"] == "flat"


# ------------------------------------------------------------------ 1. Autopilot events
def autopilot(**fields: object) -> dict[str, Any]:
    return {**AUTOPILOT_EVENT, **fields}


@pytest.mark.parametrize(("state", "reason"), [
    ("success", "success"), ("Success", "success"), ("SUCCESS", "success"), (1, "success"),
    ("successOnRetry", "success"), (7, "success"), ("successWithTimeout", "success"),
    ("inProgress", "in_progress"), ("in_progress", "in_progress"), (2, "in_progress"),
    ("notAttempted", "not_enrollment"), ("disabled", "not_enrollment"), (6, "not_enrollment"),
])
def test_autopilot_attempts_that_did_not_fail_are_skipped(state: object, reason: str) -> None:
    # The phases and details say failure: the overall deploymentState decides.
    skip = skipped(autopilot(deploymentState=state))
    assert (skip.reason, skip.event_type) == (reason, "deviceManagementAutopilotEvent")


@pytest.mark.parametrize(("fields", "phase"), [
    ({"deploymentState": "failure"}, "deviceSetup"),
    ({"deploymentState": 3}, "deviceSetup"),
    ({"deploymentState": "Failure", "deviceSetupStatus": "success",
      "accountSetupStatus": "failure"}, "accountSetup"),
    ({"deploymentState": "failure", "enrollmentState": "failed"}, "enrollment"),
    ({"deploymentState": "failure", "deviceSetupStatus": None, "accountSetupStatus": None},
     None),
    # deploymentState silent: a failed phase decides
    ({"deploymentState": "unknown", "deviceSetupStatus": "failure"}, "deviceSetup"),
    ({"deploymentState": None, "enrollmentState": "blocked", "deviceSetupStatus": None},
     "enrollment"),
])
def test_failed_autopilot_deployments_are_failures_with_their_phase(
        fields: dict[str, object], phase: str | None) -> None:
    event = one_event(autopilot(**fields))
    assert event["deployment"]["phase"] == phase
    assert event["source"]["shape"] == "autopilotEvent"
    assert event["deployment"]["autopilotProfile"] == "Contoso user-driven"
    assert event["device"]["operatingSystem"] == "Windows"  # Autopilot is Windows only


def test_autopilot_failure_reason_comes_from_enrollment_failure_details() -> None:
    event = one_event(autopilot())  # "Enrollment failed with error 0x80180014"
    assert (event["failureCategory"], event["detailReason"]) == (
        "enrollmentRestrictionsEnforced", "platformBlocked")
    assert event["device"]["intuneDeviceId"] == AUTOPILOT_EVENT["deviceId"]


@pytest.mark.parametrize("fields", [
    {"deploymentState": "unknown", "deviceSetupStatus": "inProgress",
     "accountSetupStatus": "notAttempted", "enrollmentState": "enrolled"},
    {"deploymentState": "someFutureState", "deviceSetupStatus": "success",
     "accountSetupStatus": "unknown", "enrollmentState": "enrolled"},
    {"deploymentState": None, "deviceSetupStatus": None, "accountSetupStatus": None,
     "enrollmentState": None},
    {"deploymentState": {"nested": 1}, "deviceSetupStatus": [1], "accountSetupStatus": 99,
     "enrollmentState": 3.5},
])
def test_autopilot_without_any_outcome_is_in_progress_never_a_failure(
        fields: dict[str, object]) -> None:
    assert skipped(autopilot(**fields)).reason == "in_progress"


def test_autopilot_events_are_told_by_their_fields_without_odata_type() -> None:
    success = {k: v for k, v in autopilot(deploymentState="success").items()
               if k != "@odata.type"}
    assert skipped(success).reason == "success"
    failed = {k: v for k, v in AUTOPILOT_EVENT.items() if k != "@odata.type"}
    assert one_event(failed)["source"]["shape"] == "autopilotEvent"


# ------------------------------------------------------------------ 2. diagnostic-log rows
def row(operation: object = "Enrollment", result: object = "Fail", **props: object
        ) -> dict[str, Any]:
    out: dict[str, Any] = {**LOG_ROW, "operationName": operation, "resultType": result,
                           "properties": {**LOG_ROW["properties"], **props}}
    if result is None:
        del out["resultType"]
    return out


@pytest.mark.parametrize("result", ["Success", "success", "SUCCESS", "Succeeded", "OK"])
def test_enrollment_rows_with_a_success_result_are_skipped(result: str) -> None:
    assert skipped(row(result=result)).reason == "success"


@pytest.mark.parametrize("result", ["Fail", "fail", "FAILURE", "Failure", "failed", "Failed",
                                    "ERROR"])
def test_enrollment_rows_with_a_failure_result_are_failures(result: str) -> None:
    assert one_event(row(result=result))["failureCategory"] == "enrollmentRestrictionsEnforced"


@pytest.mark.parametrize("result", ["None", "none", "NONE", None, "", "SomeFutureWord"])
def test_no_result_word_lets_not_applicable_mean_success(result: str | None) -> None:
    assert skipped(row(result=result, FailureCategory="Not Applicable",
                       FailureReason="Unknown")).reason == "success"
    assert one_event(row(result=result))["failureCategory"] == "enrollmentRestrictionsEnforced"


@pytest.mark.parametrize("operation", ["Compliance", "compliance", "DeviceCompliance",
                                       "SomethingElse", "ESPEnrollmentX"])
def test_other_operations_are_not_enrollments(operation: str) -> None:
    compliance = row(operation=operation, result="None", AlertType="NonCompliant",
                     OperationalLogCategory="DeviceCompliance")
    assert skipped(compliance).reason == "not_enrollment"
    assert skipped(row(operation=operation, result="Fail")).reason == "not_enrollment"


@pytest.mark.parametrize("operation", ["Enrollment", "enrollment", "ESPEnrollment",
                                       "espenrollment", "ESP Enrollment"])
def test_enrollment_and_esp_enrollment_rows_are_enrollments(operation: str) -> None:
    assert one_event(row(operation=operation))["failureCategory"] == (
        "enrollmentRestrictionsEnforced")


# ------------------------------------------------------------------ 2. ESP rows
def esp(result: object = "Fail", **props: object) -> dict[str, Any]:
    out = {**ESP_ROW, "resultType": result, "properties": {**ESP_ROW["properties"], **props}}
    if result is None:
        del out["resultType"]
    return out


@pytest.mark.parametrize("reason", ["Timeout", "timeout", "TimedOut", "Timed out"])
def test_a_plain_timeout_on_an_esp_row_is_client_disconnected(reason: str) -> None:
    event = one_event(esp(FailureReason=reason))
    assert (event["failureCategory"], event["detailReason"]) == ("clientDisconnected",
                                                                 "espTimeout")
    assert event["source"]["shape"] == "espLog"


def test_esp_row_facts_are_in_the_output() -> None:
    event = one_event(esp())
    assert event["deployment"] == {
        "phase": "enrollmentStatusPage", "state": "Failed", "autopilotProfile": None,
        "espProfile": "Contoso ESP (block on apps)", "isAutopilot": True,
        "userReachedDesktop": False}
    assert event["device"]["intuneDeviceId"] == ESP_ROW["properties"]["DeviceId"]


@pytest.mark.parametrize(("status", "reason"), [
    ("Completed", "success"), ("completed", "success"), ("Success", "success"),
    ("InProgress", "in_progress"), ("In progress", "in_progress"), ("Pending", "in_progress"),
])
def test_esp_rows_without_a_result_word_are_decided_by_status(status: str, reason: str) -> None:
    assert skipped(esp(result=None, Status=status)).reason == reason


@pytest.mark.parametrize("status", ["Failed", "failure", "Timeout", "Error"])
def test_esp_rows_with_a_failed_status_are_failures(status: str) -> None:
    event = one_event(esp(result=None, Status=status))
    assert event["failureCategory"] == "clientDisconnected"  # FailureReason "Timeout"


def test_esp_success_result_wins_over_anything_in_its_properties() -> None:
    assert skipped(esp(result="Success", Status="Completed")).reason == "success"


def test_esp_flags_read_as_strings_or_booleans() -> None:
    event = one_event(esp(IsAutopilot=False, DidUserReachDesktop="TRUE"))
    assert (event["deployment"]["isAutopilot"], event["deployment"]["userReachedDesktop"]) == (
        False, True)
    event = one_event(esp(IsAutopilot="maybe", DidUserReachDesktop=None))
    assert (event["deployment"]["isAutopilot"], event["deployment"]["userReachedDesktop"]) == (
        None, None)


# ------------------------------------------------------------------ 3. report-export rows
def export(**columns: object) -> dict[str, Any]:
    return {**EXPORT_ROW, **columns}


def test_export_rows_use_the_localized_text_of_enum_columns() -> None:
    event = one_event(EXPORT_ROW)
    assert (event["failureCategory"], event["detailReason"]) == (
        "enrollmentRestrictionsEnforced", "deviceCap")
    assert event["device"]["operatingSystem"] == "iOS/iPadOS"
    assert event["enrollment"]["enrollmentType"] == "Automated Device Enrollment"
    assert event["id"] == EXPORT_ROW["EnrollmentActivityId"]
    assert event["eventTime"] == EXPORT_ROW["EnrollmentDateTime"]
    assert event["source"]["shape"] == "reportExport"


@pytest.mark.parametrize("columns", [
    {"Failure": "", "Failure_loc": "", "FailureReason": "", "FailureReason_loc": "",
     "FailureDetails": "", "Remediation": ""},
    {"Failure": "0", "Failure_loc": "None", "FailureReason": "0",
     "FailureReason_loc": "Not Applicable", "FailureDetails": "", "Remediation": ""},
    {"Failure": "0", "Failure_loc": "", "FailureReason": "0", "FailureReason_loc": "",
     "FailureDetails": "-", "Remediation": ""},
    {"Status": "Completed", "Failure": "6"},
])
def test_enrollment_activity_rows_without_failure_are_successes(columns: dict[str, str]) -> None:
    skip = skipped(export(**columns))
    assert (skip.reason, skip.event_type) == ("success", "EnrollmentActivity")


def test_enrollment_activity_row_with_only_a_failure_code_is_a_failure() -> None:
    event = one_event(export(Failure="6", Failure_loc="", FailureReason="", FailureReason_loc="",
                             FailureDetails="", Remediation=""))
    assert event["failureCategory"] == "unknown"


def test_device_enrollment_failures_rows_are_always_failures() -> None:
    row = {"FailureGuid": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
           "EnrollmentFailureDateTime": "2026-11-02T07:00:00Z", "EnrollmentMethod": "",
           "FailureReason": "", "OS": "", "OSVersion": "", "UPN": "", "UserId": ""}
    event = one_event(row)
    assert (event["failureCategory"], event["id"]) == ("unknown", row["FailureGuid"])
    event = one_event({**row, "FailureReason": "7", "FailureReason_loc": "User not licensed"})
    assert event["detailReason"] == "userNotLicensed"


# ------------------------------------------------------------------ 4. Microsoft's remediation
def ms_details(**fields: object) -> dict[str, Any]:
    base = {"context": "Device enrollment", "failure": "Enrollment failed.",
            "failureDetails": "See details.", "remediation": "Assign an Intune licence.",
            "resources": [{"text": "Assign licences", "link": "https://learn.microsoft.com/l"}]}
    return {**GRAPH_EVENT, "troubleshootingErrorDetails": {**base, **fields}}


def test_microsoft_remediation_comes_first_and_ours_follow() -> None:
    event = one_event(ms_details())
    first, *ours = event["remediation"]
    assert first == {"scope": "microsoft", "summary": "Assign an Intune licence.",
                     "steps": ["Assign licences: https://learn.microsoft.com/l"],
                     "docUrl": "https://learn.microsoft.com/l"}
    assert [h["scope"] for h in ours] == ["detailReason", "category"]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"remediation": None, "resources": []}, None),
    ({"remediation": "", "resources": None}, None),
    ({"remediation": 42, "resources": "x"}, None),
    ({"remediation": "  Do   this  ", "resources": []}, ("Do this", [], None)),
    ({"remediation": "R", "resources": [{"text": "js", "link": "javascript:alert(1)"},
                                        {"link": "ftp://x"}, 7, {"text": "ok"}]},
     ("R", [], None)),
    ({"remediation": None, "resources": [{"text": None, "link": "https://a.example/b"}]},
     ("Microsoft's documentation for this failure (links below).",
      ["https://a.example/b: https://a.example/b"], "https://a.example/b")),
])
def test_microsoft_remediation_is_bounded_and_only_https_links(
        fields: dict[str, object], expected: tuple[str, list[str], str | None] | None) -> None:
    hints = one_event(ms_details(**fields))["remediation"]
    if expected is None:
        assert hints[0]["scope"] != "microsoft"
    else:
        assert (hints[0]["scope"], hints[0]["summary"], hints[0]["steps"],
                hints[0]["docUrl"]) == ("microsoft", *expected)


def test_microsoft_text_is_length_bounded() -> None:
    links = [{"text": "t" * 5000, "link": f"https://learn.microsoft.com/{i}"} for i in range(50)]
    hint = one_event(ms_details(remediation="word " * 10_000, resources=links))["remediation"][0]
    assert len(hint["summary"]) <= 1024 and len(hint["steps"]) == 5
    assert all(len(step) <= 256 + 2 + 40 for step in hint["steps"])


def test_microsoft_failure_text_is_evidence() -> None:
    event = one_event({**ms_details(failure="", failureDetails="",
                                    remediation="Error 0x80180018: assign a licence"),
                       "failureReason": "Enrollment failed", "failureCategory": "unknown"})
    assert event["detailReason"] == "userNotLicensed"


def test_export_remediation_column_is_microsofts_hint() -> None:
    hint = one_event(EXPORT_ROW)["remediation"][0]
    assert hint["scope"] == "microsoft"
    assert hint["summary"].startswith("Remove a device the user no longer uses")
    assert hint["docUrl"] == ("https://learn.microsoft.com/mem/intune/enrollment/"
                              "enrollment-restrictions-set")


def test_pseudonymised_output_keeps_microsofts_hint() -> None:
    from worker.classify.core import CoreOptions, Source, classify_message

    outcomes = classify_message(orjson.dumps(ms_details()), Source("t"),
                                CoreOptions(pseudonymize_key=b"k"))
    assert isinstance(outcomes[0], Classified)
    assert orjson.loads(outcomes[0].value)["remediation"][0]["scope"] == "microsoft"
