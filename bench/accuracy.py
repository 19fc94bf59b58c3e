"""Benchmark (not a test): how well the classifier reads Microsoft's own error text.

    python bench/accuracy.py [--corpus tests/data/microsoft_error_corpus.jsonl] [--json]
                             [--no-held-out] [--misses] [--build build/compiled]

Every corpus entry (a message or code as a Microsoft article, device or log shows it, with
the category the article's cause implies) is sent through the public API,
``worker.classify_message``, in every input wrapper a real stream carries (a Graph
``enrollmentTroubleshootingEvent`` with ``failureCategory`` absent or ``unknown``, a
diagnostic-log row with ``properties`` as an object and as a JSON string, a flat record,
a Windows event-log record) and, where the text holds a code, in every code spelling
(0x upper/lower, bare hex, unsigned and signed decimal). Each entry weighs the same
whatever its number of variants.

Printed: overall and unambiguous accuracy, accuracy by platform, category, evidence kind,
wrapper, spelling and text kind, the share of ``unknown``, the precision of specific
(non-``unknown``) calls, and a held-out estimate, leave one source out: the text evidence
(phrases and cues) that only one source article's records exercise is switched off while
that article is scored, so wording fitted to one article counts as not generalising. Codes
and exact names are facts, not wording, and stay on. The held-out run swaps the text
tables of the plain-Python modules, so it is skipped for the compiled core.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "microsoft_error_corpus.jsonl"
_CODE = re.compile(r"0x([0-9a-fA-F]{8})(?![0-9a-fA-F])")


@dataclass(frozen=True)
class Entry:
    text: str
    platform: str
    source: str
    category: str
    detail: str | None
    ambiguous: bool
    enrollment_type: str | None

    @property
    def kind(self) -> str:
        """code, name (one token), sentence (four words or more) or label."""
        if re.search(r"0x[0-9a-f]{6,}|\b\d{9,10}\b|AADSTS\d+", self.text, re.IGNORECASE):
            return "code"
        words = self.text.split()
        if len(words) == 1:
            return "name"
        return "sentence" if len(words) >= 4 else "label"


@dataclass
class Record:
    entry: Entry
    wrapper: str
    spelling: str
    value: bytes
    weight: float = 1.0
    category: str = "?"
    evidence: str = "?"
    matched: str | None = None

    @property
    def right(self) -> bool:
        return self.category == self.entry.category


def load(path: Path = CORPUS) -> list[Entry]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            entries.append(Entry(d["text"], d["platform"], d["source"], d["category"],
                                 d.get("detail"), bool(d.get("ambiguous")),
                                 d.get("enrollmentType")))
    return entries


def spellings(text: str) -> Iterator[tuple[str, str]]:
    """The text as written, then each code spelling of the first 0x code in it."""
    yield "as-written", text
    m = _CODE.search(text)
    if m is None:
        return
    n = int(m.group(1), 16)
    forms = {"0x-lower": f"0x{n:08x}", "0x-upper": f"0x{n:08X}", "bare-hex": f"{n:08X}",
             "unsigned-decimal": str(n), "signed-decimal": str(n - (1 << 32) if n >> 31 else n)}
    for name, form in forms.items():
        yield name, text[:m.start()] + form + text[m.end():]


def wrappers(e: Entry, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    os_name = None if e.platform == "any" else e.platform
    graph = {"@odata.type": "#microsoft.graph.enrollmentTroubleshootingEvent",
             "id": "3f1c0000-0000-4000-8000-000000000001", "eventDateTime": "2026-11-02T09:15:27Z",
             "operatingSystem": os_name, "enrollmentType": e.enrollment_type,
             "failureReason": text}
    yield "graph-category-absent", graph
    yield "graph-category-unknown", {**graph, "failureCategory": "unknown"}
    props = {"Os": os_name, "EnrollmentType": e.enrollment_type, "FailureCategory": "Unknown",
             "FailureReason": text, "MessageId": "5b9e0000-0000-4000-8000-000000000002"}
    row = {"time": "2026-11-02T09:15:27Z", "category": "OperationalLogs",
           "operationName": "Enrollment", "resultType": "Fail"}
    yield "log-properties-object", {**row, "properties": props}
    yield "log-properties-string", {**row, "properties": json.dumps(props)}
    yield "flat", {"failureReason": text, "operatingSystem": os_name,
                   "enrollmentType": e.enrollment_type}
    if e.platform in ("Windows", "any"):
        yield "windows-event-log", {
            "ProviderName": "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider",
            "Id": 76, "LevelDisplayName": "Error", "TimeCreated": "2026-11-02T09:15:27Z",
            "Message": text}


def records(entries: list[Entry]) -> list[Record]:
    out: list[Record] = []
    for e in entries:
        mine = [Record(e, w, s, json.dumps(doc).encode())
                for s, text in spellings(e.text) for w, doc in wrappers(e, text)]
        for r in mine:
            r.weight = 1.0 / len(mine)
        out.extend(mine)
    return out


def classify_all(recs: list[Record]) -> None:
    from worker import classify_message

    core = _module("core")
    source, classified = core.Source("accuracy"), core.Classified
    for r in recs:
        first = classify_message(r.value, source)[0]
        doc = json.loads(first.value) if isinstance(first, classified) else None
        if doc is None:
            r.category, r.evidence, r.matched = "(not classified)", "none", None
        else:
            r.category = doc["failureCategory"]
            r.evidence = doc["classification"]["evidence"]
            r.matched = doc["classification"]["matched"]


@dataclass
class Score:
    right: float = 0.0
    total: float = 0.0

    def add(self, ok: bool, w: float) -> None:
        self.right += w if ok else 0.0
        self.total += w

    @property
    def pct(self) -> float:
        return 100.0 * self.right / self.total if self.total else 0.0


@dataclass
class Report:
    overall: Score = field(default_factory=Score)
    unambiguous: Score = field(default_factory=Score)
    unknown_share: Score = field(default_factory=Score)
    precision: Score = field(default_factory=Score)
    groups: dict[str, dict[str, Score]] = field(default_factory=lambda: defaultdict(
        lambda: defaultdict(Score)))
    held_out: Score | None = None

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "overall": round(self.overall.pct, 1), "unambiguous": round(self.unambiguous.pct, 1),
            "unknown_share": round(self.unknown_share.pct, 1),
            "specific_precision": round(self.precision.pct, 1),
            "held_out": round(self.held_out.pct, 1) if self.held_out else None}
        for name, group in self.groups.items():
            out[name] = {k: round(s.pct, 1) for k, s in sorted(group.items())}
        return out


def score(recs: list[Record]) -> Report:
    rep = Report()
    for r in recs:
        w, e = r.weight, r.entry
        rep.overall.add(r.right, w)
        if not e.ambiguous:
            rep.unambiguous.add(r.right, w)
        rep.unknown_share.add(r.category == "unknown", w)
        if r.category != "unknown":
            rep.precision.add(r.right, w)
        for name, key in (("platform", e.platform), ("category", e.category),
                          ("evidence", r.evidence), ("wrapper", r.wrapper),
                          ("spelling", r.spelling), ("text kind", e.kind)):
            rep.groups[name][key].add(r.right, w)
    return rep


# --- leave one source out ---------------------------------------------------------------

def _module(name: str) -> ModuleType:
    for path in (f"worker.classify.{name}", f"worker.{name}"):
        try:
            return importlib.import_module(path)
        except ImportError:
            continue
    raise ImportError(name)


def _text_items(r: Record) -> set[str]:
    """The text evidence that decided a record: a phrase, or the cues that scored."""
    if r.matched is None or r.evidence not in ("phrase", "cue"):
        return set()
    return {f"{r.evidence}:{m}" for m in r.matched.split(" + ")}


def _disable(items: set[str]) -> Callable[[], None]:
    """Switch off the given text items in the plain-Python core; returns the undo."""
    catalog, normalize = _module("catalog"), _module("normalize")
    saved: list[tuple[ModuleType, str, Any]] = [(catalog, "PHRASES", catalog.PHRASES)]
    catalog.PHRASES = tuple(p for p in catalog.PHRASES if f"phrase:{p[0].strip()}" not in items)
    try:
        cues = _module("cues")
    except ImportError:
        cues = None
    if cues is not None:
        saved.append((cues, "INDEX", cues.INDEX))
        cues.INDEX = cues.build_index(tuple(c for c in cues.CUES if f"cue:{c.id}" not in items))
    def clear() -> None:
        if hasattr(normalize, "forget"):
            normalize.forget()
        else:  # a core from before the memos (an older checkout)
            for fn in (normalize.find_detail, normalize.decide):
                fn.cache_clear()
        for name in ("match_cues", "score_cues"):
            if cues is not None and hasattr(getattr(cues, name, None), "cache_clear"):
                getattr(cues, name).cache_clear()

    clear()

    def undo() -> None:
        for module, name, value in saved:
            setattr(module, name, value)
        clear()
    return undo


def held_out(recs: list[Record], misses: list[tuple[Record, set[str]]] | None = None) -> Score:
    """The leave-one-source-out score; ``misses`` (if given) collects each held-out record
    that is wrong, with the text items that were switched off for its source."""
    support: dict[str, set[str]] = defaultdict(set)
    for r in recs:
        for item in _text_items(r):
            support[item].add(r.entry.source)
    result = Score()
    by_source: dict[str, list[Record]] = defaultdict(list)
    for r in recs:
        by_source[r.entry.source].append(r)
    for source, mine in by_source.items():
        fitted = {item for item, sources in support.items() if sources == {source}}
        trial = [Record(r.entry, r.wrapper, r.spelling, r.value, r.weight) for r in mine]
        undo = _disable(fitted)
        try:
            classify_all(trial)
        finally:
            undo()
        for r in trial:
            result.add(r.right, r.weight)
            if misses is not None and not r.right:
                misses.append((r, fitted))
    return result


def evaluate(path: Path = CORPUS, with_held_out: bool = True) -> Report:
    recs = records(load(path))
    classify_all(recs)
    rep = score(recs)
    if with_held_out:
        rep.held_out = held_out(recs)
    return rep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-held-out", action="store_true")
    parser.add_argument("--misses", action="store_true", help="list entries not always right")
    parser.add_argument("--held-out-misses", action="store_true",
                        help="list, by source, the entries the held-out run gets wrong and the "
                             "source-only text evidence that was switched off for them")
    parser.add_argument("--build", type=Path, default=None,
                        help="import the classifier from here (the compiled core that "
                             "scripts/compile-core.sh builds) instead of the checkout")
    args = parser.parse_args()
    sys.path.insert(0, str(args.build.resolve() if args.build else ROOT))
    from worker import core_build

    entries = load(args.corpus)
    recs = records(entries)
    classify_all(recs)
    rep = score(recs)
    held_misses: list[tuple[Record, set[str]]] | None = [] if args.held_out_misses else None
    if not args.no_held_out and core_build() == "plain Python":
        rep.held_out = held_out(recs, held_misses)
    if args.misses:
        _print_misses(recs)
    if held_misses:
        _print_held_out_misses(recs, held_misses)
    if args.json:
        print(json.dumps(rep.figures(), indent=2))
        return 0
    print(f"corpus: {len(entries)} entries, {len(recs)} records, "
          f"{len({e.source for e in entries})} sources ({core_build()} core)")
    print(f"overall accuracy      {rep.overall.pct:5.1f} %")
    print(f"unambiguous accuracy  {rep.unambiguous.pct:5.1f} %")
    print(f"unknown share         {rep.unknown_share.pct:5.1f} %")
    print(f"specific precision    {rep.precision.pct:5.1f} %")
    if rep.held_out is not None:
        print(f"held-out (leave one source out) {rep.held_out.pct:5.1f} %")
    for name, group in rep.groups.items():
        print(f"by {name}:")
        for key, s in sorted(group.items(), key=lambda kv: -kv[1].total):
            print(f"  {key:34s} {s.pct:5.1f} %  ({s.total:6.1f} entries' weight)")
    return 0


def _print_misses(recs: list[Record]) -> None:
    seen: dict[Entry, list[Record]] = defaultdict(list)
    for r in recs:
        seen[r.entry].append(r)
    for e, mine in seen.items():
        wrong = [r for r in mine if not r.right]
        if wrong:
            got = sorted({f"{r.category}/{r.evidence}" for r in wrong})
            print(f"MISS {len(wrong)}/{len(mine)} want {e.category:30s} got {got}: {e.text[:110]}",
                  file=sys.stderr)


def _print_held_out_misses(recs: list[Record], misses: list[tuple[Record, set[str]]]) -> None:
    """Held-out misses by source: the entry's weight lost, in-sample vs held-out calls."""
    in_sample: dict[Entry, list[Record]] = defaultdict(list)
    for r in recs:
        in_sample[r.entry].append(r)
    by_source: dict[str, dict[Entry, list[Record]]] = defaultdict(lambda: defaultdict(list))
    switched_off: dict[str, set[str]] = {}
    for r, fitted in misses:
        by_source[r.entry.source][r.entry].append(r)
        switched_off[r.entry.source] = fitted
    lost = {s: sum(r.weight for rs in es.values() for r in rs) for s, es in by_source.items()}
    for source in sorted(by_source, key=lambda s: -lost[s]):
        print(f"HELD-OUT {source}: {lost[source]:.2f} entries' weight lost; switched off: "
              f"{', '.join(sorted(switched_off[source])) or '-'}", file=sys.stderr)
        for e, wrong in by_source[source].items():
            before = sorted({f"{r.category}/{r.evidence}:{r.matched}" for r in in_sample[e]})
            got = sorted({f"{r.category}/{r.evidence}" for r in wrong})
            print(f"  {len(wrong)}/{len(in_sample[e])} want {e.category} got {got} "
                  f"(in-sample {before}): {e.text[:110]}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
