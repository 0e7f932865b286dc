"""Actions behind the offline model: who does what in a sentence, and which sentence makes the picture."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .offline_rules import TOKEN, Entity, Span, features_in, has_stem
from .offline_words import (
    ADJECTIVES,
    ADVERBS,
    CLAUSE_BREAKS,
    DETERMINERS,
    GROUP_NOUNS,
    LOCATIVE,
    MODALS,
    NOUN_LIKE,
    PRONOUNS,
    ROLES,
    SOURCES,
    TIMES,
    TRAILING,
    VERBS,
    WEATHER,
)


@dataclass
class Item:
    """A word of a sentence, or a whole entity mention."""

    text: str
    entity: Entity | None = None

    @property
    def low(self) -> str:
        return self.text.lower()


@dataclass
class Action:
    subjects: list[Entity]
    phrase: str  # "climbing the 112 iron steps of the Gullhaven Lighthouse"
    weight: int
    position: int


@dataclass
class Moment:
    """One sentence read for its picture: who does what, and where."""

    sentence: str
    actions: list[Action] = field(default_factory=list)
    characters: list[Entity] = field(default_factory=list)
    places: list[Entity] = field(default_factory=list)
    locative: list[Entity] = field(default_factory=list)  # places the scene is at, on, in...: not "cuttings about X"

    @property
    def primary(self) -> Action | None:
        return max(self.actions, key=lambda a: (bool(a.subjects), a.weight, -a.position), default=None)

    @property
    def secondary(self) -> Action | None:
        first = self.primary
        others = [a for a in self.actions if a is not first and a.subjects and a.weight >= 2 and first and not set(a.subjects) & set(first.subjects)]
        return max(others, key=lambda a: (a.weight, -a.position), default=None)

    def score(self) -> int:
        """Named people, named places, a strong visible action, light and weather: the makings of key art."""
        best = self.primary
        action = (best.weight * 2 if best.subjects else best.weight) if best else 0
        light = sum(1 for _, stems in TIMES + WEATHER + SOURCES if has_stem(self.sentence, stems) >= 0)
        props = len(features_in(self.sentence))
        return 3 * min(len(self.characters), 3) + 2 * min(len(self.locative), 2) + action + min(light, 2) + min(props, 2)


def items_of(sentence: str, spans: list[Span]) -> list[Item]:
    items: list[Item] = []
    for m in TOKEN.finditer(sentence):
        inside = next((s for s in spans if s.start <= m.start() < s.end), None)
        if inside is None:
            items.append(Item(m.group()))
        elif not items or items[-1].entity is not inside.entity or m.start() == inside.start:
            items.append(Item(sentence[inside.start : inside.end], inside.entity))
    return items


def read_moment(sentence: str, spans: list[Span], last: list[Entity]) -> Moment:
    """Actions (verb, subjects, phrase) of one sentence; `last` resolves "she"/"they" and is updated."""
    items = items_of(sentence, spans)
    moment = Moment(sentence=sentence)
    for i, item in enumerate(items):
        if item.entity and item.entity not in moment.characters + moment.places:
            (moment.characters if item.entity.kind == "character" else moment.places).append(item.entity)
        if item.entity and item.entity.kind == "place" and item.entity not in moment.locative:
            before = [it.low for it in items[max(0, i - 2) : i]]
            if before[-1:] and (before[-1] in LOCATIVE or (before[-1] == "the" and before[0] in LOCATIVE)):
                moment.locative.append(item.entity)
    for i, item in enumerate(items):
        if not _is_verb(items, i):
            continue
        subjects = _subjects(items, i, last)
        if not subjects and i and items[i - 1].low == "and" and moment.actions:
            subjects = moment.actions[-1].subjects  # "breaks her padlock and climbs the steps"
        if subjects:
            last[:] = subjects
            for s in subjects:
                if s not in moment.characters:
                    moment.characters.append(s)
        ing, weight = VERBS[item.low]
        moment.actions.append(Action(subjects, " ".join([ing, *_object(items, i)]).strip(), weight, i))
    named = [it.entity for it in items if it.entity and it.entity.kind == "character"]
    if named:
        last[:] = named[-1:]
    return moment


def _is_verb(items: list[Item], i: int) -> bool:
    item = items[i]
    if item.entity or item.low not in VERBS:
        return False
    prev = items[i - 1].low if i else ""
    if item.low in NOUN_LIKE and not (i and items[i - 1].entity and items[i - 1].entity.kind == "character"):
        return False  # "row" is a verb in "Wren and Ségolène row", a noun in "a row of"
    if prev in DETERMINERS or prev in MODALS or prev in ADJECTIVES or (prev in VERBS and not items[i - 1].entity):
        return False
    return not (i + 1 < len(items) and items[i + 1].low in ("of",) and item.low.endswith("s"))  # "rows of", "lines of"


def _subjects(items: list[Item], i: int, last: list[Entity]) -> list[Entity]:
    """The characters doing the verb at `i`: named just before it ("Wren and Callum chain"), or a pronoun."""
    found: list[Entity] = []
    j = i - 1
    while j >= 0:
        item = items[j]
        if item.entity and item.entity.kind == "character":
            found.insert(0, item.entity)
        elif found and (item.low in ("and", "&") or item.low in ROLES):
            pass  # "journalist Ségolène Marchetti and diver Wren Abernethy slip"
        elif found and j + 1 < len(items) and items[j + 1].low in ROLES and item.text.isalpha() and item.text.islower():
            pass  # "young diver"
        elif found:
            break
        elif item.low in ADVERBS or item.low in GROUP_NOUNS or item.low in ("his", "her", "their"):
            pass
        elif item.low in PRONOUNS:
            return last[: PRONOUNS[item.low]]
        elif item.text == ",":
            k = next((k for k in range(j - 1, max(-1, j - 8), -1) if items[k].text == ","), None)
            if k is None or any(_is_verb(items, m) for m in range(k + 1, j)):
                break
            j = k
        else:
            break
        j -= 1
    return found


def _object(items: list[Item], i: int) -> list[str]:
    """The words after the verb up to the end of its clause, at most 10 words."""
    words: list[str] = []
    for k in range(i + 1, len(items)):
        item = items[k]
        nxt = items[k + 1] if k + 1 < len(items) else None
        if item.text == "," and words and words[-1].lower() in ADJECTIVES:
            continue  # "in green, silt-clouded water"
        if item.entity is None and not re.match(r"[\w']", item.text[0]):
            break
        if item.low in CLAUSE_BREAKS and item.entity is None:
            break
        if item.low == "and" and nxt is not None and (nxt.low in PRONOUNS or nxt.entity or _is_verb(items, k + 1)):
            break
        words.append(item.text)
        if len(" ".join(words).split()) >= 10:
            break
    while words and words[-1].lower() in TRAILING:
        words.pop()
    return words
