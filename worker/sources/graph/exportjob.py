"""Intune report export jobs (``deviceManagement/reports/exportJobs``): the request, the job's
state, and the rows of the zipped CSV it produces. Pure: bytes in, values out, never raises.

The flow (driven by export.py): POST a job, GET it until ``status`` is ``completed`` *and*
``url`` is filled (completed can come first), download the zip from that pre-signed URL (no
bearer token: it is not Graph), read the one CSV inside. The CSV starts with a UTF-8 byte-order
mark and may hold bare quotes; each row becomes a JSON object of its columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from worker.sources import report_export

# The columns the admin center's enrollment activity report shows, Microsoft's remediation
# text included (Graph's EnrollmentActivity report).
ENROLLMENT_ACTIVITY_COLUMNS: Final = (
    "AadDeviceId", "Context", "DeviceId", "DeviceName", "EnrollmentActivityId",
    "EnrollmentDateTime", "EnrollmentMethod", "Failure", "FailureDetails", "FailureReason", "OS",
    "OSVersion", "OwnerType", "Remediation", "SerialNumber", "UPN", "UserId")


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    status: str  # unknown, notStarted, inProgress, completed, failed
    url: str | None

    def ready(self) -> bool:
        return self.status == "completed" and bool(self.url)


def create_body(report: str, columns: tuple[str, ...]) -> bytes:
    # Text values instead of enum codes plus "_loc" columns: the worker reads words.
    return orjson.dumps({"reportName": report, "format": "csv", "select": list(columns),
                         "localizationType": "ReplaceLocalizableValues"})


def read_job(body: bytes) -> Job | str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return f"export job is not JSON ({exc})"
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        return "export job has no id"
    url = doc.get("url")
    return Job(doc["id"], str(doc.get("status") or "unknown"),
               url if isinstance(url, str) and url else None)


def read_rows(archive: bytes) -> list[Any] | str:
    """The rows of the export's zip as JSON objects, or what is wrong with it. The same reader
    as ``python -m worker classify report.zip``; a ragged row fails the whole export (it is not
    guessed at, and a silent drop would hide a failure)."""
    try:
        rows = list(report_export.rows_in(archive, "the export"))
    except report_export.ExportFileError as exc:
        return str(exc)
    bad = [r for r in rows if isinstance(r, report_export.BadRow)]
    if bad:
        return f"the export has {len(bad)} unreadable rows (first: line {bad[0].number}: " \
               f"{bad[0].message})"
    return [orjson.loads(r.value) for r in rows if isinstance(r, report_export.Row)]


def job_url(graph_url: str, path: str, job_id: str) -> str:
    return f"{graph_url.rstrip('/')}/beta/{path}('{job_id}')"
