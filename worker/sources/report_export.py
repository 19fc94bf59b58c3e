"""Rows of a downloaded Intune report export (Graph ``exportJobs``: a zip holding one CSV).

The admin center's enrollment reports (``EnrollmentActivity``, ``DeviceEnrollmentFailures``)
export as zipped CSV that starts with a UTF-8 byte-order mark, gives enum columns as numeric
codes plus a ``<Column>_loc`` text column, and may hold bare quotes inside fields. This module
turns such a file, zipped or not, into one JSON object per row, the shape the classifier
reads on the stream (:mod:`worker.classify.decode`), so an admin can triage a report without
Kafka: ``python -m worker classify report.zip``.

Whole-file problems (not a zip, no CSV inside, not UTF-8, no header naming a known report)
raise :class:`ExportFileError` with a message for the admin; a row whose field count differs
from the header's is yielded as a :class:`BadRow`, not guessed at.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from worker.classify import catalog

ZIP_MAGIC: Final = b"PK\x03\x04"
MAX_UNZIPPED_BYTES: Final = 1 << 30  # a report of a million rows is far smaller
_KNOWN_COLUMNS: Final = frozenset(
    c for cols in catalog.EXPORT_REPORT_SIGNATURES.values() for c in cols)
csv.field_size_limit(16 * 1024 * 1024)


class ExportFileError(Exception):
    """The file as a whole cannot be read as an enrollment report export."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # 1-based line of the record in the CSV (the header is line 1)
    value: bytes  # the row as a JSON object


@dataclass(frozen=True, slots=True)
class BadRow:
    number: int
    message: str


def is_export_file(path: Path, head: bytes) -> bool:
    """Whether a file should be read as a report export rather than JSON Lines."""
    return path.suffix.lower() in (".csv", ".zip") or head.startswith(ZIP_MAGIC)


def read_rows(path: Path) -> Iterator[Row | BadRow]:
    """Every data row of the export at ``path``. Raises ExportFileError, OSError."""
    data = path.read_bytes()
    if not data.startswith(ZIP_MAGIC) and path.suffix.lower() == ".zip":
        raise ExportFileError(f"{path.name} is not a zip file (it does not start as one)")
    return rows_in(data, path.name)


def rows_in(data: bytes, name: str) -> Iterator[Row | BadRow]:
    """Every data row of an export held in memory, zipped or not (the Graph source downloads
    one). Raises ExportFileError."""
    text = _csv_text(_unzipped(data, name) if data.startswith(ZIP_MAGIC) else data)
    return rows_of(text)


def rows_of(text: str) -> Iterator[Row | BadRow]:
    # strict=False keeps a bare quote inside a field as a character, as exports write them.
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    header = next(reader, None)
    if not header or not _KNOWN_COLUMNS.intersection(h.strip() for h in header):
        known = ", ".join(sorted(_KNOWN_COLUMNS))
        raise ExportFileError(f"no header naming an enrollment report: expected one of {known}")
    names = [h.strip() for h in header]
    return _rows(reader, names)


def _rows(reader: Iterator[list[str]], names: list[str]) -> Iterator[Row | BadRow]:
    for fields in reader:
        number = getattr(reader, "line_num", 0)
        if not fields or fields == [""]:
            continue
        if len(fields) != len(names):
            yield BadRow(number, f"row has {len(fields)} fields, the header {len(names)}")
            continue
        yield Row(number, orjson.dumps(dict(zip(names, fields, strict=True))))


def _unzipped(data: bytes, name: str) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ExportFileError(f"{name} is not a readable zip file: {exc}") from exc
    with archive:
        members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
        if len(members) != 1:
            listed = ", ".join(m.filename for m in archive.infolist()) or "nothing"
            raise ExportFileError(f"{name} should hold exactly one .csv report; it holds {listed}"
                                  " (export with format csv)")
        member = members[0]
        if member.file_size > MAX_UNZIPPED_BYTES:
            raise ExportFileError(f"{member.filename} unzips to {member.file_size} bytes; the "
                                  f"limit is {MAX_UNZIPPED_BYTES}")
        try:
            return archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # corrupt or encrypted
            raise ExportFileError(f"cannot unzip {member.filename}: {exc}") from exc


def _csv_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # drops the byte-order mark exports start with
    except UnicodeDecodeError as exc:
        raise ExportFileError(f"the report is not UTF-8 text (byte {exc.start})") from exc
