"""Simulator parameters (documented in docs/alerting.md, section 1): data only.

They describe what Intune tenants of each size see and were written down before any rule was
scored; do not tune them to make a rule pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker import FailureCategory

# 2026-05-18 00:00:00 UTC, a Monday; tenant local time is UTC.
START_EPOCH = 1779062400
SCRAPE_INTERVAL_S = 30
DAYS = 28
FRESH_EVENT_MAX_AGE_S = 3600
JOB = "enrollment-classifier"
INSTANCE = "enrollment-classifier-0:9108"
SHAPE = "log_row"  # Event Hubs diagnostic-log rows

# Share of a business day's attempts in each local hour. It sums to 1.015, not 1: kept as
# written before scoring (docs/alerting.md, section 1).
HOURLY_PROFILE: tuple[float, ...] = (
    0.005,
    0.005,
    0.005,
    0.005,
    0.005,
    0.005,  # 00-06
    0.015,
    0.04,
    0.09,  # 06-09
    0.11,
    0.11,
    0.11,  # 09-12
    0.07,  # 12-13
    0.095,
    0.095,
    0.095,  # 13-16
    0.06,
    0.035,  # 16-18
    0.0125,
    0.0125,
    0.0125,
    0.0125,  # 18-22
    0.005,
    0.005,  # 22-24
)
WEEKEND_SHARE = 0.08  # of a business day, flat over 07-22
WEEKEND_HOURS = range(7, 22)
MONDAY_FACTOR = 1.5  # extra half in 08-11
MONDAY_WAVE_HOURS = range(8, 11)
NEW_HIRE_DAY = 14  # Monday 2026-06-01, first business day of the month
NEW_HIRE_FACTOR = 4.0  # extra volume in 08-13
NEW_HIRE_HOURS = range(8, 13)
DAY_FACTOR_SIGMA = 0.25  # log-normal day-to-day variation

FAILURE_SHARE = 0.14  # of attempts
PLATFORMS: dict[str, float] = {"windows": 0.45, "ios": 0.30, "android": 0.20, "macos": 0.05}
# Breakdown-counter enrollment_type per platform (only the old rules read it).
ENROLLMENT_TYPE = {
    "windows": "windowsAzureADJoin",
    "ios": "appleBulkWithUser",
    "android": "androidEnterpriseFullyManaged",
    "macos": "appleUserEnrollment",
}

# Share of ordinary failures, and the detail reasons (catalog names) within each category.
CATEGORY_MIX: dict[str, float] = {
    "userAbandonment": 0.24,
    "enrollmentRestrictionsEnforced": 0.14,
    "authentication": 0.12,
    "clientDisconnected": 0.10,
    "userValidation": 0.08,
    "deviceNotSupported": 0.07,
    "authorization": 0.06,
    "accountValidation": 0.05,
    "unknown": 0.05,
    "badRequest": 0.04,
    "featureNotSupported": 0.03,
    "inMaintenance": 0.02,
}
DETAIL_MIX: dict[str, dict[str, float]] = {
    "userAbandonment": {"none": 1.0},
    "enrollmentRestrictionsEnforced": {
        "deviceCap": 0.5,
        "enrollmentCriteriaNotMet": 0.2,
        "platformBlocked": 0.1,
        "none": 0.2,
    },
    "authentication": {"deviceAuthenticationError": 0.6, "none": 0.4},
    "clientDisconnected": {"networkConnectivity": 0.5, "mfaNotCompleted": 0.3, "none": 0.2},
    "userValidation": {"userNotLicensed": 0.7, "none": 0.3},
    "deviceNotSupported": {"unsupportedDeviceType": 0.6, "none": 0.4},
    "authorization": {"deviceAlreadyEnrolled": 0.5, "none": 0.5},
    "accountValidation": {"mdmNotConfigured": 0.8, "none": 0.2},
    "unknown": {"serverError": 0.3, "none": 0.7},
    "badRequest": {"staleEnrollmentCertificate": 0.5, "none": 0.5},
    "featureNotSupported": {"featureNotSupported": 0.5, "none": 0.5},
    "inMaintenance": {"accountInMaintenance": 1.0},
}

# Ingestion path: 5-minute flushes, at least 60 s after the event, plus 5-60 s; 3 % of the
# batches held back a further 5-30 minutes.
FLUSH_PERIOD_S = 300
FLUSH_MIN_AGE_S = 60
FLUSH_JITTER_S = (5, 60)
HELD_BATCH_SHARE = 0.03
HELD_BATCH_DELAY_S = (300, 1800)

# Disturbances (not incidents): (day, hour, minute).
RESTARTS = ((3, 14, 20), (9, 19, 5), (20, 18, 40))
RESTART_DOWN_S = 60
SCRAPE_GAP = (16, 10, 30)
SCRAPE_GAP_S = 1200
INGESTION_DELAY = (10, 9, 0)  # Thursday of week 2
INGESTION_DELAY_S = 4 * 3600
CATCH_UP_S = 900


@dataclass(frozen=True)
class Tenant:
    name: str
    devices: int
    attempts_per_business_day: float


TENANTS: dict[str, Tenant] = {
    "small": Tenant("small", 2_000, 85.0),
    "medium": Tenant("medium", 20_000, 850.0),
    "large": Tenant("large", 200_000, 8_500.0),
}


@dataclass(frozen=True)
class IncidentKind:
    """An incident turns a share of attempts (optionally of one platform) into failures."""

    name: str
    category: str
    detail: str
    duration_s: int
    platform: str | None = None  # every attempt of this platform fails
    share: float = 0.0  # or this share of all attempts fails
    creep_categories: tuple[str, ...] = ()  # slow creep: ordinary rate x1 -> x2
    creep_ramp_s: int = 0
    burst_range: tuple[int, int] | None = None  # small burst: extra failures
    burst_categories: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ("small", "medium", "large")

    @property
    def raises_whole_category(self) -> bool:
        """A creep or a burst adds failures across its category's detail reasons, not one."""
        return bool(self.creep_categories or self.burst_range)


HOUR = 3600
INCIDENT_KINDS: tuple[IncidentKind, ...] = (
    IncidentKind(
        "apns_expired", "accountValidation", "apnsCertificateExpired", 8 * HOUR, platform="ios"
    ),
    IncidentKind(
        "licence_group_removed", "userValidation", "userNotLicensed", 6 * HOUR, share=0.20
    ),
    IncidentKind(
        "restriction_misconfigured",
        "enrollmentRestrictionsEnforced",
        "platformBlocked",
        4 * HOUR,
        platform="android",
    ),
    IncidentKind(
        "network_outage", "clientDisconnected", "networkConnectivity", 2 * HOUR, platform="windows"
    ),
    IncidentKind("new_failure_mode", "unknown", "none", 8 * HOUR, share=0.10),
    IncidentKind(
        "slow_creep",
        "",
        "none",
        4 * 24 * HOUR,
        creep_categories=(
            "authentication",
            "clientDisconnected",
            "deviceNotSupported",
            "authorization",
        ),
        creep_ramp_s=3 * 24 * HOUR,
    ),
    IncidentKind(
        "small_burst",
        "",
        "none",
        2 * HOUR,
        burst_range=(6, 10),
        burst_categories=(
            "authorization",
            "badRequest",
            "deviceNotSupported",
            "featureNotSupported",
        ),
        tenants=("small",),
    ),
)
FIRST_INCIDENT_DAY = 7
INCIDENT_HOURS = (8, 16)
DETECTION_GRACE_S = 1800  # a firing up to 30 min after the end still counts

EVENT_AGE_BUCKETS: tuple[float, ...] = (
    60,
    300,
    900,
    1800,
    3600,
    7200,
    21600,
    86400,
    259200,
    604800,
)
# Graph's deviceEnrollmentFailureReason members, in enum order (the worker's taxonomy).
GRAPH_CATEGORIES: tuple[str, ...] = tuple(c.name for c in FailureCategory)
