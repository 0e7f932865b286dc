"""Questions about the show answered from its catalog, by rules: who someone is, what happens, where.

Every answer quotes or counts the catalog itself, with episode codes, so nothing is made up: an
episode or season named in the question gets its summary; a character, who they are and where they
appear; a place, the episodes set there; anything else, what can be asked.
"""

from __future__ import annotations

import re

from .models import offline_rules as rules
from .references import CatalogIndex, Reference
from .schemas import Episode

LISTED = 8  # episodes listed by code and title before "and N more"
CAN_ASK = (
    "I answer from the {show} catalog: ask who someone is (\"who is {character}?\"), what happens in an episode "
    "(\"what happens in S01E04?\"), what a season is about, or which episodes are set somewhere "
    "(\"which episodes are set at {place}?\")."
)
LIST_WORDS = re.compile(r"\b(list|all|every|how many)\b.*\b(episodes?|seasons?)\b|\bwhat episodes\b", re.IGNORECASE)


def answer(question: str, index: CatalogIndex, *, season: int | None = None) -> str:
    """The catalog's answer to `question`; `season` reads "episode 4" in the season under discussion."""
    # 1. Which part of the catalog the question names.
    found = index.find_all(question, season=season)
    numbered = next((r for r in found if r.kind in ("episode", "season")), None)
    named = next((r for r in found if r.kind in ("character", "place")), None)
    wants_where = bool(re.search(r"\b(which|what) episodes?\b|\bwhere\b|\bset (at|in|on)\b|\bappear", question, re.IGNORECASE))
    # 2. A name asked about across episodes ("which episodes are set at...", "where does X appear").
    if named is not None and (wants_where or numbered is None):
        return _character(index, named.name) if named.kind == "character" and not wants_where else _where(index, named.name)
    # 3. An episode or a season: what happens.
    if numbered is not None:
        return _episode(index, numbered) if numbered.kind == "episode" else _season(index, numbered.season)
    # 4. The catalog as a whole.
    if LIST_WORDS.search(question):
        return _listing(index)
    characters, places = index.characters, [p for p in index.places if p.look]
    return CAN_ASK.format(
        show=index.show,
        character=characters[0].name if characters else "the main character",
        place=places[0].display if places else "a place",
    )


def code(e: Episode) -> str:
    return f"S{e.season:02d}E{e.episode:02d}" + (f' "{e.title}"' if e.title else "")


def _codes(episodes: list[Episode]) -> str:
    shown = ", ".join(code(e) for e in episodes[:LISTED])
    return shown + (f" and {len(episodes) - LISTED} more" if len(episodes) > LISTED else "")


def _episode(index: CatalogIndex, ref: Reference) -> str:
    e = index.catalog.episode(ref.season, ref.episode)
    note = ""
    if ref.guessed_season:
        others = [o for o in index.catalog.episodes if o.episode == e.episode and o.season != e.season]
        note = " (" + "; ".join(f"season {o.season} has an episode {o.episode} too: {code(o)}" for o in others) + ")"
    return f"{code(e)}{note}: {e.summary}"


def _season(index: CatalogIndex, number: int) -> str:
    season = index.catalog.season(number)
    episodes = index.catalog.episodes_of(number)
    titled = f'Season {number} "{season.title}"' if season.title else f"Season {number}"
    if season.summary:
        return f"{titled} ({len(episodes)} episodes): {season.summary}"
    return f"{titled} has no summary in the catalog; its {len(episodes)} episodes: {_codes(episodes)}. Ask what happens in one of them."


def _character(index: CatalogIndex, name: str) -> str:
    seen = [e for e, _ in index.appearances(name)]
    role = index.reading.roles.get(name, "")
    said = f"{name} is the {role} in {index.show}." if role and not name.lower().startswith(role) else f"{name} is a character in {index.show}."
    if not seen:
        return said + " The episode summaries do not name them."
    first = seen[0]
    sentence = next((first.summary[a:b] for a, b in rules.sentences(first.summary) if _names(index, first.summary[a:b], name)), "")
    appears = f" Appears in {len(seen)} episode{'s' if len(seen) > 1 else ''}: {_codes(seen)}."
    return said + appears + (f" First seen in {code(first)}: {sentence}" if sentence else "")


def _where(index: CatalogIndex, name: str) -> str:
    entity = index.entity(name)
    seen = [e for e, _ in index.appearances(name)]
    what = entity.display[0].upper() + entity.display[1:]
    if not seen:
        return f"{what} is named in the season summaries but in no episode summary."
    return f"{what} appears in {len(seen)} episode{'s' if len(seen) > 1 else ''}: {_codes(seen)}."


def _names(index: CatalogIndex, sentence: str, name: str) -> bool:
    return any(s.entity.name == name for s in index.reading.spans(sentence))


def _listing(index: CatalogIndex) -> str:
    parts = []
    for number in index.catalog.season_numbers():
        season = index.catalog.season(number)
        episodes = index.catalog.episodes_of(number)
        parts.append(f"Season {number}" + (f' "{season.title}"' if season.title else "") + f": {_codes(episodes)}")
    return f"{index.show} has {len(index.catalog.episodes)} episodes. " + ". ".join(parts) + "."
