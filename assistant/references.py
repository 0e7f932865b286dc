"""Catalog references in plain words: "season 1 episode 3", "S01E03", "1x03", a title, a character or a place.

`CatalogIndex` reads a catalog once: its episodes and titles, and the named characters and places the
offline rules find in the summaries. `find_all` lists the references a message makes, in text order;
`find_guides` the catalog images a message asks to keep ("the same harbour as in S01E03", "keep Mara
as in the season 1 poster"), which guide a render rather than name its scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from .catalog import Catalog
from .errors import CatalogError
from .models import offline_rules as rules
from .models.offline_reading import Reading
from .schemas import Episode

NUMBER_WORDS = {w: n for n, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"))}
_N = r"(\d{1,3}|" + "|".join(NUMBER_WORDS) + r")"
# Each pattern gives (season, episode); a missing group is None. Longer forms first, so "season 1 episode 3"
# is read whole before "episode 3" could be read alone.
EPISODE_PATTERNS = (
    re.compile(rf"\bseason\s+{_N}\s*[,:]?\s*(?:ep(?:isode)?\.?|e)\s*{_N}\b", re.IGNORECASE),
    re.compile(rf"\bep(?:isode)?\.?\s*{_N}\s+(?:of|in|from)\s+season\s+{_N}\b", re.IGNORECASE),
    re.compile(r"\bs(\d{1,2})\s*e(\d{1,3})\b", re.IGNORECASE),
    re.compile(r"\b(\d{1,2})x(\d{1,3})\b", re.IGNORECASE),
    re.compile(rf"\bep(?:isode)?\.?\s*{_N}\b", re.IGNORECASE),
)
SEASON_PATTERN = re.compile(rf"\bseason\s+{_N}\b", re.IGNORECASE)
# What makes an episode or season a guide image: the words before it ("the same harbour as in",
# "keep Mara as in the", "like the image of") and, after it, the word for its art ("poster", "'s still").
_SUBJECT = r"[\w'’ -]{1,40}?"
_ART = r"(?:key\s+art|poster|image|picture|still|illustration|art|cover|one)"
GUIDE_LEAD = re.compile(
    rf"(?:(?:the\s+)?same\s+(?P<same>{_SUBJECT})\s+as|keep(?:ing)?\s+(?P<keep>{_SUBJECT})\s+(?:as|like|from)|(?:the\s+)?same\s+as|as|like|based\s+on|looking\s+like)"
    rf"(?:\s+(?:in|on|from))?(?:\s+the)?(?:\s+{_ART}\s+(?:of|for|from))?(?:\s+the)?\s+$",
    re.IGNORECASE,
)
GUIDE_TAIL = re.compile(rf"^(?:'s)?(?:\s+{_ART})?\b", re.IGNORECASE)


def _number(text: str) -> int:
    return int(text) if text.isdigit() else NUMBER_WORDS[text.lower()]


def _fold(text: str) -> str:
    """Curly apostrophes and quotes as straight ones, so "Keeper’s" finds "Keeper's"."""
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


@dataclass(frozen=True)
class Reference:
    """One thing of the catalog a message names, and where in the message it does."""

    kind: str  # "episode" | "season" | "character" | "place"
    season: int | None = None
    episode: int | None = None
    name: str = ""  # the character's or place's full name; an episode's title
    start: int = 0
    end: int = 0
    guessed_season: bool = False  # "episode 4" without a season: the season was inferred

    @property
    def label(self) -> str:
        if self.kind == "episode":
            return f"S{self.season:02d}E{self.episode:02d}" + (f' "{self.name}"' if self.name else "")
        if self.kind == "season":
            return f"season {self.season}" + (f' "{self.name}"' if self.name else "")
        return self.name


@dataclass(frozen=True)
class GuideWords:
    """A catalog image a message asks to keep: the episode or season whose art it is, what of it to keep, where."""

    reference: Reference
    subject: str = ""  # "harbour", "Mara": what the image is kept for ("" for "as in S01E03")
    start: int = 0
    end: int = 0

    @property
    def code(self) -> str:
        """"S01E03" or "season 1": how an intent names the image."""
        ref = self.reference
        return f"S{ref.season:02d}E{ref.episode:02d}" if ref.kind == "episode" else f"season {ref.season}"


class CatalogIndex:
    """A catalog read for conversation: references found in text, and who appears where."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.show = catalog.show
        self.reading = Reading([e.summary for e in catalog.episodes] + [s.summary for s in catalog.seasons])

    @cached_property
    def characters(self) -> list[rules.Entity]:
        return [e for e in self.reading.entities if e.kind == "character"]

    @cached_property
    def places(self) -> list[rules.Entity]:
        return [e for e in self.reading.entities if e.kind == "place"]

    def entity(self, name: str) -> rules.Entity:
        return next(e for e in self.reading.entities if e.name == name)

    # -- references in a message ------------------------------------------------------------

    def find_all(self, text: str, *, season: int | None = None) -> list[Reference]:
        """Every reference in `text`, in order; an episode without a season is read in `season` when given."""
        text, taken, found = _fold(text), [], []

        def free(start: int, end: int) -> bool:
            return not any(start < b and a < end for a, b in taken)

        # 1. Episode numbers in every form, then seasons alone.
        for pattern in EPISODE_PATTERNS:
            for m in pattern.finditer(text):
                if not free(*m.span()):
                    continue
                groups = [g for g in m.groups() if g is not None]
                swap = pattern is EPISODE_PATTERNS[1]  # "episode 3 of season 1"
                if len(groups) == 2:
                    s, e = (_number(groups[1]), _number(groups[0])) if swap else (_number(groups[0]), _number(groups[1]))
                    ref = self._episode(s, e, m.start(), m.end())
                else:
                    ref = self._episode_alone(_number(groups[0]), season, m.start(), m.end())
                taken.append(m.span())
                found.append(ref)
        for m in SEASON_PATTERN.finditer(text):
            if free(*m.span()):
                number = _number(m.group(1))
                title = next((s.title for s in self.catalog.seasons if s.season == number), "")
                taken.append(m.span())
                found.append(Reference("season", season=number, name=title, start=m.start(), end=m.end()))
        # 2. Episode titles, longest first (any case: people type them as they remember them).
        for e in sorted((e for e in self.catalog.episodes if e.title), key=lambda e: -len(e.title)):
            for m in re.finditer(r"(?<!\w)" + re.escape(_fold(e.title)) + r"(?!\w)", text, re.IGNORECASE):
                if free(*m.span()):
                    taken.append(m.span())
                    found.append(Reference("episode", e.season, e.episode, e.title, m.start(), m.end()))
        # 3. Characters and places: full names in any case, short forms ("Mara") only as written.
        forms = [(f, e, f == e.name) for e in self.reading.entities for f in (e.name, *e.aliases)]
        for form, entity, full in sorted(forms, key=lambda fe: -len(fe[0])):
            flags = re.IGNORECASE if full else 0
            for m in re.finditer(r"(?<!\w)(?:the\s+)?" + re.escape(form) + r"(?:'s)?(?!\w)", text, flags):
                if free(*m.span()):
                    taken.append(m.span())
                    found.append(Reference(entity.kind, name=entity.name, start=m.start(), end=m.end()))
        return sorted(found, key=lambda r: r.start)

    def find(self, text: str, *, season: int | None = None) -> Reference | None:
        """The reference a message is about: an episode or season first, else the first name it mentions."""
        found = self.find_all(text, season=season)
        numbered = [r for r in found if r.kind in ("episode", "season")]
        return (numbered or found or [None])[0]

    def find_guides(self, text: str, *, season: int | None = None) -> list[GuideWords]:
        """The catalog images `text` asks to keep, in order: an episode's still or a season's poster after words
        such as "the same harbour as in", "keep Mara as in the", "like"; positions are of `text` as given."""
        folded, found = _fold(text), []
        for ref in self.find_all(text, season=season):
            if ref.kind not in ("episode", "season"):
                continue
            lead = GUIDE_LEAD.search(folded[: ref.start])
            if lead is None:
                continue
            tail = GUIDE_TAIL.match(folded[ref.end :])
            subject = re.sub(r"^(?:the|a|an)\s+", "", (lead.group("same") or lead.group("keep") or "").strip(), flags=re.IGNORECASE)
            found.append(GuideWords(ref, subject, lead.start(), ref.end + (tail.end() if tail else 0)))
        return found

    def _episode(self, season: int, episode: int, start: int, end: int) -> Reference:
        found = self.catalog.episode(season, episode)  # a CatalogError that lists what there is
        return Reference("episode", season, episode, found.title, start, end)

    def _episode_alone(self, episode: int, season: int | None, start: int, end: int) -> Reference:
        """"episode 4": in the season under discussion, else the first season that has one."""
        having = [e for e in self.catalog.episodes if e.episode == episode]
        if not having:
            seasons = ", ".join(f"season {n} has {len(self.catalog.episodes_of(n))}" for n in self.catalog.season_numbers())
            raise CatalogError(f"{self.show} has no episode {episode} in any season ({seasons}); name one that exists, e.g. S01E01")
        chosen = next((e for e in having if e.season == season), having[0])
        return Reference("episode", chosen.season, episode, chosen.title, start, end, guessed_season=len(having) > 1 and season is None)

    # -- who appears where ------------------------------------------------------------------

    def appearances(self, name: str) -> list[tuple[Episode, int]]:
        """(episode, mentions) for each episode that names the character or place, in catalog order."""
        entity = self.entity(name)
        counted = [(e, sum(s.entity.name == entity.name for s in self.reading.spans(e.summary))) for e in self.catalog.episodes]
        return [(e, n) for e, n in counted if n]

    def key_sentence(self, name: str) -> tuple[Episode, str] | None:
        """The episode that names `name` most (the first, on a tie) and its first sentence that does."""
        seen = self.appearances(name)
        if not seen:
            return None
        episode = max(seen, key=lambda en: en[1])[0]
        for start, end in rules.sentences(episode.summary):
            sentence = episode.summary[start:end]
            if any(s.entity.name == name for s in self.reading.spans(sentence)):
                return episode, sentence
        return episode, episode.summary

    def person(self, name: str) -> str:
        """"lighthouse keeper Mara Quill in a yellow oilskin coat": a character as an image prompt names them."""
        entity = self.entity(name)
        return self.reading.person(entity) if entity.kind == "character" else entity.display
