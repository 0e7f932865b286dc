"""Offline rules for the campaign chain: strategy, per-platform copy, image brief and prompt, from the brief and summary.

Deterministic: the angle names the summary's own characters, places and key moment; the copy keeps
to each platform's limit, carries the call to action and every use_word, and never an avoid_word.
"""

from __future__ import annotations

import re
from typing import Any

from ..platforms import PLATFORMS, hashtag, post_text, shorten
from ..prompting.campaign import ImageBrief, PostCopy, Strategy, avoided, hashtags
from ..prompting.clean import CLIP_BUDGET, clip_tokens
from ..schemas import SceneBrief, StylePrompt, StyleSpec
from . import offline_rules as rules
from .offline import OfflineModel, Reading, tweak_for

PRONOUNS = ("he", "she", "they", "it", "his", "her", "their")
# Phrases of a catalog prompt that frame the catalog's shape; a post's frame replaces them.
_FRAMING = re.compile(r"\b(shot|composition|rule of thirds|close-up|framing|frame|widescreen|silhouette)\b", re.IGNORECASE)
SHORT = ("x", "tiktok")  # platforms whose posts are one short paragraph
TEASE_MAX = {"tiktok": 150}  # TikTok captions are read over the image: the hook stays short


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _texts(source: dict[str, Any]) -> list[str]:
    return [t for t in [source.get("summary", ""), *(e["summary"] for e in source.get("episodes", []))] if t.strip()]


def _tease(text: str, moment_sentence: str) -> str:
    """The key moment's sentence; the summary's first when that one leans on a pronoun ("he shows...")."""
    first = text[slice(*rules.sentences(text)[0])] if text.strip() else ""
    head = moment_sentence.split(" ", 1)[0].lower() if moment_sentence else ""
    return first if not moment_sentence or head in PRONOUNS else moment_sentence


def strategy(data: dict[str, Any]) -> Strategy:
    """The angle from the key moment: who does what, where, in the brief's tone, for its audience."""
    brief, source = data["brief"], data["source"]
    show, texts = source["show"], _texts(source)
    main = source.get("summary") or texts[-1]
    # 1. Who and where, named as the summary names them.
    reading = Reading(texts)
    cast = OfflineModel().brief(main, title=source.get("title", "")).characters
    cast = list(dict.fromkeys([*cast, *(c.name for c in reading.ranked(" ".join(texts), "character"))]))[:3]
    places = [p.display for p in reading.ranked(" ".join(texts), "place") if p.name.casefold() != show.casefold()][:3]
    # 2. The key moment: the lead of the angle and the tease every post carries.
    moment = reading.key_moment(main)
    action = moment.primary if moment.primary and moment.primary.subjects else None
    lead = " ".join([reading.person(action.subjects[0], look=False), action.phrase]) if action else (cast[0] if cast else show)
    where = next((p for p in places if p.lower().removeprefix("the ") not in lead.lower()), "")
    unit = "episode" if source["kind"] == "episode" else "season"
    angle = f"Lead with {lead}{', with ' + where + ' behind it' if where else ''}: a {brief['tone']} {unit} for {brief['audience']}."
    pillars = [p for p in (f"{cast[0]}'s story" if cast else "", f"{places[0]} as the stage" if places else "", f"a {brief['tone']} mood") if p]
    tags = hashtags([show, *cast, *places], brief["avoid_words"])
    return Strategy(angle=angle, key_message=_tease(main, moment.sentence), pillars=pillars, characters=cast, places=places, hashtags=tags)


def _headline(source: dict[str, Any]) -> str:
    title = f": “{source['title']}”" if source.get("title") else ""
    where = f"S{source['season']}E{source['episode']}" if source["kind"] == "episode" else f"season {source['season']}"
    return f"{source['show']} {where}{title}"


def copy(data: dict[str, Any]) -> PostCopy:
    """A post in parts by priority: the call to action and use_words always, the tease cut to fit, the rest if room."""
    brief, source, strat, where = data["brief"], data["source"], Strategy(**data["strategy"]), PLATFORMS[data["platform"]["name"]]
    avoid, unit = brief["avoid_words"], "episode" if source["kind"] == "episode" else "season"
    # 1. The parts. The tone leaves the words line if it holds an avoided word (the brief keeps use_words and CTA clean).
    tone = brief["tone"] if not avoided(brief["tone"], avoid) else ""
    said = _and(brief["use_words"] or [source["show"]])
    words = f"{_article(tone or unit)} {tone + ' ' if tone else ''}{unit} of {said}."
    cta = _sentence(brief["call_to_action"])
    tease = strat.key_message if not avoided(strat.key_message, avoid) else ""
    optional = [_headline(source)] if where.name not in SHORT else []
    if where.name == "linkedin":
        optional.append(_sentence(f"For {brief['audience']}"))
    optional = [p for p in optional if not avoided(p, avoid)]
    tags = [t for t in (strat.hashtags or [hashtag(source["show"])]) if not avoided(t, avoid)][: where.hashtags]

    def join(head: list[str], tease: str) -> str:
        body = " ".join(p for p in (tease, words) if p)
        parts = [*head[:1], body, *head[1:], cta] if where.name not in SHORT else [body, cta]
        return ("\n\n" if where.name not in SHORT else " ").join(p for p in parts if p)

    # 2. Fit: drop optional parts from the last, then cut the tease at a word boundary.
    while optional and where.length(post_text(join(optional, tease), tags)) > where.limit:
        optional.pop()
    room = where.limit - where.length(post_text(join(optional, ""), tags)) - 1  # 1: the space before the words line
    room = min(room, TEASE_MAX.get(where.name, room))
    return PostCopy(text=join(optional, _cut(tease, max(room, 0), where.length)), hashtags=tags)


def _cut(text: str, room: int, length) -> str:
    """`text` within `room`: at the last clause break that keeps half of it, else at a word boundary."""
    if length(text) <= room:
        return text
    breaks = [m.start() for m in re.finditer(r",\s| as | while | where | and ", text) if length(text[: m.start()]) + 1 <= room]
    if breaks and length(text[: breaks[-1]]) >= room / 2:
        return text[: breaks[-1]].rstrip(" ,;:") + "…"
    return shorten(text, room, length)


def image_brief(data: dict[str, Any]) -> ImageBrief:
    """The catalog's scene, composed for the platform's frame, its mood led by the brief's tone."""
    grounded, frame = SceneBrief(**data["grounding"]["brief"]), data["platform"]["composition"]
    tone = data.get("tone", "").strip()
    mood = ", ".join(dict.fromkeys(m for m in [tone, *grounded.mood.split(", ")] if m.strip()))
    scene = grounded.model_copy(update={"framing": frame, "mood": mood})
    purpose = f"Shows the moment the post's angle leads with: {Strategy(**data['strategy']).angle}" if data.get("strategy") else ""
    return ImageBrief(scene=scene, composition=frame, purpose=purpose)


def prompt(data: dict[str, Any], notes: list[str]) -> StylePrompt:
    """The catalog prompt with its framing swapped for the post's frame, plus what the image brief adds; or one from the brief."""
    brief, style = ImageBrief(**data["image_brief"]), StyleSpec(**data["style"])
    start, frame = data["grounding"].get("prompt", "").strip(), brief.composition
    if not start:
        [written] = OfflineModel().style_prompts(brief.scene.model_copy(update={"framing": frame}), [style])
        return written
    # 1. The catalog prompt's phrases without its own framing.
    phrases = [p.strip() for p in start.split(",") if p.strip() and not _FRAMING.search(p)]
    # 2. After its subject: what the image brief shows that the catalog prompt does not (an edited scene), then the frame.
    have = " ".join(phrases).lower()
    extra = [rules.clean_phrase(p) for p in [brief.scene.subject, *brief.scene.moment.split(","), brief.scene.setting.split(",")[0]]]
    phrases[1:1] = [p for p in extra if p and p.lower() not in have] + [p.strip() for p in frame.split(",")[:2]]
    # 3. Within CLIP's budget: the last phrases (camera, light) go first.
    while clip_tokens(", ".join(phrases)) > CLIP_BUDGET and len(phrases) > 3:
        notes.append(f"dropped {phrases.pop()!r} to keep the prompt within {CLIP_BUDGET} CLIP tokens")
    negative = data["grounding"].get("negative_prompt", "") or tweak_for(style).negative
    return StylePrompt(style=style.name, prompt=", ".join(dict.fromkeys(phrases)), negative_prompt=negative)
