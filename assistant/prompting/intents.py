"""What a chat message asks the illustrator for, as intents: draw, refine, answer, or just say something.

One vocabulary for both ways of understanding a message: a model's tool calls (`prompting.illustrator`)
and the offline rules below, which read the same intents from the words themselves.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ..references import CatalogIndex, Reference

CHANGES = ("darker", "brighter", "warmer", "colder", "moodier", "style", "size", "new_seed", "seed", "undo", "edit_prompt", "guide")
SIZE_STEPS = ("wider", "taller")  # one step along the size ladder
SIZE_NAMES = ("tall", "portrait", "square", "landscape", "wide", "panorama")  # narrow to wide
NEEDS_VALUE = ("style", "size", "seed", "edit_prompt", "guide")
NO_GUIDE = "none"  # the guide change's value that drops the catalog image

HELP = (
    "I draw {show}'s key art and answer questions about the show. Try: \"draw season 1 episode 3 as a watercolor\", "
    "\"draw a lighthouse in a storm\", then \"darker\", \"in anime style\", \"wider\" or \"vertical\", \"another one\", "
    "\"use seed 1234\", \"undo\"; or ask \"who is {character}?\" or \"what happens in S01E04?\""
)


class Intent(BaseModel):
    """One thing a message asks for. `draw`: reference/description/style; `refine`: change/value;
    `answer`: question; `say`: text (a model's plain reply, or the help)."""

    action: Literal["draw", "refine", "answer", "say"]
    reference: str = Field(default="", description="a catalog reference: S01E03, season 2, an episode title, a character or place")
    description: str = Field(default="", description="what the user asked to see, in their words")
    style: str = Field(default="", description="a style name; empty keeps the current style")
    guide: str = Field(default="", description="a catalog image the drawing keeps: S01E03 (its still), season 1 (its poster), or the user's words for it")
    change: str = Field(default="", description="for refine: one of " + ", ".join(CHANGES))
    value: str = Field(default="", description="for refine: the style, size, seed or prompt words")
    question: str = ""
    text: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Intent:
        if self.action == "refine":
            if self.change not in CHANGES:
                raise ValueError(f"change must be one of {', '.join(CHANGES)} (got {self.change!r})")
            if self.change in NEEDS_VALUE and not self.value.strip():
                raise ValueError(f"the {self.change} change needs a value")
        if self.action == "draw" and not (self.reference.strip() or self.description.strip()):
            raise ValueError("draw needs a reference or a description")
        return self

    def label(self) -> str:
        """"draw(S01E03, style=watercolor)", "refine(size=wider)": how a trace and a test name it."""
        if self.action == "refine":
            return f"refine({self.change}={self.value})" if self.value else f"refine({self.change})"
        if self.action == "draw":
            parts = [self.reference or repr(self.description)] + ([f"style={self.style}"] if self.style else []) + ([f"guide={self.guide}"] if self.guide else [])
            return f"draw({', '.join(parts)})"
        return f"{self.action}()"


# -- the offline rules -----------------------------------------------------------------------------

DRAW = re.compile(r"\b(draw|paint|illustrate|sketch|render|picture|imagine|generate|create|show me|make me|give me)\b", re.IGNORECASE)
QUESTION = re.compile(r"^\s*(who|what|which|where|when|why|how|tell me|list|is|are|was|were|does|do|did)\b", re.IGNORECASE)
ANOTHER = re.compile(r"\b(another(?: one)?|one more|new seed|different seed|re-?roll|a different one|try again)\b", re.IGNORECASE)
SEED = re.compile(r"\bseed\s*(?:=|:|to|of|number)?\s*(-?\d+)\b", re.IGNORECASE)
UNDO = re.compile(r"^\s*(?:please\s+)?(undo|go back|revert|back to the previous(?: one| image)?|take that back)\b", re.IGNORECASE)
ADJUST = (  # (change, pattern): lighting and mood
    ("darker", r"\b(darker|dimmer|more dark|less light)\b"),
    ("brighter", r"\b(brighter|lighter|more light|less dark)\b"),
    ("warmer", r"\b(warmer|more warm)\b"),
    ("colder", r"\b(colder|cooler|more cold|icier)\b"),
    ("moodier", r"\b(moodier|more moody|more atmospheric|gloomier|more dramatic)\b"),
)
SIZES = (  # (size value, pattern); "portrait" and "landscape" alone are sizes only as the whole message
    ("wider", r"\b(wider|widescreen|broader)\b"),
    ("taller", r"\b(taller|narrower)\b"),
    ("portrait", r"\b(vertical(?:ly)?|upright|portrait (?:format|orientation|mode)|in portrait)\b|^\s*portrait\W*$"),
    ("landscape", r"\b(horizontal(?:ly)?|landscape (?:format|orientation|mode)|in landscape)\b|^\s*landscape\W*$"),
    ("square", r"\bsquare\b"),
    ("panorama", r"\b(panorama|panoramic)\b"),
)
ADD = re.compile(r"\b(?:add|include|put in)\s+(?:some\s+|more\s+)?([^,.;!?]+?)(?=\s+and\s+|[,.;!?]|$)", re.IGNORECASE)
REMOVE = re.compile(r"\b(?:without|remove|no more|get rid of|leave out)\s+(?:the\s+)?([^,.;!?]+?)(?=\s+and\s+|[,.;!?]|$)", re.IGNORECASE)
STYLE_ALIASES = {  # everyday words for the built-in styles; a style of that name must exist to apply
    "watercolour": "watercolor", "water colour": "watercolor", "comic": "graphic-novel", "comic book": "graphic-novel",
    "manga": "anime", "poster": "retro-poster", "vintage poster": "retro-poster", "film still": "cinematic",
    "movie still": "cinematic", "cinema": "cinematic", "photographic": "cinematic",
}
UNKNOWN_STYLE = re.compile(r"\bin (?:an? |the )?([\w -]+?) style\b", re.IGNORECASE)
PRONOUN = re.compile(r"^(?:(?:it|that|this|them|the same(?: one)?|same|one|the (?:image|picture|last one))(?: again)?|again)$", re.IGNORECASE)
DROP_GUIDE = re.compile(r"\b(?:without|drop|remove|forget|lose|no)\s+(?:the\s+)?(?:catalog\s+)?(?:reference|guide)(?:\s+image)?\b", re.IGNORECASE)
FILLER = re.compile(r"\b(?:please|can you|could you|would you|will you|i want|i'd like|let's|lets|for me|now|me|us)\b", re.IGNORECASE)


def parse(text: str, index: CatalogIndex, styles: list[str], *, has_scene: bool, season: int | None = None) -> list[Intent]:
    """The intents of one message by rules, a catalog image to keep included ("the same harbour as in S01E03").

    A guide phrase is read first and taken out of the text: in a drawing it becomes the draw's guide
    (its subject, "harbour", stays in the words); on a drawn image with no draw word it is a refinement.
    """
    if UNDO.search(text):
        return [Intent(action="refine", change="undo")]
    if m := DROP_GUIDE.search(text):
        rest = _parse(_blank(text, m.start(), m.end()), index, styles, has_scene=has_scene, season=season)
        return [Intent(action="refine", change="guide", value=NO_GUIDE), *(i for i in rest if i.action != "say")]
    guides = index.find_guides(text, season=season)
    if not guides:
        return _parse(text, index, styles, has_scene=has_scene, season=season)
    guide = guides[0]
    drawing = DRAW.search(text) or not has_scene
    if not drawing:  # "keep Mara as in the season 1 poster" about the image on screen
        rest = _parse(_blank(text, guide.start, guide.end), index, styles, has_scene=has_scene, season=season)
        return [Intent(action="refine", change="guide", value=text[guide.start : guide.end]), *(i for i in rest if i.action != "say")]
    # The subject stays as words of the scene unless the message names it elsewhere ("draw Mara ..., keep Mara as in ...").
    outside = (text[: guide.start] + " " + text[guide.end :]).lower()
    kept = guide.subject if guide.subject and guide.subject.lower() not in outside else ""
    article = "the " if kept[:1].islower() else ""  # "the harbour", but "Mara"
    words = text[: guide.start] + article + kept + text[guide.end :]
    intents = _parse(words, index, styles, has_scene=has_scene, season=season)
    draws = [i for i in intents if i.action == "draw"]
    if not draws:  # nothing else to draw: the subject, or the guide's own scene, in the guide's likeness
        what = kept or guide.subject or guide.reference.label
        intents = [Intent(action="draw", description=what), *(i for i in intents if i.action != "say")]
        draws = intents[:1]
    draws[0].guide = text[guide.start : guide.end]  # as said: the illustrator reads the subject from it again
    return intents


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _parse(text: str, index: CatalogIndex, styles: list[str], *, has_scene: bool, season: int | None = None) -> list[Intent]:
    """The intents of one message by rules: control words, a question, a draw, then refinements in text order."""
    # 1. Whole-message controls: undo, a seed, another one.
    if UNDO.search(text):
        return [Intent(action="refine", change="undo")]
    found: list[tuple[int, Intent]] = []
    if m := SEED.search(text):
        found.append((m.start(), Intent(action="refine", change="seed", value=m.group(1))))
    elif m := ANOTHER.search(text):
        found.append((m.start(), Intent(action="refine", change="new_seed")))
    # 2. A question about the show (and no drawing asked for) is answered from the catalog.
    drawing = DRAW.search(text)
    if not drawing and not found and (QUESTION.search(text) or text.rstrip().endswith("?")):
        return [Intent(action="answer", question=text.strip())]
    # 3. A style, lighting, mood and size words anywhere in the message.
    style_at = _style(text, styles)
    if style_at is not None:
        found.append((style_at[0], Intent(action="refine", change="style", value=style_at[1])))
    for change, pattern in ADJUST:
        found += [(m.start(), Intent(action="refine", change=change)) for m in re.finditer(pattern, text, re.IGNORECASE)][:1]
    for value, pattern in SIZES:
        found += [(m.start(), Intent(action="refine", change="size", value=value)) for m in re.finditer(pattern, text, re.IGNORECASE)][:1]
    # 4. A new scene: a draw word with something to draw, or a catalog reference on its own.
    reference = index.find(text, season=season)
    if drawing or (reference is not None and not found):
        description = _description(text, drawing.end() if drawing else 0, reference, style_at)
        if reference is not None or (description and not PRONOUN.fullmatch(description)):
            draw = Intent(
                action="draw",
                reference=_canonical(reference) if reference else "",
                description=description,
                style=style_at[1] if style_at else "",
            )
            rest = [i for _, i in sorted(found, key=lambda f: f[0]) if i.change not in ("style", "new_seed")]
            return [draw, *rest]
    # 5. Prompt words to add or keep out, only when refining (in a draw they describe the scene).
    if has_scene and not drawing:
        found += [(m.start(), Intent(action="refine", change="edit_prompt", value=m.group(1).strip())) for m in ADD.finditer(text) if m.group(1).strip()]
        found += [
            (m.start(), Intent(action="refine", change="edit_prompt", value=f"without {m.group(1).strip()}")) for m in REMOVE.finditer(text) if m.group(1).strip()
        ]  # fmt: skip
    if found:
        return [i for _, i in sorted(found, key=lambda f: f[0])]
    first = index.characters[0].name if index.characters else "the main character"
    return [Intent(action="say", text=HELP.format(show=index.show, character=first))]


def _style(text: str, styles: list[str]) -> tuple[int, str] | None:
    """(position, style name) of the first style the text names: by name, its spaced form, or an alias."""
    words = {s.lower(): s for s in styles}
    words |= {s.lower().replace("-", " "): s for s in styles}
    words |= {alias: words[target] for alias, target in STYLE_ALIASES.items() if target in words}
    hits = []
    for word, style in words.items():
        if m := re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text, re.IGNORECASE):
            hits.append((m.start(), -len(word), style))
    if hits:
        start, _, style = min(hits)
        return start, style
    if m := UNKNOWN_STYLE.search(text):  # "in oil-painting style": the illustrator names the styles there are
        return m.start(), m.group(1).strip()
    return None


def _description(text: str, start: int, reference: Reference | None, style_at: tuple[int, str] | None) -> str:
    """The words after the draw word, without the episode number, style phrase, seed, size words and politeness."""
    if reference is not None and reference.kind in ("episode", "season"):  # blanked, so positions hold
        text = text[: reference.start] + " " * (reference.end - reference.start) + text[reference.end :]
    cut = text[start:]
    if style_at is not None:
        names = [style_at[1], *(alias for alias, target in STYLE_ALIASES.items() if target == style_at[1])]
        for name in names:
            cut = re.sub(r"\b(?:as an?|as|in an?|in|like an?)?\s*" + re.escape(name).replace(r"\-", "[- ]") + r"(?:\s+style)?\b", " ", cut, flags=re.IGNORECASE)
    for pattern in [p for _, p in (*SIZES, *ADJUST)] + [SEED.pattern, ANOTHER.pattern]:
        cut = re.sub(pattern, " ", cut, flags=re.IGNORECASE)
    cut = FILLER.sub(" ", cut)
    cut = re.sub(r"\s+", " ", cut).strip(" ,.;:!?")
    return re.sub(r"(?:\s+|^)(?:from|of|in|at|for|with|using|and|on)$", "", cut)


def _canonical(reference: Reference) -> str:
    """The reference as the illustrator resolves it again: "S01E03", "season 2", or the name."""
    if reference.kind == "episode":
        return f"S{reference.season:02d}E{reference.episode:02d}"
    if reference.kind == "season":
        return f"season {reference.season}"
    return reference.name
