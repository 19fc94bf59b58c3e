"""What the source reads: each Graph collection, its path and the permission it needs.

Knowledge as data: a new collection is one row here. The permission names are what a 403
tells the operator to grant (application permissions, admin-consented).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True, slots=True)
class Collection:
    name: str  # also the value of the x-graph-collection header and the checkpoint key
    path: str  # relative to <graph-url>/beta/
    permission: str  # the application permission to grant when Graph answers 403
    # "pages": a collection read page by page; "export": a report export job (exportjob.py).
    kind: Literal["pages", "export"] = "pages"
    id_field: str = "id"
    time_field: str = "eventDateTime"
    shape: str = "graphEvent"  # the worker's field plan that names the key's fields


COLLECTIONS: Final[dict[str, Collection]] = {c.name: c for c in (
    # Mixes event types (enrollment failures among them); the worker decides what each is.
    Collection("troubleshootingEvents", "deviceManagement/troubleshootingEvents",
               "DeviceManagementManagedDevices.Read.All"),
    # Successes, failures and retries of Autopilot deployments (beta only). Graph's list page
    # names DeviceManagementManagedDevices.Read.All or DeviceManagementConfiguration.Read.All;
    # tenants have also needed DeviceManagementServiceConfig.Read.All.
    Collection("autopilotEvents", "deviceManagement/autopilotEvents",
               "DeviceManagementServiceConfig.Read.All (Graph's reference also accepts "
               "DeviceManagementManagedDevices.Read.All)"),
    # Optional: the admin center's enrollment report (with Microsoft's remediation text),
    # through an export job. Creating one needs a ReadWrite permission.
    Collection("enrollmentActivity", "deviceManagement/reports/exportJobs",
               "DeviceManagementManagedDevices.ReadWrite.All", kind="export",
               id_field="EnrollmentActivityId", time_field="EnrollmentDateTime", shape="flat"),
)}
DEFAULT_COLLECTIONS: Final = ("troubleshootingEvents", "autopilotEvents")

GRAPH_SCOPE_SUFFIX: Final = "/.default"  # client credentials ask for the app's granted roles
COLLECTION_HEADER: Final = "x-graph-collection"
