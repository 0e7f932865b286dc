"""How the offline model reads a text: the world it is set in, its named characters and places and
their roles, its key moment, and its mood and light. Shared by the scene, the season's answers and
the campaign copy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from . import offline_actions as actions
from . import offline_rules as rules
from . import offline_words as lexicon

DEFAULT_LIGHTING = "overcast daylight, soft diffuse light"
# The world a text is set in, from its own words (two cues or more): it decides what a role wears,
# how a station or a gate looks, and the light when the text names none.
WORLD_CUES = {
    "space": "starship spaceship orbit nebula galax planet asteroid airlock hull_breach reactor warp fleet admiral "
             "station_ring cryo void comet moon_base shuttle docking_ring jump_gate",
    "sea": "harbour harbor lighthouse trawler quay tide surf fisherm wreck pier cove boat ferry gale reef lifeboat",
}  # fmt: skip
WORLD_LIGHT = {"space": "cold starlight, glowing console light"}
WORLD_LOOKS = {  # a place word's look in a world that is not the sea's
    "space": {
        "station": "orbital station with curved hull corridors", "ring": "rotating habitat ring", "gate": "vast orbital gate",
        "belt": "drifting asteroid belt", "reach": "open starfield", "port": "orbital docking port", "dock": "orbital docking bay",
        "docks": "orbital docking bays", "hollow": "cratered hollow on a frozen moon",
    },
}  # fmt: skip
SEA_ROLES = frozenset({"keeper", "harbourmaster", "harbormaster", "diver", "captain", "skipper", "fisherman", "fisherwoman", "sailor", "deckhand", "smuggler"})


def world_of(text: str) -> str:
    """"space", "sea" or "land": the world with the most cues in `text` (two at least), else land."""
    counts = {world: sum(1 for stem in stems.split() if rules.has_stem(text, stem) >= 0) for world, stems in WORLD_CUES.items()}
    world, count = max(counts.items(), key=lambda wc: wc[1])
    return world if count >= 2 else "land"


def place_look(word: str, world: str) -> str:
    """How a place of type `word` looks in `world`: the world's own look, else the lexicon's."""
    return WORLD_LOOKS.get(world, {}).get(word) or lexicon.PLACE_LOOKS.get(word) or lexicon.VESSEL_LOOKS.get(word, "")
DEFAULT_MOOD = "quiet, mysterious"


class Reading:
    """The named characters, places and roles of a body of text (one summary, or a whole season)."""

    def __init__(self, texts: Sequence[str]):
        self.texts = [t for t in texts if t.strip()]
        self.entities = rules.find_entities(self.texts)
        self.roles = rules.find_roles(self.texts, self.entities)
        self.world = world_of(" ".join(self.texts))

    def spans(self, text: str) -> list[rules.Span]:
        return rules.locate(text, self.entities)

    def ranked(self, text: str, kind: str) -> list[rules.Entity]:
        """Entities of `kind` in `text`, most mentioned first (ties: first mentioned)."""
        counts = Counter(s.entity for s in self.spans(text) if s.entity.kind == kind)
        return [e for e, _ in counts.most_common()]

    def person(self, who: rules.Entity, *, look: bool = True, doing: str = "") -> str:
        """"lighthouse keeper Mara Quill in a yellow oilskin coat"; no coat when `doing` already dresses them."""
        role = self.roles.get(who.name, "")
        show, dress = lexicon.ROLES.get(role.split()[-1], (False, "")) if role else (False, "")
        if role and role.split()[-1] in SEA_ROLES and self.world != "sea":
            dress = ""  # a captain of a starship or a regiment wears no fisherman's sweater
        named = who.name if not show or who.name.split()[0] in lexicon.HONORIFICS else f"{role} {who.name}"
        return f"{named} {dress}" if look and dress and dress.split()[-1] not in doing else named

    def key_moment(self, text: str) -> actions.Moment:
        """The sentence with the most people, places and visible action (the first, on a tie)."""
        spans, last, best = self.spans(text), [], None
        for start, end in rules.sentences(text):
            inside = [rules.Span(s.start - start, s.end - start, s.entity) for s in spans if start <= s.start < end]
            moment = actions.read_moment(text[start:end], inside, last)
            if best is None or moment.score() > best.score():
                best = moment
        return best or actions.Moment(sentence="")


def mood(text: str) -> str:
    """The two moods the text names most ("tense, eerie"; ties: the lexicon's order), else the default."""
    words = re.findall(r"\w+", text.lower())
    hits = [(sum(1 for w in words if rules.stem_pattern(stems).match(w)) + _phrases(text, stems), i, name)
            for i, (name, stems) in enumerate(lexicon.MOODS)]
    ranked = [name for count, _, name in sorted(hits, key=lambda h: (-h[0], h[1])) if count]
    return ", ".join(ranked[:2]) or DEFAULT_MOOD


def _phrases(text: str, stems: str) -> int:
    """Occurrences of the multi-word stems ("whole_of") that a word-by-word count cannot see."""
    return sum(len(re.findall(r"(?<!\w)" + s.replace("_", " "), text, re.IGNORECASE)) for s in stems.split() if "_" in s)


def lighting(sentence: str, context: str) -> str:
    """Time and light source from the moment itself; weather from the moment, else from the whole
    text; when none is named, the light of the text's world."""

    def first(table, text):
        found = [(pos, i, phrase) for i, (phrase, stems) in enumerate(table) if (pos := rules.has_stem(text, stems)) >= 0]
        return min(found)[2] if found else ""

    weather = first(lexicon.WEATHER, sentence) or first([w for w in lexicon.WEATHER if "underwater" not in w[0]], context)
    parts = [first(lexicon.TIMES, sentence), weather, first(lexicon.SOURCES, sentence)]
    return ", ".join(p for p in parts if p) or WORLD_LIGHT.get(world_of(f"{sentence} {context}"), DEFAULT_LIGHTING)


def and_join(parts: list[str]) -> str:
    """"a", "a and b", "a, b and c"; "" for none."""
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
