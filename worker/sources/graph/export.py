"""Running one report export job through the reader: create, wait until ready, download.

Every request goes through GraphReader.fetch (the one retry and classification path); the waits
between job checks count as ``export`` waits and stop at shutdown like any other.
"""

from __future__ import annotations

from typing import Any

from worker.sources.graph.client import GraphReader, PollAbandoned, Request
from worker.sources.graph.endpoints import Collection
from worker.sources.graph.exportjob import (
    ENROLLMENT_ACTIVITY_COLUMNS,
    create_body,
    job_url,
    read_job,
    read_rows,
)
from worker.sources.graph.paging import collection_url

REPORTS = {"enrollmentActivity": ("EnrollmentActivity", ENROLLMENT_ACTIVITY_COLUMNS)}


def export_rows(reader: GraphReader, collection: Collection, *, poll_s: float,
                timeout_s: float) -> list[Any]:
    """The report's rows as JSON objects. Raises PollAbandoned (the job failed or never got
    ready), GraphFatalError or Stopped."""
    report, columns = REPORTS[collection.name]
    base = reader.graph_url
    job = reader.fetch(collection, Request("POST", collection_url(base, collection.path, None),
                                           create_body(report, columns)), read_job)
    waited = 0.0
    while not job.ready():
        if job.status == "failed":
            raise PollAbandoned(f"{collection.name}: the export job {job.id} failed")
        if waited >= timeout_s:
            raise PollAbandoned(f"{collection.name}: export job {job.id} still {job.status} "
                                f"after {waited:.0f}s")
        reader.wait(collection.name, "export", poll_s)
        waited += poll_s
        job = reader.fetch(collection, Request("GET", job_url(base, collection.path, job.id)),
                           read_job)
    link = job.url or ""  # ready() means it is there
    if not link.startswith("https://"):
        raise PollAbandoned(f"{collection.name}: the export's download link is not https")
    rows = reader.fetch(collection, Request("GET", link, authorized=False), read_rows)
    return list(rows)
