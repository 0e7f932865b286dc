"""The story a campaign post tells, read offline from the summary and the strategy: the key moment
and who leads it, the sentences a post may say (none with an avoided word, none that leans on a
pronoun whose person went), the cast and places. offline_copy writes each platform's post from it.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

from ..prompting.campaign import Strategy, avoided, missing_words
from . import offline_rules as rules
from .offline_reading import Reading

PRONOUNS = ("he", "she", "they", "it", "his", "her", "their")


def full_stop(text: str) -> str:
    """The text ending as a sentence does: a full stop added unless it has one (or ! ? …)."""
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def article(word: str) -> str:
    """"An" before a vowel, else "A"."""
    return "An" if word[:1].lower() in "aeiou" else "A"


def summaries(source: dict[str, Any]) -> list[str]:
    """The source's own summary, then its episodes' (a season's), without empty ones."""
    return [t for t in [source.get("summary", ""), *(e["summary"] for e in source.get("episodes", []))] if t.strip()]


_PRONOUN = re.compile(r"\b(he|she|they|him|her|his|their|them)\b", re.IGNORECASE)
# Where a long clause breaks into short sentences: "... as the worst storm hits", ", while X ...", ", and Wren ...".
_BEAT = re.compile(r",? as (?=(?:the|a|an|his|her|their) )|, while |, and (?=[A-ZÀ-Þ])|; ")


@dataclass(frozen=True)
class Story:
    """What a post can say about the episode (or season), each piece free of avoided words."""

    show: str
    kind: str  # "episode" | "season"
    season: int
    episode: int | None
    title: str  # "“The Keeper's Lamp”", or ""
    tone: str
    audience: str
    cta: str
    lead: str  # the key moment's main character, by name
    scene: str  # who does what at the key moment, the person named with their role, ready to follow a colon
    beats: list[str]  # the same, by name only, in short sentences
    lines: list[str]  # the summary's sentences a post may tell, in order
    moment: str  # the line that tells the key moment ("" when none does)
    after: list[str]  # the lines that follow it
    held: bool  # the summary's last sentence is held back (the ending is the episode's)
    people: list[str]  # "lighthouse keeper Mara Quill"
    places: list[str]  # "the Gullhaven Lighthouse"
    variant: int  # picks among phrasings, the same for the same episode

    @property
    def unit(self) -> str:
        return self.kind

    @property
    def code(self) -> str:
        return f"S{self.season}E{self.episode}" if self.kind == "episode" else f"season {self.season}"

    @property
    def called(self) -> str:
        return f"season {self.season}, episode {self.episode}" if self.kind == "episode" else f"season {self.season}"

    def a_tone(self) -> str:
        """"a suspenseful episode"; "an episode" without a tone."""
        word = self.tone or self.unit
        return f"{article(word).lower()} {self.tone + ' ' if self.tone else ''}{self.unit}"

    def pick(self, options: list[str]) -> str:
        return options[self.variant % len(options)]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth")


def ordinal(n: int | None, unit: str, the: str = "the ") -> str:
    """"the third episode" ("third episode" with `the=""`); "episode 14" past the twelfth."""
    return f"{the}{ORDINALS[n - 1]} {unit}" if n and 1 <= n <= len(ORDINALS) else f"{unit} {n}"


def possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _plain(text: str) -> str:
    """A summary sentence as a post says it: braces (catalog markup such as "{SM-12}") and doubled spaces go."""
    text = re.sub(r"\s+", " ", re.sub(r"[{}]", "", text)).strip()
    return text if re.search(r"[.!?…][\"”’']$", text) else full_stop(text)


def _leans(sentence: str, reading: Reading) -> bool:
    """True when a pronoun comes before any named character: the sentence needs the one before it."""
    first = min((s.start for s in reading.spans(sentence) if s.entity.kind == "character"), default=len(sentence))
    return bool(_PRONOUN.search(sentence[:first]))


def _clause(reading: Reading, sentence: str, who: rules.Entity | None, use: list[str]) -> tuple[str, str]:
    """(with role, by name): the key sentence from its subject's name on, without a clause that only leads into it
    ("Forbidden from the tower by ..., "); the whole sentence when what leads in has its own subject or a use_word;
    ("", "") when the name is not the sentence's subject."""
    if who is None or not sentence:
        return "", ""
    spans = [s for s in reading.spans(sentence) if s.entity.name == who.name]
    if not spans:
        return "", ""
    head, rest = sentence[: spans[0].start].rstrip(), sentence[spans[0].end :]
    role = reading.roles.get(who.name, "")
    if role and head.lower().endswith(role.lower()):
        head = head[: -len(role)].rstrip()
    if rest.startswith(("'", "’")) or (head and not head.endswith((",", ":", ";", " and"))):  # the name is not the subject
        return "", ""
    if head and (head.endswith((":", ";", " and")) or len(missing_words(head, use)) < len([w for w in use if w.strip()])):
        return sentence, sentence
    person = who.name if role and role.lower() in rest.lower() else reading.person(who, look=False)
    return person + rest, who.name + rest


def _beats(clause: str) -> list[str]:
    """A long clause as short sentences, broken where a new subject starts; parts under three words stay joined."""
    parts, start = [], 0
    for m in _BEAT.finditer(clause):
        if len(clause[start : m.start()].split()) >= 3 and len(clause[m.end() :].split()) >= 3:
            parts.append(clause[start : m.start()])
            start = m.end()
    parts.append(clause[start:])
    return [full_stop(cap(p.strip().rstrip(".,;:"))) for p in parts if p.strip()]


def _sentences(summary: str) -> list[str]:
    """The summary's sentences as a post says them; a quotation that runs over a full stop stays one sentence."""
    out: list[str] = []
    for a, b in rules.sentences(summary) if summary.strip() else []:
        piece = summary[a:b].strip()
        if out and (out[-1].count('"') % 2 or out[-1].count("“") > out[-1].count("”")):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return [_plain(s) for s in out]


def _subject(reading: Reading, sentence: str) -> str:
    moment = reading.key_moment(sentence)
    return moment.primary.subjects[0].name if moment.primary and moment.primary.subjects else ""


def _named(sentence: str, reading: Reading, name: str) -> str:
    """The sentence with its leading "he"/"she" (or "his"/"him") named, when the sentence that said who went; "" if it cannot be."""
    found = _PRONOUN.search(sentence)
    first = min((s.start for s in reading.spans(sentence) if s.entity.kind == "character"), default=len(sentence))
    word = found.group(0).lower() if found and found.start() < first else ""
    said = {"he": name, "she": name, "him": name, "his": possessive(name)}.get(word, "")  # "her", "they": which, or how many, is unclear
    if not name or not said:
        return ""
    said = cap(said) if found.start() == 0 else said
    return sentence[: found.start()] + said + sentence[found.end() :]


def read_story(data: dict[str, Any]) -> Story:
    """The story a post tells, from the summary and the strategy, without the brief's avoided words."""
    brief, source, strat = data["brief"], data["source"], Strategy(**data["strategy"])
    avoid, summary = brief["avoid_words"], source.get("summary", "") or ""
    clean = lambda text: "" if avoided(text, avoid) else text.strip()  # noqa: E731
    reading = Reading([t for t in (summary, strat.key_message) if t.strip()])
    said = _sentences(summary)
    # 1. The key moment, and who leads it.
    moment = reading.key_moment(summary) if said else reading.key_moment(strat.key_message)
    action = moment.primary if moment.primary and moment.primary.subjects else None
    names = [n for n in strat.characters if n.strip() and not avoided(n, avoid)]
    lead = action.subjects[0].name if action and not avoided(action.subjects[0].name, avoid) else (names[0] if names else source["show"])
    key = _plain(moment.sentence) if moment.sentence else ""
    key = next((s for s in said if key.rstrip(".") in s), key)
    # 2. An edited (or model-written) key message leads in place of the summary's own sentence.
    message = _plain(strat.key_message) if strat.key_message.strip() else ""
    if message and message not in said and not avoided(message, avoid):
        key, said = message, [message, *said]
    # 3. The sentences a post may tell: the last is held back unless it is the key moment; none with an avoided word;
    # one that leans on a pronoun after a dropped sentence names whom it means, or goes too.
    held = len(said) >= 3 and said[-1] != key
    lines, kept, who = [], True, ""
    for sentence in said[:-1] if held else said:
        told = sentence if not avoided(sentence, avoid) else ""
        if told and not kept and _leans(told, reading):
            told = clean(_named(told, reading, who))
        if told:
            lines.append(told)
            key = told if sentence == key else key
        elif subject := _subject(reading, sentence):
            who = "" if avoided(subject, avoid) else subject
        kept = bool(told)
    # 4. Who does what: the key sentence from the name on; else the first line that stands alone; else the lead's action.
    full, named = _clause(reading, key, action.subjects[0] if action else None, brief["use_words"])
    scene = full
    if not full or avoided(full, avoid):
        key = next((s for s in lines if not _leans(s, reading)), "")
        phrase = action.phrase if action and not avoided(action.phrase, avoid) else ""
        scene = key or (f"{reading.person(action.subjects[0], look=False)} {phrase}" if phrase and lead == action.subjects[0].name else "")
        full = named = key or (f"It all starts with {lead} {phrase}." if scene else "")
    if scene and not any(scene.startswith(s.entity.name) for s in reading.spans(scene)):
        scene = scene[:1].lower() + scene[1:]  # it follows a colon
    after = lines[lines.index(key) + 1 :] if key in lines else []
    people = {e.name: reading.person(e, look=False) for e in reading.entities if e.kind == "character"}
    return Story(
        show=source["show"], kind=source["kind"], season=source["season"], episode=source.get("episode"),
        title=clean(f"“{source['title']}”") if source.get("title") else "", tone=clean(brief["tone"]), audience=clean(brief["audience"]),
        cta=full_stop(brief["call_to_action"]), lead=lead, scene=full_stop(scene) if scene else "", beats=_beats(named) if named else [],
        lines=lines or ([full_stop(cap(full))] if full else []), moment=key if key in lines else "", after=after, held=held,
        people=[clean(people.get(n, n)) for n in names if clean(people.get(n, n))], places=[p for p in strat.places if clean(p)],
        variant=zlib.crc32(f"{source['show']}|{source['season']}|{source.get('episode')}".encode()),
    )  # fmt: skip

