"""Intune report export jobs (``deviceManagement/reports/exportJobs``): the request, the job's
state, and the rows of the zipped CSV it produces. Pure: bytes in, values out, never raises.

The flow (driven by export.py): POST a job, GET it until ``status`` is ``completed`` *and*
``url`` is filled (completed can come first), download the zip from that pre-signed URL (no
bearer token: it is not Graph), read the one CSV inside. The CSV starts with a UTF-8 byte-order
mark and may hold bare quotes; each row becomes a JSON object of its columns.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from typing import Final

import orjson

# The columns the admin center's enrollment activity report shows, Microsoft's remediation
# text included (Graph's EnrollmentActivity report).
ENROLLMENT_ACTIVITY_COLUMNS: Final = (
    "AadDeviceId", "Context", "DeviceId", "DeviceName", "EnrollmentActivityId",
    "EnrollmentDateTime", "EnrollmentMethod", "Failure", "FailureDetails", "FailureReason", "OS",
    "OSVersion", "OwnerType", "Remediation", "SerialNumber", "UPN", "UserId")
MAX_UNZIPPED_BYTES: Final = 512 * 1024 * 1024  # a zip bomb is refused, not expanded


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


def read_rows(archive: bytes) -> list[dict[str, str]] | str:
    """The rows of the CSV in the export's zip, or what is wrong with it."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            members = [m for m in zipped.infolist() if m.filename.lower().endswith(".csv")]
            if len(members) != 1:
                return f"expected one CSV in the export, found {len(members)}"
            if members[0].file_size > MAX_UNZIPPED_BYTES:
                return f"export CSV is {members[0].file_size} bytes unzipped; refused"
            raw = zipped.read(members[0])
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
        return f"export is not a readable zip ({exc})"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"export CSV is not UTF-8 ({exc})"
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [{k: v for k, v in row.items() if k is not None and v is not None}
                for row in reader]
    except csv.Error as exc:
        return f"export CSV is unreadable ({exc})"


def job_url(graph_url: str, path: str, job_id: str) -> str:
    return f"{graph_url.rstrip('/')}/beta/{path}('{job_id}')"
