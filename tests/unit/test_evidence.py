"""Table tests for the evidence beyond exact names and codes: protocol wrappers, mistyped
codes, code families, AADSTS numbers, context refinements, cues and unknown remediation
(worker/classify/codes.py, cues.py, remedy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import one_event
from worker.classify import catalog, codes, cues

# --- SOAP fault subcodes, in the three wrappers Windows writes them in -----------------------
SUBCODES = [
    ("MessageFormat", "messageFormatError", "badRequest"),
    ("Authentication", "deviceAuthenticationError", "authentication"),
    ("Authorization", "deviceAuthorizationError", "authorization"),
    ("CertificateRequest", "certificateRequestError", "unknown"),
    ("EnrollmentServer", "serverError", "unknown"),
    ("InternalServiceFault", "serverError", "unknown"),
    ("InvalidSecurity", "messageFormatError", "badRequest"),
    ("DeviceCapReached", "deviceCap", "enrollmentRestrictionsEnforced"),
    ("DeviceNotSupported", "platformBlocked", "enrollmentRestrictionsEnforced"),
    ("NotSupported", "mdmNotSupported", "deviceNotSupported"),
    ("NotEligibleToRenew", "messageFormatError", "badRequest"),
    ("InMaintenance", "accountInMaintenance", "inMaintenance"),
    ("UserLicense", "userNotLicensed", "userValidation"),
    ("InvalidEnrollmentData", "enrollmentDataInvalid", "badRequest"),
]


def _wrappers(subcode: str) -> list[str]:
    return [
        f"MDM Enroll: Server Returned Fault/Code/Subcode/Value=({subcode}) "
        "Fault/Reason/Text=(Something the server said)",
        f"<s:fault><s:code><s:value>s:receiver</s:value><s:subcode><s:value>s:{subcode.lower()}"
        "</s:value></s:subcode></s:code></s:fault>",
        f"<deviceenrollmentserviceerror><errortype>{subcode}</errortype></deviceenrollmentserviceerror>",
    ]


@pytest.mark.parametrize(("subcode", "detail", "category"), SUBCODES, ids=[s for s, _, _ in SUBCODES])
def test_fault_subcode_in_every_wrapper(subcode: str, detail: str, category: str) -> None:
    for text in _wrappers(subcode):
        event = one_event({"failureReason": text})
        assert (event["failureCategory"], event["detailReason"]) == (category, detail), text
        assert event["classification"]["evidence"] == "detail_name"
        assert event["classification"]["matched"].casefold() == f"subcode={subcode}".casefold()


def test_every_detail_the_code_tables_name_is_in_the_catalog() -> None:
    names = {*codes.FAULT_SUBCODES.values(), *codes.AADSTS_DETAILS.values(), codes.AADSTS_DEFAULT,
             *(f.detail for f in codes.FAMILIES if f.detail is not None),
             *(r.base for r in codes.REFINEMENTS), *(r.detail for r in codes.REFINEMENTS)}
    assert names <= set(catalog.DETAILS_BY_NAME)


def test_every_fault_subcode_has_a_row() -> None:
    assert {s.casefold() for s, _, _ in SUBCODES} == set(codes.FAULT_SUBCODES)


def test_unknown_subcode_is_not_guessed() -> None:
    event = one_event({"failureReason": "Fault/Code/Subcode/Value=(SomethingNew)"})
    assert event["failureCategory"] == "unknown"


@pytest.mark.parametrize("field", ["Message", "message", "RenderedDescription", "Description"])
def test_windows_event_log_records_are_read(field: str) -> None:
    record = {"ProviderName": "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider",
              "Id": 76, field: "Auto MDM Enroll: Failed (Unknown Win32 Error code: 0x80180018)"}
    assert one_event(record)["detailReason"] == "userNotLicensed"


# --- mistyped codes ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "code"), [
    ("Auto MDM Enroll: Failed (Unknown Win32 Error code: 0x80180002b)", 0x8018002B),  # extra 0
    ("Error 0x801c003: This user is not authorized to enroll.", 0x801C0003),  # a 0 dropped
])
def test_mistyped_code_is_repaired_and_said_so(text: str, code: int) -> None:
    event = one_event({"failureReason": text})
    assert event["classification"]["evidence"] == "hresult"
    assert event["classification"]["matched"] == f"0x{code:08X} (mistyped in the text)"


@pytest.mark.parametrize("text", ["0x801801899", "0x8018181", "0x80180018999"])
def test_a_typo_with_no_doubled_zero_is_not_guessed(text: str) -> None:
    assert one_event({"failureReason": text})["failureCategory"] == "unknown"


def test_codes_inside_guids_and_sentences() -> None:
    guid = one_event({"failureReason": "Correlation 80180018-4a2b-4c3d-9e8f-0123456789ab"})
    assert guid["failureCategory"] == "unknown"
    sentence = one_event({"failureReason": "Failed with 2149056536."})  # unsigned, then a period
    assert sentence["detailReason"] == "userNotLicensed"


# --- code families ----------------------------------------------------------------------------
FAMILY_ROWS = [
    (0x80192EE7, "networkConnectivity", "clientDisconnected", "WinHTTP"),
    (0x80192EE2, "networkConnectivity", "clientDisconnected", "WinHTTP"),
    (0x80072EFD, "networkConnectivity", "clientDisconnected", "WinINet"),
    (0xCAA82EFE, "networkConnectivity", "clientDisconnected", "ADAL network"),
    (0x80190002, "deviceAuthenticationError", "authentication", "MREGISTER twin"),
    (0x80190018, "userNotLicensed", "userValidation", "MREGISTER twin"),
    (0x801901AD, "enrollmentServerHttpError", "unknown", "HTTP status"),
    (0xCAA5ABCD, "tokenServiceError", "authentication", "ADAL/WAM"),
    (0x81039099, "tpmAttestationFailed", "deviceNotSupported", "TPM attestation"),
    (0x80284001, "tpmNotSupported", "deviceNotSupported", "TPM error"),
]


@pytest.mark.parametrize(("code", "detail", "category", "label"), FAMILY_ROWS,
                         ids=[f"0x{c:08X}" for c, _, _, _ in FAMILY_ROWS])
def test_code_family_in_hex_and_decimal(code: int, detail: str, category: str, label: str) -> None:
    for text in (f"Enrollment failed: 0x{code:08X}", f"error {code}", f"{code - (1 << 32)}"):
        event = one_event({"failureReason": text})
        assert (event["failureCategory"], event["detailReason"]) == (category, detail), text
        assert event["classification"]["evidence"] == "code_family"
        assert event["classification"]["confidence"] == "medium"
        assert label in event["classification"]["matched"]


def test_a_listed_code_beats_its_family() -> None:
    event = one_event({"failureReason": "0xCAA9001F"})
    assert event["classification"]["evidence"] == "hresult"


def test_a_code_outside_every_family_stays_unknown() -> None:
    assert one_event({"failureReason": "0x80041234"})["failureCategory"] == "unknown"


# --- AADSTS ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "detail", "evidence"), [
    ("AADSTS50155: Device authentication failed", "deviceNotAuthenticated", "hresult"),
    ("AADSTS53003: Access has been blocked by Conditional Access policies.",
     "conditionalAccessBlocked", "hresult"),
    ("AADSTS50034: The user account does not exist", "userUnknown", "hresult"),
    ("AADSTS99999: something new from Entra", "signInFailed", "code_family"),
])
def test_aadsts_numbers(text: str, detail: str, evidence: str) -> None:
    event = one_event({"failureReason": text})
    assert (event["detailReason"], event["classification"]["evidence"]) == (detail, evidence)


# --- context refinements ----------------------------------------------------------------------
@pytest.mark.parametrize(("record", "detail"), [
    ({"failureReason": "0x80180005"}, "serverError"),
    ({"failureReason": "0x80180005", "enrollmentType": "azureADJoinedWithWhiteGlove"},
     "preProvisioningNotAllowed"),
    ({"failureReason": "Pre-provisioning failed with error code 0x80180005"},
     "preProvisioningNotAllowed"),
    ({"failureReason": "0x8018000A", "enrollmentType": "userEnrollment"}, "deviceAlreadyEnrolled"),
    ({"failureReason": "0x8018000A", "enrollmentType": "windowsCoManagement"},
     "deviceAlreadyEnrolled"),
    ({"failureReason": "2149056522: the device is enrolled in another MDM"},
     "existingManagementProfile"),
])
def test_enrollment_type_and_wording_refine_a_code(record: dict[str, Any], detail: str) -> None:
    event = one_event(record)
    assert event["detailReason"] == detail
    if detail in ("preProvisioningNotAllowed", "existingManagementProfile"):
        assert event["classification"]["matched"].endswith("(in this scenario)")


def test_refinement_reads_the_log_rows_enrollment_type() -> None:
    row = {"operationName": "Enrollment", "resultType": "Fail",
           "properties": {"FailureReason": "0x80180005",
                          "EnrollmentType": "AzureADJoinedWithWhiteGlove"}}
    assert one_event(row)["detailReason"] == "preProvisioningNotAllowed"


# --- cues -----------------------------------------------------------------------------------
CUE_ROWS = [  # text no catalog phrase holds -> (category, detail)
    ("Too many devices are registered to this user already", "enrollmentRestrictionsEnforced", "deviceCap"),
    ("The tenant has not defined an MDM authority yet", "accountValidation", "enrollmentOnboardingIssue"),
    ("The Apple push certificate expired last week", "accountValidation", "apnsCertificateExpired"),
    ("Your user account has no Intune license", "userValidation", "userNotLicensed"),
    ("This iPhone model is not supported", "deviceNotSupported", "unsupportedDeviceType"),
    ("The service is under maintenance, come back later", "inMaintenance", "accountInMaintenance"),
    ("DNS lookup failed while contacting the enrollment server", "clientDisconnected", "networkConnectivity"),
    ("The request timed out", "clientDisconnected", "networkConnectivity"),
    ("We couldn't authenticate you", "authentication", "signInFailed"),
    ("Invalid credentials were supplied", "authentication", "signInFailed"),
    ("You are not authorized to enroll devices", "authorization", "deviceAuthorizationError"),
    ("A different user already enrolled this tablet", "authorization", "deviceAlreadyEnrolled"),
    ("Personally owned devices are blocked by your organization", "enrollmentRestrictionsEnforced",
     "personalDeviceBlocked"),
    ("Your organization doesn't allow this platform", "enrollmentRestrictionsEnforced", "platformBlocked"),
    ("This enrollment method isn't supported for your account", "featureNotSupported",
     "featureNotSupported"),
    ("The user abandoned the setup", "userAbandonment", "userAbandonment"),
    ("The device is already managed by another MDM provider", "badRequest", "existingManagementProfile"),
    ("Check the clock on the device", "badRequest", "deviceClockWrong"),
    ("TPM attestation failed during setup", "deviceNotSupported", "tpmNotSupported"),
    ("The keychain holds stale items", "badRequest", "staleKeychainEntries"),
    ("Company Portal is outdated", "badRequest", "outdatedClient"),
    ("The Windows Home edition cannot join", "deviceNotSupported", "windowsEditionNotSupported"),
    ("MDM user scope is None for this group", "accountValidation", "mdmNotConfigured"),
    ("An unexpected error happened on the server", "unknown", "serverError"),
    ("A proxy blocks the identity provider", "clientDisconnected", "identityProviderBlocked"),
    ("The user canceled enrollment", "clientDisconnected", "userCancelled"),
    ("You have used all the seats you bought: maximum reached", "enrollmentRestrictionsEnforced",
     "seatLimitReached"),
    ("Sign-in requires local administrator rights on this PC", "authorization",
     "deviceAuthorizationError"),
    ("ProvisioningProgressPage_DeviceConfigurationTimeOut", "clientDisconnected",
     "networkConnectivity"),
    ("The imported device hash could not be decoded", "badRequest", "invalidHardwareHash"),
    ("The motherboard was replaced on this PC", "authorization", "autopilotDeviceNotFound"),
    ("The web authentication broker returned an error", "authentication", "signInFailed"),
    ("Connection refused: the subscription was cancelled", "accountValidation", "accountNotActive"),
    ("Enrollment quota exceeded for this user", "enrollmentRestrictionsEnforced", "deviceCap"),
    ("The OS version is below the minimum your organization allows", "enrollmentRestrictionsEnforced",
     "osVersionBlocked"),
    ("We couldn't sign you in. Check your username and password.", "authentication", "signInFailed"),
    ("The sign-in was blocked by a Conditional Access policy", "authorization",
     "conditionalAccessBlocked"),
    ("Device type not allowed", "enrollmentRestrictionsEnforced", "platformBlocked"),
    ("Your organization requires a newer version of Android", "enrollmentRestrictionsEnforced",
     "osVersionBlocked"),
    ("The setup was cancelled", "clientDisconnected", "userCancelled"),
    ("The tenant could not be found", "accountValidation", "tenantNotFound"),
    # an unanswered MFA toast is the prompt not completed, not a failed sign-in
    ("The two-factor toast was not answered, so setup was cancelled", "clientDisconnected",
     "mfaNotCompleted"),
    # not entitled to use the service (a licence), unlike not authorized to enroll
    ("This user isn't authorized to use Intune", "userValidation", "userNotLicensed"),
    ("You don't have access to use Company Portal", "userValidation", "userNotLicensed"),
    ("The user took too long to confirm the terms", "userAbandonment", "userAbandonment"),
    # what the organization (tenant, admin) does not allow or only allows is its restriction
    ("Your company doesn't support Android 9", "enrollmentRestrictionsEnforced", "platformBlocked"),
    ("Your tenant only permits Windows devices", "enrollmentRestrictionsEnforced",
     "platformBlocked"),
    ("Your tenant only allows corporate-owned iPads", "enrollmentRestrictionsEnforced",
     "personalDeviceBlocked"),
    ("The Company Portal only supports iOS 15 and later", "deviceNotSupported",
     "unsupportedDeviceType"),  # an app's name is no organization
    ("The iPad is still awaiting its management profile", "clientDisconnected",
     "appleChallengeIssue"),
    ("Device configuration was delayed", "clientDisconnected", "appleChallengeIssue"),
    ("The server couldn't recognize the user", "authentication", "deviceAuthenticationError"),
    ("User unrecognized", "authentication", "deviceAuthenticationError"),
    ("The user isn't a member of the local Administrators group", "authorization",
     "deviceAuthorizationError"),  # admin rights, not a licence group
]


@pytest.mark.parametrize(("text", "category", "detail"), CUE_ROWS, ids=[t for t, _, _ in CUE_ROWS])
def test_cues_read_descriptive_text(text: str, category: str, detail: str) -> None:
    event = one_event({"failureReason": text})
    assert (event["failureCategory"], event["detailReason"]) == (category, detail), text
    assert event["classification"]["evidence"] == "cue"
    assert event["classification"]["confidence"] == "medium"
    fired = event["classification"]["matched"].split(" + ")
    assert fired and all(f in _CUE_IDS for f in fired)


_CUE_IDS = {c.id for c in cues.CUES}


@pytest.mark.parametrize(("text", "why"), [
    ("The device is supported", "no negation: 'supported' alone is not a cause"),
    ("Knox license could not be activated", "a Knox licence is not a user's licence (veto)"),
    ("The user has no license and the device is not supported",
     "two categories score within the margin: no guess"),
    ("Enrollment failed", "no cue at all"),
    ("Co-management isn't enabled for this tenant",
     "a negation next to 'tenant' is no missing tenant"),
    ("The account isn't a member of the Domain Administrators security group",
     "an administrators group is no licence group (veto)"),
    ("Enrollment failed. Request support from your company if it does not go away",
     "'support' in a contact-support sentence is no unsupported device (veto)"),
])
def test_cues_that_must_not_decide(text: str, why: str) -> None:
    event = one_event({"failureReason": text})
    if text.startswith("Knox"):
        assert event["failureCategory"] != "userValidation", why
    else:
        assert event["failureCategory"] == "unknown", why


def test_precedence_by_weight() -> None:
    # a TPM timeout is a TPM failure, not a network timeout; an organization that does not
    # support a version is a restriction, not an unsupported device.
    tpm = one_event({"failureReason": "TPM attestation timed out"})
    assert tpm["failureCategory"] == "deviceNotSupported"
    org = one_event({"failureReason": "Your organization does not support this version of Windows"})
    assert org["detailReason"] == "platformBlocked"


# Wording no specific cue was written for: only the category's stem family decides.
FAMILY_CUE_ROWS = [  # text -> (category, the family cue that must be among those that scored)
    ("The person walked away and quit the setup before it was done", "userAbandonment",
     "family-abandonment"),
    ("Setup was left incomplete by the person enrolling", "userAbandonment", "family-abandonment"),
    ("Logon to the identity service did not work", "authentication", "family-sign-in"),
    ("You lack the permission to add a device", "authorization", "family-permission"),
    ("This model is not compatible with management", "deviceNotSupported", "family-unsupported"),
    ("Personally owned phones are restricted", "enrollmentRestrictionsEnforced",
     "family-restriction"),
    ("Could not connect to the service", "clientDisconnected", "family-network"),
    ("The request body could not be parsed", "badRequest", "family-bad-data"),
    ("White glove is not available in this scenario", "featureNotSupported", "family-feature"),
    ("Your tenant's subscription was suspended", "accountValidation", "family-tenant-setup"),
    ("Nobody has assigned the person a licence", "userValidation", "family-user-licence"),
    # Graph's own enum descriptions and common Company Portal wording
    ("Failed to validate the account for enrollment. (Account blocked, enrollment not enabled)",
     "accountValidation", "family-tenant-setup"),
    ("Client disconnected", "clientDisconnected", "family-network"),
    ("The server took too long to respond", "clientDisconnected", "family-network"),
    ("We couldn't verify your identity", "authentication", "family-sign-in"),
    ("The device isn't compatible with this version of Company Portal", "deviceNotSupported",
     "family-unsupported"),
]


@pytest.mark.parametrize(("text", "category", "family"), FAMILY_CUE_ROWS,
                         ids=[t for t, _, _ in FAMILY_CUE_ROWS])
def test_stem_families_read_wording_no_specific_cue_was_written_for(
        text: str, category: str, family: str) -> None:
    event = one_event({"failureReason": text})
    assert event["failureCategory"] == category, text
    assert event["classification"]["evidence"] == "cue"
    assert family in event["classification"]["matched"].split(" + ")


@pytest.mark.parametrize(("text", "why"), [
    ("The VPN connection closed unexpectedly", "a closed connection is no abandonment (veto)"),
    ("Sign in with your admin account to see more", "an instruction to sign in is no failure"),
    ("The access token has expired", "an access token is sign-in, not a tenant token"),
    ("The certificate template or the certificate authority is unreachable",
     "a certificate request is not a network family match (veto)"),
    ("Sync incomplete", "an incomplete sync is no abandoned enrollment"),
    ("Enter your credentials to continue", "a prompt names no failure"),
])
def test_stem_family_vetoes(text: str, why: str) -> None:
    event = one_event({"failureReason": text})
    assert event["failureCategory"] not in ("userAbandonment", "clientDisconnected",
                                            "accountValidation"), why
    if text.startswith(("Sign in", "Sync", "Enter")):
        assert event["failureCategory"] == "unknown", why


def test_a_multi_word_cue_does_not_run_across_a_sentence_end() -> None:
    # ' token request' (a sign-in token request) is not in "... program token. Request ID";
    # single words still match on either side of the boundary.
    assert catalog.clause_words("The token. Request ID: 42") == " the token  request id  42 "
    assert catalog.clause_words("WS-Trust 1.3 endpoint") == " ws trust 1 3 endpoint "
    event = one_event({"failureReason": "An error occurred while uploading the token. "
                                         "Request ID: 77, call failed"})
    assert event["failureCategory"] == "accountValidation"  # not a token-service sign-in error


def test_a_slow_server_or_session_is_no_user_out_of_time() -> None:
    event = one_event({"failureReason": "The user's session took too long to respond"})
    assert event["failureCategory"] == "clientDisconnected"


def test_an_expired_sign_in_token_is_authentication_not_an_apple_token() -> None:
    event = one_event({"failureReason": "Authentication token has expired, sign in again"})
    assert event["failureCategory"] == "authentication"


def test_a_family_does_not_choose_the_detail_when_a_specific_cue_fired() -> None:
    # family-restriction and admin-block sum more for enrollmentCriteriaNotMet than the one
    # personal-blocked cue does, yet the detail is the one the specific cues point at.
    event = one_event({"failureReason": "Personally owned devices are blocked by your organization"})
    assert event["detailReason"] == "personalDeviceBlocked"
    assert "family-restriction" in event["classification"]["matched"].split(" + ")


def test_every_cue_compiles_to_terms_and_has_a_unique_id() -> None:
    ids = [c.id for c in cues.CUES]
    assert len(ids) == len(set(ids))
    for compiled in cues.INDEX.cues:
        assert compiled.terms, compiled.cue.id
        assert all(alt.startswith(" ") for term in compiled.terms for alt in term)


def test_cue_naming_an_unknown_detail_is_refused() -> None:
    with pytest.raises(ValueError, match="names no catalog detail"):
        cues.build_index((cues.Cue("x", "noSuchDetail", "word", 1.0),))


def test_stronger_evidence_wins_over_cues() -> None:
    event = one_event({"failureReason": "Too many devices: 0x80180018"})
    assert event["detailReason"] == "userNotLicensed"  # the code, not the device-limit cue


# --- remediation that fits -----------------------------------------------------------------
def test_unknown_says_what_was_seen_and_where_to_look() -> None:
    event = one_event({"failureReason": "Enrollment hit 0x801C0099 during join"})
    hint = event["remediation"][0]
    assert "0x801C0099" in hint["summary"]
    assert "dsregcmd" in hint["steps"][0]
    assert "support case" not in hint["steps"][0] and "support case" in hint["steps"][-1]


def test_unknown_without_reason_says_so() -> None:
    hint = one_event({"failureCategory": "unknown"})["remediation"][0]
    assert "no failure reason" in hint["summary"]


def test_identity_provider_block_is_not_an_esp_timeout() -> None:
    event = one_event({"failureReason": "Something went wrong. OOBEIDPS."})
    assert event["detailReason"] == "identityProviderBlocked"
    assert "proxy" in event["remediation"][0]["summary"]


def test_another_mdm_gets_the_mdm_fix_not_the_user_fix() -> None:
    mdm = one_event({"failureReason": "0x8018000A: the device is managed by another MDM"})
    user = one_event({"failureReason": "0x8018000A", "enrollmentType": "userEnrollment"})
    assert "MDM" in mdm["remediation"][0]["summary"]
    assert "user" in user["remediation"][0]["summary"]
    assert mdm["remediation"][0]["summary"] != user["remediation"][0]["summary"]
