"""The offline model's season: self-ask's five follow-ups (arc, characters, places, tone, iconic
moment) answered from the summaries, the final image sentence, and a summary for a season that has
none.
"""

from __future__ import annotations

import re
from collections import Counter

from ..schemas import Episode, FollowUp, Season
from . import offline_actions as actions
from . import offline_rules as rules
from . import offline_words as lexicon
from .offline_reading import Reading, and_join, lighting, mood


def self_ask(season: Season, episodes: list[Episode], *, max_follow_ups: int = 5) -> tuple[list[FollowUp], str]:
    """Five follow-ups (arc, characters, places, tone, iconic moment) answered from the text, then the image."""
    n, texts = season.season, [e.summary for e in episodes]
    reading = Reading([season.summary, *texts])
    whole = " ".join([season.summary, *texts])
    finale = episodes[-1] if episodes else Episode(show=season.show, season=n, episode=0, summary=season.summary)
    moment = reading.key_moment(finale.summary)
    asked = [
        FollowUp(question=f"What is the main arc of season {n}?", answer=_arc(season, episodes)),
        FollowUp(question=f"Who are the main characters of season {n}?", answer=_cast(reading, texts, season.summary)),
        FollowUp(question=f"Which places keep coming back in season {n}?", answer=_places(reading, texts)),
        FollowUp(question=f"What is the tone of season {n}?", answer=_tone(f"{season.title}. {whole}")),
        FollowUp(question=f"What is the iconic moment of season {n}?", answer=_iconic(finale, moment, len(episodes))),
    ]
    return asked[: max(0, max_follow_ups)], _final(reading, moment, finale.summary, texts)


def summary(season: Season, episodes: list[Episode]) -> str:
    """Two to four sentences: the opening and the finale, the main characters, the recurring places, the tone."""
    texts = [e.summary for e in episodes]
    tone = "Its tone is " + mood(". ".join([season.title, *texts])).replace(", ", " and ") + "."
    if not episodes:
        return f"Season {season.season} of {season.show} has no episodes in the catalog yet. {tone}"
    reading, first = Reading(texts), _lead(texts[0])
    finale = _lead(reading.key_moment(texts[-1]).sentence or texts[-1])
    said = [f"In its one episode, {first}." if len(episodes) == 1 else f"In the first of its {len(episodes)} episodes, {first}; in the finale, {finale}."]
    cast = [reading.person(c, look=False) for _, c in _main_characters(reading, texts, "")]
    if cast:
        said.append(f"At its heart {'is' if len(cast) == 1 else 'are'} {and_join(cast)}.")
    counts = _place_counts(reading, texts)
    if recurring := [p.display for k, p in counts if k >= 2][:3]:
        said.append(f"The story keeps returning to {and_join(recurring)}.")
    elif counts:
        said.append(f"It is set around {counts[0][1].display}.")
    return " ".join([*said, tone])


def _arc(season: Season, episodes: list[Episode]) -> str:
    if season.summary.strip():
        start, end = rules.sentences(season.summary)[0]
        return season.summary[start:end]
    if not episodes:
        return "The catalog has no summary and no episodes for this season."
    first, last = (_lead(e.summary) for e in (episodes[0], episodes[-1]))
    return f"It opens as {first} and builds to the finale, where {last}." if len(episodes) > 1 else f"{first}."


def _lead(text: str) -> str:
    """A summary's first sentence, ready to follow "as": no final stop, a lower-case opening word."""
    start, end = rules.sentences(text)[0]
    sentence = text[start:end].rstrip(".!? ")
    head = sentence.split(" ", 1)[0]
    return sentence[0].lower() + sentence[1:] if head in lexicon.STOP else sentence


def _main_characters(reading: Reading, texts: list[str], summary: str) -> list[tuple[int, rules.Entity]]:
    """(episodes named in, character) for the four most present characters, most present first."""
    counts = [(sum(any(s.entity is c for s in reading.spans(t)) for t in texts), c) for c in reading.ranked(" ".join([summary, *texts]), "character")]
    return [(k, c) for k, c in sorted(counts, key=lambda kc: -kc[0]) if k][:4]


def _cast(reading: Reading, texts: list[str], summary: str) -> str:
    ranked = _main_characters(reading, texts, summary)
    if not ranked:
        return "The summaries name no characters."
    parts = []
    for k, c in ranked:
        role = reading.roles.get(c.name)
        named = f"{c.name}, the {role}," if role and not c.name.lower().startswith(role) else c.name
        parts.append(f"{named} in {k} of {len(texts)} episodes")
    return "; ".join(parts) + "."


def _place_counts(reading: Reading, texts: list[str]) -> list[tuple[int, rules.Entity]]:
    """(episodes named in, place) for every place, most present first."""
    counts = [(sum(any(s.entity is p for s in reading.spans(t)) for t in texts), p) for p in reading.ranked(" ".join(texts), "place")]
    return sorted(counts, key=lambda kp: -kp[0])


def _places(reading: Reading, texts: list[str]) -> str:
    counts = _place_counts(reading, texts)
    recurring = [(k, p) for k, p in counts if k >= 2][:5]
    if not recurring:
        return f"No named place recurs; the most prominent is {counts[0][1].display}." if counts else "The summaries name no places."
    text = and_join([f"{p.display} in {k} episodes" for k, p in recurring])
    return text[0].upper() + text[1:] + "."


def _tone(text: str) -> str:
    feel = mood(text)
    words = Counter(
        w for w in re.findall(r"\w+", text.lower()) for _, stems in lexicon.MOODS if any(w.startswith(s) for s in stems.split() if "_" not in s)
    )
    top = [w for w, _ in words.most_common(4)]
    light = lighting("", text)
    said = f"; the summaries keep returning to {', '.join(top[:-1])} and {top[-1]}" if len(top) > 1 else ""
    return f"{feel.replace(', ', ' and ').capitalize()}, under {light}{said}."


def _iconic(finale: Episode, moment: actions.Moment, count: int) -> str:
    where = f"In episode {finale.episode}, the finale" if count > 1 else f"In episode {finale.episode}"
    sentence = moment.sentence.strip()
    head = sentence.split(" ", 1)[0] if sentence else ""
    if head in lexicon.STOP:
        sentence = sentence[0].lower() + sentence[1:]
    return f"{where}, {sentence}" if sentence else f"{where}: {finale.summary}"


def _final(reading: Reading, moment: actions.Moment, finale_text: str, texts: list[str]) -> str:
    """One sentence: the finale's key action, where it happens, what recurs behind it, and the light."""
    action = moment.primary if moment.primary and moment.primary.subjects else None
    who = action.subjects if action else (moment.characters or reading.ranked(finale_text, "character"))[:1]
    parts = [" ".join(p for p in (" and ".join(reading.person(c, look=False) for c in who), action.phrase if action else "") if p)]
    if moment.secondary:
        parts.append(" and ".join(reading.person(c, look=False) for c in moment.secondary.subjects) + " " + moment.secondary.phrase)
    shown = " ".join(parts)
    here = [p for p in moment.places if p.name not in shown][:1] or [p for p in reading.ranked(finale_text, "place") if p.name not in shown][:1]
    parts += [f"at {p.display}" for p in here]
    recurring = [p for p in reading.ranked(" ".join(texts), "place") if p.name not in " ".join(parts) and p.look][:1]
    parts += [f"{p.display} beyond" for p in recurring]
    parts.append(lighting(moment.sentence, finale_text))
    text = rules.clean_phrase(", ".join(p for p in parts if p))
    return (text[0].upper() + text[1:] + ".") if text else "The season's main character at its central place."
