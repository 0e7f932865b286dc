"""A chat image's state and its refinements: the scene, style, size, seed and prompt edits.

`refine` returns a new state and says what changed; the seed stays unless the refinement is about the
seed. Sizes are SDXL training buckets on a ladder from tall to panorama (the three named ones are
`imagegen.presets.ASPECTS`); lighting and mood edits are A1111-weighted phrases with a negative.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from imagegen import RenderRequest, styles
from imagegen.errors import InvalidRequest
from imagegen.presets import ASPECTS
from imagegen.request import MAX_SEED

from .catalog_guides import Guide
from .plan import RenderSettings

# Narrow to wide. "wide" and "panorama" (and "tall") are SDXL buckets too: 1344x768 and 1536x640.
SIZES: dict[str, tuple[int, int]] = {
    "tall": (768, 1344),
    "portrait": ASPECTS["portrait"],
    "square": ASPECTS["square"],
    "landscape": ASPECTS["landscape"],
    "wide": (1344, 768),
    "panorama": (1536, 640),
}
LADDER = list(SIZES)
# change -> (axis, direction); the opposite change walks the same axis back.
ADJUSTMENTS = {"darker": ("dark", 1), "brighter": ("dark", -1), "warmer": ("warm", 1), "colder": ("warm", -1), "moodier": ("moody", 1)}
# (axis, sign) -> (prompt phrase, negative phrase)
PHRASES = {
    ("dark", 1): ("dark, low-key lighting", "bright, overexposed"),
    ("dark", -1): ("bright, high-key lighting", "dark, underexposed"),
    ("warm", 1): ("warm golden light, amber tones", "cold blue cast"),
    ("warm", -1): ("cold blue light, icy tones", "warm orange cast"),
    ("moody", 1): ("moody, brooding atmosphere, deep shadows", "flat lighting"),
    ("moody", -1): ("calm, gentle atmosphere", "harsh shadows"),
}
FIRST_WEIGHT = 1.3  # clearly felt on the first "darker"; each repeat adds STEP_WEIGHT
STEP_WEIGHT = 0.1
MAX_WEIGHT = 1.5  # past about 1.5 SDXL burns the phrase in (blotches, oversaturation)
REMOVE_WORDS = ("without ", "no ", "remove ", "not ")


class ChatState(BaseModel):
    """What the current image is: the scene and its prompts, then every refinement on top; `history` for undo."""

    kind: str = ""  # "" before the first drawing; "episode" | "season" | "character" | "place" | "free"
    show: str = ""
    season: int | None = None
    episode: int | None = None
    title: str = ""
    reference: str = ""  # how the reply names the scene: 'S01E03 "The Keeper's Lamp"', "Mara Quill"
    description: str = ""  # the user's own words for it
    source: str = ""  # where the prompts came from: the catalog store, or meta-prompted now (by which model)
    prompts: dict[str, dict[str, str]] = Field(default_factory=dict)  # style -> {"prompt", "negative_prompt"}
    style: str | None = None
    size: str = "square"
    seed: int = 0
    levels: dict[str, int] = Field(default_factory=dict)  # lighting/mood axis -> steps taken
    additions: list[str] = Field(default_factory=list)
    removals: list[str] = Field(default_factory=list)
    refinements: list[str] = Field(default_factory=list)  # the lineage since the drawing, in order
    guide: Guide | None = None  # a catalog image the render keeps ("the same harbour as in S01E03")
    image: str | None = None  # this state's image, relative to the home folder
    history: list[ChatState] = Field(default_factory=list)  # earlier states, newest last

    @property
    def drawn(self) -> bool:
        return bool(self.kind)

    def snapshot(self) -> ChatState:
        """This state without its history: what history keeps and a PNG's lineage records."""
        return self.model_copy(update={"history": []}, deep=True)

    def summary(self) -> str:
        """"S01E03 "The Keeper's Lamp", watercolor, landscape 1216x832, seed 123; darker"."""
        if not self.drawn:
            return "nothing drawn yet"
        w, h = SIZES[self.size]
        edits = "; " + ", ".join(self.refinements) if self.refinements else ""
        guided = f", after {self.guide.source}" if self.guide else ""
        return f"{self.reference or self.description}, {self.style or 'no style'}, {self.size} {w}x{h}, seed {self.seed}{guided}{edits}"


@dataclass(frozen=True)
class Change:
    """What one refinement did: a sentence for the reply, a short label for the lineage; `changed` is False when it was already so."""

    said: str
    label: str = ""
    changed: bool = True


def refine(state: ChatState, change: str, value: str = "") -> tuple[ChatState, Change]:
    """`state` with one refinement applied (undo is the illustrator's: it needs the history)."""
    new = state.model_copy(deep=True)
    if change in ADJUSTMENTS:
        done = Change(_adjust(new, change), change)
    elif change == "style":
        style = styles.get(value).name  # UnknownStyle names the styles there are
        if style == state.style:
            return state, Change(f"It is already {style}", changed=False)
        new.style = style
        done = Change(f"Now in {style} style", f"style: {style}")
    elif change == "size":
        size = _size(state.size, value)
        w, h = SIZES[size]
        if size == state.size:
            edge = {"wider": "the widest size, ", "taller": "the tallest size, "}.get(value.strip().lower(), "")
            return state, Change(f"It is already {edge}{size} ({w}x{h})", changed=False)
        new.size = size
        done = Change(f"Now {size}, {w}x{h}", f"size: {size}")
    elif change == "new_seed":
        new.seed = _random_seed(state.seed)
        done = Change(f"Another one: new seed {new.seed}", f"new seed {new.seed}")
    elif change == "seed":
        new.seed = parse_seed(value)
        if new.seed == state.seed:
            return state, Change(f"The seed is already {new.seed}", changed=False)
        done = Change(f"Seed set to {new.seed}", f"seed {new.seed}")
    elif change == "edit_prompt":
        done = _edit(new, value)
        if done is None:
            return state, Change(f"The prompt already has {value.strip()!r}", changed=False)
    else:
        raise InvalidRequest(f"unknown refinement {change!r}; refinements: {', '.join([*ADJUSTMENTS, 'style', 'size', 'new_seed', 'seed', 'edit_prompt'])}")
    new.refinements.append(done.label)
    new.image = None  # a changed state has no image until it is rendered
    return new, done


def with_guide(state: ChatState, guide: Guide | None) -> tuple[ChatState, Change]:
    """`state` kept after a catalog image (`guide`), or after none; the seed and every other edit stay."""
    if (guide and guide.image) == (state.guide and state.guide.image):
        return state, Change(f"It is already after {guide.source}" if guide else "No catalog image guides it", changed=False)
    new = state.model_copy(deep=True)
    new.guide, new.image = guide, None
    done = Change(f"Now {guide.said()}", f"guide: {guide.code}") if guide else Change(f"No longer after {state.guide.source}", "guide: none")
    new.refinements.append(done.label)
    return new, done


def parse_seed(value: Any) -> int:
    text = str(value).strip()
    # ASCII digits only: isdigit() also takes "²", which int() refuses; ten digits are past MAX_SEED.
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not 0 <= int(text) <= MAX_SEED:
        raise InvalidRequest(f"a seed is a whole number from 0 to {MAX_SEED} (got {text!r}); say \"another one\" for a random new seed")
    return int(text)


def _random_seed(old: int) -> int:
    while (seed := secrets.randbelow(MAX_SEED + 1)) == old:
        pass
    return seed


def _adjust(state: ChatState, change: str) -> str:
    axis, direction = ADJUSTMENTS[change]
    level = state.levels.get(axis, 0) + direction
    state.levels[axis] = level
    if level == 0:
        del state.levels[axis]
        return f"Made it {change}: back to neutral, the earlier {axis} edit is gone"
    phrase, negative = PHRASES[(axis, 1 if level > 0 else -1)]
    return f"Made it {change}: ({phrase}:{weight(level):g}) in the prompt, \"{negative}\" in the negative"


def weight(level: int) -> float:
    return round(min(FIRST_WEIGHT + STEP_WEIGHT * (abs(level) - 1), MAX_WEIGHT), 2)


def _size(current: str, value: str) -> str:
    value = value.strip().lower()
    aliases = {"vertical": "portrait", "horizontal": "landscape", "panoramic": "panorama"}
    value = aliases.get(value, value)
    if value in ("wider", "taller"):
        at = LADDER.index(current) + (1 if value == "wider" else -1)
        return LADDER[min(max(at, 0), len(LADDER) - 1)]
    if value not in SIZES:
        raise InvalidRequest(f"unknown size {value!r}; say wider or taller, or name one of: {', '.join(f'{n} {w}x{h}' for n, (w, h) in SIZES.items())}")
    return value


def _edit(state: ChatState, value: str) -> Change | None:
    """Words added to the prompt, or ("without fog") to the negative; None when they are there already."""
    text = " ".join(value.split()).strip(" ,")
    low = text.lower()
    remove = next((w for w in REMOVE_WORDS if low.startswith(w)), None)
    if remove:
        words = text[len(remove) :].strip()
        if not words or words.lower() in (r.lower() for r in state.removals):
            return None
        state.removals.append(words)
        return Change(f"Keeping \"{words}\" out (negative prompt)", f"without: {words}")
    if not text or low in (a.lower() for a in state.additions):
        return None
    state.additions.append(text)
    return Change(f"Added \"{text}\" to the prompt", f"add: {text}")


def compose(state: ChatState) -> tuple[str, str]:
    """(prompt, negative prompt) before the style wraps them: the scene's own, then every edit."""
    base = state.prompts.get(state.style or "") or next(iter(state.prompts.values()), {"prompt": state.description, "negative_prompt": ""})
    prompt, negative = [base["prompt"]], [base.get("negative_prompt", "")]
    for axis, level in state.levels.items():
        phrase, avoid = PHRASES[(axis, 1 if level > 0 else -1)]
        prompt.append(f"({phrase}:{weight(level):g})")
        negative.append(avoid)
    prompt += state.additions
    negative += state.removals
    return ", ".join(p for p in prompt if p), ", ".join(n for n in negative if n)


def request_for(state: ChatState, settings: RenderSettings) -> RenderRequest:
    """The render request of a state: its size, seed and style under the settings' quality and overrides."""
    prompt, negative = compose(state)
    request = settings.request(state.kind, prompt=prompt, negative_prompt=negative, style=state.style, seed=state.seed, size=SIZES[state.size])
    return state.guide.apply(request) if state.guide else request


def size_of(width: int, height: int, default: str) -> str:
    """The ladder's name for a width and height (a catalog image's), else `default`."""
    return next((name for name, wh in SIZES.items() if wh == (width, height)), default)
