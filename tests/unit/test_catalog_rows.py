"""One row per piece of knowledge in worker/classify/catalog.py, written from the reference table.

Adding a code, name or phrase to the catalog without a row here fails
``test_every_catalog_entry_has_a_test_row``.
"""

from __future__ import annotations

import pytest

from tests.helpers import one_event
from worker.classify import catalog
from worker.classify.taxonomy import FailureCategory

# (HRESULT, detail reason, category) from shared/reference/enrollment-failures.md section 4.1
# and the mapping table. For "(judgment)" rows the judged category is used.
HRESULTS = [
    (0x80180001, "messageFormatError", "badRequest"),
    (0x80180002, "deviceAuthenticationError", "authentication"),
    (0x80180003, "deviceAuthorizationError", "authorization"),
    (0x80180004, "certificateRequestError", "unknown"),
    (0x80180005, "serverError", "unknown"),
    (0x80180006, "serverError", "unknown"),
    (0x80180007, "messageFormatError", "badRequest"),
    (0x80180008, "serverError", "unknown"),
    (0x8018000A, "deviceAlreadyEnrolled", "authorization"),
    (0x80180010, "networkConnectivity", "clientDisconnected"),
    (0x80180013, "deviceCap", "enrollmentRestrictionsEnforced"),
    (0x80180014, "platformBlocked", "enrollmentRestrictionsEnforced"),
    (0x80180015, "mdmNotSupported", "deviceNotSupported"),
    (0x80180016, "messageFormatError", "badRequest"),
    (0x80180017, "accountInMaintenance", "inMaintenance"),
    (0x80180018, "userNotLicensed", "userValidation"),
    (0x80180019, "enrollmentDataInvalid", "badRequest"),
    (0x80180022, "windowsEditionNotSupported", "deviceNotSupported"),
    (0x80180026, "deviceManagementBlocked", "deviceNotSupported"),
    (0x8018002A, "mfaNotCompleted", "clientDisconnected"),
    (0x8018002B, "mdmNotConfigured", "accountValidation"),
    (0x801C0003, "entraJoinNotAllowed", "authorization"),
    (0x801C03EA, "tpmNotSupported", "deviceNotSupported"),
    (0x800705B4, "tpmNotSupported", "deviceNotSupported"),
    (0x8007064C, "staleEnrollmentCertificate", "badRequest"),
    (0x80070774, "hybridJoinAssignUser", "featureNotSupported"),
    (0x80CF3002, "accountInMaintenance", "inMaintenance"),
    # Wider Microsoft error text: the win32 MDM registration values, Entra hybrid-join and
    # co-management troubleshooting, the legacy Intune client table, Autopilot known issues.
    (0x801C0006, "serverError", "unknown"),
    (0x801C0025, "serverError", "unknown"),
    (0x80CF3008, "serverError", "unknown"),
    (0x80043008, "serverError", "unknown"),
    (0x801C03F3, "autopilotDeviceNotFound", "authorization"),
    (0x80180031, "mdmNotConfigured", "accountValidation"),
    (0x8000FFFF, "mdmNotConfigured", "accountValidation"),
    (0xC1036501, "mdmNotConfigured", "accountValidation"),
    (0x80070032, "unsupportedDeviceType", "deviceNotSupported"),
    (0x80CF300B, "unsupportedDeviceType", "deviceNotSupported"),
    (0x8004300B, "unsupportedDeviceType", "deviceNotSupported"),
    (0x8018001C, "windowsEditionNotSupported", "deviceNotSupported"),
    (0x80290407, "tpmNotSupported", "deviceNotSupported"),
    (0x80280036, "tpmNotSupported", "deviceNotSupported"),
    (0x80043002, "accountInMaintenance", "inMaintenance"),
    (0x80180029, "messageFormatError", "badRequest"),
    (0x80CF3009, "staleEnrollmentCertificate", "badRequest"),
    (0x80043009, "staleEnrollmentCertificate", "badRequest"),
    (0x80090016, "staleEnrollmentCertificate", "badRequest"),
    (0x80CF0438, "networkConnectivity", "clientDisconnected"),
    (0x80240438, "networkConnectivity", "clientDisconnected"),
    (0x80CF402C, "networkConnectivity", "clientDisconnected"),
    (0x801C001F, "networkConnectivity", "clientDisconnected"),
    (0xCAA70004, "networkConnectivity", "clientDisconnected"),
    (0xC000023C, "networkConnectivity", "clientDisconnected"),
    (0xC00000BE, "networkConnectivity", "clientDisconnected"),
    (0xC00000C4, "networkConnectivity", "clientDisconnected"),
    (0xC000006D, "signInFailed", "authentication"),
    (0xC000006A, "signInFailed", "authentication"),
    (0x8018000E, "signInFailed", "authentication"),
    (0x8018000F, "signInFailed", "authentication"),
    (0xCAA9001F, "tokenServiceError", "authentication"),
    (0xCAA90017, "tokenServiceError", "authentication"),
    (0xCAA9002C, "tokenServiceError", "authentication"),
    (0xCAA90023, "tokenServiceError", "authentication"),
    (0xCAA20003, "tokenServiceError", "authentication"),
    (0xCAA90014, "tokenServiceError", "authentication"),
    (0xCAA90006, "tokenServiceError", "authentication"),
    (0xCAA1002D, "tokenServiceError", "authentication"),
    (0xCAA9004D, "tokenServiceError", "authentication"),
    (0xCAA10001, "tokenServiceError", "authentication"),
    (0x801C0002, "deviceNotAuthenticated", "authentication"),
    (0x80180028, "authCertificateMissing", "authentication"),
    (0x801C003A, "tenantNotFound", "accountValidation"),
    (0x80CF3003, "accountNotActive", "accountValidation"),
    (0x80043003, "accountNotActive", "accountValidation"),
    (0x80CF0440, "accountNotActive", "accountValidation"),
    (0x81039001, "tpmAttestationFailed", "deviceNotSupported"),
    (0x81039023, "tpmAttestationFailed", "deviceNotSupported"),
    (0x81039024, "tpmAttestationFailed", "deviceNotSupported"),
    (0x80CF4017, "outdatedClient", "badRequest"),
    (0x80CF3001, "outdatedClient", "badRequest"),
    (0x80CF3004, "outdatedClient", "badRequest"),
    (0x80043001, "outdatedClient", "badRequest"),
    (0x80043004, "outdatedClient", "badRequest"),
    (0x80CF0437, "deviceClockWrong", "badRequest"),
    (0x8018000D, "deviceClockWrong", "badRequest"),
    (0x8018001A, "insecureRedirect", "badRequest"),
    (0x8018001B, "enrollmentStateInvalid", "badRequest"),
    (0x80CF3005, "clientRetired", "badRequest"),
    (0x80043005, "clientRetired", "badRequest"),
    (0x80CF3007, "installerFilesMissing", "badRequest"),
    (0x80043007, "installerFilesMissing", "badRequest"),
    (0x80CFD015, "restartPending", "badRequest"),
    (0x8024D015, "restartPending", "badRequest"),
    (0x80070BC2, "restartPending", "badRequest"),
    (0x80070BC9, "restartPending", "badRequest"),
    (0x80180030, "userCancelled", "clientDisconnected"),
    (0x80CF3006, "seatLimitReached", "enrollmentRestrictionsEnforced"),
    (0x80043006, "seatLimitReached", "enrollmentRestrictionsEnforced"),
    (0x80180009, "enrollmentInProgress", "unknown"),
    (0x801C03F2, "entraDirectoryError", "unknown"),
    (0x801C001D, "entraDirectoryError", "unknown"),
]

# Exact reason names: Data Warehouse reasons, Apple codes, MDM symbolic names.
NAMES = [
    ("UserNotLicensed", "userNotLicensed", "userValidation"),
    ("UserUnknown", "userUnknown", "userValidation"),
    ("UserLicenseTypeInvalid", "userNotLicensed", "userValidation"),
    ("BulkAlreadyEnrolledDevice", "bulkAlreadyEnrolledDevice", "authorization"),
    ("EnrollmentOnboardingIssue", "enrollmentOnboardingIssue", "accountValidation"),
    ("MdmAuthorityNotDefined", "enrollmentOnboardingIssue", "accountValidation"),
    ("AppleChallengeIssue", "appleChallengeIssue", "clientDisconnected"),
    ("AppleOnboardingIssue", "appleOnboardingIssue", "accountValidation"),
    ("DeviceCap", "deviceCap", "enrollmentRestrictionsEnforced"),
    ("DeviceCapReached", "deviceCap", "enrollmentRestrictionsEnforced"),
    ("AuthenticationRequirementNotMet", "authenticationRequirementNotMet", "authorization"),
    ("UnsupportedDeviceType", "unsupportedDeviceType", "deviceNotSupported"),
    ("DeviceTypeNotSupported", "unsupportedDeviceType", "deviceNotSupported"),
    ("EnrollmentCriteriaNotMet", "enrollmentCriteriaNotMet", "enrollmentRestrictionsEnforced"),
    ("BulkDeviceNotPreregistered", "bulkDeviceNotPreregistered", "enrollmentRestrictionsEnforced"),
    ("FeatureNotSupported", "featureNotSupported", "featureNotSupported"),
    ("UserAbandonment", "userAbandonment", "userAbandonment"),
    ("APNSCertificateExpired", "apnsCertificateExpired", "accountValidation"),
    ("NoEnrollmentPolicy", "apnsCertificateInvalid", "accountValidation"),
    ("APNSCertificateNotValid", "apnsCertificateInvalid", "accountValidation"),
    ("AccountNotOnboarded", "apnsCertificateInvalid", "accountValidation"),
    ("MENROLL_E_DEVICE_CERTIFICATEREQUEST_ERROR", "certificateRequestError", "unknown"),
    ("MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR", "serverError", "unknown"),
    ("MENROLL_E_DEVICE_AUTHENTICATION_ERROR", "deviceAuthenticationError", "authentication"),
    ("MENROLL_E_DEVICE_AUTHORIZATION_ERROR", "deviceAuthorizationError", "authorization"),
    ("MENROLL_E_DEVICE_ALREADY_ENROLLED", "deviceAlreadyEnrolled", "authorization"),
    ("MENROLL_E_USERLICENSE", "userNotLicensed", "userValidation"),
    ("MENROLL_E_NOTSUPPORTED", "mdmNotSupported", "deviceNotSupported"),
    ("MENROLL_E_DEVICE_MANAGEMENT_BLOCKED", "deviceManagementBlocked", "deviceNotSupported"),
    ("MENROLL_E_INMAINTENANCE", "accountInMaintenance", "inMaintenance"),
    ("MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR", "messageFormatError", "badRequest"),
    ("MENROLL_E_ENROLLMENTDATAINVALID", "enrollmentDataInvalid", "badRequest"),
    ("MENROLL_E_DEVICECAPREACHED", "deviceCap", "enrollmentRestrictionsEnforced"),
    ("MENROLL_E_DEVICENOTSUPPORTED", "platformBlocked", "enrollmentRestrictionsEnforced"),
    ("MENROLL_E_CONNECTIVITY", "networkConnectivity", "clientDisconnected"),
    ("MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR", "certificateRequestError", "unknown"),  # sic
    ("MENROLL_E_DEVICE_INTERNALSERVICE_ERROR", "serverError", "unknown"),
    ("MENROLL_E_DEVICE_UNKNOWN_ERROR", "serverError", "unknown"),
    ("MENROLL_E_MDM_NOT_CONFIGURED", "mdmNotConfigured", "accountValidation"),
    ("MENROLL_E_PLATFORM_LICENSE_ERROR", "windowsEditionNotSupported", "deviceNotSupported"),
    ("MENROLL_E_PROV_CSP_MISC", "windowsEditionNotSupported", "deviceNotSupported"),
    ("MENROLL_E_DEVICE_INVALIDSECURITY_ERROR", "messageFormatError", "badRequest"),
    ("MENROLL_E_EMPTY_MESSAGE", "messageFormatError", "badRequest"),
    ("MREGISTER_E_NOTELIGIBLETORENEW", "messageFormatError", "badRequest"),
    ("MENROLL_E_PASSWORD_NEEDED", "signInFailed", "authentication"),
    ("MENROLL_E_WAB_ERROR", "signInFailed", "authentication"),
    ("MENROLL_E_CERTAUTH_FAILED_TO_FIND_CERT", "authCertificateMissing", "authentication"),
    ("MENROLL_E_DISCOVERY_SEC_CERT_DATE_INVALID", "deviceClockWrong", "badRequest"),
    ("MENROLL_E_INSECUREREDIRECT", "insecureRedirect", "badRequest"),
    ("MENROLL_E_PLATFORM_WRONG_STATE", "enrollmentStateInvalid", "badRequest"),
    ("MENROLL_E_USER_CANCELED", "userCancelled", "clientDisconnected"),
    ("MENROLL_E_ENROLLMENT_IN_PROGRESS", "enrollmentInProgress", "unknown"),
]

# Free-text phrases, embedded in a sentence the way admins and devices report them.
PHRASES = [
    ("Company Portal Temporarily Unavailable", "companyPortalUnavailable", "unknown"),
    ("Bulk token expired", "bulkTokenExpired", "authentication"),
    ("Setup Assistant (legacy)", "legacySetupAssistantMfa", "authentication"),
    ("WS-Trust 1.3", "wsTrustDisabled", "authentication"),
    ("UsernameMixed", "wsTrustDisabled", "authentication"),
    ("Enrollment authorization failed", "deviceAuthorizationError", "authorization"),
    ("Device already enrolled", "deviceAlreadyEnrolled", "authorization"),
    ("Autopilot device or details not found", "autopilotDeviceNotFound", "authorization"),
    ("Autopilot device removed", "autopilotDeviceNotFound", "authorization"),
    ("Autopilot profile not found or not assigned", "autopilotProfileNotAssigned", "authorization"),
    ("Not onboarded into Intune", "enrollmentOnboardingIssue", "accountValidation"),
    ("Apple onboarding", "appleOnboardingIssue", "accountValidation"),
    ("ADE token", "adeTokenInvalid", "accountValidation"),
    ("DEP token", "adeTokenInvalid", "accountValidation"),
    ("User not found or licensed", "userNotLicensed", "userValidation"),
    ("User Name Not Recognized", "userNotLicensed", "userValidation"),
    ("account is not allowed on this phone", "userNotLicensed", "userValidation"),
    ("Device not supported", "unsupportedDeviceType", "deviceNotSupported"),
    ("work profile can't be created", "workProfileNotSupported", "deviceNotSupported"),
    ("work profile cannot be created", "workProfileNotSupported", "deviceNotSupported"),
    ("new MDM payload does not match", "existingManagementProfile", "badRequest"),
    ("Feature not supported", "featureNotSupported", "featureNotSupported"),
    ("Autopilot enrollment method unexpected", "autopilotMethodUnexpected", "featureNotSupported"),
    ("Device cap reached", "deviceCap", "enrollmentRestrictionsEnforced"),
    ("device limit", "deviceCap", "enrollmentRestrictionsEnforced"),
    ("Enrollment restrictions not met", "enrollmentCriteriaNotMet", "enrollmentRestrictionsEnforced"),
    ("Device platform blocked", "platformBlocked", "enrollmentRestrictionsEnforced"),
    ("Invalid Profile", "platformBlocked", "enrollmentRestrictionsEnforced"),
    ("Device version too low", "osVersionBlocked", "enrollmentRestrictionsEnforced"),
    ("Device version too high", "osVersionBlocked", "enrollmentRestrictionsEnforced"),
    ("Device cannot be enrolled as personal", "personalDeviceBlocked", "enrollmentRestrictionsEnforced"),
    ("Device not preregistered", "bulkDeviceNotPreregistered", "enrollmentRestrictionsEnforced"),
    ("iOS/iPadOS Timeout or Failure", "appleChallengeIssue", "clientDisconnected"),
    ("XPC_TYPE_ERROR", "appleNetworkError", "clientDisconnected"),
    ("ESP timeout", "espTimeout", "clientDisconnected"),
    ("Enrollment Status Page timeout", "espTimeout", "clientDisconnected"),
    ("OOBEIDPS", "identityProviderBlocked", "clientDisconnected"),
]


def _spellings(code: int) -> list[str]:
    signed = code - (1 << 32)
    return [f"0x{code:08x}", f"0X{code:08X}", f"0x{code:08X}", f"{code:08X}", f"{code:08x}",
            str(code), str(signed), f"Enrollment failed with error 0x{code:08X}. Retry later."]


@pytest.mark.parametrize(("code", "detail", "category"), HRESULTS,
                         ids=[f"0x{c:08X}" for c, _, _ in HRESULTS])
def test_hresult_in_every_spelling(code: int, detail: str, category: str) -> None:
    for text in _spellings(code):
        event = one_event({"failureReason": text})
        assert (event["failureCategory"], event["detailReason"]) == (category, detail), text
        assert event["classification"]["evidence"] == "hresult"
        assert event["classification"]["matched"] == f"0x{code:08X}"
        assert event["classification"]["confidence"] == "high"


@pytest.mark.parametrize(("name", "detail", "category"), NAMES, ids=[n for n, _, _ in NAMES])
def test_exact_reason_name(name: str, detail: str, category: str) -> None:
    for text in (name, name.upper(), f"  {name.lower()} "):
        event = one_event({"failureReason": text})
        assert (event["failureCategory"], event["detailReason"]) == (category, detail)
        assert event["classification"]["evidence"] == "detail_name"


@pytest.mark.parametrize(("phrase", "detail", "category"), PHRASES, ids=[p for p, _, _ in PHRASES])
def test_phrase_inside_free_text(phrase: str, detail: str, category: str) -> None:
    event = one_event({"failureReason": f"Enrollment stopped: {phrase}. Contact IT."})
    assert (event["failureCategory"], event["detailReason"]) == (category, detail)
    assert event["classification"]["evidence"] == "phrase"
    assert event["classification"]["confidence"] == "medium"


def test_every_catalog_entry_has_a_test_row() -> None:
    codes = {c for c, _, _ in HRESULTS}
    names = {n for n, _, _ in NAMES}
    phrases = {p for p, _, _ in PHRASES}
    for d in catalog.DETAILS:
        assert set(d.codes) <= codes, (d.name, "codes without a test row")
        assert set(d.names) <= names, (d.name, "names without a test row")
        assert set(d.phrases) <= phrases, (d.name, "phrases without a test row")


def test_every_detail_has_remediation_and_a_real_category() -> None:
    for d in catalog.DETAILS:
        assert d.hint.summary.endswith(".") and len(d.hint.summary) > 20, d.name
        assert d.hint.doc and d.hint.doc.startswith("https://"), d.name
        assert isinstance(d.category, FailureCategory)
        assert d.category not in d.also
    for c in FailureCategory:
        hint = catalog.CATEGORY_HINTS[c]
        assert hint.summary and len(hint.steps) >= 2, c.name
