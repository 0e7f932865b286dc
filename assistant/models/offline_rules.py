"""Text rules behind the offline model: sentences, named characters and places, the roles they hold.

No language model: capitalised names, small lexicons and a few patterns, tuned to the kind of text a
TV catalog holds. Deterministic throughout: order comes from the text and from lists, never sets.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .offline_words import (
    ADJECTIVES,
    ADVERBS,
    DETERMINERS,
    FEATURE_LIST,
    HONORIFICS,
    PLACE_PREPS,
    PLACE_WORDS,
    ROLES,
    STOP,
    VERBS,
    VESSEL_LOOKS,
)

# -- text ----------------------------------------------------------------------------------------

TOKEN = re.compile(r"[^\W\d_](?:[\w'’\-]*\w)?|\d[\w\-]*|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"”’)])\s+")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_POSSESSIVE = re.compile(r"['’]s$")


# Abbreviations whose full stop ends no sentence: "Mrs. Pruitt", "St. Aldhelm's Church", "Dr. Ångström".
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st mt ft lt col capt cpt sgt det insp prof rev fr sr jr gen adm cmdr maj no vs etc approx".split()
)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence, surrounding spaces excluded; a full stop after a title
    or other abbreviation (ABBREVIATIONS, an initial such as "J.") ends none."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[max(start, match.start() - 6) : match.start()]
        word = re.split(r"[\s(\"“]", before)[-1].rstrip(".").lower()
        if before.endswith(".") and (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def has_stem(text: str, stems: str) -> int:
    """Position of the first word in `text` that starts with one of `stems` ("drown" finds "drowned"), or -1.

    "_" in a stem stands for a space ("whole_of"); a final "$" means the whole word ("dive$" misses "diver").
    """
    match = stem_pattern(stems).search(text)
    return match.start() if match else -1


@lru_cache(maxsize=512)
def stem_pattern(stems: str) -> re.Pattern:
    """One compiled pattern for `stems`: a search finds the leftmost word any of them starts, a
    match() whether a word starts with one. Compiled once per stem list, so a long text costs one pass."""
    parts = [re.escape(stem.rstrip("$").replace("_", " ")) + (r"(?!\w)" if stem.endswith("$") else "") for stem in stems.split()]
    return re.compile(r"(?<![\w])(?:" + "|".join(parts or ["(?!)"]) + ")", re.IGNORECASE)


def clean_phrase(text: str) -> str:
    """One line, without characters that SDXL front ends read as syntax (braces, brackets, weights, quotes)."""
    text = re.sub(r"[{}\[\]()<>\"“”|\\`*_#]", " ", text)
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"\s+([,.;:!?])", r"\1", text).strip(" ,;:-")


WORD_WINDOW = 100  # characters looked back for the word before a match: past any real word


class Taken:
    """Which characters of a text are already claimed by a match: a claim costs its own length, so
    marking every mention of a long text stays linear (a list of spans compared pairwise did not)."""

    def __init__(self, length: int):
        self.used = bytearray(length)

    def claim(self, start: int, end: int) -> bool:
        """Take [start, end) if none of it is taken; whether it was free."""
        if any(self.used[start:end]):
            return False
        self.used[start:end] = b"\x01" * (end - start)
        return True


def features_in(sentence: str) -> list[str]:
    """Props named in the sentence, in order, each with its adjective: "sealed crates", "brass telescope"."""
    low, found = sentence.lower(), []
    taken = Taken(len(low))
    for feature in FEATURE_LIST:
        for m in re.finditer(r"(?<!\w)" + re.escape(feature) + r"(?!\w)", low):
            if not taken.claim(*m.span()):
                continue
            word = (low[max(0, m.start() - WORD_WINDOW) : m.start()].split()[-1:] or [""])[0].strip(",;:")
            adjective = word in ADJECTIVES or (word.endswith("ed") and word not in VERBS and len(word) > 4)
            found.append((m.start(), f"{word} {feature}" if adjective and word not in feature else feature))
    return [text for _, text in sorted(found)]


# -- named entities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """A named character or place, with the short forms the text also uses ("Mara" for "Mara Quill")."""

    name: str
    kind: str  # "character" or "place"
    aliases: tuple[str, ...] = ()
    article: bool = False  # the text writes "the Drowned Chapel"
    look: str = ""  # the place's type or vessel word: "lighthouse", "trawler"

    @property
    def display(self) -> str:
        return f"the {self.name}" if self.article else self.name


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity: Entity


@dataclass
class _Candidate:
    words: list[str]
    at_start: bool
    prev: str  # the word before, lower case
    prev2: str
    next: str


def _candidates(text: str) -> list[_Candidate]:
    """Runs of capitalised words ("Corran Island", "Tern & Anchor"), outside quotations."""
    quoted = [m.span() for m in _QUOTED.finditer(text)]
    found: list[_Candidate] = []
    for start, end in sentences(text):
        tokens = [(m.group(), m.start() + start) for m in TOKEN.finditer(text[start:end])]
        i = 0
        while i < len(tokens):
            run, j = [], i
            while j < len(tokens):
                word = tokens[j][0]
                following = tokens[j + 1][0] if j + 1 < len(tokens) else ""
                if _is_capital(word) and word.lower() in ABBREVIATIONS and following == "." and j + 2 < len(tokens) and _is_capital(tokens[j + 2][0]):
                    run.append(word + ".")  # "Mrs. Agnes Pruitt", "St. Aldhelm's Church": the title's stop is part of the name
                    j += 2
                elif _is_capital(word):
                    # A possessive ends a name ("Tobias Wren's daughter"), unless a place word follows
                    # it into one ("Aradne's Hollow", "St. Aldhelm's Church").
                    inside = _POSSESSIVE.search(word) and _is_capital(following) and _names_a_place(tokens, j + 1)
                    run.append(word if inside else _POSSESSIVE.sub("", word))
                    j += 1
                    if _POSSESSIVE.search(word) and not inside:
                        break
                elif word == "&" and run and j + 1 < len(tokens) and _is_capital(tokens[j + 1][0]):
                    run.append("&")
                    j += 1
                else:
                    break
            if not run:
                i += 1
                continue
            inside_quote = any(a <= tokens[i][1] < b for a, b in quoted)
            before = [w.lower() for w, _ in tokens[max(0, i - 2) : i]]
            at_start = i == 0 or tokens[i - 1][0] in "\"“(‘'"
            while run and run[0] in STOP:
                run.pop(0)
            if run and run[-1] == "&":
                run.pop()
            if run and not inside_quote:
                after = tokens[j][0].lower() if j < len(tokens) else ""
                found.append(_Candidate(run, at_start, before[-1] if before else "", before[-2] if len(before) > 1 else "", after))
            i = max(j, i + 1)
    return found


def _names_a_place(tokens: list[tuple[str, int]], j: int) -> bool:
    """Whether the capitalised run from token j holds a place's type word ("Hollow", "Church")."""
    while j < len(tokens) and _is_capital(tokens[j][0]):
        if tokens[j][0].lower() in PLACE_WORDS or tokens[j][0].lower() in POSSESSIVE_PLACES:
            return True
        j += 1
    return False


# Type words that make a place of a possessive name, beside PLACE_WORDS: "Aradne's Hollow", "Saint's Rest".
POSSESSIVE_PLACES = frozenset({"hollow", "rest", "reach", "landing", "folly", "end", "cross", "well", "gap", "drift"})


def _is_capital(word: str) -> bool:
    """A name word: capitalised, no digits, not an all-caps shout or acronym ("HACKED", "SM-12")."""
    if not word[0].isupper() or any(ch.isdigit() for ch in word):
        return False
    letters = [ch for ch in word if ch.isalpha()]
    return not (len(letters) > 1 and all(ch.isupper() for ch in letters))


def find_entities(texts: Sequence[str]) -> list[Entity]:
    """Named characters and places across `texts`, in order of first appearance."""
    candidates = [c for text in texts for c in _candidates(text)]
    # 1. Names seen mid-sentence are names. A sentence-opening run is one when it is a known name, when it
    #    is a known name after its first word ("Journalist Ségolène Marchetti"), or when it has two words or more.
    accepted = list(dict.fromkeys(" ".join(c.words) for c in candidates if not c.at_start))
    for c in candidates:
        name = " ".join(c.words)
        if not c.at_start or name in accepted:
            continue
        if len(c.words) > 1 and (" ".join(c.words[1:]) in accepted or (c.words[0].lower() in ROLES and c.words[0] not in HONORIFICS)):
            c.words = c.words[1:]
            if " ".join(c.words) not in accepted:
                accepted.append(" ".join(c.words))
        elif len(c.words) > 1:
            accepted.append(name)
    # 2. Place or character, by type word and by the words around each mention.
    votes: dict[str, list[int]] = {n: [0, 0, 0, 0] for n in accepted}  # place, person, after "the", mentions
    looks: dict[str, str] = {}
    for c in candidates:
        v = votes.get(" ".join(c.words))
        if v is None:
            continue
        name = " ".join(c.words)
        type_words = [w.lower() for w in c.words if w.lower() in PLACE_WORDS or w.lower() in POSSESSIVE_PLACES]
        if type_words:
            v[0] += 3
            looks.setdefault(name, type_words[-1])
        if c.prev in VESSEL_LOOKS:
            v[0] += 2
            looks.setdefault(name, c.prev)
        # People are rarely "the X"; "in X", "the whole of X" are places; "harbourmaster X", "X climbs" people.
        v[0] += 2 * (c.prev == "the" or c.prev in PLACE_PREPS or (c.prev, c.prev2) == ("of", "whole"))
        v[1] += 3 * (c.words[0] in HONORIFICS) + 2 * (c.prev in ROLES) + (c.next in VERBS)
        v[2] += c.prev == "the"
        v[3] += 1
    for name, v in votes.items():  # "Gullhaven" beside "Gullhaven Lighthouse": a town that names its landmarks
        v[0] += 2 * any(name in o.split()[:-1] and PLACE_WORDS & {w.lower() for w in o.split()} for o in accepted if o != name)
    kind = {n: "place" if v[0] > v[1] else "character" for n, v in votes.items()}
    # 3. Short forms ("Mara", "Brekke", "Øyvind Brekke") fold into the one full name that holds them;
    #    a surname two people share stays unclaimed, and families ("the Harrows") are not places.
    full = [n for n in accepted if kind[n] == "character" and len(_core(n)) > 1]
    full = [f for f in full if not any(f != g and f" {f} " in f" {g} " for g in full)]
    short: dict[str, list[str]] = {n: [] for n in accepted}
    for name in accepted:
        words = _core(name)
        if name in full or (kind[name] == "place" and (len(words) > 1 or words[0].lower() in PLACE_WORDS)):
            continue
        owners = [f for f in full if f" {' '.join(words)} " in f" {' '.join(_core(f))} "]
        family = len(words) == 1 and words[0].endswith("s") and any(words[0][:-1] in _core(f) or words[0][:-2] in _core(f) for f in full)
        if len(owners) == 1:  # "inside Wren's coat" reads like a place, but Wren is Wren Abernethy
            short[owners[0]].append(name)
            del short[name]
        elif owners or family:
            del short[name]
    # 4. A lone sentence-opening word counts only as the short form of one known name ("Brekke tears...").
    for c in candidates:
        name = " ".join(c.words)
        owners = [f for f in full if len(c.words) == 1 and name in _core(f)]
        if name not in accepted and len(owners) == 1 and name not in short[owners[0]]:
            short[owners[0]].append(name)
    return [
        Entity(n, kind[n], tuple(forms), article=kind[n] == "place" and 2 * votes[n][2] >= votes[n][3], look=looks.get(n, ""))
        for n, forms in short.items()
    ]


def _core(name: str) -> list[str]:
    """A name's words without an honorific: "Captain Øyvind Brekke" -> ["Øyvind", "Brekke"]."""
    words = name.split()
    return words[1:] if len(words) > 1 and words[0] in HONORIFICS else words


def locate(text: str, entities: Sequence[Entity]) -> list[Span]:
    """Every mention of every entity in `text` (longest names first, no overlaps), in text order."""
    forms = sorted(((form, e) for e in entities for form in (e.name, *e.aliases)), key=lambda fe: (-len(fe[0]), fe[0]))
    taken = Taken(len(text))
    spans: list[Span] = []
    for form, entity in forms:
        for m in re.finditer(r"(?<!\w)" + re.escape(form) + r"(?:['’]s)?(?!\w)", text):
            if taken.claim(*m.span()):
                spans.append(Span(m.start(), m.end(), entity))
    return sorted(spans, key=lambda s: s.start)


def find_roles(texts: Sequence[str], entities: Sequence[Entity]) -> dict[str, str]:
    """Character name -> the role the text gives them most often: "lighthouse keeper", "young diver"."""
    seen: dict[str, Counter[str]] = {}
    for text in texts:
        for span in locate(text, entities):
            if span.entity.kind != "character":
                continue
            before = TOKEN.findall(text[max(0, span.start - 60) : span.start])[-3:]
            after = [] if _POSSESSIVE.search(text[span.start : span.end]) else TOKEN.findall(text[span.end : span.end + 60])[:6]
            role = _role_before(before) or _role_after(after)
            if role:
                seen.setdefault(span.entity.name, Counter())[role] += 1
    roles = {name: max(c.items(), key=lambda kv: (kv[1], len(kv[0])))[0] for name, c in seen.items()}
    for e in entities:  # "Captain Øyvind Brekke" is a captain even when no sentence says so
        if e.kind == "character" and e.name not in roles and e.name.split()[0].lower() in ROLES:
            roles[e.name] = e.name.split()[0].lower()
    return roles


def _role_before(words: list[str]) -> str:
    """"... young diver" right before a name -> "young diver"."""
    if not words or words[-1].lower() not in ROLES:
        return ""
    role = [words[-1].lower()]
    for word in reversed(words[:-1]):
        low = word.lower()
        if not word.isalpha() or low in DETERMINERS or low in STOP_LOWER or low in VERBS or low in ADVERBS:
            break
        role.insert(0, low)
    return " ".join(role[-3:])


def _role_after(words: list[str]) -> str:
    """", skipper of the ..." or ", now acting harbourmaster" after a name -> the role."""
    if not words or words[0] != ",":
        return ""
    kept: list[str] = []
    for word in words[1:]:
        low = word.lower()
        if low in ("the", "a", "an", "now"):
            continue
        if not word.isalpha():
            return ""
        kept.append(low)
        if low in ROLES:
            return " ".join(kept[-3:])
    return ""


STOP_LOWER = frozenset(w.lower() for w in STOP)
