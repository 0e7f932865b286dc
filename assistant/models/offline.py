"""The offline model: keyart's default writer, and its fallback when an LLM's reply is unusable.

Deterministic rules fill the same structures a language model fills (SceneBrief, StylePrompt,
FollowUp), from the summaries' own names, actions, places, light and weather (see `offline_rules`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..schemas import (
    Episode,
    FollowUp,
    SceneBrief,
    SceneReply,
    Season,
    StylePrompt,
    StyleSpec,
)
from . import offline_actions as actions
from . import offline_rules as rules
from . import offline_season as season_rules
from . import offline_words as lexicon
from .offline_reading import Reading, and_join, lighting, mood, place_look

MAX_WORDS = 60  # CLIP reads 75 tokens; 60 words of names and short phrases stay about within them
_LEAK = re.compile(r"\b(instructions?|json|follow up|prompt)\b", re.IGNORECASE)  # our own vocabulary, never image content


# A prompt's parts, by name; each style puts them in its own order (its emphasis) and frames its own shot.
PARTS = ("subject", "cast", "setting", "places", "details", "mood", "light", "shot", "composition", "look", "camera")
# When a prompt is over budget, parts go in this order (the subject, cast, places and the style's
# composition stay: they are what the image is of, and what makes the style's frame its own).
DROPPED_FIRST = ("camera", "mood", "light2", "details2", "details", "shot", "setting2", "light", "object", "look")


@dataclass(frozen=True)
class Tweak:
    """A style's framing and emphasis: the order of the prompt's parts, its own shot (None: the
    brief's), its composition, an optional camera in place of the brief's, and a short negative."""

    framing: str
    camera: str = ""
    negative: str = "text, watermark, extra fingers, blurry"
    order: tuple[str, ...] = ("subject", "cast", "setting", "places", "details", "mood", "light", "shot", "composition", "look", "camera")
    shot: str | None = None
    look: str = ""  # the style's own way of seeing the scene, in words its preset's template does not use
    leaves: tuple[str, ...] = ()  # parts the style does without: what its frame has no room or use for


STYLE_TWEAKS = {
    # The scene as a film still: the action, then the world around it, lit as on set.
    "cinematic": Tweak(
        "widescreen anamorphic composition", negative="text, watermark, extra fingers, deformed face, blurry",
        look="establishing frame, motivated practical light",
    ),
    # The people first and close, the place behind them, ink before colour.
    "graphic-novel": Tweak(
        "dramatic diagonal composition, heavy black shadows", negative="text, speech bubbles, watermark, extra fingers, blurry",
        order=("shot", "subject", "cast", "composition", "look", "details", "setting", "places", "light", "mood", "camera"), shot="close-up panel",
        look="stark contrast, speed lines, gritty faces", leaves=("mood", "camera", "setting2", "light2"),
    ),
    # The place first, wide and open, the figures small in it.
    "watercolor": Tweak(
        "airy composition with open sky", negative="text, watermark, harsh outlines, muddy colors",
        order=("setting", "places", "subject", "cast", "light", "mood", "look", "composition", "shot", "details", "camera"), shot="wide view, small figures",
        look="gentle horizon, muted tones", leaves=("details", "camera"),
    ),
    # The characters in motion, the light and the action's details before the place.
    "anime": Tweak(
        "dynamic composition", camera="dynamic low angle", negative="text, watermark, extra fingers, bad anatomy",
        order=("subject", "cast", "details", "look", "light", "composition", "setting", "places", "mood", "shot", "camera"), shot="character focus",
        look="motion streaks, sparkling highlights", leaves=("setting2", "mood", "light2"),
    ),
    # One iconic image: the key object and the lead as a silhouette against the place.
    "retro-poster": Tweak(
        "bold central silhouette, simplified shapes", camera="flat frontal view", negative="text, lettering, watermark, cluttered background",
        order=("composition", "look", "subject", "details", "places", "setting", "cast", "mood", "shot", "light", "camera"), shot="poster layout",
        look="iconic centred figure, travel poster framing", leaves=("light2", "camera", "setting2", "details2"),
    ),
}  # fmt: skip
NEUTRAL = Tweak("balanced composition")
# An unknown style borrows the tweak of the first family its name or description mentions.
_FAMILIES = [("retro-poster", "poster"), ("anime", "anime manga"), ("watercolor", "watercolor watercolour"),
             ("graphic-novel", "comic graphic ink"), ("cinematic", "cinematic film photo")]


def tweak_for(style: StyleSpec) -> Tweak:
    key = re.sub(r"[\s_]+", "-", style.name.strip().lower())
    if key in STYLE_TWEAKS:
        return STYLE_TWEAKS[key]
    words = f"{style.name} {style.description}"
    return next((STYLE_TWEAKS[k] for k, stems in _FAMILIES if rules.has_stem(words, stems) >= 0), NEUTRAL)


class OfflineModel:
    """Rules over the summary text; same input, same output."""

    name = "offline"
    label = "offline rules (no language model)"

    def brief(self, text: str, *, title: str = "") -> SceneBrief:
        reading = Reading([text])
        return _scene(reading, reading.key_moment(text), context=text, mood_text=f"{title}. {text}")

    def style_prompts(
        self, brief: SceneBrief, styles: list[StyleSpec], *, places: Sequence[str] = (), objects: Sequence[str] = ()
    ) -> list[StylePrompt]:
        """One prompt per style: every character of the brief, every place in `places` and the key
        object in `objects` named in each, in the style's own order and frame, within CLIP's budget."""
        return [_style_prompt(brief, style, places=places, objects=objects) for style in styles]

    def episode_reply(self, episode: Episode, styles: list[StyleSpec]) -> SceneReply:
        reading = Reading([episode.summary])
        brief = _scene(reading, reading.key_moment(episode.summary), context=episode.summary, mood_text=f"{episode.title}. {episode.summary}")
        places = [_place_phrase(p) for p in reading.ranked(episode.summary, "place")]
        thing = key_object(episode.summary)
        return SceneReply(brief=brief, prompts=self.style_prompts(brief, styles, places=places, objects=[thing] if thing else []))

    def self_ask(self, season: Season, episodes: list[Episode], *, max_follow_ups: int = 5) -> tuple[list[FollowUp], str]:
        """Five follow-ups (arc, characters, places, tone, iconic moment) answered from the text, then the image."""
        return season_rules.self_ask(season, episodes, max_follow_ups=max_follow_ups)

    def season_summary(self, season: Season, episodes: list[Episode]) -> str:
        """A summary for a season the catalog has none for, written from its episodes (2-4 sentences)."""
        return season_rules.summary(season, episodes)

    def season_reply(
        self, season: Season, episodes: list[Episode], follow_ups: list[FollowUp], final_answer: str, styles: list[StyleSpec]
    ) -> SceneReply:
        answers = [f.answer for f in follow_ups]
        reading = Reading([season.summary, *(e.summary for e in episodes), final_answer, *answers])
        tone = next((f.answer for f in follow_ups if "tone" in f.question.lower()), "")
        context = " ".join([final_answer, *answers, season.summary])
        brief = _scene(reading, reading.key_moment(final_answer), context=context, mood_text=tone or context)
        places = [_place_phrase(p) for p in reading.ranked(context, "place")][:4]
        return SceneReply(brief=brief, prompts=self.style_prompts(brief, styles, places=places))


# -- the scene -----------------------------------------------------------------------------------


def _scene(reading: Reading, moment: actions.Moment, *, context: str, mood_text: str) -> SceneBrief:
    """A SceneBrief from the key moment; the rest of the text fills in weather, mood and the cast."""
    # 1. Who, doing what: the strongest action's subjects, else the moment's (or the text's) main character.
    action = moment.primary if moment.primary and moment.primary.subjects else None
    who = action.subjects if action else (moment.characters or reading.ranked(context, "character"))[:1]
    people = " and ".join(reading.person(c, look=i == 0, doing=action.phrase if action else "") for i, c in enumerate(who))
    subject = " ".join(p for p in (people, action.phrase if action else "") if p) or _first_words(moment.sentence, 8)
    # 2. The details: a second character's action, then props of the moment.
    other = moment.secondary
    details = [f"{' and '.join(c.name for c in other.subjects)} {other.phrase}"] if other else []
    # 3. Where, in what light, how framed.
    sentence_and_action = f"{moment.sentence} {action.phrase if action else ''}"
    light = lighting(moment.sentence, context)
    shown = f"{subject} {light}".lower()
    props = [f for f in rules.features_in(moment.sentence) if f.split()[-1] not in shown]
    if len(props) < 2:  # a thin moment borrows the text's light-giving props: "great lamp", "red flare"
        sources = " ".join(stems for _, stems in lexicon.SOURCES)
        props += [f for f in rules.features_in(context) if rules.has_stem(f, sources) >= 0 and f.split()[-1] not in shown][:1]
    details += [f for f in dict.fromkeys(props) if not any(f in d for d in details)][:3]
    framing, camera = _framing(sentence_and_action, len(who), action.weight if action else 0, light)
    cast = list(dict.fromkeys([*who, *moment.characters, *reading.ranked(context, "character")]))
    return SceneBrief(
        subject=_whole_clause(rules.clean_phrase(subject)),
        characters=[c.name for c in cast[:5]],
        setting=rules.clean_phrase(_setting(reading, moment, context)),
        moment=rules.clean_phrase(", ".join(details)),
        mood=mood(mood_text),
        lighting=light,
        framing=framing,
        camera=camera,
    )


_DANGLING = re.compile(r"\s+(?:to|and|or|but|as|while)(?:\s+\w+)?$", re.IGNORECASE)  # a clause cut short


def _whole_clause(phrase: str) -> str:
    """A subject that does not stop mid-clause: "crossing the blockade to offer" -> "crossing the blockade"."""
    trimmed = phrase
    while (cut := _DANGLING.sub("", trimmed)) != trimmed and len(cut.split()) >= 3:
        trimmed = cut
    return trimmed


def _setting(reading: Reading, moment: actions.Moment, context: str) -> str:
    """The place the moment happens at, as named, with how it looks; else a landmark of the text behind it."""
    named = moment.locative or moment.places
    if named:
        main = named[0]
        look = place_look(main.look, reading.world) or _setting_noun(moment.sentence)
        parts = [main.display, look] + [f"{p.display} in the distance" for p in moment.locative if p is not main][:1]
        return ", ".join(p for p in parts if p)
    landmarks = [p for p in reading.ranked(context, "place") if p.look]
    noun = _setting_noun(moment.sentence)
    if noun and landmarks:
        return f"{noun}, {landmarks[0].display} in the distance"
    if landmarks:
        return f"{landmarks[0].display}, {place_look(landmarks[0].look, reading.world)}"
    return noun or _setting_noun(context)


def _setting_noun(text: str) -> str:
    found = [(rules.has_stem(text, noun.replace(" ", "_")), look) for noun, look in lexicon.SETTING_NOUNS.items()]
    found = [f for f in found if f[0] >= 0]
    return min(found)[1] if found else ""


def _framing(text: str, people: int, weight: int, lighting: str) -> tuple[str, str]:
    crowd = any(rules.has_stem(text, c.replace(" ", "_")) >= 0 for c in lexicon.CROWD)
    if crowd or people == 0:
        framing = "wide establishing shot, small figures against the scene" if crowd else "wide shot, landscape composition"
    elif people == 1:
        framing = "medium shot, figure in motion, rule of thirds" if weight >= 3 else "medium close-up, rule of thirds"
    else:
        framing = "medium shot, two figures" if people == 2 else "medium-wide group shot"
    if "underwater" in lighting:
        camera = "underwater view, wide-angle lens"
    elif any(rules.has_stem(text, h.replace(" ", "_")) >= 0 for h in lexicon.HEIGHTS):
        camera = "low angle looking up, 24mm lens"
    elif any(rules.has_stem(text, w) >= 0 for w in lexicon.WATER):
        camera = "eye level at the waterline, 35mm lens"
    elif framing.startswith("wide"):
        camera = "high vantage point, 24mm lens"
    else:
        camera = "eye level, 50mm lens" if people > 1 else "eye level, 85mm lens"
    return framing, camera


def _first_words(text: str, n: int) -> str:
    return " ".join(rules.clean_phrase(text).split()[:n])


# -- the prompt ----------------------------------------------------------------------------------


def key_object(text: str) -> str:
    """The object a summary keeps coming back to, with its adjective ("black shard", "brass key"): of
    the props it names (the lexicon's), the most mentioned (ties: the first); "" when it names none."""
    props = rules.features_in(text)
    if not props:
        return ""
    heads = Counter(p.split()[-1].rstrip("s") for p in props)
    best = max(props, key=lambda p: (heads[p.split()[-1].rstrip("s")], len(p.split()), -props.index(p)))
    return best


def _style_prompt(brief: SceneBrief, style: StyleSpec, *, places: Sequence[str] = (), objects: Sequence[str] = ()) -> StylePrompt:
    """The brief as one prompt in the style's order: who does what, with whom, where (every named
    place), the details, mood, light and the style's frame; parts dropped, least needed first, until
    CLIP's 75-token budget holds."""
    from ..prompting.clean import CLIP_BUDGET, clip_tokens

    tweak = tweak_for(style)
    subject = rules.clean_phrase(brief.subject)
    said = subject.lower()
    # 1. The parts, each a grammatical phrase; a name already said is not said again.
    others = [n for n in brief.characters if n.lower() not in said and n.split()[0].lower() not in said]
    cast = f"with {and_join(others)}" if others else ""
    setting = [p.strip() for p in brief.setting.split(",") if p.strip() and p.strip().lower() not in said]
    said += " " + " ".join(setting).lower()
    named = [p for p in dict.fromkeys(places) if _bare(p).lower() not in said]
    grounds = [p for p in named if not p.startswith(VESSEL_MARK)]
    vessels = [p.removeprefix(VESSEL_MARK) for p in named if p.startswith(VESSEL_MARK)]
    place = ", ".join(
        x for x in (f"near {and_join(grounds)}" if grounds else "", and_join(vessels)) if x
    )
    said += " " + place.lower() + " " + " ".join(p.lower() for p in named)
    thing = next((o for o in objects if o.split()[-1].rstrip("s").lower() not in f"{said} {brief.moment.lower()}"), "")
    details = [d.strip() for d in brief.moment.split(",") if d.strip()]
    light = [p.strip() for p in brief.lighting.split(",") if p.strip()]
    parts: dict[str, str] = {
        "subject": subject, "cast": cast, "setting": setting[0] if setting else "", "setting2": ", ".join(setting[1:]),
        "places": place, "object": thing, "details": details[0] if details else "", "details2": ", ".join(details[1:3]),
        "mood": f"{brief.mood} atmosphere" if brief.mood else "", "light": light[0] if light else "", "light2": ", ".join(light[1:2]),
        "shot": tweak.shot or brief.framing.split(",")[0], "composition": tweak.framing, "look": tweak.look,
        "camera": tweak.camera or brief.camera,
    }  # fmt: skip
    # 2. In the style's order (a part's second half follows it), without what the style leaves out,
    # then dropped to the budget.
    order = [name for part in tweak.order for name in (part, f"{part}2", *(("object",) if part == "places" else ())) if name in parts and name not in tweak.leaves]
    kept = [name for name in order if rules.clean_phrase(parts[name]) and not _LEAK.search(parts[name])]

    def text(names: list[str]) -> str:
        seen: list[str] = []
        for name in names:
            phrase = rules.clean_phrase(parts[name])
            if phrase.lower() not in {p.lower() for p in seen}:
                seen.append(phrase)
        return ", ".join(seen)

    for name in DROPPED_FIRST:
        if clip_tokens(text(kept)) <= CLIP_BUDGET:
            break
        if name in kept:
            kept.remove(name)
    prompt = text(kept)
    while clip_tokens(prompt) > CLIP_BUDGET and "," in prompt:  # still over: the last phrase goes
        prompt = prompt.rsplit(",", 1)[0]
    return StylePrompt(style=style.name, prompt=prompt, negative_prompt=tweak.negative)


VESSEL_MARK = "\x00vessel:"  # a place that is a ship: named as itself ("the trawler Kittiwake"), never "in" it


def _place_phrase(place: rules.Entity) -> str:
    """A named place as the prompt says it: "Corran Island", "the Drowned Chapel"; a vessel with its
    kind ("the trawler Kittiwake"), marked so it is not put "in"."""
    if place.look in lexicon.VESSEL_LOOKS:
        return f"{VESSEL_MARK}the {place.look} {place.name}" if place.look.lower() not in place.name.lower() else f"{VESSEL_MARK}{place.display}"
    return place.display


def _bare(place: str) -> str:
    """A place's name without its article, for the check that it is already said: "the Old Mill" -> "Old Mill"."""
    return re.sub(r"^(?:the|a|an)\s+", "", place.removeprefix(VESSEL_MARK).strip(), flags=re.IGNORECASE)

