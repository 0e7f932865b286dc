"""Offline rules for the campaign chain: strategy, image brief and prompt from the brief and summary;
each platform's copy is offline_copy's (`copy`, re-exported here for the chain).

Deterministic: the angle names the summary's own characters, places and key moment.
"""

from __future__ import annotations

import re
from typing import Any

from ..prompting.campaign import ImageBrief, Strategy, hashtags
from ..prompting.clean import CLIP_BUDGET, clip_tokens
from ..schemas import SceneBrief, StylePrompt, StyleSpec
from . import offline_rules as rules
from .offline import OfflineModel, tweak_for
from .offline_copy import copy  # noqa: F401 -- copy: the chain's entry
from .offline_reading import Reading
from .offline_story import PRONOUNS, article, summaries

# Phrases of a catalog prompt that frame the catalog's shape; a post's frame replaces them.
_FRAMING = re.compile(r"\b(shot|composition|rule of thirds|close-up|framing|frame|widescreen|silhouette)\b", re.IGNORECASE)


def _tease(text: str, moment_sentence: str) -> str:
    """The key moment's sentence; the summary's first when that one leans on a pronoun ("he shows...")."""
    first = text[slice(*rules.sentences(text)[0])] if text.strip() else ""
    head = moment_sentence.split(" ", 1)[0].lower() if moment_sentence else ""
    return first if not moment_sentence or head in PRONOUNS else moment_sentence


def strategy(data: dict[str, Any]) -> Strategy:
    """The angle from the key moment: who does what, where, in the brief's tone, for its audience."""
    brief, source = data["brief"], data["source"]
    show, texts = source["show"], summaries(source)
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
    a_tone = f"{article(brief['tone']).lower()} {brief['tone']}"
    angle = f"Lead with {lead}{', with ' + where + ' behind it' if where else ''}: {a_tone} {unit} for {brief['audience']}."
    pillars = [p for p in (f"{cast[0]}'s story" if cast else "", f"{places[0]} as the stage" if places else "", f"{a_tone} mood") if p]
    tags = hashtags([show, *cast, *places], brief["avoid_words"])
    return Strategy(angle=angle, key_message=_tease(main, moment.sentence), pillars=pillars, characters=cast, places=places, hashtags=tags)


# -- the copy ------------------------------------------------------------------------------------


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
