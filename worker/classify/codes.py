"""Reading error codes the way Microsoft's devices, logs and pages write them.

Reviewed data plus the small readers that apply it; :mod:`worker.classify.normalize` decides
with what these return. Four kinds of knowledge:

* **Protocol wrappers.** Windows enrollment answers a refused request with a SOAP fault whose
  subcode names the cause (MS-MDE2 2.2.10 Faults), and the device's event log prints it as
  ``MDM Enroll: Server Returned Fault/Code/Subcode/Value=(InMaintenance) ...``.
  :data:`FAULT_SUBCODES` maps each documented subcode to a detail reason.
* **Code spellings.** ``0x8018002B``, ``8018002b``, the unsigned decimal ``2149056555``, the
  signed ``-2145910741``, and the mistyped ``0x80180002b`` or ``0x801c003`` that Microsoft's
  own pages print (a doubled or dropped zero): :func:`codes_in` yields every reading, the
  exact one first.
* **Code families.** A code the catalog does not list can still say what kind of failure it
  is: a WinHTTP/WinINet network error under any facility, an ADAL/WAM token error, a TPM
  error, an HTTP status from the enrollment server, an ``MREGISTER`` code that mirrors its
  ``MENROLL`` twin. :data:`FAMILIES` holds those rules, tried in order after exact codes.
* **Context.** Some codes mean different things by scenario (sources in the catalog rows):
  :data:`REFINEMENTS` lets the enrollment type or words in the text pick another detail.

Pure data and functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

# MS-MDE2 2.2.10 and windows/client-management/mobile-device-enrollment: subcode -> detail.
FAULT_SUBCODES: Final[dict[str, str]] = {
    "messageformat": "messageFormatError", "authentication": "deviceAuthenticationError",
    "authorization": "deviceAuthorizationError", "certificaterequest": "certificateRequestError",
    "enrollmentserver": "serverError", "internalservicefault": "serverError",
    "invalidsecurity": "messageFormatError", "devicecapreached": "deviceCap",
    "devicenotsupported": "platformBlocked", "notsupported": "mdmNotSupported",
    "noteligibletorenew": "messageFormatError", "inmaintenance": "accountInMaintenance",
    "userlicense": "userNotLicensed", "invalidenrollmentdata": "enrollmentDataInvalid",
}
# Where a wrapper names the subcode: the event-log line, the SOAP XML, the 1507+ detail block.
_FAULT_WRAPPERS = re.compile(
    r"subcode/value=\(\s*(?:[a-z]+:)?([a-z]+)\s*\)"
    r"|<(?:[a-z]+:)?subcode>\s*<(?:[a-z]+:)?value>\s*(?:[a-z]+:)?([a-z]+)\s*<"
    r"|<errortype>\s*([a-z]+)\s*<", re.IGNORECASE)


def fault_subcode(text: str) -> tuple[str, str] | None:
    """(subcode as written, detail name) of the first known SOAP fault subcode in a wrapper."""
    folded = text.casefold()
    if "subcode" not in folded and "errortype" not in folded:  # the regex is slow on long text
        return None
    for m in _FAULT_WRAPPERS.finditer(text):
        written = m.group(1) or m.group(2) or m.group(3)
        detail = FAULT_SUBCODES.get(written.casefold())
        if detail is not None:
            return written, detail
    return None


# --- code spellings ------------------------------------------------------------------------
# 0x and 7 to 9 hex digits (7 and 9 are typo candidates); 8 bare hex digits that start like
# an error (not inside a GUID or a longer token); 9-10 decimal digits, optionally negative.
_CODE = re.compile(
    r"(?<![0-9a-z.])0x([0-9a-f]{7,9})(?![0-9a-z])"
    r"|(?<![0-9a-z.\-])([89c][0-9a-f]{7})(?![0-9a-z\-])"
    r"|(?<![0-9a-z.])(-?[0-9]{9,10})(?![0-9a-z]|\.[0-9])", re.IGNORECASE)
_AADSTS = re.compile(r"\bAADSTS([0-9]{5,6})\b", re.IGNORECASE)
_DIGIT = re.compile(r"[0-9]")


@dataclass(frozen=True, slots=True)
class CodeReading:
    number: int  # unsigned 32-bit
    exact: bool  # False for a typo repair (doubled or dropped zero)


def codes_in(text: str) -> Iterator[CodeReading]:
    """Every code in the text, in order; a typo yields its repairs, never a guess."""
    if _DIGIT.search(text) is None:  # every spelling has a digit; the full regex is slow
        return
    for m in _CODE.finditer(text):
        hex_digits, bare, decimal = m.groups()
        if decimal is not None:
            value = int(decimal)
            if -(1 << 31) <= value < (1 << 32):
                yield CodeReading(value & 0xFFFFFFFF, True)
            continue
        digits = (hex_digits or bare).lower()
        if len(digits) == 8:
            yield CodeReading(int(digits, 16), True)
        else:
            for repaired in _zero_repairs(digits):
                yield CodeReading(int(repaired, 16), False)


def _zero_repairs(digits: str) -> list[str]:
    """Eight-digit readings of a 9-digit code with one of a run of zeros dropped, or of a
    7-digit code with a run of zeros lengthened: the typos Microsoft's pages show."""
    out: list[str] = []
    if len(digits) == 9:
        out = [digits[:i] + digits[i + 1:] for i in range(1, 9)
               if digits[i] == "0" and digits[i - 1] == "0"]
    elif len(digits) == 7:
        out = [digits[:i] + "0" + digits[i:] for i in range(1, 7)
               if digits[i] == "0" and digits[i - 1] == "0"]
    return list(dict.fromkeys(out))


def aadsts_numbers(text: str) -> Iterator[int]:
    if "aadsts" not in text.casefold():
        return
    for m in _AADSTS.finditer(text):
        yield int(m.group(1))


# Entra ID (AADSTS) sign-in errors: every one is a sign-in failure unless listed here.
# Src: Entra hybrid-join troubleshooting; the co-management 0xcaa9001f article.
AADSTS_DETAILS: Final[dict[int, str]] = {
    50155: "deviceNotAuthenticated", 50034: "userUnknown", 90002: "tenantNotFound",
    53003: "conditionalAccessBlocked", 50126: "signInFailed", 70002: "signInFailed",
}
AADSTS_DEFAULT: Final = "signInFailed"


# --- families ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Family:
    """Codes whose high bits equal ``prefix`` under ``mask`` (and, if given, whose low word
    lies in ``low``) share a meaning. ``detail`` None means "mirror": read the code with
    its facility replaced by ``mirror_of``."""

    label: str  # shown in classification.matched
    mask: int
    prefix: int
    detail: str | None
    low: tuple[int, int] | None = None
    mirror_of: int | None = None


_WINHTTP = (12001, 12200)  # WinHTTP/WinINet error numbers (ERROR_WINHTTP_TIMEOUT = 12002, ...)
FAMILIES: Final[tuple[Family, ...]] = (
    Family("WinINet network error", 0xFFFF0000, 0x80070000, "networkConnectivity", _WINHTTP),
    Family("WinHTTP network error during MDM registration", 0xFFFF0000, 0x80190000,
           "networkConnectivity", _WINHTTP),
    Family("ADAL network error", 0xFFFF0000, 0xCAA80000, "networkConnectivity", _WINHTTP),
    Family("MREGISTER twin of an MENROLL code", 0xFFFF0000, 0x80190000, None, (1, 0x3F),
           0x80180000),
    Family("HTTP status from the enrollment server", 0xFFFF0000, 0x80190000,
           "enrollmentServerHttpError", (100, 599)),
    Family("ADAL/WAM token error", 0xFFF00000, 0xCAA00000, "tokenServiceError"),
    Family("Autopilot TPM attestation error", 0xFFFFF000, 0x81039000, "tpmAttestationFailed"),
    Family("TPM error", 0xFFFE0000, 0x80280000, "tpmNotSupported"),
)


def family_of(number: int) -> tuple[Family, int | None] | None:
    """The first family the code belongs to, with the mirrored code for a mirror family."""
    for f in FAMILIES:
        if number & f.mask != f.prefix:
            continue
        low = number & 0xFFFF
        if f.low is not None and not f.low[0] <= low <= f.low[1]:
            continue
        mirrored = None if f.mirror_of is None else f.mirror_of | (number & ~f.mask)
        return f, mirrored
    return None


# --- context -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Refinement:
    """When a code's detail is ``base``, pick ``detail`` instead if the event's enrollment
    type (folded) is one of ``enrollment_types`` or the text has one of ``stems`` (from the
    start of a word, in :func:`worker.classify.catalog.words` form)."""

    base: str
    detail: str
    enrollment_types: tuple[str, ...]
    stems: tuple[str, ...]


REFINEMENTS: Final[tuple[Refinement, ...]] = (
    # Autopilot profiles: with pre-provisioning not allowed, the technician flow fails with
    # 0x80180005, which elsewhere is a generic server error.
    Refinement("serverError", "preProvisioningNotAllowed",
               ("azureadjoinedwithwhiteglove", "offlinedomainjoinedwithwhiteglove"),
               (" pre provision", " preprovision", " white glove", " technician")),
    # 0x8018000A (2149056522) is "another user enrolled or joined the device" unless the text
    # says another MDM holds it. The enrollment type alone does not tell: a co-managed or
    # auto-enrolled device can just as well carry a previous user's enrollment.
    Refinement("deviceAlreadyEnrolled", "existingManagementProfile", (),
               (" another mdm", " other mdm", " mdm solution", " mdm provider",
                " third party mdm")),
)


# --- where to look, for a code the catalog cannot name -------------------------------------
# (mask, prefix, where): the first match says which log or reference explains the code.
WHERE_TO_LOOK: Final[tuple[tuple[int, int, str], ...]] = (
    (0xFFFE0000, 0x80180000, "an MDM enrollment error: look it up in Windows' MDM registration "
     "error values and the DeviceManagement-Enterprise-Diagnostics-Provider Admin log"),
    (0xFFFF0000, 0x801C0000, "an Entra device registration error: run dsregcmd /status on the "
     "device and read the User Device Registration event log"),
    (0xFFF00000, 0xCAA00000, "an Entra token (ADAL/WAM) error: read the AAD Operational event "
     "log for the server error code"),
    (0xFFFF0000, 0x80CF0000, "a legacy Intune PC client error: see the client software error "
     "table in the enrollment troubleshooting article"),
    (0xFFFF0000, 0x81030000, "a Windows Autopilot client error: collect MdmDiagnosticsTool "
     "-area Autopilot;TPM output"),
    (0xFFFF0000, 0x80070000, "a Win32 error: 'certutil -error' on a Windows machine names it"),
)


def where_to_look(number: int) -> str | None:
    for mask, prefix, where in WHERE_TO_LOOK:
        if number & mask == prefix:
            return where
    return None
