"""Pydantic contracts for what the worker reads and writes, and the JSON Schemas made from them.

The hot path (:mod:`worker.classify.core`) builds plain dicts and encodes them with orjson, because
building a pydantic model per event would cost more than classifying it. These models are
the reviewed contract instead: ``schemas/`` is generated from them, and the tests validate
every output the core produces against them.

Input models are lenient (unknown fields allowed, everything optional) since they describe
what arrives; output models are strict (``extra="forbid"``) since they describe what we
promise.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from worker.classify.decode import ERROR_CLASSES
from worker.classify.taxonomy import FailureCategory

CategoryName = Literal[
    "unknown", "authentication", "authorization", "accountValidation", "userValidation",
    "deviceNotSupported", "inMaintenance", "badRequest", "featureNotSupported",
    "enrollmentRestrictionsEnforced", "clientDisconnected", "userAbandonment",
]
if get_args(CategoryName) != tuple(c.name for c in FailureCategory):
    raise ImportError("models.CategoryName is out of step with taxonomy.FailureCategory")

ErrorClassName = Literal[
    "empty", "too_large", "not_utf8", "not_json", "too_deep", "not_object", "wrong_type",
    "bad_nested_json", "too_many_records", "output_too_large", "internal_error",
]
if set(get_args(ErrorClassName)) != {*ERROR_CLASSES, "internal_error"}:
    raise ImportError("models.ErrorClassName is out of step with decode.ERROR_CLASSES")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# ---------------------------------------------------------------- output: classified event
class RemediationHint(_Out):
    scope: Literal["microsoft", "detailReason", "category"] = Field(
        description="'microsoft': the event's own remediation from Microsoft (Graph "
        "troubleshootingErrorDetails, the export's Remediation column), first and bounded; "
        "otherwise the classifier's hint for the detail reason or the category.")
    summary: str = Field(min_length=1, description="One sentence an admin can act on.")
    steps: list[str] = Field(description="Concrete steps, most useful first.")
    docUrl: str | None = Field(description="Microsoft documentation for this failure.")


class Conflict(_Out):
    detailReason: str
    detailCategory: CategoryName


class ClassificationInfo(_Out):
    evidence: Literal["category", "detail_name", "hresult", "phrase", "code_family", "cue",
                      "none"] = Field(
        description="Which input decided the category.")
    rule: Literal[
        "category-field", "category-and-detail-agree", "detail-over-uninformative-category",
        "category-over-conflicting-detail", "unrecognized-category", "no-evidence",
    ] = Field(description="Which precedence rule applied (see worker/classify/normalize.py).")
    confidence: Literal["high", "medium", "low"]
    matched: str | None = Field(description="The code, name or phrase that matched, if any.")
    rawCategory: str | int | None = Field(description="The category value as received.")
    rawReason: str | None = Field(description="The reason text as received (first 1024 chars).")
    conflict: Conflict | None = Field(
        description="A specific detail that disagreed with the event's own category.")
    classifierVersion: str


class DeviceInfo(_Out):
    intuneDeviceId: str | None
    entraDeviceId: str | None
    operatingSystem: str | None = Field(
        description="Canonical OS name when known, else as received.")
    osVersion: str | None


class UserInfo(_Out):
    userId: str | None
    userPrincipalName: str | None


class EnrollmentInfo(_Out):
    enrollmentType: str | None = Field(
        description="Graph deviceEnrollmentType spelling when known, else as received.")
    tenantId: str | None
    correlationId: str | None


class DeploymentInfo(_Out):
    """Autopilot events and ESP rows: where the deployment failed and with which profiles."""

    phase: Literal["enrollment", "deviceSetup", "accountSetup", "enrollmentStatusPage"] | None = (
        Field(description="The phase that failed: Autopilot's first failed phase "
              "(enrollmentState, deviceSetupStatus, accountSetupStatus), or the Enrollment "
              "Status Page for an ESPEnrollment log row; null when the event does not say."))
    state: str | None = Field(description="deploymentState (Autopilot) or Status (ESP row).")
    autopilotProfile: str | None
    espProfile: str | None = Field(description="The Enrollment Status Page profile's name.")
    isAutopilot: bool | None
    userReachedDesktop: bool | None


class SourceInfo(_Out):
    shape: Literal["graphEvent", "autopilotEvent", "diagnosticLog", "espLog", "reportExport",
                   "flat"]
    topic: str
    partition: int
    offset: int
    recordIndex: int | None = Field(description="Position inside an envelope or page.")


class ClassifiedEvent(_Out):
    """One enrollment failure, classified. Published to the output topic."""

    schemaVersion: Literal[1]
    id: str = Field(min_length=1, description="The source's own id (idSource event), else a "
                    "hash of the event's identifying fields (fields: event time with device, "
                    "user or correlation id), else a hash of its source coordinates (source: "
                    "topic, partition, offset, record index).")
    idSource: Literal["event", "fields", "source"]
    eventTime: str | None
    failureCategory: CategoryName = Field(description="Graph deviceEnrollmentFailureReason member.")
    failureCategoryCode: int = Field(ge=0, le=11)
    failureCategoryDescription: str
    detailReason: str | None
    detailReasonDescription: str | None
    classification: ClassificationInfo
    device: DeviceInfo
    user: UserInfo
    enrollment: EnrollmentInfo
    deployment: DeploymentInfo | None = Field(
        description="Set for Autopilot deployment events and ESP log rows only.")
    source: SourceInfo
    remediation: list[RemediationHint] = Field(
        min_length=1, description="Microsoft's own remediation first when the event has one, "
        "then the detail reason's hint, then the category's.")


# ---------------------------------------------------------------- output: dead letter
class DeadLetterSource(_Out):
    topic: str
    partition: int
    offset: int
    recordIndex: int | None


class DeadLetterRecord(_Out):
    """Input the worker could not read, with the original bytes. Published to the DLQ topic."""

    schemaVersion: Literal[1]
    id: str
    errorClass: ErrorClassName
    errorMessage: str
    source: DeadLetterSource
    payloadScope: Literal["message", "record"] = Field(
        description="'record': the one bad record of an envelope or page, re-encoded as JSON.")
    payload: str | None = Field(description="The original bytes (UTF-8 text or base64).")
    payloadEncoding: Literal["utf-8", "base64", "none"]
    payloadBytes: int = Field(ge=0)
    payloadSha256: str = Field(pattern="^[0-9a-f]{64}$")
    payloadTruncated: bool = Field(
        description="True when the payload was cut to the dead-letter size limit.")
    classifierVersion: str


# ---------------------------------------------------------------- inputs
class GraphEnrollmentEvent(_In):
    """Graph enrollmentTroubleshootingEvent (v1.0 and beta)."""

    odata_type: str | None = Field(None, alias="@odata.type")
    id: str | None = None
    eventDateTime: str | None = None
    correlationId: str | None = None
    managedDeviceIdentifier: str | None = None
    operatingSystem: str | None = None
    osVersion: str | None = None
    userId: str | None = None
    deviceId: str | None = None
    enrollmentType: str | None = None
    failureCategory: str | int | None = None
    failureReason: str | None = None
    troubleshootingErrorDetails: dict[str, Any] | None = None


class AutopilotEvent(_In):
    """Graph beta deviceManagementAutopilotEvent: one deployment attempt, failed or not."""

    odata_type: str | None = Field(None, alias="@odata.type")
    id: str | None = None
    eventDateTime: str | None = None
    deviceId: str | None = None
    userPrincipalName: str | None = None
    osVersion: str | None = None
    enrollmentType: str | None = None
    enrollmentState: str | None = None
    deploymentState: str | int | None = None
    deviceSetupStatus: str | int | None = None
    accountSetupStatus: str | int | None = None
    enrollmentFailureDetails: str | None = None
    windowsAutopilotDeploymentProfileDisplayName: str | None = None
    windows10EnrollmentCompletionPageConfigurationDisplayName: str | None = None


class ReportExportRow(_In):
    """One row of an EnrollmentActivity or DeviceEnrollmentFailures report export, as an
    object (CSV gives every value as text); enum columns also as ``<Column>_loc`` text."""

    EnrollmentActivityId: str | None = None
    FailureGuid: str | None = None
    EnrollmentDateTime: str | None = None
    EnrollmentFailureDateTime: str | None = None
    DeviceId: str | None = None
    AadDeviceId: str | None = None
    EnrollmentMethod: str | int | None = None
    OS: str | int | None = None
    OSVersion: str | None = None
    Failure: str | int | None = None
    FailureReason: str | int | None = None
    FailureDetails: str | None = None
    Remediation: str | None = None
    UPN: str | None = None
    UserId: str | None = None


class GraphPage(_In):
    """A Graph collection page: one output per element of ``value``."""

    odata_context: str | None = Field(None, alias="@odata.context")
    value: list[GraphEnrollmentEvent | AutopilotEvent]


class DiagnosticLogProperties(_In):
    MessageId: str | None = None
    IntuneDeviceId: str | None = None
    AADDeviceId: str | None = None
    IntuneUserId: str | None = None
    AADTenantId: str | None = None
    Os: str | None = None
    OsVersion: str | None = None
    EnrollmentType: str | None = None
    EnrollmentTimeUTC: str | None = None
    FailureCategory: str | int | None = None
    FailureReason: str | None = None


class DiagnosticLogRow(_In):
    """An Intune OperationalLogs row; ``properties`` may also arrive as a JSON string."""

    time: str | None = None
    tenantId: str | None = None
    category: str | None = None
    operationName: str | None = None
    resultType: str | None = None
    properties: DiagnosticLogProperties | str


class EventHubsEnvelope(_In):
    """What Azure diagnostic settings send to Event Hubs: many rows per message."""

    records: list[DiagnosticLogRow]


class FlatEvent(_In):
    """The smallest useful event: a category and/or a reason."""

    failureCategory: str | int | None = None
    failureReason: str | None = None


# ---------------------------------------------------------------- schema export
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "classified-event": ClassifiedEvent,
    "dead-letter": DeadLetterRecord,
    "input-graph-event": GraphEnrollmentEvent,
    "input-graph-page": GraphPage,
    "input-autopilot-event": AutopilotEvent,
    "input-report-export-row": ReportExportRow,
    "input-diagnostic-log-row": DiagnosticLogRow,
    "input-event-hubs-envelope": EventHubsEnvelope,
    "input-flat-event": FlatEvent,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every schema file's content by name, with examples taken from the real core."""
    from worker.contracts.examples import EXAMPLES

    out: dict[str, dict[str, Any]] = {}
    for name, model in SCHEMA_MODELS.items():
        mode: Literal["validation", "serialization"] = (
            "validation" if name.startswith("input-") else "serialization")
        schema = model.model_json_schema(mode=mode, by_alias=True)
        out[name] = {"$schema": SCHEMA_DIALECT,
                     "$id": f"https://enrollment-classifier.dev/schemas/{name}.schema.json",
                     **schema, "examples": EXAMPLES[name]}
    return out
