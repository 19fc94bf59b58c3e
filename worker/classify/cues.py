"""Cues: reading the cause out of descriptive error text, as reviewed data.

Microsoft's messages describe a cause rather than name it ("too many devices are enrolled
already", "the MDM authority hasn't been defined", "TPM attestation timed out"). A **cue**
is a combination of word stems that points at one detail reason, with a weight:

* a cue is written ``"stem stem|stem ..."``: every space-separated term must occur, a term
  is satisfied by any of its ``|`` alternatives; a stem matches from the start of a word
  (``licen`` finds "license", "licensed", "licence"), ``_`` joins words (``too_many``), a
  trailing ``$`` ends the word (``no$`` is not "now"); a joined alternative does not run
  across a sentence or clause end (``token_request`` is not in "token. Request ID":
  ``catalog.clause_words``);
* ``NEG`` is a term satisfied by a negation ("not", "no", "never", "cannot", "unable",
  "-n't"); a term starting with ``!`` vetoes the cue when any of its alternatives occurs;
* the weights of the cues that fire are summed per detail and per category. The best
  category wins if it reaches :data:`THRESHOLD` and leads the runner-up category by
  :data:`MARGIN`; otherwise the cues disagree and nothing is decided (a wrong specific
  category is worse than ``unknown``). Precedence between overlapping cues is by weight:
  "TPM attestation timed out" is a TPM failure, not a network timeout;
* a **stem family** (:data:`FAMILIES`) gathers the words several articles use for one
  category's causes; it scores for the category but does not choose the detail while a
  specific cue of that category fired.

Cues are the weakest evidence: the classifier tries them only after exact names, protocol
wrappers, codes and exact phrases, and reports them as ``evidence: cue`` with medium
confidence and, in ``matched``, the ids of the winning category's cues that scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from worker.classify.catalog import DETAILS_BY_NAME

THRESHOLD: Final = 1.0
MARGIN: Final = 0.5
_NEG: Final = ("not$", "no$", "never$", "cannot$", "unable$", "without$", "t$", "none$")


@dataclass(frozen=True, slots=True)
class Cue:
    id: str  # stable and short: it is echoed in classification.matched
    detail: str  # a detail reason name in the catalog
    spec: str
    weight: float = 1.0


# Boilerplate that says "support" without saying what is unsupported ("request support from
# your company"): a veto for the cues that read "not ... support".
_CONTACT_SUPPORT: Final = ("request_support|contact_support|support_from|call_support|it_support|"
                           "support_team")


def _c(detail: str, spec: str, weight: float, cue_id: str) -> Cue:
    return Cue(cue_id, detail, spec, weight)


SPECIFIC_CUES: Final[tuple[Cue, ...]] = (
    # --- authentication ---
    # An MFA toast or notification left unanswered is the prompt not completed (the
    # mfa-prompt-ignored cue), not a failed sign-in: the same vetoes as family-sign-in's.
    _c("signInFailed", "authenticat NEG|fail|error !toast|notification", 1.5,
       "authentication-failed"),
    _c("signInFailed", "credential invalid|incorrect|wrong|validat|expired|fail", 1.5,
       "bad-credentials"),
    _c("signInFailed", "password invalid|incorrect|wrong|expired|required|needed|supplied", 1.5,
       "password"),
    _c("signInFailed", "sign_in|signin|sign_you_in|log_in|logon|login fail|NEG|error|unable|need|"
       "required", 1.0, "sign-in-failed"),
    _c("signInFailed", "username|user_name password", 1.0, "username-password"),
    _c("signInFailed", "mfa$|multi_factor|two_factor|second_factor !toast|notification", 1.0,
       "mfa"),
    _c("signInFailed", "wab$|web_authentication_broker|web_sign_in", 1.0, "web-sign-in"),
    _c("signInFailed", "stuck|hang|hangs login|log_in|sign_in|credentials", 1.0,
       "stuck-at-sign-in"),
    # The service could not recognise or authenticate the user: "User not recognized" (the
    # Authentication fault), "the server failed to authenticate the user" (0x80180002).
    _c("deviceAuthenticationError", "user NEG|fail|unrecogni recogni|unrecogni|authenticat "
       "!toast|notification", 1.0, "user-not-recognised"),
    _c("tokenServiceError", "adal|wam$|access_token|security_token|token_request|token_endpoint",
       1.5, "token-service"),
    _c("tokenServiceError", "federat|ws_trust|wstrust|adfs|ad_fs|saml|mex$|realm", 1.0,
       "federation"),
    _c("authCertificateMissing", "missing|no$|find|found certificate !apns|push|template", 1.0,
       "certificate-missing"),
    # --- authorization ---
    _c("deviceAuthorizationError", "NEG authoriz|allowed|permitted enroll|join|register", 1.0,
       "not-allowed-to-enroll"),
    _c("deviceAuthorizationError", "authoriz fail|error|denied !adal$|wam$|authorized_to_use", 1.0,
       "authorization-failed"),
    _c("deviceAuthorizationError", "NEG permission|privilege|rights !certificate", 1.0,
       "no-permission"),
    _c("entraJoinNotAllowed", "users_may_join|join_devices", 1.5, "join-setting"),
    _c("deviceAuthorizationError", "local_admin|administrators_group|local_administrators|"
       "admin_rights|administrator_rights|administrative_privileges", 1.6, "local-admin"),
    _c("deviceAlreadyEnrolled",
       "another|different|other|previous|someone_else user|account|someone_else "
       "enrolled|joined|connected|assigned|registered|removed", 1.5, "another-user"),
    _c("deviceAlreadyEnrolled", "already enrolled|registered|joined !mdm|management|machine|"
       "computer|cloned|image|service", 1.0, "already-enrolled"),
    _c("conditionalAccessBlocked", "conditional_access", 2.0, "conditional-access"),
    _c("autopilotDeviceNotFound", "autopilot device|record|hash|object|registration "
       "NEG|not_found|missing|removed|deleted|not_registered !profile", 1.0, "autopilot-device"),
    _c("autopilotProfileNotAssigned", "profile assign|not_found|found NEG|unassigned", 1.0,
       "profile-not-assigned"),
    _c("autopilotProfileNotAssigned", "autopilot policy|profile not_found|missing|NEG", 1.0,
       "autopilot-profile-missing"),
    _c("autopilotDeviceNotFound", "hardware_change|motherboard|new_hardware", 1.0,
       "hardware-changed"),
    _c("autopilotDeviceNotFound", "device_object|device_record object|record deleted|removed "
       "!given_id|sync", 1.0, "device-object-deleted"),
    # --- accountValidation ---
    _c("enrollmentOnboardingIssue", "mdm_authority|management_authority", 2.0, "mdm-authority"),
    _c("enrollmentOnboardingIssue", "onboard NEG|not", 1.0, "not-onboarded"),
    _c("apnsCertificateInvalid", "apns|push_notification|push_certificate|mdm_push", 1.5, "apns"),
    _c("apnsCertificateExpired", "apns|push_notification|push_certificate|mdm_push expir", 2.0,
       "apns-expired"),
    _c("apnsCertificateInvalid", "certificate communicat", 2.0, "device-channel-certificate"),
    _c("apnsCertificateInvalid", "enrollment_policy", 1.0, "no-enrollment-policy"),
    _c("adeTokenInvalid", "token expir|invalid|revoked|malformed|upload !bulk|provisioning|"
       "authentication_token|refresh_token|access_token|sign_in", 1.5,
       "token-invalid"),
    _c("adeTokenInvalid", "apple_business_manager|apple_school_manager|abm$|asm$|"
       "enrollment_program|ade$|dep$ token|mdm_server|access_denied|removed", 1.0, "ade-token"),
    _c("vppTokenProblem", "token vpp|apps_and_books|licenses|another_tenant|another_service|"
       "deleted", 1.5, "vpp-token"),
    _c("appleTermsNotAccepted", "terms_and_conditions|t_c$ NEG|accept", 1.0, "terms-not-accepted"),
    _c("mdmTermsOfUseUrl", "terms_of_use url|endpoint|connect", 2.0, "terms-of-use-url"),
    _c("mdmNotConfigured", "mdm_user_scope|user_scope", 2.0, "mdm-user-scope"),
    _c("mdmNotConfigured", "mdm|automatic|automatically|auto_enroll configur NEG|none|fully", 1.0,
       "mdm-not-configured"),
    _c("mdmNotConfigured", "upn$|user_principal_name routable|unverified|local$|malformed|format|"
       "suffix", 1.5, "upn"),
    # Not a bare negation: "the feature isn't released ... for the tenant" is no missing tenant.
    _c("tenantNotFound", "tenant not_found|be_found|wrong|incorrect|doesn_t_exist|does_not_exist",
       1.0, "tenant-not-found"),
    _c("accountNotActive", "subscription|account expired|cancel|suspend|deleted|inactive|disabled "
       "!user|token|certificate|scp", 2.0, "account-not-active"),
    # --- userValidation ---
    _c("userNotLicensed", "licen|unlicensed !platform|windows_version|vpp|token|apps_and_books|"
       "knox|seat", 1.0, "licence"),
    _c("userNotLicensed", "given_you_access|given_access", 1.0, "no-access-given"),
    # Not entitled to use the service or app (not authorized, no access, not allowed to use
    # it): a licence or assignment, unlike "not authorized to enroll" (authorization).
    _c("userNotLicensed", "NEG authorized_to_use|access_to_use|allowed_to_use|permitted_to_use|"
       "entitled_to_use", 1.0, "not-entitled-to-use"),
    # Not the local Administrators group: that is admin rights (local-admin), as
    # family-user-licence's vetoes say too.
    _c("userNotLicensed", "member group !administrators|local_admin", 1.0, "group-membership"),
    _c("userUnknown", "user|account NEG|not_found|unknown exist|found|unknown "
       "!adal|realm|server|device|licen", 1.0, "user-unknown"),
    # --- deviceNotSupported ---
    # What an organization does not support is its restriction (organization-blocks), as
    # family-unsupported's vetoes say too.
    _c("unsupportedDeviceType", "NEG|only support !federat|authenticat|organization|your_company|"
       f"company_doesn|company_does_not|{_CONTACT_SUPPORT}", 1.0, "not-supported"),
    _c("unsupportedDeviceType", "unsupported|minimum_requirement|minimum_version|too_old|"
       "meet_the_minimum|doesn_t_meet", 1.0, "unsupported"),
    _c("mdmNotSupported", "mobile_device_management|mdm$ NEG|generally support", 0.5,
       "mdm-not-supported"),
    _c("windowsEditionNotSupported", "home_edition|windows_home|windows_10_home|windows_11_home|"
       "edition", 2.0, "windows-edition"),
    _c("tpmNotSupported", "tpm$|trusted_platform_module|securing_your_hardware", 2.5, "tpm"),
    _c("tpmAttestationFailed", "attestation", 1.0, "attestation"),
    _c("virtualMachineNotRecognised", "virtual_machine|vm$", 1.0, "virtual-machine"),
    _c("workProfileNotSupported", "work_profile NEG|fail|creat|encrypt", 1.5, "work-profile"),
    _c("workProfileNotSupported", "test_dpc|oem$", 1.0, "oem"),
    _c("deviceAdminNotSupported", "device_administrator|device_admin NEG|deprecat|no_longer|"
       "end_of|support", 1.5, "device-admin"),
    _c("deviceManagementBlocked", "block mdm|mobile_device_management|management "
       "group_policy|gpo$|setmanagedexternally|managed_externally|policy", 1.5, "mdm-blocked"),
    # --- inMaintenance ---
    _c("accountInMaintenance", "maintenance", 2.0, "maintenance"),
    # --- badRequest ---
    _c("messageFormatError", "message_format|malformed|bad_format|format_error|schema|parse|"
       "bad_request|invalid_request|security_header !token|upn$|username", 1.5, "bad-message"),
    _c("messageFormatError", "message|response empty", 1.0, "empty-message"),
    _c("messageFormatError", "renew reject|NEG|eligible", 1.0, "renewal-refused"),
    _c("deviceClockWrong", "clock|date_and_time|time_zone|time_on_the_device|time_on_device|"
       "certificate_date|date_was_invalid", 1.0, "clock"),
    _c("existingManagementProfile", "another_mdm|other_mdm|mdm_provider|mdm_solution|"
       "third_party_mdm", 1.6, "other-mdm"),
    _c("existingManagementProfile", "management_profile|payload|existing_profile "
       "already|existing|installed|remove|match|old$", 1.6, "existing-profile"),
    _c("staleEnrollmentCertificate", "cloned|clone$|sysprep|image already|enrolled|previous", 1.6,
       "cloned-image"),
    _c("staleEnrollmentCertificate", "already enrolled|registered machine|computer|service", 1.6,
       "machine-enrolled"),
    _c("enrollmentDataInvalid", "reject data|enrollment_data", 1.0, "data-rejected"),
    _c("enrollmentDataInvalid", "server configured|configuration NEG|correctly|misconfigured", 0.6,
       "server-misconfigured"),
    _c("outdatedClient", "out_of_date|outdated|old_version|newer_version|corrupt "
       "!organization|os_version|operating_system", 1.0,
       "outdated-client"),
    _c("insecureRedirect", "http$ https|insecure|redirect", 1.0, "insecure-redirect"),
    _c("enrollmentStateInvalid", "twice|invalid_operation|wrong_state", 1.0, "wrong-state"),
    _c("clientRetired", "retired", 1.0, "retired"),
    _c("restartPending", "restart|reboot pending", 1.0, "restart-pending"),
    _c("installerFilesMissing", "installer|extract", 1.5, "installer"),
    _c("staleKeychainEntries", "keychain", 2.0, "keychain"),
    _c("invalidHardwareHash", "hash|devicehash|base_64|base64 convert|invalid|length|padd|corrupt|"
       "decode", 1.5, "hardware-hash"),
    _c("invalidProfileSettings", "invalid|naming|special_character phone_number|department|"
       "profile_name|name$|naming|template|company_name|field|entry", 1.0, "profile-field"),
    # --- featureNotSupported ---
    _c("featureNotSupported", "feature|method|scenario|mode$ support|unexpected|available|released|"
       "incompatib", 1.6, "feature"),
    _c("preProvisioningNotAllowed", "pre_provision|preprovision|white_glove|technician", 1.0,
       "pre-provisioning"),
    _c("preProvisioningNotAllowed", "pre_provision|preprovision|white_glove NEG|fail|allow", 1.0,
       "pre-provisioning-blocked"),
    _c("hybridJoinAssignUser", "hybrid assign_user|assigned_user|domain|odj$", 1.5,
       "hybrid-assign-user"),
    _c("hybridJoinAssignUser", "odj$|offline_domain_join|domain_join_connector", 1.0, "odj"),
    # --- enrollmentRestrictionsEnforced ---
    _c("deviceCap", "too_many|maximum_number|max_number|more_devices|limit|cap$|quota|exceed "
       "device", 1.5, "device-limit"),
    _c("deviceCap", "enrollment_quota|enrollment_limit|device_quota exceed|reached", 1.5,
       "enrollment-quota"),
    _c("enrollmentCriteriaNotMet", "restriction|restricted", 1.0, "restriction"),
    _c("seatLimitReached", "seats maximum|reached|limit|more", 1.5, "seat-limit"),
    _c("enrollmentCriteriaNotMet", "blocked_by|blocked_in admin|administrator|policy|organization|"
       "rule|restriction", 1.0, "admin-block"),
    _c("platformBlocked", "device_type_restriction|platform_restriction|platform|device_type "
       "block|restrict", 1.6, "platform-blocked"),
    # The organization (tenant, admin) does not allow, or only allows, something: a restriction
    # it configured. A named kind of restriction (personal devices, platform) outweighs it.
    _c("platformBlocked", "organization|company|tenant|it_admin|administrator NEG|only "
       f"support|allow|permit !company_portal|only_admin|only_an_admin|{_CONTACT_SUPPORT}", 1.5,
       "organization-blocks"),
    _c("platformBlocked", "device_type|platform NEG allow|permit", 1.6, "platform-not-allowed"),
    _c("osVersionBlocked", "version too_low|too_high|outside|allowed_range", 1.2, "version-range"),
    _c("osVersionBlocked", "version below|above|minimum|maximum|newer|older|higher|lower "
       "allow|organization|restrict", 1.6,
       "version-policy"),
    _c("personalDeviceBlocked", "personal|personally|byod|corporate_owned|corporate owned|"
       "only|require|block|NEG|restrict", 1.6, "personal-blocked"),
    _c("bulkDeviceNotPreregistered", "imei|serial_number|corporate_identifier not_found|"
       "not_registered|preregist|pre_registered|registered|restricted", 1.6, "not-preregistered"),
    # --- clientDisconnected ---
    _c("networkConnectivity", "network|dns$|proxy|firewall|internet|connection|connectivity|"
       "connect|winhttp|wininet|server_name|unreachable|endpoint "
       "error|fail|timeout|timed_out|NEG|unable|abort|lost|block|invalid|terminat|resolv|"
       "unreach|refus|interfer|not_found|issue|problem", 1.2, "network"),
    _c("networkConnectivity", "time_out|timed_out|timeout|times_out", 1.0, "timeout"),
    _c("espTimeout", "enrollment_status_page|esp$ time|stuck", 2.0, "esp-timeout"),
    _c("identityProviderBlocked", "proxy|firewall|network_device identity_provider|idp$", 2.0,
       "idp-blocked"),
    _c("userCancelled", "cancel|abort user|operation|enrollment|setup|registration", 1.2,
       "cancelled"),
    _c("mfaNotCompleted", "mfa$|multi_factor|two_factor notification|toast|prompt|respond", 2.0,
       "mfa-prompt-ignored"),
    _c("appleNetworkError", "apple connection|network|reach", 1.5, "apple-network"),
    # The management profile or configuration is late or still awaited on the device.
    _c("appleChallengeIssue", "profile|configuration delay|await|wait", 1.0, "profile-delayed"),
    _c("networkConnectivity", "ssl|tls certificate invalid|not_valid|validated", 1.0,
       "tls-certificate"),
    # --- userAbandonment ---
    _c("userAbandonment", "abandon", 2.0, "abandoned"),
    _c("userAbandonment", "user NEG|never finish|complete|in_time", 1.0, "not-finished"),
    _c("userAbandonment", "incomplete user|enrollment", 1.0, "incomplete"),
    # The user let the time run out ("more than 30 minutes between sections", "didn't finish
    # it in time"); a server or connection that took too long is the network's.
    _c("userAbandonment", "user in_time|more_than_30|took_more_than|too_long|time_limit "
       "!server|connection|session|network|respond", 1.0, "user-out-of-time"),
    _c("userAbandonment", "postpone|closed|decline|more_than_30_minutes|30_minutes|took_more_than "
       "!server|connection|session", 1.0, "user-stopped"),
    # --- unknown, with a detail: said so, and what to check ---
    _c("serverError", "server|service error|fail|unexpected|exception|internal|busy|unavailable|"
       "503$|500$ !authenticat|reject|proxy|format|schema|dns$|network|connect|contact|timed_out|"
       "timeout|reach", 1.0, "server-error"),
    _c("serverError", "database|db_access|throttl", 1.0, "server-load"),
    _c("certificateRequestError", "certificate_template|certificate_authority|"
       "certification_authority|get_certificate", 1.6, "certificate-request"),
    _c("enrollmentInProgress", "in_progress|already_in_progress enroll|operation", 1.0,
       "in-progress"),
    _c("appleSyncCursorError", "cursor", 1.0, "sync-cursor"),
)


# Stem families: one cue per category that gathers the words several articles use for the
# same kind of cause, so wording no cue was written for still scores. They carry weight 1.0
# (enough alone, if nothing else disagrees) and vetoes where a family's words also describe
# another category's cause; the specific cues above decide the detail.
FAMILIES: Final[tuple[Cue, ...]] = (
    _c("userAbandonment", "abandon|postpone|declin|quit$|gave_up|give_up|incomplete_enrollment|"
       "enrollment_incomplete|incomplete_setup|setup_incomplete|left_incomplete|"
       "more_than_30|closed|exited !connection|server|session|socket|network|timed_out|timeout",
       1.0,
       "family-abandonment"),
    # "Did not finish" is abandonment only when a person did not finish: "device enrollment
    # did not finish" says nothing of who or what stopped it (a timeout, a network cut).
    _c("userAbandonment", "user|you$|he$|she$|they$ didn_t_finish|did_not_finish|never_finish|"
       "not_finish|never_complet|didn_t_complete !connection|server|session|socket|network|"
       "timed_out|timeout", 1.0, "family-abandonment-unfinished"),
    _c("signInFailed", "authenticat|credential|password|sign_in|signin|sign_you_in|log_in|"
       "logon|login|mfa$|multi_factor|adal$|wam$|security_token|access_token|token_request|"
       "federat|wab$|web_authentication|verify_your_identity|identity_verification "
       "NEG|fail|error|invalid|incorrect|wrong|expired|required|denied|blocked|stuck|sticks|"
       "problem|trouble|issue|verify !not_authoriz|unauthoriz|isn_t_authoriz|permission|"
       "privilege|conditional_access|"
       "toast|notification|prompt|licen|tpm$|sign_in_with|please_sign_in", 1.0, "family-sign-in"),
    _c("deviceAuthorizationError", "authoriz|permission|privilege|allowed_to_enroll|"
       "allowed_to_join|allowed_to_register !licen|certificate|apns|push|adal$|wam$|token|"
       "authorized_to_use", 1.0, "family-permission"),
    _c("enrollmentOnboardingIssue", "onboard|mdm_authority|management_authority|apns$|"
       "push_certificate|mdm_push|apple_business_manager|apple_school_manager|"
       "enrollment_program|terms_and_conditions|subscription|mdm_user_scope|user_scope|"
       "suspended|account_blocked|enrollment_not_enabled|validate_the_account|account_is_deleted|account_deleted|account_expired|token_expired|"
       "token_has_expired|token_was_deleted|token_is_being_used|token_is_invalid "
       "!access_token|security_token|adal$|wam$|authentication_token|refresh_token|sign_in",
       1.0, "family-tenant-setup"),
    _c("userNotLicensed", "licen|unlicensed|user_unknown|unknown_user|user_not_found|"
       "user_is_unknown|not_a_member|isn_t_a_member|not_authorized_to_use !knox|vpp|token|"
       "seat|administrators|local_admin|platform|windows_version", 1.0, "family-user-licence"),
    _c("unsupportedDeviceType", "unsupported|not_supported|isn_t_supported|doesn_t_support|"
       "does_not_support|minimum_requirement|meet_the_minimum|too_old|not_compatible|"
       "isn_t_compatible|incompatible|"
       "hardware_requirement|prerequisite|blocked_by_group_policy|group_policy|"
       "managed_externally !organization|your_company|company_doesn|company_does_not|admin|"
       "feature|method|scenario|tenant|federat|authenticat|restrict", 1.0, "family-unsupported"),
    _c("enrollmentCriteriaNotMet", "restriction|restricted|too_many_devices|maximum_number|"
       "device_limit|enrollment_limit|limit_reached|seats|preregist|pre_registered|"
       "blocked_by_your|not_allowed_by|organization_doesn_t_allow|organization_does_not_allow|"
       "personally_owned|device_type_not_allowed|platform_not_allowed !oem|knox", 1.0,
       "family-restriction"),
    _c("networkConnectivity", "network|dns$|proxy|firewall|internet|connectivity|unreachable|"
       "timed_out|timeout|time_out|times_out|winhttp|wininet|offline|couldn_t_connect|could_not_connect|"
       "cannot_connect|can_t_connect|unable_to_connect|ssl$|tls$|disconnect|too_long_to_respond "
       "!tpm|attestation|"
       "terms_of_use|communicat|certificate_template|"
       "certificate_authority|certification_authority", 1.0, "family-network"),
    _c("messageFormatError", "malformed|bad_request|invalid_request|invalid_data|format|"
       "parse|parsed|schema|rejected|invalid_operation|corrupt|base_64|base64|literal|was_empty|"
       "is_empty|insecure "
       "!token|credential|password|upn$|proxy|network", 1.0, "family-bad-data"),
    _c("featureNotSupported", "pre_provision|preprovision|white_glove|feature|scenario|"
       "isn_t_released|not_released|odj$|offline_domain_join", 1.0, "family-feature"),
)
CUES: Final[tuple[Cue, ...]] = SPECIFIC_CUES + FAMILIES
_FAMILY_IDS: Final = frozenset(c.id for c in FAMILIES)


@dataclass(frozen=True, slots=True)
class CompiledCue:
    cue: Cue
    terms: tuple[tuple[str, ...], ...]  # every term must match one of its alternatives
    vetoes: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: an index is a cache key
class CueIndex:
    cues: tuple[CompiledCue, ...]
    categories: dict[str, str]  # detail name -> its category's name


def _alternative(stem: str) -> str:
    word = stem.replace("_", " ")
    return f" {word[:-1]} " if word.endswith("$") else f" {word}"


def _compile(cue: Cue) -> CompiledCue:
    terms: list[tuple[str, ...]] = []
    vetoes: list[str] = []
    for term in cue.spec.split():
        if term.startswith("!"):
            vetoes.extend(_alternative(a) for a in term[1:].split("|"))
            continue
        alternatives = [a for t in term.split("|") for a in (_NEG if t == "NEG" else (t,))]
        terms.append(tuple(_alternative(a) for a in alternatives))
    return CompiledCue(cue, tuple(terms), tuple(vetoes))


def build_index(cues: tuple[Cue, ...]) -> CueIndex:
    """Compile cues; every cue must name a catalog detail (checked at import)."""
    categories: dict[str, str] = {}
    for cue in cues:
        detail = DETAILS_BY_NAME.get(cue.detail)
        if detail is None:
            raise ValueError(f"cue {cue.id!r} names no catalog detail: {cue.detail!r}")
        categories[cue.detail] = detail.category.name
    return CueIndex(tuple(_compile(c) for c in cues), categories)


# The one index the classifier uses. Rebinding it (bench/accuracy.py's held-out run does)
# takes effect after match_cues.cache_clear().
INDEX: CueIndex = build_index(CUES)


@dataclass(frozen=True, slots=True, eq=False)
class CueVerdict:
    detail: str
    score: float
    ids: tuple[str, ...]  # the winning category's cues that fired: the detail's, strongest first


def score_cues(spaced: str, index: CueIndex) -> CueVerdict | None:
    """The detail the cues in ``spaced`` (``catalog.clause_words`` form) point at, or None."""
    by_detail: dict[str, list[tuple[float, str]]] = {}
    for compiled in index.cues:
        if _fires(compiled, spaced):
            cue = compiled.cue
            by_detail.setdefault(cue.detail, []).append((cue.weight, cue.id))
    if not by_detail:
        return None
    by_category: dict[str, float] = {}
    for detail, hits in by_detail.items():
        category = index.categories.get(detail, detail)
        by_category[category] = by_category.get(category, 0.0) + sum(w for w, _ in hits)
    ranked = sorted(by_category.values(), reverse=True)
    best = ranked[0]
    if best < THRESHOLD or (len(ranked) > 1 and best - ranked[1] < MARGIN):
        return None
    # A family speaks for its category, not for a detail: the detail is the one whose
    # specific cues score most, the family's detail only when no specific cue fired.
    winners = [(_specific(hits), sum(w for w, _ in hits), d) for d, hits in by_detail.items()
               if index.categories.get(d, d) in _best_categories(by_category, best)]
    _, total, detail = max(winners)
    # Every cue of the winning category added to the score that decided it, so all are
    # reported: the winning detail's first, then the category's other cues.
    others = [hit for _, _, d in winners if d != detail for hit in by_detail[d]]
    ids = tuple(i for _, i in sorted(by_detail[detail], reverse=True)) + tuple(
        i for _, i in sorted(others, reverse=True))
    return CueVerdict(detail, total, ids)


def _specific(hits: list[tuple[float, str]]) -> float:
    return sum(w for w, cue_id in hits if cue_id not in _FAMILY_IDS)


def _best_categories(by_category: dict[str, float], best: float) -> tuple[str, ...]:
    return tuple(c for c, s in by_category.items() if s == best)


def _fires(compiled: CompiledCue, spaced: str) -> bool:
    for veto in compiled.vetoes:
        if veto in spaced:
            return False
    for alternatives in compiled.terms:
        for alternative in alternatives:
            if alternative in spaced:
                break
        else:
            return False
    return True


@lru_cache(maxsize=4096)
def match_cues(spaced: str, index: CueIndex) -> CueVerdict | None:
    """:func:`score_cues`, cached: reason texts repeat in a real stream."""
    return score_cues(spaced, index)
