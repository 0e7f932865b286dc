"""Offline campaign copy: each platform's post written in its own voice from the summary's
sentences (X short, Instagram a hooked caption, Facebook warm, LinkedIn about the craft and the
audience, TikTok a long talky caption with a question), within the platform's limit and hashtag
count, the brief's use_words said in sentences and never an avoid_word. Deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..platforms import PLATFORMS, hashtag, post_text, shorten
from ..prompting.campaign import PostCopy, Strategy, avoided, hashtags, missing_words
from .offline_reading import and_join
from .offline_story import Story, cap, ordinal, possessive, read_story


@dataclass(frozen=True)
class Voice:
    """How a platform's post reads: its preferred length, how its paragraphs join, and its sentences for a use_word."""

    target: int  # the post's preferred length, hashtags included; the platform's limit stays the hard one
    sep: str  # between paragraphs
    frames: tuple[str, ...]  # sentences that carry a use_word the story does not say: "{w}" the word, "{the}" its article


VOICES = {
    # X: one paragraph of short sentences.
    "x": Voice(280, " ", ("Expect {the}{w} at every turn.", "Watch for {the}{w}.")),
    # Instagram: a hook, then short paragraphs; captions past about 1,100 characters lose readers behind "more".
    "instagram": Voice(1100, "\n\n", ("Keep your eyes on {the}{w}.", "There is no escaping {the}{w}.")),
    "facebook": Voice(500, "\n\n", ("There is no escaping {the}{w}.", "Keep an eye out for {the}{w}.")),
    # LinkedIn: about 1,300 characters read whole before "see more".
    "linkedin": Voice(1300, "\n\n", ("Every scene comes back to {the}{w}.", "Look for {the}{w} in every frame.")),
    # TikTok: a long, talky caption, yet well within 2,200: 1,200 keeps it to one screen of reading.
    "tiktok": Voice(1200, "\n\n", ("And keep your eyes on {the}{w}.", "Whatever you do, watch {the}{w}.")),
}


@dataclass
class _Part:
    """A sentence (or a few) of a post, in its paragraph."""

    text: str
    para: int
    rank: int = 0  # 0: always kept; when the post runs long the highest rank goes first, the last of a rank before the rest
    cut: bool = False  # shortened at a clause break when the kept parts alone are over the limit


def _fans(s: Story) -> str:
    """What the audience loves, when the brief says "fans of ...": "coastal mysteries and slow-burn drama"; else ""."""
    found = re.match(r"(?:the\s+)?fans\s+of\s+(.+)", s.audience, re.IGNORECASE)
    if not found:
        return ""
    loved = re.sub(r"\band of\b", "and", found.group(1))
    return re.sub(r"\bthe show\b", s.show, loved)


def _where(places: list[str]) -> str:
    """"at the Gullhaven Lighthouse" / "from the Gullhaven Lighthouse to Corran Island"; "" without places."""
    if not places:
        return ""
    return f"at {places[0]}" if len(places) == 1 else f"from {places[0]} to {places[1]}"


def _story_parts(para: int, lines: list[str], *, rank: int = 3) -> list[_Part]:
    """The story's lines: the first kept (and cut if it must be), the later ones dropped first, the last before the rest."""
    return [_Part(line, para, 0 if i == 0 else rank + i, cut=i == 0) for i, line in enumerate(lines)]


def _x(s: Story) -> tuple[list[_Part], int]:
    beats = s.beats or s.lines[:1]
    punch = f"{s.show} {s.code} is as {s.tone} as it gets." if s.tone else (f"{s.show} {s.code}: {s.title}." if s.title else "")
    parts = [_Part(beats[0], 0, cut=True) if beats else _Part("", 0), *(_Part(b, 0, 1) for b in beats[1:]), _Part(punch, 1, 2), _Part(s.cta, 3)]
    return parts, 2


def _instagram(s: Story) -> tuple[list[_Part], int]:
    hook = f"All eyes on {s.places[0]}." if s.places else f"All eyes on {s.lead}."
    name = ", ".join(p for p in (s.show, s.called) if p) + (f": {s.title}." if s.title else ".")
    cast = f"With {and_join(s.people)}{', ' + _where(s.places) if s.places else ''}." if s.people else ""
    mood = f"{cap(s.a_tone())} for {s.audience}." if s.audience else ""
    told = [s.moment, *s.after[:1]] if s.moment else s.lines[:2]  # the moment and what follows; TikTok tells the rest
    story = [_Part(p.text, 2 + i, p.rank, p.cut) for i, p in enumerate(_story_parts(2, told))]  # a line each: captions read in short lines
    parts = [_Part(hook, 0), _Part(name, 1, 1), *story, _Part(cast, 20, 8), _Part(mood, 21, 2), _Part(s.cta, 22)]
    return parts, 21


def _facebook(s: Story) -> tuple[list[_Part], int]:
    if s.kind == "episode":
        opening = f"Pull up a chair for {s.title}, {s.a_tone()} of {s.show}." if s.title else f"Pull up a chair for {s.a_tone()} of {s.show}."
    else:
        opening = f"Pull up a chair for season {s.season} of {s.show}{', ' + s.title if s.title else ''}."
    welcome = f"{cap(s.audience)}, this one is for you." if s.audience else ""
    parts = [_Part(opening, 0), *_story_parts(1, s.lines, rank=2), _Part(welcome, 2, 1), _Part(s.cta, 3)]
    return parts, 2


def _linkedin(s: Story) -> tuple[list[_Part], int]:
    place = f"{ordinal(s.episode, 'episode')} of {possessive(s.show)} {ordinal(s.season, 'season', '')}" if s.kind == "episode" else ""
    if s.kind == "season":
        what = f"{cap(ordinal(s.season, 'season'))} of {s.show}{', ' + s.title + ',' if s.title else ''}"
    else:
        what = f"{s.title}, {place}," if s.title else cap(place)
    study = f"{what} is a study in {s.tone} storytelling." if s.tone else f"Introducing {what.rstrip(',')}."
    scene = f"The {s.unit} is built around one scene: {s.scene}" if s.scene else ""
    centre = f"At its centre {'is' if len(s.people) == 1 else 'are'} {and_join(s.people[:3])}" if s.people else ""
    ground = f"{and_join(s.places[:2])} {'gives' if len(s.places) == 1 else 'give'} it a real sense of place" if s.places else ""
    craft = cap("; ".join(p for p in (centre, ground) if p) + ".") if centre or ground else ""
    made = f"We made it for {s.audience}, and it shows in every scene." if s.audience else ""
    thanks = "Congratulations to the whole cast and crew who brought it to the screen."
    parts = [_Part(study, 0), _Part(scene, 1, cut=True), *(_Part(line, 1, 4) for line in s.after[:1]),
             _Part(craft, 2, 2), _Part(made, 3, 1), _Part(thanks, 3, 3), _Part(s.cta, 4)]  # fmt: skip
    return parts, 2


def _tiktok(s: Story) -> tuple[list[_Part], int]:
    about = f"{s.unit} {s.episode if s.kind == 'episode' else s.season}"
    opening = f"Okay, {s.show} fans, we need to talk about {about}{': ' + s.title if s.title else ''}."
    lines = [*s.lines[:-1], "And then?", s.lines[-1]] if len(s.lines) >= 2 else s.lines
    setup = [_Part("Here's the setup.", 1), *_story_parts(1, lines)] if lines else []
    ending = "As for the ending? No spoilers here. You'll have to watch it for yourself." if s.held else ""
    watch = f"Keep an eye on {and_join(s.people[:3])}, trust us." if s.people else ""
    around = f"It all plays out {_where(s.places)}." if s.places else ""
    fans = _fans(s)
    if fans:
        loves = f"If you love {fans}, this one is for you."
    else:
        loves = f"Made for {s.audience}, and yes, it is every bit as {s.tone} as it sounds." if s.audience and s.tone else ""
    question = s.pick([
        f"So tell us: what would you do in {possessive(s.lead)} place?",
        f"Real talk: would you have done what {s.lead} did?",
        f"So, who do you trust in {s.show} right now?",
    ]) + " Drop it in the comments."  # fmt: skip
    parts = [_Part(opening, 0), *setup, _Part(ending, 2, 5), _Part(watch, 3, 6), _Part(around, 3, 7), _Part(loves, 4, 2), _Part(question, 5), _Part(s.cta, 6)]
    return parts, 4


WRITERS = {"x": _x, "instagram": _instagram, "facebook": _facebook, "linkedin": _linkedin, "tiktok": _tiktok}


def _tags(strat: Strategy, source: dict[str, Any], lead: str, avoid: list[str], name: str) -> list[str]:
    """The strategy's hashtags (else the show's, the characters' and places' names), in the platform's order of interest."""
    pool = hashtags(strat.hashtags, avoid) or hashtags([source["show"], *strat.characters, *strat.places], avoid)
    low = lambda tags: {hashtag(t).lower() for t in tags}  # noqa: E731
    show, first, chars, places = low([source["show"]]), low([lead]), low(strat.characters), low(strat.places)
    of = lambda kind: [t for t in pool if t.lower() in kind]  # noqa: E731
    order = {
        "x": [*of(show), *of(first), *of(chars)],
        "facebook": [*of(show), *of(first), *of(places)[:1], *of(chars)],
        "linkedin": [*of(show), *of(places)[:1], *of(first), *of(chars)],
        "instagram": [*of(show), *of(first), *of(chars), *of(places)],
        "tiktok": [*of(show), *of(first), *of(places)[:1], *of(chars), *of(places)],
    }[name]
    return list(dict.fromkeys([*order, *pool]))[: PLATFORMS[name].hashtags] or hashtags([source["show"]], avoid)[:1]


def _frames(missing: list[str], voice: Voice, avoid: list[str]) -> list[str]:
    """A sentence for each use_word the post does not say yet, in the platform's voice."""
    out = []
    for i, word in enumerate(missing):
        for frame in voice.frames[i % len(voice.frames) :] + voice.frames[: i % len(voice.frames)]:
            said = frame.format(w=word.strip(), the="" if word.strip()[:1].isupper() else "the ")
            if not avoided(said.replace(word.strip(), ""), avoid):
                out.append(cap(said))
                break
    return out


def _compose(parts: list[_Part], words_at: int, data: dict[str, Any], tags: list[str]) -> str:
    """The post's text: every part that fits the platform's preferred length, dropped by rank, the use_words said."""
    brief, where = data["brief"], PLATFORMS[data["platform"]["name"]]
    voice, use, avoid = VOICES[where.name], brief["use_words"], brief["avoid_words"]
    parts = [p for p in parts if p.text.strip() and not avoided(p.text, avoid)]

    def render(kept: list[_Part]) -> str:
        paras: dict[int, list[str]] = {}
        for p in kept:
            paras.setdefault(p.para, []).append(p.text)
        if missing := missing_words(" ".join(p.text for p in kept), use):
            paras.setdefault(words_at, []).extend(_frames(missing, voice, avoid))
        return voice.sep.join(" ".join(paras[k]) for k in sorted(paras))

    def size(text: str) -> int:
        return where.length(post_text(text, tags))

    # 1. Fullest first: drop the optional parts one at a time until the post is within its preferred length.
    order = sorted((i for i, p in enumerate(parts) if p.rank), key=lambda i: (-parts[i].rank, -i))
    fallback = None
    for k in range(len(order) + 1):
        text = render([p for i, p in enumerate(parts) if i not in order[:k]])
        if size(text) <= min(voice.target, where.limit):
            return text
        fallback = fallback or (text if size(text) <= where.limit else None)
    if fallback:
        return fallback
    # 2. Even the kept parts are too long: the part marked to cut is shortened at a clause break.
    kept = [p for p in parts if not p.rank]
    cut = next((p for p in kept if p.cut), None)
    if cut is None:
        return render(kept)
    whole, room = cut.text, where.limit - size(render([p for p in kept if p is not cut])) - 1
    for _ in range(4):  # a use_word cut away brings its own sentence back: shorten again by the overflow
        cut.text = _cut(whole, max(room, 0), where.length)
        text = render(kept)
        if (over := size(text) - where.limit) <= 0:
            break
        room -= over
    return text


def copy(data: dict[str, Any]) -> PostCopy:
    """A post written for its platform: the story in the platform's voice, the use_words said, within its limits."""
    story = read_story(data)
    name = data["platform"]["name"]
    tags = _tags(Strategy(**data["strategy"]), data["source"], story.lead, data["brief"]["avoid_words"], name)
    parts, words_at = WRITERS[name](story)
    return PostCopy(text=_compose(parts, words_at, data, tags), hashtags=tags)


def _cut(text: str, room: int, length) -> str:
    """`text` within `room`: at the last clause break that keeps half of it, else at a word boundary."""
    if length(text) <= room:
        return text
    breaks = [m.start() for m in re.finditer(r",\s| as | while | where | and ", text) if length(text[: m.start()]) + 1 <= room]
    if breaks and length(text[: breaks[-1]]) >= room / 2:
        return text[: breaks[-1]].rstrip(" ,;:") + "…"
    return shorten(text, room, length)
