"""Whether a record is an enrollment failure at all, before any reason is looked for.

A record that is not a failure is skipped with one of three reasons, a closed set (it is a
metric label): ``success``, ``in_progress`` (an attempt whose outcome is not known yet) and
``not_enrollment`` (a record about something else: a compliance row, an app-install
troubleshooting event, a deployment that was never attempted). The rules, per shape:

* Graph ``enrollmentTroubleshootingEvent``: a failure, unless its category says "Not
  Applicable" (a success row forwarded as an event).
* Graph ``deviceManagementAutopilotEvent``: ``deploymentState`` decides
  (``catalog.DEPLOYMENT_VERDICTS``: only ``failure`` is a failure; successes, also after a
  retry or a timeout the user clicked past, are successes). When it says nothing
  (``unknown``, missing, a future member), the phases decide: any phase that failed makes a
  failure; otherwise the attempt counts as in progress.
* Any other Graph type: not an enrollment (:mod:`worker.classify.decode` tells them apart).
* Diagnostic-log rows: an operation other than ``Enrollment`` / ``ESPEnrollment`` is not an
  enrollment; ``resultType`` (in any case) decides between success and failure; a row with no
  result word is a success when its ``FailureCategory`` says "Not Applicable". ESP rows with
  no result word are decided by their ``Status`` column.
* Report-export rows: ``DeviceEnrollmentFailures`` holds failures only; an
  ``EnrollmentActivity`` row is a failure when a status column says so or a failure column
  carries something, and a success otherwise.

Pure and total: never raises, whatever the field types (a value of the wrong type is read
as saying nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from worker.classify import catalog
from worker.classify.catalog import fold
from worker.classify.decode import RawRecord, first_present
from worker.classify.memo import Memo

SkipReason = Literal["success", "in_progress", "not_enrollment"]
SKIP_REASONS: Final[tuple[SkipReason, ...]] = ("success", "in_progress", "not_enrollment")
Verdict = Literal["failure", "success", "in_progress", "not_enrollment", "undecided"]
_MAX_WORD: Final = 64  # state and status words are short; longer text is read as unknown


@dataclass(frozen=True, slots=True)
class Deployment:
    """What an Autopilot event or ESP row says about the deployment, for the output."""

    phase: str | None  # enrollment | deviceSetup | accountSetup | None: where it failed
    state: str | None  # deploymentState (Autopilot) or Status (ESP row), as received
    profile: str | None  # the Autopilot deployment profile's display name
    esp_profile: str | None  # the Enrollment Status Page profile's display name
    is_autopilot: bool | None
    user_reached_desktop: bool | None


def skip_reason(record: RawRecord, category_not_applicable: bool) -> SkipReason | None:
    """Why ``record`` is not a failure, or None when it is one."""
    shape = record.shape
    if shape in ("graphEvent", "flat"):
        return "success" if category_not_applicable else None
    if shape == "autopilotEvent":
        return _skip(autopilot_verdict(record.fields))
    if shape == "reportExport":
        return _skip(export_verdict(record.fields, record.event_type))
    if shape == "otherEvent":
        return "not_enrollment"
    verdict = log_row_verdict(record)
    if verdict == "undecided":
        return "success" if category_not_applicable else None
    return _skip(verdict)


def _skip(verdict: Verdict) -> SkipReason | None:
    if verdict == "failure":
        return None
    if verdict == "undecided":  # an attempt with no outcome yet: never a failure
        return "in_progress"
    return verdict


def autopilot_verdict(fields: dict[str, Any]) -> Verdict:
    overall = _state(fields.get("deploymentState"), catalog.DEPLOYMENT_VERDICT_BY_FOLDED)
    if overall != "undecided":
        return overall
    phases = [_phase_state(fields, key) for key, _ in catalog.AUTOPILOT_PHASES]
    if "failure" in phases:
        return "failure"
    return "in_progress" if "in_progress" in phases or "success" in phases else "undecided"


def failed_phase(fields: dict[str, Any]) -> str | None:
    """The first phase of an Autopilot deployment that reports a failure."""
    for key, phase in catalog.AUTOPILOT_PHASES:
        if _phase_state(fields, key) == "failure":
            return phase
    return None


def _phase_state(fields: dict[str, Any], key: str) -> Verdict:
    table = (catalog.ENROLLMENT_STATE_BY_FOLDED if key == "enrollmentState"
             else catalog.DEPLOYMENT_VERDICT_BY_FOLDED)
    return _state(fields.get(key), table)


def _state(value: Any, table: dict[str, str]) -> Verdict:
    """A state word in any case, or Graph's integer code for a deployment state."""
    if (type(value) is int and table is catalog.DEPLOYMENT_VERDICT_BY_FOLDED
            and 0 <= value < len(catalog.DEPLOYMENT_STATES)):
        value = catalog.DEPLOYMENT_STATES[value]
    if type(value) is not str:
        return "undecided"
    return _word_verdict(value[:_MAX_WORD], table)


def _word_verdict(word: str, table: dict[str, str]) -> Verdict:
    found = table.get(fold(word))
    return _VERDICTS.get(found, "undecided") if found is not None else "undecided"


_VERDICTS: Final[dict[str, Verdict]] = {
    "failure": "failure", "success": "success", "in_progress": "in_progress",
    "not_enrollment": "not_enrollment"}


def log_row_verdict(record: RawRecord) -> Verdict:
    """A diagnostic-log row's operation and result words (ESP rows: and their Status)."""
    row, fields = record.row, record.fields
    operation = row.get("operationName")
    if operation is None:
        operation = row.get("OperationName")
    result = row.get("resultType")  # where diagnostic settings put it; LA exports say Result
    if result is None:
        result = first_present(row, catalog.RESULT_FIELDS)
        if result is None and fields is not row:
            result = first_present(fields, catalog.RESULT_FIELDS)
    verdict = _row_verdict(operation if type(operation) is str else None,
                           result if type(result) is str else None)
    if verdict == "undecided" and record.shape == "espLog":
        status = fields.get("Status")
        if type(status) is str:
            return _word_verdict(status[:_MAX_WORD], catalog.ESP_STATUS_BY_FOLDED)
    return verdict


def _row_verdict(operation: str | None, result: str | None) -> Verdict:
    """What a log row's operation and result columns say, remembered: they repeat endlessly."""
    key = (operation, result)
    found = _ROW_VERDICTS.get(key)
    return found if found is not None else _ROW_VERDICTS.put(key, _read_row(operation, result))


_ROW_VERDICTS: Final[Memo[tuple[str | None, str | None], Verdict]] = Memo(512)


def _read_row(operation: str | None, result: str | None) -> Verdict:
    if operation is not None and fold(operation[:200]) not in catalog.ENROLLMENT_OPERATIONS_FOLDED:
        return "not_enrollment"
    if result is None:
        return "undecided"
    word = fold(result[:200])
    if word in catalog.SUCCESS_FOLDED:
        return "success"
    if word in catalog.FAILURE_RESULTS_FOLDED:
        return "failure"
    if word in catalog.NO_RESULTS_FOLDED:
        return "undecided"
    # A result word we do not know (a future one): the row's own failure fields decide,
    # as for a row with no result.
    return "undecided"


def export_verdict(fields: dict[str, Any], report: str | None) -> Verdict:
    if report == "DeviceEnrollmentFailures":
        return "failure"
    for column in catalog.EXPORT_STATUS_COLUMNS:
        status = fields.get(column)
        if type(status) is str:
            verdict = _word_verdict(status[:_MAX_WORD], catalog.ESP_STATUS_BY_FOLDED)
            if verdict != "undecided":
                return verdict
    for column in catalog.EXPORT_FAILURE_COLUMNS:
        for value in (fields.get(column), fields.get(column + "_code")):
            if type(value) is str and \
                    fold(value[:200]) not in catalog.EXPORT_NO_FAILURE_FOLDED:
                return "failure"
    return "success"


def deployment(record: RawRecord) -> Deployment | None:
    """The deployment facts of an Autopilot event or ESP row; None for other shapes."""
    fields = record.fields
    if record.shape == "autopilotEvent":
        return Deployment(
            failed_phase(fields), _text(fields.get("deploymentState")),
            _text(fields.get("windowsAutopilotDeploymentProfileDisplayName")),
            _text(fields.get("windows10EnrollmentCompletionPageConfigurationDisplayName")),
            True, None)
    if record.shape == "espLog":
        return Deployment("enrollmentStatusPage", _text(fields.get("Status")), None,
                          _text(fields.get("ESPPolicyName")), _flag(fields.get("IsAutopilot")),
                          _flag(fields.get("DidUserReachDesktop")))
    return None


def _text(value: Any) -> str | None:
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return value[:256] or None
    return None


def _flag(value: Any) -> bool | None:
    """"True"/"False" strings (as the log tables write them) or JSON booleans."""
    if value is True or value is False:
        return bool(value)
    if type(value) is str:
        word = value.strip().casefold()
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
    return None
