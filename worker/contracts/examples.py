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

FLAT_EVENT: dict[str, Any] = {"failureCategory": "USER_ABANDONMENT"}

UNREADABLE: bytes = b'{"failureCategory": "authentication", "failureReason": '


def _outputs(raw: bytes, kind: type[Classified] | type[DeadLetter]) -> list[Any]:
    outcomes = classify_message(raw, Source("intune-enrollment-raw", 0, 42))
    return [orjson.loads(o.value) for o in outcomes if isinstance(o, kind)]


EXAMPLES: dict[str, list[Any]] = {
    "classified-event": _outputs(orjson.dumps(GRAPH_EVENT), Classified)
    + _outputs(orjson.dumps(LOG_ROW), Classified),
    "dead-letter": _outputs(UNREADABLE, DeadLetter),
    "input-graph-event": [GRAPH_EVENT],
    "input-graph-page": [GRAPH_PAGE],
    "input-diagnostic-log-row": [LOG_ROW, {**LOG_ROW, "properties": orjson.dumps(
        LOG_ROW["properties"]).decode()}],
    "input-event-hubs-envelope": [ENVELOPE],
    "input-flat-event": [FLAT_EVENT, {"failureReason": "0x80180014"}, {"failureCategory": 9}],
}
