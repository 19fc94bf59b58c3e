"""The failure vocabulary: Graph's ``deviceEnrollmentFailureReason`` and confidence levels.

Pure data types only. Member names are spelled exactly as Graph spells them on the wire
(camelCase), because downstream tools match on those strings; the integer values are the
ones Graph's CSDL gives (``unknown`` = 0 ... ``userAbandonment`` = 11). Graph has no
``unknownFutureValue`` member for this enum, so anything unrecognised maps to ``unknown``.

The finer detail reasons live with their evidence and remediation in :mod:`worker.classify.catalog`,
so adding one is a single table row.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class FailureCategory(IntEnum):
    """Graph ``deviceEnrollmentFailureReason``; the value is Graph's integer code."""

    unknown = 0
    authentication = 1
    authorization = 2
    accountValidation = 3  # Graph's wire spelling
    userValidation = 4
    deviceNotSupported = 5
    inMaintenance = 6
    badRequest = 7
    featureNotSupported = 8
    enrollmentRestrictionsEnforced = 9
    clientDisconnected = 10
    userAbandonment = 11

    @property
    def description(self) -> str:
        return CATEGORY_DESCRIPTIONS[self]


CATEGORY_DESCRIPTIONS: dict[FailureCategory, str] = {
    FailureCategory.unknown: "The failure could not be attributed to a known cause.",
    FailureCategory.authentication: "The user or device could not be authenticated.",
    FailureCategory.authorization: "Authenticated, but not allowed to enroll this device.",
    FailureCategory.accountValidation: (
        "The tenant account could not be validated (onboarding, MDM authority, certificates)."
    ),
    FailureCategory.userValidation: "The user could not be validated (unknown user or no licence).",
    FailureCategory.deviceNotSupported: "The device, OS or edition is not supported for MDM.",
    FailureCategory.inMaintenance: "The Intune account is in maintenance.",
    FailureCategory.badRequest: "The enrollment request was malformed or not supported.",
    FailureCategory.featureNotSupported: "The enrollment feature used is not supported here.",
    FailureCategory.enrollmentRestrictionsEnforced: (
        "An admin enrollment restriction (platform, ownership, device cap) blocked it."
    ),
    FailureCategory.clientDisconnected: "The client timed out or the user aborted.",
    FailureCategory.userAbandonment: "The user started enrollment but did not finish in time.",
}


class Confidence(StrEnum):
    """How strongly the evidence supports the chosen category."""

    high = "high"  # the service's own category, or an exact code or reason name
    medium = "medium"  # a phrase, code family or cues in free text, or two signals that disagreed
    low = "low"  # nothing usable: the category is ``unknown`` by default


class Evidence(StrEnum):
    """Which input decided the category. A closed set: it is a metric label."""

    category = "category"  # the event's own failureCategory field
    detail_name = "detail_name"  # an exact detail-reason name (e.g. UserNotLicensed)
    hresult = "hresult"  # a Windows HRESULT found in the reason text
    phrase = "phrase"  # a known phrase found inside free text
    code_family = "code_family"  # a code not listed itself, read by its family (e.g. WinHTTP)
    cue = "cue"  # weighted word-stem cues in descriptive text (worker.classify.cues)
    none = "none"  # no usable evidence; defaulted to unknown
