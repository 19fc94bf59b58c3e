"""Graph events and report rows for tests, with the field names and types Graph's reference
documents for enrollmentTroubleshootingEvent, deviceManagementAutopilotEvent and the
EnrollmentActivity report (served by tests/graph_fake.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any


def enrollment_activity_row(n: int, when: dt.datetime) -> dict[str, str]:
    """A row of the EnrollmentActivity report with its documented columns."""
    failed = n % 2 == 0
    return {"AadDeviceId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"aad-row-{n}")),
            "Context": "Windows enrollment", "DeviceId": f"intune-row-{n % 3}",
            "DeviceName": f"LAPTOP-{n:04d}",
            "EnrollmentActivityId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"activity-{n}")),
            "EnrollmentDateTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "EnrollmentMethod": "Windows automatic enrollment",
            "Failure": 'User not licensed, "Intune"' if failed else "",
            "FailureDetails": "0x80180018" if failed else "",
            "FailureReason": "UserNotLicensed" if failed else "",
            "OS": "Windows", "OSVersion": "10.0.26100.1742", "OwnerType": "Corporate",
            "Remediation": "Assign the user an Intune licence." if failed else "",
            "SerialNumber": f"SN-{n:06d}", "UPN": f"user{n}@contoso.example",
            "UserId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"user-row-{n}"))}


def troubleshooting_event(n: int, when: dt.datetime, *, odata_type: str =
                          "#microsoft.graph.enrollmentTroubleshootingEvent") -> dict[str, Any]:
    """An enrollmentTroubleshootingEvent with the documented fields and types."""
    return {"@odata.type": odata_type, "id": f"ts-{n:05d}-{uuid.uuid5(uuid.NAMESPACE_URL, str(n))}",
            "eventDateTime": when.isoformat().replace("+00:00", "Z"),
            "correlationId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"corr-{n}")),
            "troubleshootingErrorDetails": None, "eventName": None, "additionalInformation": [],
            "managedDeviceIdentifier": f"device-{n % 7}", "operatingSystem": "Windows",
            "osVersion": "10.0.26100.1742", "userId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"u{n}")),
            "deviceId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"aad{n % 7}")),
            "enrollmentType": "windowsAutoEnrollment", "failureCategory": "userValidation",
            "failureReason": "Enrollment failed with error 0x80180018 (MENROLL_E_USERLICENSE)"}


def autopilot_event(n: int, when: dt.datetime, *, state: str = "success") -> dict[str, Any]:
    """A deviceManagementAutopilotEvent with the documented fields and types (durations are
    ISO-8601, negative under clock skew; deploymentState a windowsAutopilotDeploymentState)."""
    failed = state == "failure"
    return {"@odata.type": "#microsoft.graph.deviceManagementAutopilotEvent",
            "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"ap-{n}")),
            "deviceId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"dev-{n % 5}")),
            "userId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"user-{n}")),
            "eventDateTime": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "deviceRegisteredDateTime": (when - dt.timedelta(hours=1)).isoformat(),
            "enrollmentStartDateTime": (when - dt.timedelta(minutes=20)).isoformat(),
            "enrollmentType": "azureADJoinedWithAutopilotProfile",
            "deviceSerialNumber": f"SN{n:06d}", "managedDeviceName": f"DESKTOP-{n:04d}",
            "userPrincipalName": f"user{n}@contoso.example",
            "windowsAutopilotDeploymentProfileDisplayName": "Corporate",
            "enrollmentState": "enrolled" if not failed else "failed",
            "windows10EnrollmentCompletionPageConfigurationDisplayName": "ESP",
            "windows10EnrollmentCompletionPageConfigurationId": str(uuid.uuid5(uuid.NAMESPACE_OID, "esp")),
            "deploymentState": state, "deviceSetupStatus": state, "accountSetupStatus": state,
            "osVersion": "10.0.26100.1742", "deploymentDuration": "PT3M21.5549443S",
            "deploymentTotalDuration": "PT4M1.5284261S", "deviceSetupDuration": "PT2M57.2190107S",
            "accountSetupDuration": "-PT0M2.0507894S",
            "deploymentStartDateTime": (when - dt.timedelta(minutes=4)).isoformat(),
            "deploymentEndDateTime": when.isoformat(),
            "enrollmentFailureDetails": "Device setup failed: 0x80180014" if failed else None,
            "targetedAppCount": 4, "targetedPolicyCount": 9}
