"""Deterministic generator of realistic raw enrollment-failure messages with expected outcomes.

Feeds the README demo, end-to-end tests against Kafka and benchmarks. An independent test oracle:
expectations come only from shared/reference/enrollment-failures.md (Mapping table, section 4.1
HRESULT table), never from the classifier. Encoded rules: specific evidence (known HRESULT or
Data Warehouse reason name) beats an uninformative category ("unknown" in any spelling, missing,
""); a named category is kept when the reason adds nothing (free text, "Unknown", null); a named
category sent with a specific reason always agrees with it (conflicts are tested elsewhere); an
unrecognised category with no other evidence is ``unknown``; log rows with resultType "Success"
are ``skipped_success``. About ``bad_ratio`` of messages are unreadable, and an Event Hubs
envelope holds one bad row with that probability: ``dead_letter`` (that row alone). Same seed,
same bytes; a shorter run is a prefix of a longer one. ``python -m worker.dev.samples --help``: CLI.

The shapes of shared/reference/intune-sources.md come in the proportions a tenant shows (most
Autopilot attempts and enrollments succeed): Graph ``deviceManagementAutopilotEvent``s
(deploymentState ``failure`` is a failure whose reason is ``enrollmentFailureDetails``;
success, successOnRetry and successWithTimeout are ``skipped_success``; inProgress is
``skipped_in_progress``; notAttempted and disabled are ``skipped_not_enrollment``); other
troubleshooting event types (``skipped_not_enrollment``); ``ESPEnrollment`` and ``Compliance``
rows inside envelopes (ESP: Success/Completed skipped, a failed one with FailureReason
"Timeout" is ``clientDisconnected``; Compliance: ``skipped_not_enrollment``); and
report-export rows as JSON objects (``EnrollmentActivity``: no failure columns is a success;
``DeviceEnrollmentFailures``: always a failure), enum columns as codes plus ``_loc`` text.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from random import Random
from typing import Any, BinaryIO, Literal, TypeVar

import orjson

T = TypeVar("T")
Outcome = Literal["classified", "dead_letter", "skipped_success", "skipped_in_progress",
                  "skipped_not_enrollment"]
OUTCOMES: tuple[Outcome, ...] = ("classified", "dead_letter", "skipped_success",
                                 "skipped_in_progress", "skipped_not_enrollment")


@dataclass(frozen=True)
class ExpectedRecord:
    outcome: Outcome
    category: str | None  # Graph member spelling, only for "classified"
    detail_hint: str | None = None  # DW reason name or canonical HRESULT used as evidence
    phase: str | None = None  # Autopilot: the phase that failed


@dataclass(frozen=True)
class SampleMessage:
    key: bytes | None
    value: bytes | None  # raw Kafka message value
    expected: tuple[ExpectedRecord, ...]  # one per record inside the message, in order
    shape: str


# deviceEnrollmentFailureReason; the index is the documented numeric value.
MEMBERS = ("unknown", "authentication", "authorization", "accountValidation", "userValidation",
           "deviceNotSupported", "inMaintenance", "badRequest", "featureNotSupported",
           "enrollmentRestrictionsEnforced", "clientDisconnected", "userAbandonment")
_MEMBER_CUM = tuple(accumulate((8, 5, 9, 7, 14, 8, 2, 4, 3, 16, 10, 14)))  # realistic mix
# Data Warehouse / log reason names by category (reference "Mapping table").
_DW_BY: dict[str, tuple[str, ...]] = dict.fromkeys(MEMBERS, ()) | {
    "userValidation": ("UserNotLicensed", "UserUnknown"),
    "authorization": ("BulkAlreadyEnrolledDevice", "AuthenticationRequirementNotMet"),
    "accountValidation": ("EnrollmentOnboardingIssue", "AppleOnboardingIssue",
                          "APNSCertificateExpired"),
    "clientDisconnected": ("AppleChallengeIssue",),
    "deviceNotSupported": ("UnsupportedDeviceType",),
    "enrollmentRestrictionsEnforced": ("DeviceCap", "EnrollmentCriteriaNotMet",
                                       "BulkDeviceNotPreregistered"),
    "featureNotSupported": ("FeatureNotSupported",), "userAbandonment": ("UserAbandonment",)}
DW_REASONS = {r: m for m, names in _DW_BY.items() for r in names}
_DW_NOT_APPLE = {m: tuple(r for r in v if not r.startswith(("Apple", "APNS")))
                 for m, v in _DW_BY.items()}
# Windows HRESULTs, reference section 4.1 ("X (judgment)" -> X): code -> (category, name).
_E = "MENROLL_E_"
HRESULTS: dict[int, tuple[str, str]] = {
    0x80180001: ("badRequest", _E + "DEVICE_MESSAGE_FORMAT_ERROR"),
    0x80180002: ("authentication", _E + "DEVICE_AUTHENTICATION_ERROR"),
    0x80180003: ("authorization", _E + "DEVICE_AUTHORIZATION_ERROR"),
    0x80180004: ("unknown", _E + "DEVICE_CERTIFICATEREQUEST_ERROR"),
    0x80180005: ("unknown", _E + "DEVICE_CONFIGMGRSERVER_ERROR"),
    0x8018000A: ("authorization", _E + "DEVICE_ALREADY_ENROLLED"),
    0x80180013: ("enrollmentRestrictionsEnforced", _E + "DEVICECAPREACHED"),
    0x80180014: ("enrollmentRestrictionsEnforced", _E + "DEVICENOTSUPPORTED"),
    0x80180010: ("clientDisconnected", _E + "CONNECTIVITY"),
    0x80180015: ("deviceNotSupported", _E + "NOTSUPPORTED"),
    0x80180017: ("inMaintenance", _E + "INMAINTENANCE"),
    0x80180018: ("userValidation", _E + "USERLICENSE"),
    0x80180019: ("badRequest", _E + "ENROLLMENTDATAINVALID"),
    0x80180026: ("deviceNotSupported", _E + "DEVICE_MANAGEMENT_BLOCKED"),
    0x80180022: ("deviceNotSupported", ""), 0x8018002A: ("clientDisconnected", ""),
    0x8018002B: ("accountValidation", ""), 0x801C0003: ("authorization", ""),
    0x801C03EA: ("deviceNotSupported", ""), 0x800705B4: ("deviceNotSupported", ""),
    0x8007064C: ("badRequest", ""), 0x80070774: ("featureNotSupported", "")}
_HR_CODES = tuple(HRESULTS)
_HR_BY = {m: tuple(h for h, (c, _) in HRESULTS.items() if c == m) for m in MEMBERS}


def _spellings(member: str) -> tuple[Any, ...]:
    w = "".join(f" {c.lower()}" if c.isupper() else c for c in member).split()
    i, pascal = MEMBERS.index(member), "".join(x.capitalize() for x in w)
    return (member, member, member, pascal, "_".join(w).upper(), "-".join(w), " ".join(w),
            f"  {member} ", f"{member}\t", i, str(i))


_SPELL = {m: _spellings(m) for m in MEMBERS}
_PASCAL = {m: _SPELL[m][3] for m in MEMBERS}
_MISSING: Any = object()
_FLAT_UNKNOWN = (_MISSING, _MISSING, "", *_SPELL["unknown"])
_FUTURE = ("someFutureMember", "unknownFutureValue", "deviceQuarantined", "")
_FREE_TEXT = ("Enrollment failed.", "Failure Reason value", "See troubleshooting details.",
              "The enrollment request could not be completed.", "Device enrollment did not finish")
_SENTENCES = ("Enrollment failed with error {h} ({n})", "MDM enrollment error {h}: {n}",
              "The device returned {h} during enrollment", "Error code: {h}")
_BETA_ONLY_TYPES = ("android", "appleAccountDriven")  # enrollment types v1.0 lacks (prefixes)
_OS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (  # os, versions, enrollment types
    ("Windows", ("10.0.26100.2314", "10.0.22631.4460", "10.0.19045.5131", "10.0.26100.1742"),
     ("windowsAzureADJoin", "windowsAutoEnrollment", "windowsCoManagement", "windowsBulkUserless",
      "windowsAzureADJoinUsingDeviceAuth", "windowsBulkAzureDomainJoin")),
    ("iOS", ("18.1", "17.6.1", "16.7.10"), ("userEnrollment", "appleBulkWithUser",
     "appleBulkWithoutUser", "appleUserEnrollment", "appleAccountDrivenUserEnrollment")),
    ("Android", ("15", "14", "13"), ("userEnrollment", "androidEnterpriseFullyManaged",
     "androidEnterpriseCorporateWorkProfile", "androidEnterpriseDedicatedDevice")),
    ("macOS", ("15.1", "14.7.1"), ("userEnrollment", "appleBulkWithUser",
     "deviceEnrollmentManager")))
_OS_CUM = (45, 70, 95, 100)
SHAPE_WEIGHTS: dict[str, int] = {  # readable shapes; unreadable ones come on top, at bad_ratio
    "eventhubs_envelope": 34, "la_row": 10, "la_row_json_properties": 8, "graph_event": 14,
    "graph_event_beta": 6, "graph_page": 8, "flat": 12, "hresult_text": 8,
    "autopilot_event": 6, "graph_other_type": 2, "export_row": 4}
_UNREADABLE: dict[str, tuple[bytes | None, ...]] = {
    "unreadable_not_json": (b"{not json", b'{"failureCategory": "userValidation"',
                            b"{'failureCategory': 'userValidation'}", b"<html>502 Bad Gateway"),
    "unreadable_invalid_utf8": (b'{"failureCategory": "user\xffValidation"}', b"\xff\xfe{\x00"),
    "unreadable_empty": (b"",), "unreadable_tombstone": (None,),
    "unreadable_non_object": (b"[1,2]", b'"text"', b"42", b"null"),
    "unreadable_wrong_type": (b'{"failureCategory":{"value":"userValidation"}}',
                              b'{"failureCategory":["userValidation"],"failureReason":"x"}')}
UNREADABLE_SHAPES = tuple(_UNREADABLE)
_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
_DEAD, _SUCCESS = ExpectedRecord("dead_letter", None), ExpectedRecord("skipped_success", None)
_NOT_ENROLLMENT = ExpectedRecord("skipped_not_enrollment", None)
_APE = "#microsoft.graph.deviceManagementAutopilotEvent"
_OTHER_TYPES = ("#microsoft.graph.deviceManagementTroubleshootingEvent",
                "#microsoft.graph.mobileAppTroubleshootingEvent")
# deploymentState of an Autopilot attempt, with how often a tenant sees it, and the outcome.
_DEPLOYMENT: tuple[tuple[str, int, Outcome], ...] = (
    ("success", 62, "skipped_success"), ("successOnRetry", 5, "skipped_success"),
    ("successWithTimeout", 3, "skipped_success"), ("inProgress", 10, "skipped_in_progress"),
    ("notAttempted", 2, "skipped_not_enrollment"), ("disabled", 1, "skipped_not_enrollment"),
    ("failure", 17, "classified"))
_DEPLOYMENT_CUM = tuple(accumulate(w for _, w, _ in _DEPLOYMENT))
_PHASES = ("deviceSetupStatus", "accountSetupStatus")
# No pre-provisioning (white glove) types: there 0x80180005 means something else (a scenario
# refinement this oracle does not model; tests/unit covers it).
_AUTOPILOT_TYPES = ("azureADJoinedWithAutopilotProfile", "offlineDomainJoined",
                    "azureADJoinedUsingDeviceAuthWithAutopilotProfile")
_ESP_PROFILES = ("Default ESP", "Contoso ESP (block on apps)", "Kiosk ESP")
_EXPORT_OS = {"Windows": (1, "Windows"), "iOS": (2, "iOS/iPadOS"), "Android": (3, "Android"),
              "macOS": (4, "macOS")}
_EXPORT_METHODS = ((1, "Windows automatic enrollment"), (2, "Automated Device Enrollment"),
                   (3, "User enrollment"), (4, "Android Enterprise fully managed"))
_SCENARIO = "Microsoft.Management.Services.Diagnostics.SLAEvents.EnrollmentSLAEvent"
_GRAPH, _ETE = "https://graph.microsoft.com/", "#microsoft.graph.enrollmentTroubleshootingEvent"
_Built = tuple[Any, list[ExpectedRecord], bytes | None]  # JSON value, expectations, key


@lru_cache(maxsize=1 << 14)
def _second(s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(_EPOCH + s))


def _iso(ms: int) -> str:
    return f"{_second(ms // 1000)}{ms % 1000:03d}Z"


def _pick(rng: Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


def _uuid(rng: Random) -> str:  # a uuid4 drawn from the seeded generator
    n = (rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4 << 76) | (0x8 << 60)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class _Device:
    key: bytes
    os: str
    etype: str  # camelCase deviceEnrollmentType
    dw: dict[str, tuple[str, ...]]  # DW reasons per member that fit this platform
    props: dict[str, str]  # fixed part of a log row's properties (ids, tenant, OS)


class _Gen:
    def __init__(self, seed: int, bad_ratio: float) -> None:
        self.rng = rng = Random(seed)
        self.bad_ratio, self.n_bad, self.devices = bad_ratio, 0, list[_Device]()
        # one tenant (an Event Hub carries one tenant's logs) and a fixed pool of its devices,
        # which fail repeatedly as in real tenants
        tenant, account, unit = _uuid(rng), _uuid(rng), f"AMSUB0{rng.randrange(100, 1000)}"
        for _ in range(2048):
            os_name, versions, types = _OS[bisect(_OS_CUM, rng.random() * 100)]
            intune, aad, user = _uuid(rng), _uuid(rng), _uuid(rng)
            version, etype = _pick(rng, versions), _pick(rng, types)
            props = {"AADDeviceId": aad, "IntuneDeviceId": intune, "IntuneAccountId": account,
                     "IntuneUserId": user, "AADTenantId": tenant,
                     "OperationalLogCategory": "DeviceEnrollment", "ScenarioName": _SCENARIO,
                     "ScaleUnit": unit, "Os": os_name, "OsVersion": version,
                     "EnrollmentType": etype[0].upper() + etype[1:]}
            dw = _DW_BY if os_name in ("iOS", "macOS") else _DW_NOT_APPLE
            self.devices.append(_Device(intune.encode(), os_name, etype, dw, props))
        self.builders: dict[str, Callable[[int], _Built]] = {
            "eventhubs_envelope": self._envelope, "la_row": lambda t: self._la_row(t, False),
            "la_row_json_properties": lambda t: self._la_row(t, True),
            "graph_event": lambda t: self._graph_event(t, False),
            "graph_event_beta": lambda t: self._graph_event(t, True),
            "graph_page": self._page, "flat": self._flat, "hresult_text": self._hresult,
            "autopilot_event": self._autopilot, "graph_other_type": self._other_type,
            "export_row": self._export_row}
        self.windows = [d for d in self.devices if d.os == "Windows"]
        self.shapes, self.cum = tuple(SHAPE_WEIGHTS), tuple(accumulate(SHAPE_WEIGHTS.values()))

    def message(self, index: int) -> SampleMessage:
        rng, t = self.rng, index * 1500  # event time: epoch + 1.5 s per message
        if rng.random() < self.bad_ratio:
            shape = UNREADABLE_SHAPES[self.n_bad % len(UNREADABLE_SHAPES)]  # round robin
            self.n_bad += 1
            key = self._device().key if shape.endswith("tombstone") or rng.random() < .5 else None
            return SampleMessage(key, _pick(rng, _UNREADABLE[shape]), (_DEAD,), shape)
        shape = self.shapes[bisect(self.cum, rng.random() * self.cum[-1])]
        obj, expected, key = self.builders[shape](t)
        return SampleMessage(key, orjson.dumps(obj), tuple(expected), shape)

    def _device(self) -> _Device:
        return self.devices[self.rng.getrandbits(11)]

    def _evidence(self, dev: _Device | None, hresults: bool) -> tuple[str, Any, str | None]:
        """Pick the expected member, then evidence for it: (member, DW name | code | None, hint)."""
        rng = self.rng
        member = MEMBERS[bisect(_MEMBER_CUM, rng.random() * _MEMBER_CUM[-1])]
        if rng.random() < 0.25:
            return member, None, None
        opts: tuple[Any, ...] = (_DW_BY if dev is None else dev.dw)[member]
        if hresults and dev is not None and dev.os == "Windows":
            opts += _HR_BY[member]
        if not opts:
            return member, None, None
        ev = _pick(rng, opts)
        return member, ev, ev if isinstance(ev, str) else f"0x{ev:08X}"

    def _category(self, member: str, ev: Any, named: Callable[[str], Any],
                  uninformative: tuple[Any, ...]) -> Any:
        """A category value that keeps the expectation `member` true, given evidence `ev`."""
        if member != "unknown" and (ev is None or self.rng.random() < 0.6):
            return named(member)
        return _pick(self.rng, uninformative + (_FUTURE if ev is None else ()))

    def _flat_category(self, member: str, ev: Any) -> Any:
        return self._category(member, ev, lambda m: _pick(self.rng, _SPELL[m]), _FLAT_UNKNOWN)

    def _hr_text(self, code: int, sentence_only: bool) -> str:
        r = self.rng.randrange(4 if sentence_only else 11)
        if r < 4:
            name, h = HRESULTS[code][1], f"0x{code:08x}" if r % 2 else f"0x{code:08X}"
            return _SENTENCES[r].format(h=h, n=name) if name else f"Enrollment failed: {h}"
        return (f"0x{code:08x}", f"0X{code:08X}", f"0x{code:08X}", f"{code:08x}", f"{code:08X}",
                str(code), str(code - (1 << 32)))[r - 4]

    def _la_row(self, t: int, json_props: bool) -> _Built:
        rng, dev = self.rng, self._device()
        if success := rng.random() < 0.35:
            cat, reason, exp = "Not Applicable", ("None", "Unknown")[rng.getrandbits(1)], _SUCCESS
        else:
            member, ev, hint = self._evidence(dev, hresults=False)
            reason = ev or "Unknown"
            cat = self._category(member, ev, _PASCAL.__getitem__, ("Unknown",))
            exp = ExpectedRecord("classified", member, hint)
        props = {**dev.props, "MessageId": _uuid(rng), "FailureReason": reason,
                 "EnrollmentTimeUTC": _iso(t - rng.getrandbits(16)), "FailureCategory": cat}
        row = {"time": _iso(t), "tenantId": dev.props["AADTenantId"], "category": "OperationalLogs",
               "operationName": "Enrollment", "resultType": "Success" if success else "Fail",
               "properties": orjson.dumps(props).decode() if json_props else props}
        return row, [exp], dev.key

    def _envelope_row(self, t: int) -> _Built:
        r = self.rng.random()
        if r < 0.10:
            return self._esp_row(t)
        if r < 0.16:
            return self._compliance_row(t)
        return self._la_row(t, self.rng.random() < 0.3)

    def _envelope(self, t: int) -> _Built:
        rng = self.rng
        built = [self._envelope_row(t + i * 7) for i in range(rng.randint(1, 20))]
        rows, expected = [r for r, _, _ in built], [e[0] for _, e, _ in built]
        if rng.random() < self.bad_ratio:
            i, kind = rng.randrange(len(rows)), rng.randrange(4)
            props = rows[i]["properties"]
            text = props if isinstance(props, str) else orjson.dumps(props).decode()
            # the last kind: a failed row whose properties are truncated (invalid) JSON
            bad = {**rows[i], "resultType": "Fail", "properties": text[: len(text) // 2]}
            rows[i], expected[i] = ("corrupted record", 42, [1, 2], bad)[kind], _DEAD
        return {"records": rows}, expected, None

    def _graph_event(self, t: int, beta: bool, odata: bool = False) -> _Built:
        rng, dev = self.rng, self._device()
        member, ev, hint = self._evidence(dev, hresults=True)
        reason = (ev if isinstance(ev, str) else self._hr_text(ev, True) if ev is not None
                  else _pick(rng, (*_FREE_TEXT, None)))
        event: dict[str, Any] = {"@odata.type": _ETE} if odata or beta or rng.random() < .4 else {}
        ids = dev.props
        event |= {"id": _uuid(rng), "eventDateTime": _iso(t), "correlationId": _uuid(rng),
                  "managedDeviceIdentifier": ids["IntuneDeviceId"], "operatingSystem": dev.os,
                  "osVersion": ids["OsVersion"], "userId": ids["IntuneUserId"],
                  "deviceId": ids["AADDeviceId"],
                  "enrollmentType": "unknownFutureValue"
                  if not beta and dev.etype.startswith(_BETA_ONLY_TYPES) else dev.etype,
                  "failureCategory": self._category(member, ev, str, ("unknown",)),
                  "failureReason": reason}
        if beta:
            event["troubleshootingErrorDetails"] = {
                "context": "Device enrollment", "failure": _pick(rng, _FREE_TEXT),
                "failureDetails": _pick(rng, _FREE_TEXT), "remediation": "Review the details.",
                "resources": [{"text": "Troubleshoot device enrollment in Intune",
                               "link": "https://learn.microsoft.com/troubleshoot/mem/intune/"}]}
            event["additionalInformation"] = [{"name": "ScaleUnit", "value": ids["ScaleUnit"]}]
        return event, [ExpectedRecord("classified", member, hint)], dev.key

    def _esp_row(self, t: int) -> _Built:
        rng, dev = self.rng, _pick(self.rng, self.windows)
        success = rng.random() < 0.6
        props = {"MessageId": _uuid(rng), "DeviceName": f"CONTOSO-{dev.key[:8].decode().upper()}",
                 "DeviceId": dev.props["IntuneDeviceId"], "AADTenantId": dev.props["AADTenantId"],
                 "IsAutopilot": ("True", "False")[rng.random() < 0.2],
                 "Status": "Completed" if success else "Failed",
                 "TimeDiff": str(rng.randrange(300, 7200)),
                 "DidUserReachDesktop": ("True", "False")[not success and rng.random() < .5],
                 "Version": "1", "EnrollmentTypeMessage": "AutopilotAzureADJoin",
                 "ESPPolicyName": _pick(rng, _ESP_PROFILES)}
        if not success:
            props["FailureReason"] = "Timeout"
        row = {"time": _iso(t), "tenantId": dev.props["AADTenantId"], "category": "OperationalLogs",
               "operationName": "ESPEnrollment", "resultType": "Success" if success else "Fail",
               "properties": props}
        exp = _SUCCESS if success else ExpectedRecord("classified", "clientDisconnected",
                                                      phase="enrollmentStatusPage")
        return row, [exp], dev.key

    def _compliance_row(self, t: int) -> _Built:
        dev = self._device()
        props = {"AlertDisplayName": "Device is not compliant", "AlertType": "NonCompliant",
                 "Description": "The device does not meet the compliance policy.",
                 "DeviceHostName": f"host-{dev.key[:6].decode()}", "DeviceName": "device",
                 "DeviceOperatingSystem": dev.os, "UserName": "user",
                 "OperationalLogCategory": "DeviceCompliance"}
        row = {"time": _iso(t), "tenantId": dev.props["AADTenantId"], "category": "OperationalLogs",
               "operationName": "Compliance", "resultType": "None", "properties": props}
        return row, [_NOT_ENROLLMENT], dev.key

    def _autopilot(self, t: int) -> _Built:
        rng, dev = self.rng, _pick(self.rng, self.windows)
        state, _, outcome = _DEPLOYMENT[bisect(_DEPLOYMENT_CUM, rng.random() * _DEPLOYMENT_CUM[-1])]
        event: dict[str, Any] = {"@odata.type": _APE} if rng.random() < 0.7 else {}
        setup = {"success": "success", "inProgress": "inProgress"}.get(state, state)
        event |= {
            "id": _uuid(rng), "eventDateTime": _iso(t), "deviceId": dev.props["IntuneDeviceId"],
            "deviceSerialNumber": f"PF{rng.getrandbits(32):08X}",
            "enrollmentType": _pick(rng, _AUTOPILOT_TYPES),
            "userPrincipalName": f"user{rng.getrandbits(16)}@contoso.example",
            "osVersion": dev.props["OsVersion"], "managedDeviceName": "CONTOSO-AP",
            "enrollmentState": "enrolled", "deploymentState": state,
            "deviceSetupStatus": setup if state != "successWithTimeout" else "successWithTimeout",
            "accountSetupStatus": "notAttempted" if state == "inProgress" else setup,
            "enrollmentFailureDetails": None,
            "windowsAutopilotDeploymentProfileDisplayName": "Contoso user-driven",
            "windows10EnrollmentCompletionPageConfigurationDisplayName": _pick(rng, _ESP_PROFILES),
            "deploymentDuration": f"PT{rng.randrange(5, 90)}M{rng.randrange(60)}S"}
        if outcome != "classified":
            return event, [ExpectedRecord(outcome, None)], dev.key
        phase = _pick(rng, _PHASES)
        event |= {"deviceSetupStatus": "failure" if phase == "deviceSetupStatus" else "success",
                  "accountSetupStatus": "failure" if phase == "accountSetupStatus"
                  else "notAttempted"}
        member, hint = "unknown", None
        if rng.random() < 0.6:
            code = _pick(rng, _HR_CODES)
            member, hint = HRESULTS[code][0], f"0x{code:08X}"
            event["enrollmentFailureDetails"] = self._hr_text(code, True)
        else:
            event["enrollmentFailureDetails"] = _pick(rng, (*_FREE_TEXT, None))
        return event, [ExpectedRecord("classified", member, hint,
                                      phase.removesuffix("Status"))], dev.key

    def _other_type(self, t: int) -> _Built:
        event, _, key = self._graph_event(t, False)
        return {**event, "@odata.type": _pick(self.rng, _OTHER_TYPES)}, [_NOT_ENROLLMENT], key

    def _export_row(self, t: int) -> _Built:
        rng, dev = self.rng, self._device()
        os_code, os_text = _EXPORT_OS[dev.os]
        method = _pick(rng, _EXPORT_METHODS)
        common = {"EnrollmentMethod": str(method[0]), "EnrollmentMethod_loc": method[1],
                  "OS": str(os_code), "OS_loc": os_text, "OSVersion": dev.props["OsVersion"],
                  "UPN": f"user{rng.getrandbits(16)}@contoso.example",
                  "UserId": dev.props["IntuneUserId"]}
        member, ev, hint = self._evidence(dev, hresults=False)
        named = self._category(member, ev, _PASCAL.__getitem__, ("",))
        if rng.random() < 0.2:  # DeviceEnrollmentFailures: failures only
            row = {"FailureGuid": _uuid(rng), "EnrollmentFailureDateTime": _iso(t), **common,
                   "FailureReason": str(rng.randrange(1, 30)),
                   "FailureReason_loc": ev if ev is not None else named}
            return row, [ExpectedRecord("classified", member, hint)], dev.key
        row = {"EnrollmentActivityId": _uuid(rng), "EnrollmentDateTime": _iso(t), **common,
               "DeviceId": dev.props["IntuneDeviceId"], "AadDeviceId": dev.props["AADDeviceId"],
               "DeviceName": "device", "SerialNumber": f"SN{rng.getrandbits(32):08X}",
               "OwnerType": "1", "OwnerType_loc": "Corporate", "UserId": dev.props["IntuneUserId"],
               "Context": ""}
        if rng.random() < 0.75:  # a successful enrollment: the failure columns are empty
            row |= {"Failure": "", "Failure_loc": "", "FailureReason": "0",
                    "FailureReason_loc": "None", "FailureDetails": "", "Remediation": ""}
            return row, [_SUCCESS], dev.key
        row |= {"Failure": str(rng.randrange(1, 30)) if ev else "",
                "Failure_loc": ev or "", "FailureReason": str(rng.randrange(1, 12)),
                "FailureReason_loc": named,
                "FailureDetails": "" if ev else _pick(rng, _FREE_TEXT),
                "Remediation": "" if rng.random() < 0.5 else
                "See the documentation: https://learn.microsoft.com/mem/intune/enrollment/"}
        return row, [ExpectedRecord("classified", member, hint)], dev.key

    def _page(self, t: int) -> _Built:
        rng, beta = self.rng, self.rng.random() < 0.3
        url = f"{_GRAPH}{'beta' if beta else 'v1.0'}/"
        built = [self._graph_event(t + i * 13, beta, True) for i in range(rng.randint(1, 10))]
        page: dict[str, Any] = {
            "@odata.context": f"{url}$metadata#deviceManagement/troubleshootingEvents",
            "value": [e for e, _, _ in built]}
        if rng.random() < 0.5:
            page["@odata.nextLink"] = (f"{url}deviceManagement/troubleshootingEvents"
                                       f"?$skiptoken={rng.getrandbits(64):016x}")
        return page, [e[0] for _, e, _ in built], None

    def _flat(self, t: int) -> _Built:
        member, ev, hint = self._evidence(None, hresults=False)
        cat = self._flat_category(member, ev)
        reason = ev if ev is not None else _pick(self.rng, (*_FREE_TEXT, "Unknown", _MISSING))
        if cat is _MISSING and reason is _MISSING:
            reason = _FREE_TEXT[0]
        obj = {k: v for k, v in (("failureCategory", cat), ("failureReason", reason))
               if v is not _MISSING}
        return obj, [ExpectedRecord("classified", member, hint)], None

    def _hresult(self, t: int) -> _Built:
        rng, code = self.rng, _pick(self.rng, _HR_CODES)
        member, key = HRESULTS[code][0], None
        cat = self._flat_category(member, code)
        obj: dict[str, Any] = {} if cat is _MISSING else {"failureCategory": cat}
        obj["failureReason"] = self._hr_text(code, False)
        if rng.random() < 0.5:  # forwarded from a device log, with the device's identity
            dev = self._device()
            obj |= {"managedDeviceIdentifier": dev.props["IntuneDeviceId"],
                    "operatingSystem": "Windows", "osVersion": _pick(rng, _OS[0][1]),
                    "eventDateTime": _iso(t)}
            key = dev.key
        return obj, [ExpectedRecord("classified", member, f"0x{code:08X}")], key


def generate(count: int, *, seed: int = 0, bad_ratio: float = 0.01) -> Iterator[SampleMessage]:
    """Yield `count` sample messages, reproducibly for a given seed."""
    if count < 0 or not 0.0 <= bad_ratio <= 1.0:
        raise ValueError("count must be >= 0 and bad_ratio within [0, 1]")
    gen = _Gen(seed, bad_ratio)
    return (gen.message(index) for index in range(count))


def summarize(messages: Iterable[SampleMessage]) -> dict[str, int]:
    """Expected counts: messages, records, each outcome (OUTCOMES), classified.<member>."""
    counts = {"messages": 0, "records": 0} | dict.fromkeys(OUTCOMES, 0) | {
        f"classified.{m}": 0 for m in MEMBERS}
    for message in messages:
        counts["messages"] += 1
        for record in message.expected:
            counts["records"] += 1
            counts[record.outcome] += 1
            if record.category is not None:
                counts[f"classified.{record.category}"] += 1
    return counts


def _emit(messages: Iterable[SampleMessage], out: BinaryIO, skipped: list[int]
          ) -> Iterator[SampleMessage]:
    for message in messages:
        try:  # only values that are valid UTF-8 JSON text (compact: one line) can be written
            orjson.loads(value := message.value or b"")
            out.write(value + b"\n")
            yield message
        except orjson.JSONDecodeError:
            skipped[0] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.dev.samples", description="Write sample Intune enrollment messages "
        "to stdout as JSON Lines, one compact message value per line.",
        epilog="Messages whose value is not valid UTF-8 JSON text (tombstones, empty values, "
        "invalid UTF-8, invalid JSON) cannot be written as a line and are skipped; --summary "
        "counts only the lines written and reports the number skipped.")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bad-ratio", type=float, default=0.01)
    parser.add_argument("--summary", action="store_true",
                        help="print the expected counts as JSON to stderr")
    args = parser.parse_args(argv)
    skipped, out = [0], sys.stdout.buffer
    try:
        counts = summarize(_emit(generate(args.count, seed=args.seed, bad_ratio=args.bad_ratio),
                                 out, skipped))
        out.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    if args.summary:
        sys.stderr.write(orjson.dumps(counts | {"skipped_unwritable": skipped[0]}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
