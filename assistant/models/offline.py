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
from . import offline_words as lexicon

MAX_WORDS = 60  # CLIP reads 75 tokens; 60 words of names and short phrases stay about within them
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

    def season_summary(self, season: Season, episodes: list[Episode]) -> str:
        """A summary for a season the catalog has none for, written from its episodes (2-4 sentences)."""
        return _summary(season, episodes)

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
    lighting = _lighting(moment.sentence, context)
    shown = f"{subject} {lighting}".lower()
    props = [f for f in rules.features_in(moment.sentence) if f.split()[-1] not in shown]
    if len(props) < 2:  # a thin moment borrows the text's light-giving props: "great lamp", "red flare"
        sources = " ".join(stems for _, stems in lexicon.SOURCES)
        props += [f for f in rules.features_in(context) if rules.has_stem(f, sources) >= 0 and f.split()[-1] not in shown][:1]
    details += [f for f in dict.fromkeys(props) if not any(f in d for d in details)][:3]
    framing, camera = _framing(sentence_and_action, len(who), action.weight if action else 0, lighting)
    cast = list(dict.fromkeys([*who, *moment.characters, *reading.ranked(context, "character")]))
    return SceneBrief(
        subject=_whole_clause(rules.clean_phrase(subject)),
        characters=[c.name for c in cast[:5]],
        setting=rules.clean_phrase(_setting(reading, moment, context)),
        moment=rules.clean_phrase(", ".join(details)),
        mood=_mood(mood_text),
        lighting=lighting,
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


def _mood(text: str) -> str:
    words = re.findall(r"\w+", text.lower())
    hits = [(sum(1 for w in words if rules.stem_pattern(stems).match(w)) + _phrases(text, stems), i, mood)
            for i, (mood, stems) in enumerate(lexicon.MOODS)]
    ranked = [mood for count, _, mood in sorted(hits, key=lambda h: (-h[0], h[1])) if count]
    return ", ".join(ranked[:2]) or DEFAULT_MOOD


def _phrases(text: str, stems: str) -> int:
    """Occurrences of the multi-word stems ("whole_of") that a word-by-word count cannot see."""
    return sum(len(re.findall(r"(?<!\w)" + s.replace("_", " "), text, re.IGNORECASE)) for s in stems.split() if "_" in s)


def _lighting(sentence: str, context: str) -> str:
    """Time and light source from the moment itself; weather from the moment, else from the whole
    text; when none is named, the light of the text's world."""

    def first(table, text):
        found = [(pos, i, phrase) for i, (phrase, stems) in enumerate(table) if (pos := rules.has_stem(text, stems)) >= 0]
        return min(found)[2] if found else ""

    weather = first(lexicon.WEATHER, sentence) or first([w for w in lexicon.WEATHER if "underwater" not in w[0]], context)
    parts = [first(lexicon.TIMES, sentence), weather, first(lexicon.SOURCES, sentence)]
    return ", ".join(p for p in parts if p) or WORLD_LIGHT.get(world_of(f"{sentence} {context}"), DEFAULT_LIGHTING)


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
    cast = f"with {_and(others)}" if others else ""
    setting = [p.strip() for p in brief.setting.split(",") if p.strip() and p.strip().lower() not in said]
    said += " " + " ".join(setting).lower()
    named = [p for p in dict.fromkeys(places) if _bare(p).lower() not in said]
    grounds = [p for p in named if not p.startswith(VESSEL_MARK)]
    vessels = [p.removeprefix(VESSEL_MARK) for p in named if p.startswith(VESSEL_MARK)]
    place = ", ".join(
        x for x in (f"near {_and(grounds)}" if grounds else "", _and(vessels)) if x
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


# -- self-ask answers ----------------------------------------------------------------------------


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
    text = _and([f"{p.display} in {k} episodes" for k, p in recurring])
    return text[0].upper() + text[1:] + "."


def _and(parts: list[str]) -> str:
    """"a", "a and b", "a, b and c"; "" for none."""
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _summary(season: Season, episodes: list[Episode]) -> str:
    """Two to four sentences: the opening and the finale, the main characters, the recurring places, the tone."""
    texts = [e.summary for e in episodes]
    tone = "Its tone is " + _mood(". ".join([season.title, *texts])).replace(", ", " and ") + "."
    if not episodes:
        return f"Season {season.season} of {season.show} has no episodes in the catalog yet. {tone}"
    reading, first = Reading(texts), _lead(texts[0])
    finale = _lead(reading.key_moment(texts[-1]).sentence or texts[-1])
    said = [f"In its one episode, {first}." if len(episodes) == 1 else f"In the first of its {len(episodes)} episodes, {first}; in the finale, {finale}."]
    cast = [reading.person(c, look=False) for _, c in _main_characters(reading, texts, "")]
    if cast:
        said.append(f"At its heart {'is' if len(cast) == 1 else 'are'} {_and(cast)}.")
    counts = _place_counts(reading, texts)
    if recurring := [p.display for k, p in counts if k >= 2][:3]:
        said.append(f"The story keeps returning to {_and(recurring)}.")
    elif counts:
        said.append(f"It is set around {counts[0][1].display}.")
    return " ".join([*said, tone])


def _tone(text: str) -> str:
    mood = _mood(text)
    words = Counter(
        w for w in re.findall(r"\w+", text.lower()) for _, stems in lexicon.MOODS if any(w.startswith(s) for s in stems.split() if "_" not in s)
    )
    top = [w for w, _ in words.most_common(4)]
    light = _lighting("", text)
    said = f"; the summaries keep returning to {', '.join(top[:-1])} and {top[-1]}" if len(top) > 1 else ""
    return f"{mood.replace(', ', ' and ').capitalize()}, under {light}{said}."


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
    parts.append(_lighting(moment.sentence, finale_text))
    text = rules.clean_phrase(", ".join(p for p in parts if p))
    return (text[0].upper() + text[1:] + ".") if text else "The season's main character at its central place."
