"""One realistic example of each input shape, and the outputs the core makes of them.

Used for the ``examples`` in ``schemas/`` and in the README, so documentation shows real
output rather than hand-written JSON that could drift from the code.
"""

from __future__ import annotations

from typing import Any

import orjson

from worker.classify.core import Classified, DeadLetter, Source, classify_message

GRAPH_EVENT: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.enrollmentTroubleshootingEvent",
    "id": "5f0c7a4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f",
    "eventDateTime": "2026-11-02T09:15:27Z",
    "correlationId": "0b8f2a9e-4c1d-4e7a-8b3c-2d1e0f9a8b7c",
    "managedDeviceIdentifier": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "operatingSystem": "Windows",
    "osVersion": "10.0.26100.1742",
    "userId": "3c2b1a09-8f7e-4d6c-5b4a-392817161514",
    "deviceId": "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4",
    "enrollmentType": "windowsAutoEnrollment",
    "failureCategory": "unknown",
    "failureReason": "Enrollment failed with error 0x80180018 (MENROLL_E_USERLICENSE)",
}

LOG_ROW: dict[str, Any] = {
    "time": "2026-11-02T09:20:11.5120000Z",
    "tenantId": "72f988bf-0000-4000-8000-2d7cd011db47",
    "category": "OperationalLogs",
    "operationName": "Enrollment",
    "resultType": "Fail",
    "properties": {
        "MessageId": "8c5c9b0e-2f1a-4d3e-9b8a-7f6e5d4c3b2a",
        "IntuneDeviceId": "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
        "AADDeviceId": "c3d4e5f6-a7b8-4c9d-0e1f-2a3b4c5d6e7f",
        "IntuneUserId": "d4e5f6a7-b8c9-4d0e-1f2a-3b4c5d6e7f80",
        "AADTenantId": "72f988bf-0000-4000-8000-2d7cd011db47",
        "OperationalLogCategory": "DeviceEnrollment",
        "Os": "iOS",
        "OsVersion": "17.5.1",
        "EnrollmentType": "AppleBulkWithUser",
        "EnrollmentTimeUTC": "2026-11-02T09:19:58Z",
        "FailureCategory": "EnrollmentRestrictionsEnforced",
        "FailureReason": "DeviceCap",
        "ScenarioName": "Microsoft.Management.Services.Diagnostics.SLAEvents.EnrollmentSLAEvent",
    },
}

ENVELOPE: dict[str, Any] = {"records": [
    LOG_ROW,
    {**LOG_ROW, "resultType": "Success",
     "properties": {**LOG_ROW["properties"], "MessageId": "9d6d0c1f-3a2b-4e4f-8c9b-8a7f6e5d4c3b",
                    "FailureCategory": "Not Applicable", "FailureReason": "None"}},
]}

GRAPH_PAGE: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/troubleshootingEvents",
    "value": [GRAPH_EVENT],
}

AUTOPILOT_EVENT: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.deviceManagementAutopilotEvent",
    "id": "e3a1c2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b",
    "eventDateTime": "2026-11-02T10:02:41Z",
    "deviceId": "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
    "deviceSerialNumber": "PF3XK2LM",
    "enrollmentType": "azureADJoinedWithAutopilotProfile",
    "userPrincipalName": "ana.lopez@contoso.example",
    "osVersion": "10.0.26100.2314",
    "managedDeviceName": "CONTOSO-PF3XK2LM",
    "enrollmentState": "enrolled",
    "deploymentState": "failure",
    "deviceSetupStatus": "failure",
    "accountSetupStatus": "notAttempted",
    "enrollmentFailureDetails": "Enrollment failed with error 0x80180014",
    "windowsAutopilotDeploymentProfileDisplayName": "Contoso user-driven",
    "windows10EnrollmentCompletionPageConfigurationDisplayName": "Contoso ESP (block on apps)",
    "deploymentDuration": "PT41M12S",
}
AUTOPILOT_SUCCESS: dict[str, Any] = {
    **AUTOPILOT_EVENT, "id": "e3a1c2b4-5d6e-4f70-8a9b-0c1d2e3f4a5c", "deploymentState": "success",
    "deviceSetupStatus": "success", "accountSetupStatus": "success",
    "enrollmentFailureDetails": None}

ESP_ROW: dict[str, Any] = {
    **LOG_ROW, "operationName": "ESPEnrollment", "resultType": "Fail",
    "properties": {
        "MessageId": "7b4b8a9d-1e0f-4c2d-8a7b-6e5d4c3b2a19", "DeviceName": "CONTOSO-PF3XK2LM",
        "DeviceId": "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9", "IsAutopilot": "True",
        "Status": "Failed", "TimeDiff": "3600", "DidUserReachDesktop": "False",
        "ESPPolicyName": "Contoso ESP (block on apps)", "FailureReason": "Timeout",
        "EnrollmentTypeMessage": "AutopilotAzureADJoin", "Version": "1.0",
        "AADTenantId": "72f988bf-0000-4000-8000-2d7cd011db47"}}

EXPORT_ROW: dict[str, Any] = {
    "EnrollmentActivityId": "5c2d1e0f-9a8b-4c7d-8e6f-5a4b3c2d1e0f",
    "EnrollmentDateTime": "2026-11-02T08:44:10Z", "DeviceName": "iPad-Sales-14",
    "DeviceId": "", "AadDeviceId": "", "SerialNumber": "DMPX81QKLMN2",
    "EnrollmentMethod": "3", "EnrollmentMethod_loc": "Automated Device Enrollment",
    "OS": "2", "OS_loc": "iOS/iPadOS", "OSVersion": "17.6.1", "OwnerType": "1",
    "OwnerType_loc": "Corporate", "Failure": "6", "Failure_loc": "Device cap reached",
    "FailureReason": "9", "FailureReason_loc": "Enrollment restrictions enforced",
    "FailureDetails": "The user has enrolled the maximum number of devices allowed.",
    "Remediation": "Remove a device the user no longer uses, or raise the device limit in the "
                   "enrollment restriction: https://learn.microsoft.com/mem/intune/enrollment/"
                   "enrollment-restrictions-set",
    "UPN": "sam.green@contoso.example", "UserId": "0d9c8b7a-6f5e-4d3c-2b1a-09f8e7d6c5b4",
    "Context": "",
}

FLAT_EVENT: dict[str, Any] = {"failureCategory": "USER_ABANDONMENT"}

UNREADABLE: bytes = b'{"failureCategory": "authentication", "failureReason": '


def _outputs(raw: bytes, kind: type[Classified] | type[DeadLetter]) -> list[Any]:
    outcomes = classify_message(raw, Source("intune-enrollment-raw", 0, 42))
    return [orjson.loads(o.value) for o in outcomes if isinstance(o, kind)]


EXAMPLES: dict[str, list[Any]] = {
    "classified-event": _outputs(orjson.dumps(GRAPH_EVENT), Classified)
    + _outputs(orjson.dumps(LOG_ROW), Classified)
    + _outputs(orjson.dumps(AUTOPILOT_EVENT), Classified)
    + _outputs(orjson.dumps(ESP_ROW), Classified)
    + _outputs(orjson.dumps(EXPORT_ROW), Classified),
    "dead-letter": _outputs(UNREADABLE, DeadLetter),
    "input-graph-event": [GRAPH_EVENT],
    "input-graph-page": [GRAPH_PAGE],
    "input-autopilot-event": [AUTOPILOT_EVENT, AUTOPILOT_SUCCESS],
    "input-report-export-row": [EXPORT_ROW],
    "input-diagnostic-log-row": [LOG_ROW, {**LOG_ROW, "properties": orjson.dumps(
        LOG_ROW["properties"]).decode()}, ESP_ROW],
    "input-event-hubs-envelope": [ENVELOPE],
    "input-flat-event": [FLAT_EVENT, {"failureReason": "0x80180014"}, {"failureCategory": 9}],
}
