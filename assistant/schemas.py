"""The language side's data: the show catalog in, structured prompts (with their trace) out.

Every model (offline rules, OpenAI-compatible, local transformers) fills the same structures, so
the rest of keyart never asks which one ran, only reads the trace to say so.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# -- the catalog ---------------------------------------------------------------------------------

# Season and episode numbers are bounded to what any show has, so a typo in a row (an episode of
# 20 digits) is that row's problem, not an overflow in the store. Catalog episodes count from 1 (0 is a
# season's own art in the store); season 0 holds specials, as TV listings number them.
MAX_NUMBER = 100_000


class Episode(BaseModel):
    model_config = ConfigDict(frozen=True)

    show: str
    season: int = Field(ge=0, le=MAX_NUMBER)
    episode: int = Field(ge=0, le=MAX_NUMBER)  # 0: a scene that is no episode of the catalog (chat, a season's finale stand-in)
    title: str = ""
    summary: str


class Season(BaseModel):
    model_config = ConfigDict(frozen=True)

    show: str
    season: int = Field(ge=0, le=MAX_NUMBER)
    title: str = ""
    summary: str = ""  # empty when the catalog has none: the season is then read from its episodes


class StyleSpec(BaseModel):
    """A style as the language side sees it: a name to write for and what the style looks like."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""


# -- what a model writes -------------------------------------------------------------------------


class SceneBrief(BaseModel):
    """What the image shows, before any style: the subject first, then the scene around it."""

    subject: str = Field(description="the main subject in a short phrase, named characters included")
    characters: list[str] = Field(default_factory=list, description="named characters who appear")
    setting: str = Field(default="", description="the place, named when the summary names it")
    moment: str = Field(default="", description="the action or moment shown")
    mood: str = Field(default="", description="the emotional tone in a few words")
    lighting: str = Field(default="", description="light and time of day")
    framing: str = Field(default="", description="shot type and composition")
    camera: str = Field(default="", description="camera angle and lens")


class StylePrompt(BaseModel):
    """The SDXL prompt for one style: the scene written for that style's preset to wrap."""

    style: str
    prompt: str = Field(description="one line, subject first, comma-separated phrases, A1111 weights allowed")
    negative_prompt: str = Field(default="", description="what to keep out of the image")


class SceneReply(BaseModel):
    """The JSON a model returns for an episode or, after self-ask, for a season."""

    brief: SceneBrief
    prompts: list[StylePrompt]


class FollowUp(BaseModel):
    question: str
    answer: str


# -- the trace -----------------------------------------------------------------------------------


class Trace(BaseModel):
    """How a result was made: which model, what was sent, what came back, and what went wrong."""

    model: str  # "offline", "openai:gpt-4o-mini", "transformers:/models/qwen"...
    technique: str  # "meta-prompt" or "self-ask"
    messages: list[list[dict[str, Any]]] = Field(default_factory=list)  # every request's messages
    replies: list[str] = Field(default_factory=list)  # every raw reply, in order
    retries: list[str] = Field(default_factory=list)  # "HTTP 429: retried after 1.0 s"...
    repairs: int = 0  # rounds in which the model was shown its parse error and asked again
    fallback: str | None = None  # why the offline rules filled the result instead, if they did
    warnings: list[str] = Field(default_factory=list)  # long prompts and other things to know

    @property
    def label(self) -> str:
        """How a UI names the author: "offline", "openai:gpt-4o (fell back to offline)"..."""
        return f"{self.model} (fell back to offline)" if self.fallback else self.model


# -- results -------------------------------------------------------------------------------------


class EpisodePrompts(BaseModel):
    """An episode's prompts by meta-prompting: the scene and one SDXL prompt per style."""

    show: str
    season: int
    episode: int
    title: str = ""
    brief: SceneBrief
    prompts: list[StylePrompt]
    trace: Trace

    def prompt_for(self, style: str) -> StylePrompt:
        return next(p for p in self.prompts if p.style == style)


class SeasonPrompts(BaseModel):
    """A season's prompts by self-ask: the follow-ups and answers, then one prompt per style."""

    show: str
    season: int
    title: str = ""
    summary: str = ""  # the summary self-ask read: the catalog's, or the one written from the episodes
    summary_written: bool = False  # True when the catalog had none and a model wrote `summary`
    follow_ups: list[FollowUp]
    final_answer: str
    brief: SceneBrief
    prompts: list[StylePrompt]
    trace: Trace

    def prompt_for(self, style: str) -> StylePrompt:
        return next(p for p in self.prompts if p.style == style)
