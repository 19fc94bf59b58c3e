"""``python -m worker classify`` on a downloaded report export: the .zip Graph's exportJobs
gives, or the .csv inside it (UTF-8 byte-order mark, bare quotes); bad files exit 2 with a
clear message, unreadable rows are listed and make the exit code 1."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

from tests.helpers import validator

ROOT = Path(__file__).resolve().parents[2]
HEADER = ("EnrollmentActivityId,EnrollmentDateTime,DeviceId,OS,OS_loc,EnrollmentMethod,"
          "EnrollmentMethod_loc,Failure,Failure_loc,FailureReason,FailureReason_loc,"
          "FailureDetails,Remediation,UPN")
ROWS = [
    # a failure whose details hold a bare quote, and Microsoft's remediation with a link
    'a1,2026-11-02T08:00:00Z,d1,2,iOS/iPadOS,3,Automated Device Enrollment,6,Device cap '
    'reached,9,Enrollment restrictions enforced,The user said "no" twice,Remove a device: '
    'https://learn.microsoft.com/mem/intune/enrollment/enrollment-restrictions-set,u@x.example',
    # a success: every failure column empty
    "a2,2026-11-02T08:01:00Z,d2,1,Windows,1,Windows automatic enrollment,,,0,None,,,v@x.example",
    # a quoted field with a comma and an embedded newline
    'a3,2026-11-02T08:02:00Z,d3,1,Windows,1,Windows automatic enrollment,12,"UserNotLicensed",'
    '4,User validation,"Licence, missing\nfor user",,w@x.example',
]


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "worker", "classify", *args],
                          capture_output=True, cwd=ROOT, timeout=60, check=False)


def csv_bytes(rows: list[str], bom: bool = True) -> bytes:
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def outputs(done: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    for event in events:
        validator("classified-event").validate(event)
    return events


@pytest.mark.parametrize("kind", ["zip", "csv", "csv_without_bom", "zip_without_suffix"])
def test_an_export_is_classified_row_by_row(tmp_path: Path, kind: str) -> None:
    data = csv_bytes(ROWS, bom=kind != "csv_without_bom")
    if kind.startswith("zip"):
        name = "EnrollmentActivity.zip" if kind == "zip" else "download"
        path = write_zip(tmp_path / name, {"EnrollmentActivity_2026.csv": data})
    else:
        path = tmp_path / "EnrollmentActivity.csv"
        path.write_bytes(data)
    done = run(str(path))
    assert done.returncode == 0, done.stderr
    events = outputs(done)
    assert [e["id"] for e in events] == ["a1", "a3"]
    assert [(e["failureCategory"], e["detailReason"]) for e in events] == [
        ("enrollmentRestrictionsEnforced", "deviceCap"), ("userValidation", "userNotLicensed")]
    first = events[0]
    assert first["source"] == {"shape": "reportExport", "topic": str(path), "partition": 0,
                               "offset": 2, "recordIndex": None}
    assert first["device"]["operatingSystem"] == "iOS/iPadOS"
    assert first["remediation"][0]["scope"] == "microsoft"  # type: ignore[index]
    summary = orjson.loads(done.stderr.split(b"summary: ")[1])
    assert summary == {"category.enrollmentRestrictionsEnforced": 1,
                       "category.userValidation": 1, "classified": 2, "skipped_success": 1}


def test_device_enrollment_failures_export(tmp_path: Path) -> None:
    path = tmp_path / "DeviceEnrollmentFailures.csv"
    path.write_bytes(b"\xef\xbb\xbfFailureGuid,EnrollmentFailureDateTime,EnrollmentMethod,"
                     b"FailureReason,FailureReason_loc,OS,OSVersion,UPN,UserId\n"
                     b"f1,2026-11-02T07:00:00Z,1,7,,Windows,10.0,u@x,u1\n")
    events = outputs(run(str(path)))
    assert [(e["id"], e["failureCategory"]) for e in events] == [("f1", "unknown")]


@pytest.mark.parametrize(("content", "message"), [
    ({"notes.txt": b"hello"}, b"should hold exactly one .csv report"),
    ({"a.csv": csv_bytes(ROWS), "b.csv": csv_bytes(ROWS)}, b"should hold exactly one .csv"),
    ({"r.csv": b"DeviceName,Model\nx,y\n"}, b"no header naming an enrollment report"),
    ({"r.csv": HEADER.encode() + b"\n\xff\xfe bad bytes\n"}, b"not UTF-8"),
    ({"r.csv": b""}, b"no header naming an enrollment report"),
])
def test_bad_zip_contents_are_a_clear_error(tmp_path: Path, content: dict[str, bytes],
                                            message: bytes) -> None:
    done = run(str(write_zip(tmp_path / "report.zip", content)))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and b"Traceback" not in done.stderr
    assert done.stdout == b""


@pytest.mark.parametrize(("name", "data", "message"), [
    ("report.zip", b"not a zip at all", b"is not a zip file"),
    ("report.zip", b"PK\x03\x04truncated", b"not a readable zip file"),
    ("missing.csv", None, b"cannot open"),
])
def test_unreadable_files_are_a_clear_error(tmp_path: Path, name: str, data: bytes | None,
                                            message: bytes) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    done = run(str(path))
    assert done.returncode == 2
    assert message in done.stderr and b"Traceback" not in done.stderr


def test_ragged_rows_are_listed_and_the_rest_classified(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(csv_bytes([ROWS[0], "a9,only,three", ROWS[1]]))
    done = run(str(path))
    assert done.returncode == 1
    assert b"line 3: row has 3 fields, the header 14" in done.stderr
    assert [e["id"] for e in outputs(done)] == ["a1"]
