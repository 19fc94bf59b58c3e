"""The one reviewed table of enrollment-failure knowledge.

Everything the classifier knows sits here as plain data: category aliases, detail reasons
with the exact names, Windows HRESULTs and free-text phrases that identify them, and the
remediation an admin can act on. :mod:`worker.classify.normalize` holds no reason strings or codes,
only lookups into these tables.

Adding an error code is one ``codes=`` entry (or one ``Detail`` row) here plus one row in
``tests/unit/test_catalog_rows.py``.

Sources are the facts in ``shared/reference/enrollment-failures.md`` (Graph metadata, the
Intune Data Warehouse reference, Microsoft's enrollment troubleshooting articles). Mappings
marked "judgment" there are defaults no official source states; they are kept here and
flagged with ``judgment=True`` so reviewers can find them. Hint wording is our own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from worker.classify.taxonomy import FailureCategory as C

_LEARN = "https://learn.microsoft.com"
DOC_WINDOWS = f"{_LEARN}/troubleshoot/mem/intune/device-enrollment/troubleshoot-windows-enrollment-errors"
DOC_IOS = f"{_LEARN}/troubleshoot/mem/intune/device-enrollment/troubleshoot-ios-enrollment-errors"
DOC_ANDROID = f"{_LEARN}/troubleshoot/mem/intune/device-enrollment/troubleshoot-android-enrollment"
DOC_GENERAL = f"{_LEARN}/troubleshoot/mem/intune/device-enrollment/troubleshoot-device-enrollment-in-intune"
DOC_RESTRICTIONS = f"{_LEARN}/mem/intune/enrollment/enrollment-restrictions-set"
DOC_APNS = f"{_LEARN}/mem/intune/enrollment/apple-mdm-push-certificate-get"
DOC_MDM_AUTHORITY = f"{_LEARN}/mem/intune/fundamentals/mdm-authority-set"
DOC_LICENSES = f"{_LEARN}/mem/intune/fundamentals/licenses-assign"
DOC_REPORTS = f"{_LEARN}/mem/intune/enrollment/view-enrollment-reports"
DOC_MDM_ERRORS = f"{_LEARN}/windows/win32/mdmreg/mdm-registration-constants"
DOC_SERVICE_HEALTH = f"{_LEARN}/mem/intune/fundamentals/service-health"
DOC_AUTOPILOT = f"{_LEARN}/autopilot/troubleshooting-faq"
DOC_AUTOPILOT_KNOWN = f"{_LEARN}/autopilot/known-issues"
DOC_AUTOPILOT_PROFILES = f"{_LEARN}/autopilot/profiles"
DOC_AUTOPILOT_NETWORK = f"{_LEARN}/autopilot/networking-requirements"
DOC_HYBRID_JOIN = f"{_LEARN}/entra/identity/devices/troubleshoot-hybrid-join-windows-current"
DOC_COMANAGEMENT = f"{_LEARN}/mem/configmgr/comanage/how-to-monitor"
DOC_SIGN_IN_LOGS = f"{_LEARN}/entra/identity/monitoring-health/concept-sign-ins"
DOC_MACOS = f"{_LEARN}/troubleshoot/mem/intune/device-enrollment/troubleshoot-macos-vm-enrollment"
DOC_ANDROID_DA = f"{_LEARN}/mem/intune/enrollment/android-move-device-admin-work-profile"


@dataclass(frozen=True, slots=True)
class Hint:
    """One remediation hint: a sentence an admin can act on, steps, and a doc link."""

    summary: str
    steps: tuple[str, ...] = ()
    doc: str | None = None


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: rows are unique, keys of caches
class Detail:
    """A detail reason under one category, with the evidence that identifies it."""

    name: str  # camelCase, stable: it is part of the output contract
    category: C
    description: str
    hint: Hint
    names: tuple[str, ...] = ()  # exact reason values seen on the wire (DW, log rows, Apple)
    codes: tuple[int, ...] = ()  # Windows HRESULTs, as unsigned 32-bit integers
    phrases: tuple[str, ...] = ()  # text found inside free-form messages
    also: tuple[C, ...] = ()  # other categories the service may legitimately report for it
    judgment: bool = False  # True where no official source states the category


CATEGORY_HINTS: dict[C, Hint] = {
    C.unknown: Hint(
        "Look the message or code up where it was logged, then retry once; a support case comes last.",
        ("Open the user's row in Intune's Enrollment failures report: its failure details and remediation are Microsoft's own.",
         "Read the device's log: on Windows, Event Viewer > DeviceManagement-Enterprise-Diagnostics-Provider > Admin; elsewhere, the Company Portal logs.",
         "Retry after a few minutes: server-side faults are often transient; update or reinstall Company Portal.",
         "If it keeps failing unexplained, open a Microsoft support case citing the correlation id, user and time."),
        DOC_REPORTS),
    C.authentication: Hint(
        "Make sure the user can sign in to Microsoft Entra ID and that MFA or Conditional Access does not block enrollment.",
        ("Confirm the account exists, is synced and can sign in to Entra ID.",
         "Review Conditional Access and MFA policies that apply to the enrollment apps.",
         "For ADE, use Setup Assistant with modern authentication.",
         "Recreate expired provisioning packages or bulk tokens."),
        DOC_GENERAL),
    C.authorization: Hint(
        "Allow this user to join or register the device, and clear any previous enrollment of it.",
        ("In Entra ID device settings, allow users to join or register devices.",
         "Remove the earlier user's enrollment or the stale device record.",
         "For Autopilot, re-import the hardware hash and assign a deployment profile.",
         "Update Company Portal; non-admin users should enroll through Autopilot or OOBE."),
        DOC_WINDOWS),
    C.accountValidation: Hint(
        "Fix the tenant's enrollment setup: MDM authority, Apple push certificate, MDM user scope or UPN suffix.",
        ("Set the MDM authority to Intune.",
         "Renew (do not replace) the Apple MDM push certificate with the same Apple ID, then renew ADE tokens.",
         "Set the MDM user scope to All or Some and restore the default MDM URLs.",
         "Replace non-routable UPN suffixes (such as .local) and re-sync."),
        DOC_MDM_AUTHORITY),
    C.userValidation: Hint(
        "Give the user an Intune licence and make sure the account exists and is in the targeted groups.",
        ("Assign an Intune or Microsoft 365 licence that includes Intune.",
         "Confirm the user exists in Entra ID and the UPN matches on-premises.",
         "Add the user to the groups the enrollment policies target.",
         "Retry once the licence has propagated."),
        DOC_LICENSES),
    C.deviceNotSupported: Hint(
        "The device, OS version or edition cannot be managed: upgrade it or remove what blocks MDM.",
        ("Check the OS version and edition against Intune's minimums; upgrade Windows Home to Pro or later.",
         "Autopilot self-deploying mode needs a physical TPM 2.0 with current firmware.",
         "Remove conflicting management: the legacy PC agent, another MDM, or a GPO that blocks MDM.",
         "Move Android device administrator devices to Android Enterprise."),
        DOC_WINDOWS),
    C.inMaintenance: Hint(
        "The Intune account is in maintenance: check service health and retry later.",
        ("Check Intune service health and the message center.",
         "Ask users to retry later.",
         "Open a support case if it lasts."),
        DOC_SERVICE_HEALTH),
    C.badRequest: Hint(
        "Clear old management state from the device (profiles, certificates, work accounts) and enroll again.",
        ("Remove old management profiles, enrollment certificates and work accounts, then re-enroll.",
         "Update the OS and Company Portal.",
         "Check the device clock and time zone.",
         "Reset devices that were cloned or previously managed."),
        DOC_GENERAL),
    C.featureNotSupported: Hint(
        "The enrollment method or setting is not supported for this tenant or licence: switch method or profile setting.",
        ("Confirm the enrollment method is supported for the tenant and licence.",
         "Change the method or profile setting (for example drop 'Assign user' for hybrid Autopilot).",
         "Check whether the feature is still rolling out to the tenant."),
        DOC_GENERAL),
    C.enrollmentRestrictionsEnforced: Hint(
        "An enrollment restriction blocked the device: find the effective restriction for the user and adjust it.",
        ("Find the effective enrollment restriction (by priority) for the user.",
         "Delete stale devices, raise the device limit (max 15) or use a device enrollment manager account.",
         "Allow the platform, OS version range or personal ownership, or upload corporate identifiers.",
         "Retry about 15 minutes after the change."),
        DOC_RESTRICTIONS),
    C.clientDisconnected: Hint(
        "The client timed out or was cancelled: check network access to Intune and ask the user to finish promptly.",
        ("Check proxy and firewall access to Intune, Entra ID, Apple and Google endpoints.",
         "Tell the user to finish enrollment promptly and answer MFA prompts.",
         "Review Enrollment Status Page timeouts and blocking apps.",
         "Retry on another network."),
        DOC_GENERAL),
    C.userAbandonment: Hint(
        "The user left enrollment unfinished: send guidance and simplify the step where users drop off.",
        ("Send the user step-by-step enrollment guidance.",
         "Find the step where users drop off (for example terms of use) and simplify it.",
         "Consider ADE, Autopilot or DEM-assisted enrollment for these users."),
        DOC_REPORTS),
}


def _d(name: str, category: C, description: str, summary: str, *steps: str,
       doc: str | None = None, names: tuple[str, ...] = (), codes: tuple[int, ...] = (),
       phrases: tuple[str, ...] = (), also: tuple[C, ...] = (), judgment: bool = False) -> Detail:
    return Detail(name, category, description, Hint(summary, steps, doc), names, codes,
                  phrases, also, judgment)


DETAILS: tuple[Detail, ...] = (
    # --- unknown (0) ---
    _d("certificateRequestError", C.unknown, "The enrollment certificate request failed.",
       "Check the certificate template permissions and that the CA is reachable.",
       doc=DOC_MDM_ERRORS, codes=(0x80180004,),
       names=("MENROLL_E_DEVICE_CERTIFICATEREQUEST_ERROR", "MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR")),
    _d("serverError", C.unknown, "A generic enrollment server failure.",
       "This is usually transient: retry, and open a support case if it persists.",
       doc=DOC_MDM_ERRORS, codes=(0x80180005, 0x80180006, 0x80180008, 0x801C0006, 0x801C0025, 0x80CF3008, 0x80043008),
       names=("MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR", "MENROLL_E_DEVICE_INTERNALSERVICE_ERROR",
              "MENROLL_E_DEVICE_UNKNOWN_ERROR")),
    _d("companyPortalUnavailable", C.unknown, "Company Portal reported it is temporarily unavailable.",
       "Update or reinstall Company Portal, and check the user's device count.",
       doc=DOC_IOS, phrases=("Company Portal Temporarily Unavailable",)),
    # --- authentication (1) ---
    _d("deviceAuthenticationError", C.authentication, "The user was not recognised or had no Entra token.",
       "Make sure the user can sign in to Entra ID with the same account on the device.",
       doc=DOC_WINDOWS, codes=(0x80180002,), names=("MENROLL_E_DEVICE_AUTHENTICATION_ERROR",)),
    _d("bulkTokenExpired", C.authentication, "The bulk enrollment token or provisioning package expired.",
       "Create a new provisioning package or bulk enrollment token.",
       doc=DOC_GENERAL, phrases=("Bulk token expired",), judgment=True),
    _d("legacySetupAssistantMfa", C.authentication, "ADE sign-in blocked by MFA under the legacy Setup Assistant.",
       "Switch the ADE profile to Setup Assistant with modern authentication.",
       doc=DOC_IOS, phrases=("Setup Assistant (legacy)",)),
    _d("wsTrustDisabled", C.authentication, "User-affinity ADE needs WS-Trust 1.3 UsernameMixed.",
       "Enable the WS-Trust 1.3 UsernameMixed endpoint on the federation service.",
       doc=DOC_IOS, phrases=("WS-Trust 1.3", "UsernameMixed")),
    # --- authorization (2) ---
    _d("deviceAuthorizationError", C.authorization, "The user is not allowed to enroll devices.",
       "Allow the user to enroll: check Entra device settings, the device limit and platform restrictions.",
       doc=DOC_WINDOWS, codes=(0x80180003,), names=("MENROLL_E_DEVICE_AUTHORIZATION_ERROR",),
       phrases=("Enrollment authorization failed",)),
    _d("authenticationRequirementNotMet", C.authorization,
       "The enrollment service could not authorize the request.",
       "Check that the user may enroll and update Company Portal; older versions fail authorization.",
       doc=DOC_GENERAL, names=("AuthenticationRequirementNotMet",)),
    _d("bulkAlreadyEnrolledDevice", C.authorization, "Another user already enrolled this device.",
       "Remove the previous user's enrollment or device record before this user enrolls.",
       doc=DOC_GENERAL, names=("BulkAlreadyEnrolledDevice",), judgment=True),
    _d("deviceAlreadyEnrolled", C.authorization, "Another user enrolled or joined this device.",
       "Remove the other user's work account from the device, then enroll again.",
       doc=DOC_WINDOWS, codes=(0x8018000A,), names=("MENROLL_E_DEVICE_ALREADY_ENROLLED",),
       phrases=("Device already enrolled",), judgment=True),
    _d("entraJoinNotAllowed", C.authorization,
       "Entra registration refused the device (device limit, platform block, edition or join setting).",
       "Check 'Users may join devices', the per-user device limit, the Windows (MDM) platform restriction and the edition.",
       doc=DOC_WINDOWS, codes=(0x801C0003,),
       also=(C.enrollmentRestrictionsEnforced, C.deviceNotSupported)),
    _d("autopilotDeviceNotFound", C.authorization, "The Autopilot device record is missing or was removed.",
       "Re-import the device's hardware hash into Autopilot and wait for the profile to be assigned.",
       doc=DOC_AUTOPILOT, phrases=("Autopilot device or details not found", "Autopilot device removed"), codes=(0x801C03F3,),
       judgment=True),
    _d("autopilotProfileNotAssigned", C.authorization, "No Autopilot deployment profile is assigned.",
       "Assign an Autopilot deployment profile to a group that contains the device.",
       doc=DOC_AUTOPILOT, phrases=("Autopilot profile not found or not assigned",), judgment=True),
    # --- accountValidation (3) ---
    _d("enrollmentOnboardingIssue", C.accountValidation, "The MDM authority is not configured.",
       "Set the tenant's MDM authority to Intune.",
       doc=DOC_MDM_AUTHORITY, names=("EnrollmentOnboardingIssue", "MdmAuthorityNotDefined"),
       phrases=("Not onboarded into Intune",)),
    _d("appleOnboardingIssue", C.accountValidation, "An Apple MDM push certificate is required.",
       "Upload an Apple MDM push certificate before enrolling Apple devices.",
       doc=DOC_APNS, names=("AppleOnboardingIssue",), phrases=("Apple onboarding",)),
    _d("apnsCertificateExpired", C.accountValidation, "The Apple MDM push certificate expired.",
       "Renew the Apple MDM push certificate with the same Apple ID; replacing it forces every Apple device to re-enroll.",
       doc=DOC_APNS, names=("APNSCertificateExpired",)),
    _d("apnsCertificateInvalid", C.accountValidation, "The Apple MDM push certificate is missing or invalid.",
       "Renew the Apple MDM push certificate (same Apple ID) and make sure iOS enrollment is enabled.",
       doc=DOC_APNS, names=("NoEnrollmentPolicy", "APNSCertificateNotValid", "AccountNotOnboarded")),
    _d("mdmNotConfigured", C.accountValidation, "MDM auto-enrollment is not configured for the user.",
       "Set the MDM user scope to All or Some and fix non-routable UPN suffixes, then re-sync.",
       doc=DOC_WINDOWS, codes=(0x8018002B, 0x80180031, 0x8000FFFF, 0xC1036501),
       names=("MENROLL_E_MDM_NOT_CONFIGURED",), judgment=True),
    _d("adeTokenInvalid", C.accountValidation, "The ADE token expired, is invalid or lost access.",
       "Renew the Automated Device Enrollment token and check Intune is still the MDM server in Apple Business Manager.",
       doc=DOC_IOS, phrases=("ADE token", "DEP token")),
    # --- userValidation (4) ---
    _d("userNotLicensed", C.userValidation, "The user has no valid Intune licence.",
       "Assign the user an Intune licence and retry after it propagates.",
       doc=DOC_LICENSES, codes=(0x80180018,),
       names=("UserNotLicensed", "UserLicenseTypeInvalid", "MENROLL_E_USERLICENSE"),
       phrases=("User not found or licensed", "User Name Not Recognized",
                "account is not allowed on this phone")),
    _d("userUnknown", C.userValidation, "The user is unknown to Intune.",
       "Confirm the user exists in Entra ID and that the UPN matches on-premises.",
       doc=DOC_GENERAL, names=("UserUnknown",)),
    # --- deviceNotSupported (5) ---
    _d("unsupportedDeviceType", C.deviceNotSupported, "The device is below the minimum requirements.",
       "Update the OS to a supported version or enroll a supported device.",
       doc=DOC_GENERAL, names=("UnsupportedDeviceType", "DeviceTypeNotSupported"),
       phrases=("Device not supported",), codes=(0x80070032, 0x80CF300B, 0x8004300B)),
    _d("mdmNotSupported", C.deviceNotSupported, "MDM is not supported on this device.",
       "This device cannot be managed by MDM; use a supported device or edition.",
       doc=DOC_MDM_ERRORS, codes=(0x80180015,), names=("MENROLL_E_NOTSUPPORTED",)),
    _d("windowsEditionNotSupported", C.deviceNotSupported, "Autopilot on Windows Home.",
       "Upgrade the device to Windows Pro, Enterprise or Education.",
       doc=DOC_WINDOWS, codes=(0x80180022, 0x8018001C),
       names=("MENROLL_E_PLATFORM_LICENSE_ERROR", "MENROLL_E_PROV_CSP_MISC")),
    _d("deviceManagementBlocked", C.deviceNotSupported, "MDM is blocked on the device (GPO or legacy agent).",
       "Remove the legacy Intune PC agent or the policy that blocks MDM, then enroll again.",
       doc=DOC_WINDOWS, codes=(0x80180026,), names=("MENROLL_E_DEVICE_MANAGEMENT_BLOCKED",),
       judgment=True),
    _d("tpmNotSupported", C.deviceNotSupported, "No usable TPM 2.0 for Autopilot self-deploying mode.",
       "Use a device with a physical TPM 2.0 and update its firmware.",
       doc=DOC_AUTOPILOT, codes=(0x801C03EA, 0x800705B4, 0x80290407, 0x80280036)),
    _d("workProfileNotSupported", C.deviceNotSupported, "An Android work profile could not be created.",
       "Remove an existing work profile, test with the Test DPC app, or contact the OEM.",
       doc=DOC_ANDROID, phrases=("work profile can't be created", "work profile cannot be created")),
    # --- inMaintenance (6) ---
    _d("accountInMaintenance", C.inMaintenance, "The account is in maintenance.",
       "Check Intune service health and retry later.",
       doc=DOC_SERVICE_HEALTH, codes=(0x80180017, 0x80CF3002, 0x80043002), names=("MENROLL_E_INMAINTENANCE",)),
    # --- badRequest (7) ---
    _d("messageFormatError", C.badRequest, "The enrollment message was malformed.",
       "Retry, and update the OS and Company Portal if it repeats.",
       doc=DOC_MDM_ERRORS, codes=(0x80180001, 0x80180007, 0x80180016, 0x80180029),
       names=("MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR", "MENROLL_E_DEVICE_INVALIDSECURITY_ERROR",
              "MENROLL_E_EMPTY_MESSAGE", "MREGISTER_E_NOTELIGIBLETORENEW")),
    _d("enrollmentDataInvalid", C.badRequest, "The server rejected the enrollment data.",
       "Check the enrollment server configuration; the request data was rejected.",
       doc=DOC_MDM_ERRORS, codes=(0x80180019,), names=("MENROLL_E_ENROLLMENTDATAINVALID",)),
    _d("staleEnrollmentCertificate", C.badRequest, "The device looks enrolled already (cloned image or old cert).",
       "Delete the old Intune certificate and the OnlineManagement registry key, then enroll again.",
       doc=DOC_WINDOWS, codes=(0x8007064C, 0x80CF3009, 0x80043009, 0x80090016), judgment=True),
    _d("existingManagementProfile", C.badRequest, "Another management profile or MDM is already present.",
       "Remove the existing management profile or other MDM from the device, then enroll again.",
       doc=DOC_IOS, phrases=("new MDM payload does not match",)),
    # --- featureNotSupported (8) ---
    _d("featureNotSupported", C.featureNotSupported, "The feature is not released or not compatible with the tenant.",
       "Confirm the enrollment feature is available for the tenant and licence, or use another method.",
       doc=DOC_GENERAL, names=("FeatureNotSupported",), phrases=("Feature not supported",)),
    _d("autopilotMethodUnexpected", C.featureNotSupported, "The Autopilot enrollment method was unexpected.",
       "Check the Autopilot profile's deployment mode matches how the device is being deployed.",
       doc=DOC_AUTOPILOT, phrases=("Autopilot enrollment method unexpected",)),
    _d("hybridJoinAssignUser", C.featureNotSupported,
       "Hybrid Autopilot with 'Assign user', or the domain controller is unreachable.",
       "Remove the user assignment for hybrid-joined Autopilot devices and check the connector's rights.",
       doc=DOC_AUTOPILOT, codes=(0x80070774,), judgment=True),
    # --- enrollmentRestrictionsEnforced (9) ---
    _d("deviceCap", C.enrollmentRestrictionsEnforced, "The user has reached the device limit.",
       "Delete stale devices, raise the device limit (max 15) or use a device enrollment manager account.",
       doc=DOC_RESTRICTIONS, codes=(0x80180013,),
       names=("DeviceCap", "DeviceCapReached", "MENROLL_E_DEVICECAPREACHED"),
       phrases=("Device cap reached", "device limit")),
    _d("enrollmentCriteriaNotMet", C.enrollmentRestrictionsEnforced, "An enrollment restriction rule blocked it.",
       "Find the effective enrollment restriction for the user and allow this device.",
       doc=DOC_RESTRICTIONS, names=("EnrollmentCriteriaNotMet",), phrases=("Enrollment restrictions not met",)),
    _d("platformBlocked", C.enrollmentRestrictionsEnforced, "The platform is blocked by a restriction.",
       "Allow the platform (for example Windows (MDM)) in the effective enrollment restriction.",
       doc=DOC_RESTRICTIONS, codes=(0x80180014,), names=("MENROLL_E_DEVICENOTSUPPORTED",),
       phrases=("Device platform blocked", "Invalid Profile"), also=(C.deviceNotSupported,)),
    _d("osVersionBlocked", C.enrollmentRestrictionsEnforced, "The OS version is outside the allowed range.",
       "Adjust the restriction's OS version range or update the device.",
       doc=DOC_RESTRICTIONS, phrases=("Device version too low", "Device version too high")),
    _d("personalDeviceBlocked", C.enrollmentRestrictionsEnforced, "Personally owned devices are blocked.",
       "Allow personal ownership for the platform, or upload the device's corporate identifier.",
       doc=DOC_RESTRICTIONS, phrases=("Device cannot be enrolled as personal",)),
    _d("bulkDeviceNotPreregistered", C.enrollmentRestrictionsEnforced,
       "The IMEI or serial number is not pre-registered, so the device counts as personal.",
       "Upload the device's IMEI or serial number as a corporate identifier.",
       doc=DOC_RESTRICTIONS, names=("BulkDeviceNotPreregistered",), phrases=("Device not preregistered",)),
    # --- clientDisconnected (10) ---
    _d("networkConnectivity", C.clientDisconnected, "DNS or network timeout reaching the enrollment service.",
       "Fix DNS, proxy or firewall access to the Intune enrollment endpoints.",
       doc=DOC_WINDOWS, codes=(0x80180010, 0x80CF0438, 0x80240438, 0x80CF402C, 0x801C001F, 0xCAA70004,
                               0xC000023C, 0xC00000BE, 0xC00000C4),
       names=("MENROLL_E_CONNECTIVITY",)),
    _d("mfaNotCompleted", C.clientDisconnected, "The MFA prompt for auto-enrollment was not answered.",
       "Ask the user to complete the MFA prompt; the enrollment retries by itself.",
       doc=DOC_WINDOWS, codes=(0x8018002A,)),
    _d("appleChallengeIssue", C.clientDisconnected, "The iOS management profile install was delayed or failed.",
       "Ask the user to install the management profile promptly and retry on a good network.",
       doc=DOC_IOS, names=("AppleChallengeIssue",), phrases=("iOS/iPadOS Timeout or Failure",),
       judgment=True),
    _d("appleNetworkError", C.clientDisconnected, "The device could not reach Apple's services.",
       "Check the device's network path to Apple, then retry.",
       doc=DOC_IOS, phrases=("XPC_TYPE_ERROR",)),
    _d("espTimeout", C.clientDisconnected, "The Enrollment Status Page timed out.",
       "Review the ESP timeout and the apps it blocks on.",
       doc=DOC_AUTOPILOT, phrases=("ESP timeout", "Enrollment Status Page timeout")),
    # --- userAbandonment (11) ---
    _d("userAbandonment", C.userAbandonment, "The user started enrollment but did not finish.",
       "Send the user guidance and simplify the step where users drop off.",
       doc=DOC_REPORTS, names=("UserAbandonment",)),
    *(  # Rows for Microsoft's wider error text: Entra, ADAL, TPM, legacy agent, Apple tokens.
    _d("signInFailed", C.authentication, "The user's sign-in to Entra ID failed (credentials, MFA or federation).",
       "Look up the user's Entra ID sign-in log at that time: its failure reason names the fix.",
       "Check the password, MFA registration and Conditional Access result in the sign-in log.",
       "For hybrid-joined devices, wait for a changed password to sync before retrying.",
       doc=DOC_SIGN_IN_LOGS, codes=(0xC000006D, 0xC000006A, 0x8018000E, 0x8018000F),
       names=("MENROLL_E_PASSWORD_NEEDED", "MENROLL_E_WAB_ERROR")),
    _d("tokenServiceError", C.authentication,
       "The device could not get a token from Entra ID or the federation service (ADAL/WAM).",
       "Check the federation service's WS-Trust and MEX endpoints and the path to login.microsoftonline.com.",
       "The AAD Operational event log on the device names the server error code.",
       "A proxy that rewrites responses breaks token requests: let the SYSTEM context through it.",
       doc=DOC_HYBRID_JOIN, codes=(0xCAA9001F, 0xCAA90017, 0xCAA9002C, 0xCAA90023, 0xCAA20003,
                                   0xCAA90014, 0xCAA90006, 0xCAA1002D, 0xCAA9004D, 0xCAA10001)),
    _d("deviceNotAuthenticated", C.authentication,
       "Entra ID could not authenticate the device (deleted, disabled or not yet synced).",
       "Check the device object in Entra ID is present and enabled, then re-register the device.",
       doc=DOC_HYBRID_JOIN, codes=(0x801C0002,)),
    _d("authCertificateMissing", C.authentication, "A certificate the sign-in needs is missing.",
       "Install the missing certificate: on the device for certificate sign-in, or the intermediate CA chain on the AD FS servers.",
       doc=DOC_GENERAL, codes=(0x80180028,), names=("MENROLL_E_CERTAUTH_FAILED_TO_FIND_CERT",)),
    _d("conditionalAccessBlocked", C.authorization, "Conditional Access blocked the enrollment sign-in.",
       "Exclude the Microsoft Intune Enrollment and Microsoft Intune apps from policies that block or require a compliant device.",
       doc=DOC_AUTOPILOT_KNOWN),
    _d("mdmTermsOfUseUrl", C.accountValidation, "The MDM terms of use URL in Entra ID is blank or wrong.",
       "Restore the default MDM URLs in Entra ID (Mobility, Microsoft Intune), and check the user's licence.",
       doc=DOC_WINDOWS, also=(C.userValidation,)),
    _d("tenantNotFound", C.accountValidation,
       "The tenant the device points at was not found or has no active subscription.",
       "Correct the tenant id in the service connection point (SCP) and check the tenant's subscription.",
       doc=DOC_HYBRID_JOIN, codes=(0x801C003A,)),
    _d("accountNotActive", C.accountValidation, "The Intune account or subscription is deleted, suspended or expired.",
       "Check the tenant's Intune subscription is active in the Microsoft 365 admin center.",
       doc=DOC_GENERAL, codes=(0x80CF3003, 0x80043003, 0x80CF0440)),
    _d("appleTermsNotAccepted", C.accountValidation,
       "New Apple Business or School Manager terms and conditions are not accepted.",
       "Have an Apple Business Manager administrator accept the new terms, then sync the token.",
       doc=DOC_IOS),
    _d("vppTokenProblem", C.accountValidation,
       "The Apple apps-and-books (VPP) token expired, ran out of licences or is used elsewhere.",
       "Renew or reassign the apps-and-books token, then wipe and re-enroll the devices it blocked.",
       doc=DOC_IOS),
    _d("tpmAttestationFailed", C.deviceNotSupported, "TPM attestation failed or timed out.",
       "Retry once (attestation faults can be intermittent), then update the TPM firmware from the OEM.",
       doc=DOC_AUTOPILOT_KNOWN, codes=(0x81039001, 0x81039023, 0x81039024)),
    _d("virtualMachineNotRecognised", C.deviceNotSupported,
       "A virtual machine lacks the serial number and hardware model enrollment needs.",
       "Configure the virtual machine's serial number and hardware model, or enroll a physical device.",
       doc=DOC_MACOS, judgment=True),
    _d("deviceAdminNotSupported", C.deviceNotSupported,
       "Android device administrator management is no longer supported on this device.",
       "Move the device to an Android Enterprise enrollment (work profile or fully managed).",
       doc=DOC_ANDROID_DA),
    _d("outdatedClient", C.badRequest, "The enrollment client or Company Portal is out of date or corrupted.",
       "Update or reinstall Company Portal (or the legacy client software), then enroll again.",
       doc=DOC_GENERAL, codes=(0x80CF4017, 0x80CF3001, 0x80CF3004, 0x80043001, 0x80043004)),
    _d("deviceClockWrong", C.badRequest, "The device's date, time or time zone is wrong.",
       "Set the device's date, time and time zone correctly, then retry.",
       doc=DOC_GENERAL, codes=(0x80CF0437, 0x8018000D), names=("MENROLL_E_DISCOVERY_SEC_CERT_DATE_INVALID",)),
    _d("invalidProfileSettings", C.badRequest, "A field of the enrollment or Autopilot profile is invalid.",
       "Correct the profile's fields (name template, support phone, department) and save it again.",
       doc=DOC_IOS),
    _d("insecureRedirect", C.badRequest, "The server redirected to HTTP and the client refused it.",
       "Check the MDM discovery and enrollment URLs are HTTPS (restore the default MDM URLs).",
       doc=DOC_MDM_ERRORS, codes=(0x8018001A,), names=("MENROLL_E_INSECUREREDIRECT",)),
    _d("enrollmentStateInvalid", C.badRequest, "The client tried an invalid operation (enrolling twice, unenrolling an unknown device).",
       "Clear the device's old enrollment (or reset it), then enroll once.",
       doc=DOC_MDM_ERRORS, codes=(0x8018001B,), names=("MENROLL_E_PLATFORM_WRONG_STATE",)),
    _d("clientRetired", C.badRequest, "The legacy client computer was retired from the service.",
       "Wait a few hours, remove old client software, then install it again.",
       doc=DOC_GENERAL, codes=(0x80CF3005, 0x80043005)),
    _d("installerFilesMissing", C.badRequest, "The legacy client installer is missing its files.",
       "Extract every installer file into one folder and run the installer from there.",
       doc=DOC_GENERAL, codes=(0x80CF3007, 0x80043007)),
    _d("restartPending", C.badRequest, "A restart is pending on the client computer.",
       "Restart the computer, then retry the installation or enrollment.",
       doc=DOC_GENERAL, codes=(0x80CFD015, 0x8024D015, 0x80070BC2, 0x80070BC9)),
    _d("invalidHardwareHash", C.badRequest, "The Autopilot hardware hash is malformed (bad Base64 padding or corrupted).",
       "Collect the hardware hash again (padded Base64) and re-import the device.",
       doc=DOC_AUTOPILOT),
    _d("staleKeychainEntries", C.badRequest, "Stale or corrupted enrollment entries in the macOS keychain.",
       "Delete the workplace-join and Company Portal keychain items, reinstall Company Portal and enroll again.",
       doc=DOC_GENERAL),
    _d("preProvisioningNotAllowed", C.featureNotSupported,
       "Pre-provisioning was started but the Autopilot profile does not allow it.",
       "Set 'Allow pre-provisioned deployment' to Yes in the Autopilot profile, or deploy without pre-provisioning.",
       doc=DOC_AUTOPILOT_PROFILES),
    _d("identityProviderBlocked", C.clientDisconnected,
       "A proxy or firewall blocks the identity provider during setup.",
       "Let the device reach the identity provider (login.microsoftonline.com, the federation server) through the proxy or firewall.",
       "Check the Autopilot networking requirements for every endpoint setup needs.",
       doc=DOC_AUTOPILOT_NETWORK, phrases=("OOBEIDPS",)),
    _d("userCancelled", C.clientDisconnected, "The user cancelled the enrollment.",
       "Ask the user to run the enrollment again and finish it.",
       doc=DOC_MDM_ERRORS, codes=(0x80180030,), names=("MENROLL_E_USER_CANCELED",)),
    _d("seatLimitReached", C.enrollmentRestrictionsEnforced,
       "The account has used every seat (licence) it bought for enrolled computers.",
       "Buy more seats or retire computers that no longer need management.",
       doc=DOC_GENERAL, codes=(0x80CF3006, 0x80043006), judgment=True),
    _d("enrollmentInProgress", C.unknown, "Another enrollment was already in progress on the device.",
       "Wait for the running enrollment to finish, then retry once.",
       doc=DOC_MDM_ERRORS, codes=(0x80180009,), names=("MENROLL_E_ENROLLMENT_IN_PROGRESS",)),
    _d("entraDirectoryError", C.unknown,
       "Entra device registration returned a directory error (often a device object not yet synced).",
       "Run dsregcmd /status on the device; wait for Entra Connect sync, then retry the join.",
       doc=DOC_HYBRID_JOIN, codes=(0x801C03F2, 0x801C001D)),
    _d("enrollmentServerHttpError", C.unknown, "The enrollment server answered with an HTTP error status.",
       "Note the HTTP status: 4xx means the request was refused (check licence and restrictions), 5xx a server fault (retry later).",
       doc=DOC_MDM_ERRORS),
    _d("appleSyncCursorError", C.unknown, "Intune's sync cursor with Apple was rejected or expired.",
       "Sync the token again; if it keeps failing, ask Intune support to reset the sync.",
       doc=DOC_IOS),
    ),
)

# Category spellings beyond Graph's own (which fold to themselves): the Data Warehouse's
# "no data" rows and its localized category names (section 6 of the reference).
CATEGORY_ALIASES: dict[str, C] = {
    "Unbekannt": C.unknown, "Inconnu": C.unknown,
    "身份验证": C.authentication, "認証": C.authentication, "Authentifizierung": C.authentication,
    "Authentification": C.authentication,
    "授权": C.authorization, "承認": C.authorization, "Autorisierung": C.authorization,
    "Autorisation": C.authorization,
}
# Values that say "no category" rather than naming one. "Not Applicable" marks success rows.
NO_CATEGORY = ("Not Available", "N/A", "None", "Null", "不可用", "Nicht verfügbar",
               "Non disponible", "利用不可")
NOT_APPLICABLE = ("Not Applicable", "NotApplicable", "不适用", "Nicht anwendbar",
                  "Non applicable", "適用しない")
# resultType / Result values of a successful row.
SUCCESS_RESULTS = ("Success", "Succeeded", "Successful", "OK")

# Field names that carry each piece of evidence, in the order they are consulted.
CATEGORY_FIELDS: dict[str, tuple[str, ...]] = {
    "graphEvent": ("failureCategory",),
    "diagnosticLog": ("FailureCategory", "failureCategory"),
    "flat": ("failureCategory", "FailureCategory", "failure_category"),
}
_ALL_REASON_FIELDS = ("failureReason", "FailureReason", "failure_reason", "errorCode", "ErrorCode",
                      "error_code", "hresult", "HResult", "enrollmentFailureDetails",
                      "failureDetails",
                      # Windows event-log records as exported (Get-WinEvent, Event Viewer, SIEMs)
                      "Message", "message", "RenderedDescription", "Description", "description")
REASON_FIELDS: dict[str, tuple[str, ...]] = {
    "graphEvent": ("failureReason", "enrollmentFailureDetails"),
    "diagnosticLog": ("FailureReason", "ErrorCode", "failureReason"),
    "flat": _ALL_REASON_FIELDS,
}
RESULT_FIELDS = ("resultType", "Result", "ResultType")

# Where each output field is read from, per input shape (first present key wins). For log
# rows the keys are looked up in ``properties``, and LOG_ROW_FIELDS at the row's top level.
_GRAPH_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id",), "eventTime": ("eventDateTime",),
    "intuneDeviceId": ("managedDeviceIdentifier",), "entraDeviceId": ("deviceId",),
    "operatingSystem": ("operatingSystem",), "osVersion": ("osVersion",),
    "userId": ("userId",), "userPrincipalName": ("userPrincipalName",),
    "enrollmentType": ("enrollmentType",), "tenantId": ("tenantId",),
    "correlationId": ("correlationId",),
}
_LOG_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("MessageId",), "eventTime": ("EnrollmentTimeUTC",),
    "intuneDeviceId": ("IntuneDeviceId",), "entraDeviceId": ("AADDeviceId",),
    "operatingSystem": ("Os",), "osVersion": ("OsVersion",),
    "userId": ("IntuneUserId",), "userPrincipalName": ("UserPrincipalName",),
    "enrollmentType": ("EnrollmentType",), "tenantId": ("AADTenantId",),
    "correlationId": ("CorrelationId",),
}
LOG_ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "eventTime": ("time", "TimeGenerated"), "tenantId": ("tenantId", "TenantId"),
}
FIELD_SOURCES: dict[str, dict[str, tuple[str, ...]]] = {
    "graphEvent": _GRAPH_FIELDS,
    "diagnosticLog": _LOG_FIELDS,
    "flat": {k: tuple(dict.fromkeys((*_GRAPH_FIELDS[k], *_LOG_FIELDS[k], *extra)))
             for k, extra in {
                 "id": ("eventId", "messageId"), "eventTime": ("time", "timestamp"),
                 "intuneDeviceId": ("intuneDeviceId",), "entraDeviceId": ("aadDeviceId",),
                 "operatingSystem": ("os", "OS"), "osVersion": (), "userId": ("UserId",),
                 "userPrincipalName": ("UPN",), "enrollmentType": (),
                 "tenantId": ("TenantId",), "correlationId": ("ActivityId",),
             }.items()},
}

OPERATING_SYSTEMS: dict[str, str] = {
    "windows": "Windows", "windows10": "Windows", "windows11": "Windows", "win10": "Windows",
    "windowsphone": "Windows", "windowsmobile": "Windows", "ios": "iOS", "iphone": "iOS",
    "ipados": "iPadOS", "ipad": "iPadOS", "macos": "macOS", "macosx": "macOS", "osx": "macOS",
    "android": "Android", "androidenterprise": "Android", "androidforwork": "Android",
    "androidaosp": "Android", "linux": "Linux", "chromeos": "ChromeOS", "visionos": "visionOS",
}

# Graph deviceEnrollmentType (v1.0 and beta), wire spelling. Values 20-24 are unstable.
ENROLLMENT_TYPES: tuple[str, ...] = (
    "unknown", "userEnrollment", "deviceEnrollmentManager", "appleBulkWithUser",
    "appleBulkWithoutUser", "windowsAzureADJoin", "windowsBulkUserless", "windowsAutoEnrollment",
    "windowsBulkAzureDomainJoin", "windowsCoManagement", "windowsAzureADJoinUsingDeviceAuth",
    "appleUserEnrollment", "appleUserEnrollmentWithServiceAccount", "azureAdJoinUsingAzureVmExtension",
    "androidEnterpriseDedicatedDevice", "androidEnterpriseFullyManaged",
    "androidEnterpriseCorporateWorkProfile", "androidAOSPUserOwnedDeviceEnrollment",
    "androidAOSPUserlessDeviceEnrollment", "appleAccountDrivenUserEnrollment", "unknownFutureValue",
)

_NON_ALNUM = re.compile(r"[\W_]+")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CLAUSE_END = re.compile(r"[.;:!?](?:\s+|$)")


def fold(text: str) -> str:
    """Case-, space- and punctuation-insensitive key: 'User Validation' -> 'uservalidation'."""
    return _NON_ALNUM.sub("", text).casefold()


def words(text: str) -> str:
    """Text to search phrases in: lower case, one space between words and one at each end
    ('ADE-token!' -> ' ade token ')."""
    return f" {_NON_ALNUM.sub(' ', text).strip().casefold()} "


def clause_words(text: str) -> str:
    """:func:`words`, with a sentence or clause end kept as two spaces: a multi-word cue
    alternative (' token request') does not run across it ('... token. Request ID'), while
    single words still match (' token', ' request')."""
    return "".join(words(part) for part in _CLAUSE_END.split(text) if part.strip()) or "  "


def split_camel(text: str) -> str:
    """'DeviceCapReached' -> 'Device Cap Reached' (other text unchanged)."""
    return _CAMEL_HUMP.sub(" ", text)


def _phrase_keys(detail: Detail) -> Iterator[str]:
    # A key is ' word word' with no space at the end: it matches only where a word starts
    # ('ADE token' is not in 'made token') but may end inside one ('license' in 'licensed').
    for name in detail.names:  # 'DeviceCap' also as written in prose: 'device cap'
        yield words(name)[:-1]
        yield words(split_camel(name))[:-1]
    for phrase in detail.phrases:
        yield words(phrase)[:-1]


def _unique_index(pairs: list[tuple[str, Detail]]) -> dict[str, Detail]:
    index: dict[str, Detail] = {}
    for key, detail in pairs:
        other = index.setdefault(key, detail)
        if other is not detail:
            raise ValueError(f"catalog: {key!r} identifies both {other.name} and {detail.name}")
    return index


# Derived lookups, built once at import and checked for ambiguity.
DETAILS_BY_NAME: dict[str, Detail] = {d.name: d for d in DETAILS}
DETAIL_BY_FOLDED_NAME = _unique_index(
    [(fold(n), d) for d in DETAILS for n in (d.name, *d.names)])
DETAIL_BY_CODE = _unique_index([(str(c), d) for d in DETAILS for c in d.codes])
# Phrases (keys made by _phrase_keys, searched in words(text)) are tried longest first so
# "device cap reached" wins over a shorter overlap.
PHRASES: tuple[tuple[str, Detail], ...] = tuple(sorted(
    _unique_index([(k, d) for d in DETAILS for k in _phrase_keys(d)]).items(),
    key=lambda item: -len(item[0])))
CATEGORY_BY_FOLDED: dict[str, C] = {
    **{fold(c.name): c for c in C}, **{fold(k): v for k, v in CATEGORY_ALIASES.items()}}
NO_CATEGORY_FOLDED = frozenset(fold(v) for v in NO_CATEGORY)
NOT_APPLICABLE_FOLDED = frozenset(fold(v) for v in NOT_APPLICABLE)
SUCCESS_FOLDED = frozenset(fold(v) for v in SUCCESS_RESULTS)
ENROLLMENT_TYPE_BY_FOLDED: dict[str, str] = {fold(t): t for t in ENROLLMENT_TYPES}


# =====================================================================================
# Record semantics: which records are enrollment failures at all (issue 12).
#
# Kept apart from the failure-reason tables above: these say whether a record is a
# failure, a success, an attempt still running, or not about enrollment, before any
# reason is looked for. Facts from shared/reference/intune-sources.md and Graph's
# metadata (windowsAutopilotDeploymentState, enrollmentState, the troubleshooting
# event types); values marked "judgment" are our reading where no source says it.
# =====================================================================================

# Graph @odata.type (last dotted part, folded) -> what the record is. Types outside this
# table are not enrollment failures and are counted under the label "other".
GRAPH_TYPE_ROLES: dict[str, str] = {
    "enrollmentTroubleshootingEvent": "enrollmentFailure",
    "deviceManagementAutopilotEvent": "autopilotDeployment",
    "deviceManagementTroubleshootingEvent": "notEnrollment",  # the collection's base type
    "mobileAppTroubleshootingEvent": "notEnrollment",
}
GRAPH_TYPE_BY_FOLDED: dict[str, str] = {fold(t): t for t in GRAPH_TYPE_ROLES}
# The closed set of event-type labels a skipped record can carry (a metric label).
EVENT_TYPE_LABELS: tuple[str, ...] = (*GRAPH_TYPE_ROLES, "other")

# windowsAutopilotDeploymentState (Graph beta: deploymentState, deviceSetupStatus and
# accountSetupStatus share it), member -> verdict. Codes are Graph's integer values.
DEPLOYMENT_STATES: tuple[str, ...] = (
    "unknown", "success", "inProgress", "failure", "successWithTimeout", "notAttempted",
    "disabled", "successOnRetry")
DEPLOYMENT_VERDICTS: dict[str, str] = {
    "unknown": "undecided",
    "success": "success",
    "inProgress": "in_progress",
    "failure": "failure",
    # "timed out but user clicked past failure": the user reached the desktop, Graph calls
    # it a success, and counting it as a failure would make alerts fire on successes
    # (judgment).
    "successWithTimeout": "success",
    "notAttempted": "not_enrollment",  # no deployment was run
    "disabled": "not_enrollment",
    "successOnRetry": "success",  # failed once on a timeout, then succeeded
}
# enrollmentState (Graph), consulted only when deploymentState says nothing.
ENROLLMENT_STATE_VERDICTS: dict[str, str] = {
    "unknown": "undecided", "enrolled": "in_progress", "pendingReset": "in_progress",
    "failed": "failure", "notContacted": "in_progress", "blocked": "failure",
}
# The ESP phases an Autopilot event reports, in the order a deployment passes them.
AUTOPILOT_PHASES: tuple[tuple[str, str], ...] = (
    ("enrollmentState", "enrollment"), ("deviceSetupStatus", "deviceSetup"),
    ("accountSetupStatus", "accountSetup"))
AUTOPILOT_SIGNATURE = ("deploymentState", "deviceSetupStatus", "accountSetupStatus")

# Diagnostic-log operations (operationName) that are enrollments; others (Compliance, ...)
# are not. resultType words, in any case: "None" is what non-enrollment rows carry and
# means "no result" on an enrollment row.
ENROLLMENT_OPERATIONS = ("Enrollment", "ESPEnrollment")
ESP_OPERATION = "ESPEnrollment"
FAILURE_RESULTS = ("Fail", "Failure", "Failed", "Error")
NO_RESULTS = ("None", "", "Unknown", "NotApplicable", "Not Applicable")
# ESP rows' Status column (published queries show "Completed").
ESP_STATUS_VERDICTS: dict[str, str] = {
    "Completed": "success", "Complete": "success", "Success": "success",
    "Succeeded": "success",
    "InProgress": "in_progress", "In Progress": "in_progress", "Pending": "in_progress",
    "Started": "in_progress", "Running": "in_progress", "NotStarted": "in_progress",
    "Failed": "failure", "Failure": "failure", "Fail": "failure", "Error": "failure",
    "Timeout": "failure", "TimedOut": "failure", "Timed Out": "failure",
}
# Reasons that are plain words on a row of one operation: on an ESP row a bare "Timeout"
# is the Enrollment Status Page timing out (clientDisconnected).
CONTEXT_REASONS: dict[str, dict[str, str]] = {
    "espLog": {"Timeout": "espTimeout", "TimedOut": "espTimeout", "Timed Out": "espTimeout",
               "ESPTimeout": "espTimeout"},
}

# Report exports (Graph exportJobs, zipped CSV): the report a row comes from is told by
# columns only that report has.
EXPORT_REPORT_SIGNATURES: dict[str, tuple[str, ...]] = {
    "EnrollmentActivity": ("EnrollmentActivityId", "EnrollmentDateTime"),
    "DeviceEnrollmentFailures": ("FailureGuid", "EnrollmentFailureDateTime"),
}
# Columns that carry failure evidence on an EnrollmentActivity row: a row where all of
# them are empty or say "none" is a successful enrollment. DeviceEnrollmentFailures holds
# failures only.
EXPORT_FAILURE_COLUMNS = ("Failure", "FailureReason", "FailureDetails", "FailureCategory")
EXPORT_NO_FAILURE = ("", "None", "N/A", "Not Applicable", "NotApplicable", "Success",
                     "Succeeded", "0", "-", "--")
EXPORT_STATUS_COLUMNS = ("EnrollmentState", "EnrollmentStatus", "Status", "State")
LOCALIZED_SUFFIX = "_loc"

CATEGORY_FIELDS |= {
    "autopilotEvent": (),
    "espLog": ("FailureCategory", "failureCategory"),
    "reportExport": ("FailureCategory", "FailureReason"),
}
REASON_FIELDS |= {
    "autopilotEvent": ("enrollmentFailureDetails",),
    "espLog": ("FailureReason", "ErrorCode", "failureReason", "Status"),
    "reportExport": ("Failure", "FailureReason", "FailureDetails", "Remediation"),
}
FIELD_SOURCES |= {
    "autopilotEvent": {
        "id": ("id",), "eventTime": ("eventDateTime",), "intuneDeviceId": ("deviceId",),
        "entraDeviceId": ("azureActiveDirectoryDeviceId",), "operatingSystem": ("operatingSystem",),
        "osVersion": ("osVersion",), "userId": ("userId",),
        "userPrincipalName": ("userPrincipalName",), "enrollmentType": ("enrollmentType",),
        "tenantId": ("tenantId",), "correlationId": ("correlationId",),
    },
    "espLog": {**_LOG_FIELDS, "intuneDeviceId": ("IntuneDeviceId", "DeviceId")},
    "otherEvent": _GRAPH_FIELDS,  # never classified; its event time is measured
    "reportExport": {
        "id": ("EnrollmentActivityId", "FailureGuid"),
        "eventTime": ("EnrollmentDateTime", "EnrollmentFailureDateTime"),
        "intuneDeviceId": ("DeviceId",), "entraDeviceId": ("AadDeviceId", "AADDeviceId"),
        "operatingSystem": ("OS",), "osVersion": ("OSVersion",), "userId": ("UserId",),
        "userPrincipalName": ("UPN",), "enrollmentType": ("EnrollmentMethod",),
        "tenantId": ("TenantId",), "correlationId": ("Context",),
    },
}
# Fields a shape implies when the record does not say: Autopilot is Windows only.
SHAPE_DEFAULTS: dict[str, dict[str, str]] = {"autopilotEvent": {"operatingSystem": "Windows"}}

# Microsoft's own remediation (troubleshootingErrorDetails, the export's Remediation
# column): bounded so one verbose event cannot bloat the output.
MICROSOFT_DETAIL_KEYS = ("failure", "failureDetails", "remediation")
MAX_MICROSOFT_TEXT = 1024
MAX_MICROSOFT_LINKS = 5
MAX_LINK_CHARS = 2048

GRAPH_TYPE_FOLDED_ROLE: dict[str, str] = {fold(t): r for t, r in GRAPH_TYPE_ROLES.items()}
DEPLOYMENT_VERDICT_BY_FOLDED: dict[str, str] = {fold(k): v for k, v in DEPLOYMENT_VERDICTS.items()}
ENROLLMENT_STATE_BY_FOLDED: dict[str, str] = {
    fold(k): v for k, v in ENROLLMENT_STATE_VERDICTS.items()}
ENROLLMENT_OPERATIONS_FOLDED = frozenset(fold(v) for v in ENROLLMENT_OPERATIONS)
FAILURE_RESULTS_FOLDED = frozenset(fold(v) for v in FAILURE_RESULTS)
NO_RESULTS_FOLDED = frozenset(fold(v) for v in NO_RESULTS)
ESP_STATUS_BY_FOLDED: dict[str, str] = {fold(k): v for k, v in ESP_STATUS_VERDICTS.items()}
CONTEXT_REASONS_FOLDED: dict[str, dict[str, Detail]] = {
    shape: {fold(k): DETAILS_BY_NAME[v] for k, v in table.items()}
    for shape, table in CONTEXT_REASONS.items()}
EXPORT_NO_FAILURE_FOLDED = frozenset(fold(v) for v in EXPORT_NO_FAILURE)
