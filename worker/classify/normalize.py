"""How a failure reason is decided: the one place that says it.

Input is a :class:`~worker.classify.decode.RawRecord`; output is a :class:`Classification`, a
:class:`Skip` (a record that is no failure: :mod:`worker.classify.verdict` decides) or a
:class:`~worker.classify.decode.Rejection` (a category or reason of the wrong JSON type).

The precedence rule, applied in :func:`decide`:

1. Read the category field: a Graph member in any spelling or its integer code is *named*;
   missing, empty, "Not Available" and the like are *absent*; any other value is
   *unrecognised* (a future enum member, say) and counts as ``unknown``.
2. Look for a detail reason in the reason fields, strongest evidence first
   (:func:`find_detail`): an exact detail-reason name (``UserNotLicensed``); a Windows SOAP
   fault subcode inside its wrapper (``Fault/Code/Subcode/Value=(InMaintenance)``); a known
   code in any spelling, a mistyped one repaired (``codes``); a listed AADSTS number; a known
   phrase inside free text (from the start of a word: ``catalog.words``); a code family
   (a WinHTTP error under any facility, an ADAL token error, ...); any other AADSTS number;
   last, the weighted cues of descriptive text (``cues``). A code's detail is then refined
   by the event's enrollment type or the text's words where a source says the code means
   something else in that scenario (``codes.REFINEMENTS``).
3. A detail beats an uninformative category (absent, unrecognised or ``unknown``).
   A named category is kept when the text adds nothing.
4. When both are specific and disagree, the event's own category wins (it is the
   service's decision; our reason-to-category table is partly judgment). The detail is
   then reported under ``conflict`` and not as the event's detail reason, and confidence
   drops to medium. A detail whose ``also`` lists the named category is not a conflict.

Pure: no I/O, no clock, no Kafka or Prometheus. All knowledge is looked up in
:mod:`worker.classify.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

from worker.classify import catalog, codes, cues, verdict
from worker.classify.catalog import Detail, fold
from worker.classify.decode import RawRecord, Rejection
from worker.classify.decode import first_present as _first_present
from worker.classify.memo import Memo
from worker.classify.taxonomy import Confidence, Evidence, FailureCategory
from worker.classify.verdict import SkipReason

CategoryState = Literal["named", "absent", "unrecognized", "notApplicable"]
Rule = Literal[
    "category-field", "category-and-detail-agree", "detail-over-uninformative-category",
    "category-over-conflicting-detail", "unrecognized-category", "no-evidence",
]

# Evidence is searched in the first part of a reason only: a multi-megabyte string must
# cost the same as a short one, and real codes and phrases appear early.
MAX_REASON_SCAN: Final = 8192
MAX_RAW_REASON_CHARS: Final = 1024  # the raw reason echoed in the output
MAX_RAW_CATEGORY_CHARS: Final = 256
# Cues (many substring tests) read less: a cause is described in a message's first sentences,
# and a stream of distinct long texts must not cost milliseconds per event.
MAX_CUE_SCAN: Final = 1024


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: instances come from a cache
class DetailMatch:
    detail: Detail
    evidence: Evidence
    matched: str  # the code or text that matched, as written in canonical form


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: decide() results are cached
class Classification:
    category: FailureCategory
    detail: Detail | None
    evidence: Evidence
    rule: Rule
    confidence: Confidence
    matched: str | None
    raw_category: Any
    raw_reason: str | None
    conflict: Detail | None


@dataclass(slots=True, init=False)  # __init__ written out: mypyc makes it native
class Skip:
    reason: SkipReason

    def __init__(self, reason: SkipReason) -> None:
        self.reason = reason


def normalize_failure(record: RawRecord) -> Classification | Skip | Rejection:
    """Decide the category, detail reason and evidence for one record. Never raises."""
    fields = record.fields
    raw_category = _first_present(fields, catalog.CATEGORY_FIELDS[record.shape])
    kind = type(raw_category)
    if kind is str:
        state, category = _category_from_text(raw_category)
        raw_category = raw_category[:MAX_RAW_CATEGORY_CHARS]
    elif raw_category is None or kind is int or kind is float:  # bool is not int here
        state, category = read_category(raw_category)
    else:
        return Rejection("wrong_type", "failureCategory must be a string or an integer",
                         record.index, record.row)

    skip = _skip_reason(record, state)
    if skip is not None:
        return Skip(skip)

    raw_reason: str | None = None
    match: DetailMatch | None = None
    scanned = ""
    for name in catalog.REASON_FIELDS[record.shape]:
        value = fields.get(name)
        if value is None or value == "":
            continue
        kind = type(value)
        if kind is not str and kind is not int:
            return Rejection("wrong_type", f"{name} must be a string or an integer",
                             record.index, record.row)
        text = value if kind is str else str(value)
        if raw_reason is None:
            raw_reason = text[:MAX_RAW_REASON_CHARS]
        scanned = text[:MAX_REASON_SCAN]
        match = ((_context_detail(record, text) if record.shape in _CONTEXT_SHAPES else None)
                 or find_detail(scanned))
        if match is not None:
            break
    if match is None:
        match = _nested_detail(fields)
    elif match.detail.name in _REFINED_BASES:
        match = _refine(match, scanned, _enrollment_type(record))
    return decide(state, category, match, raw_category, raw_reason)


# Real streams repeat a small set of (category, reason) pairs, so the decision is cached;
# keys are bounded in size (raw values are truncated first), so hostile input cannot grow it.
def decide(state: CategoryState, category: FailureCategory | None, match: DetailMatch | None,
           raw_category: Any, raw_reason: str | None) -> Classification:
    """Apply the precedence rule in the module docstring to the two signals (remembered)."""
    # The class is part of the key, as lru_cache(typed=True) had it: 1 and 1.0 are equal.
    key = (state, category, match, type(raw_category), raw_category, raw_reason)
    found = _DECISIONS.get(key)
    if found is None:
        found = _DECISIONS.put(key, _decide(state, category, match, raw_category, raw_reason))
    return found


_DECISIONS: Final[Memo[tuple[Any, ...], Classification]] = Memo(4096)


def _decide(state: CategoryState, category: FailureCategory | None, match: DetailMatch | None,
            raw_category: Any, raw_reason: str | None) -> Classification:
    uninformative = state != "named" or category is FailureCategory.unknown
    if match is not None and uninformative:
        confidence = Confidence.medium if match.evidence in _WEAK_EVIDENCE else Confidence.high
        return Classification(match.detail.category, match.detail, match.evidence,
                              "detail-over-uninformative-category", confidence, match.matched,
                              raw_category, raw_reason, None)
    if category is not None and state == "named":
        if match is None:
            return Classification(category, None, Evidence.category, "category-field",
                                  Confidence.high, None, raw_category, raw_reason, None)
        detail = match.detail
        if detail.category is category or category in detail.also:
            return Classification(category, detail, Evidence.category,
                                  "category-and-detail-agree", Confidence.high, match.matched,
                                  raw_category, raw_reason, None)
        return Classification(category, None, Evidence.category,
                              "category-over-conflicting-detail", Confidence.medium,
                              match.matched, raw_category, raw_reason, detail)
    rule: Rule = "unrecognized-category" if state == "unrecognized" else "no-evidence"
    return Classification(FailureCategory.unknown, None, Evidence.none, rule, Confidence.low,
                          None, raw_category, raw_reason, None)


def read_category(value: Any) -> tuple[CategoryState, FailureCategory | None]:
    """Read a category field value in any spelling or as Graph's integer code."""
    if value is None:
        return "absent", None
    if isinstance(value, float):
        if not value.is_integer():
            return "unrecognized", None
        value = int(value)
    if isinstance(value, int):
        return _category_from_code(value)
    return _category_from_text(value)


def _category_from_code(code: int) -> tuple[CategoryState, FailureCategory | None]:
    if 0 <= code < len(FailureCategory):
        return "named", FailureCategory(code)
    return "unrecognized", None


def _category_from_text(text: str) -> tuple[CategoryState, FailureCategory | None]:
    found = _CATEGORY_TEXTS.get(text)
    return found if found is not None else _CATEGORY_TEXTS.put(text, _read_category_text(text))


_CATEGORY_TEXTS: Final[Memo[str, tuple[CategoryState, FailureCategory | None]]] = Memo(1024)


def _read_category_text(text: str) -> tuple[CategoryState, FailureCategory | None]:
    if not text.strip():
        return "absent", None
    key = fold(text[:200])
    found = catalog.CATEGORY_BY_FOLDED.get(key)
    if found is not None:
        return "named", found
    if key in catalog.NO_CATEGORY_FOLDED:
        return "absent", None
    if key in catalog.NOT_APPLICABLE_FOLDED:
        return "notApplicable", None
    if key.isdigit() and len(key) < 4:
        return _category_from_code(int(key))
    return "unrecognized", None


_WEAK_EVIDENCE = frozenset((Evidence.phrase, Evidence.code_family, Evidence.cue))


def find_detail(text: str) -> DetailMatch | None:
    """Strongest detail evidence in a reason text, in the order the module docstring gives
    (remembered: reasons repeat)."""
    found = _DETAILS.get(text)  # a 1-tuple, so that "no match" can be remembered too
    if found is None:
        found = _DETAILS.put(text, (_find_detail(text),))
    return found[0]


_DETAILS: Final[Memo[str, tuple[DetailMatch | None]]] = Memo(8192)


def forget() -> None:
    """Empty the memos (for tools that change the phrase or cue tables in place)."""
    _DETAILS.clear()
    _DECISIONS.clear()
    _CATEGORY_TEXTS.clear()


def _find_detail(text: str) -> DetailMatch | None:
    key = fold(text)
    exact = catalog.DETAIL_BY_FOLDED_NAME.get(key)
    if exact is not None:
        return DetailMatch(exact, Evidence.detail_name, text.strip())
    fault = codes.fault_subcode(text)
    if fault is not None:
        return DetailMatch(catalog.DETAILS_BY_NAME[fault[1]], Evidence.detail_name,
                           f"Subcode={fault[0]}")
    readings = tuple(codes.codes_in(text))
    listed = _listed_code(readings) or _listed_aadsts(text)
    if listed is not None:
        return listed
    spaced = catalog.words(text)
    for phrase, detail in catalog.PHRASES:
        if phrase in spaced:
            return DetailMatch(detail, Evidence.phrase, phrase.strip())
    # Cues also read joined identifiers: 'DeviceConfigurationTimeOut' -> 'device ... time out'.
    return (_family(readings) or _aadsts_family(text)
            or _cue(catalog.clause_words(catalog.split_camel(text[:MAX_CUE_SCAN]))))


def _listed_code(readings: tuple[codes.CodeReading, ...]) -> DetailMatch | None:
    for reading in readings:
        detail = catalog.DETAIL_BY_CODE.get(str(reading.number))
        if detail is not None:
            shown = f"0x{reading.number:08X}"
            return DetailMatch(detail, Evidence.hresult,
                               shown if reading.exact else f"{shown} (mistyped in the text)")
    return None


def _listed_aadsts(text: str) -> DetailMatch | None:
    for number in codes.aadsts_numbers(text):
        name = codes.AADSTS_DETAILS.get(number)
        if name is not None:
            return DetailMatch(catalog.DETAILS_BY_NAME[name], Evidence.hresult, f"AADSTS{number}")
    return None


def _family(readings: tuple[codes.CodeReading, ...]) -> DetailMatch | None:
    for reading in readings:
        found = codes.family_of(reading.number)
        if found is None:
            continue
        family, mirrored = found
        shown = f"0x{reading.number:08X} ({family.label})"
        if mirrored is not None:
            twin = catalog.DETAIL_BY_CODE.get(str(mirrored))
            if twin is not None:
                return DetailMatch(twin, Evidence.code_family, shown)
        elif family.detail is not None:
            return DetailMatch(catalog.DETAILS_BY_NAME[family.detail], Evidence.code_family, shown)
    return None


def _aadsts_family(text: str) -> DetailMatch | None:
    for number in codes.aadsts_numbers(text):
        return DetailMatch(catalog.DETAILS_BY_NAME[codes.AADSTS_DEFAULT], Evidence.code_family,
                           f"AADSTS{number} (Entra ID sign-in error)")
    return None


def _cue(spaced: str) -> DetailMatch | None:
    verdict = cues.match_cues(spaced, cues.INDEX)
    if verdict is None:
        return None
    return DetailMatch(catalog.DETAILS_BY_NAME[verdict.detail], Evidence.cue,
                       " + ".join(verdict.ids))


_REFINED_BASES = frozenset(r.base for r in codes.REFINEMENTS)
_ENROLLMENT_TYPE_KEYS = {shape: plan["enrollmentType"]
                         for shape, plan in catalog.FIELD_SOURCES.items()}


def _enrollment_type(record: RawRecord) -> str:
    value = _first_present(record.fields, _ENROLLMENT_TYPE_KEYS[record.shape])
    return fold(value[:200]) if type(value) is str else ""


@lru_cache(maxsize=1024)
def _refine(match: DetailMatch, text: str, enrollment_type: str) -> DetailMatch:
    """The scenario's meaning of a code whose meaning depends on it (codes.REFINEMENTS)."""
    spaced = catalog.words(text)
    for r in codes.REFINEMENTS:
        if r.base == match.detail.name and (
                enrollment_type in r.enrollment_types or any(s in spaced for s in r.stems)):
            return DetailMatch(catalog.DETAILS_BY_NAME[r.detail], match.evidence,
                               f"{match.matched} (in this scenario)")
    return match


def _nested_detail(fields: dict[str, Any]) -> DetailMatch | None:
    # Graph beta puts the service's own wording in troubleshootingErrorDetails.
    details = fields.get("troubleshootingErrorDetails")
    if not isinstance(details, dict):
        return None
    for name in catalog.MICROSOFT_DETAIL_KEYS:
        text = details.get(name)
        if isinstance(text, str) and text:
            found = find_detail(text[:MAX_REASON_SCAN])
            if found is not None:
                return found
    return None


def _skip_reason(record: RawRecord, state: CategoryState) -> SkipReason | None:
    # Whether the record is a failure at all is decided in one place: worker.classify.verdict.
    return verdict.skip_reason(record, state == "notApplicable")


_CONTEXT_SHAPES: Final = frozenset(catalog.CONTEXT_REASONS_FOLDED)


def _context_detail(record: RawRecord, text: str) -> DetailMatch | None:
    """A plain word that names a detail only on one shape (a bare "Timeout" on an ESP row)."""
    table = catalog.CONTEXT_REASONS_FOLDED.get(record.shape)
    if table is None:
        return None
    detail = table.get(fold(text[:64]))
    return DetailMatch(detail, Evidence.detail_name, text.strip()) if detail else None
