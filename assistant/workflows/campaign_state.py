"""A campaign's state: the brief (read from YAML) and every step's input and output, saved as campaign.json.

The file is the chain's memory and its editing surface: change a step's output (or the brief) and
rerun from the next step; a step's input edited by hand is used when the chain reruns from that step.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from imagegen import styles as style_catalog
from ..errors import CampaignError

from ..platforms import PLATFORMS, platform
from ..prompting.campaign import ImageBrief, PostCopy, Strategy, avoided
from ..schemas import SceneBrief, StylePrompt, Trace
from ..store import now

STEPS = ("grounding", "strategy", "copy", "image_brief", "prompt", "image")
SHARED = ("grounding", "strategy")  # once per campaign
POST_STEPS = ("copy", "image_brief", "prompt", "image")  # once per platform
STATE_FILE = "campaign.json"
EXAMPLE_BRIEF = "data/briefs/gullhaven-s01e03.yaml"
MOTION_PLATFORMS = ("tiktok", "instagram")  # the platforms whose posts may be videos (TikTok, Instagram Reels)
MOTION_ALL = "*"  # `motion: true`, before the platforms are known


# -- the brief -----------------------------------------------------------------------------------


class Brief(BaseModel):
    """What the campaign is for. Every key has a default; an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")

    show: str = ""  # "": the catalog's show
    season: int = Field(default=1, ge=1)
    episode: int | None = Field(default=None, ge=1)  # None: the season as a whole
    goal: str = "get fans and new viewers to watch"
    audience: str = "fans of the show and of drama series"
    tone: str = "intriguing"
    platforms: list[str] = Field(default_factory=lambda: list(PLATFORMS))
    call_to_action: str = "Watch now"
    use_words: list[str] = Field(default_factory=list)
    avoid_words: list[str] = Field(default_factory=list)
    style: str = "cinematic"
    # A catalog image every post's image keeps: "the same harbour as in S01E03", "keep Mara as in the season 1 poster", "S01E03".
    reference: str = ""
    # Platforms whose post is a motion post too (an animation beside the still): a list, or true for every one that takes video.
    motion: list[str] = Field(default_factory=list)

    @field_validator("platforms", "use_words", "avoid_words", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        """A list, or one comma-separated string."""
        if isinstance(value, str):
            value = value.split(",")
        return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, (list, tuple)) else value

    @field_validator("motion", mode="before")
    @classmethod
    def _motion(cls, value: Any) -> Any:
        """true: every platform that takes video (resolved against the platforms below); false or none: no motion post."""
        if value is True:
            return [MOTION_ALL]
        if value is False or value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, (list, tuple)) else value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        names = list(dict.fromkeys(platform(v).name for v in value))
        if not names:
            raise ValueError(f"name at least one platform: {', '.join(PLATFORMS)}")
        return names

    @field_validator("style")
    @classmethod
    def _style(cls, value: str) -> str:
        return style_catalog.get(value).name  # UnknownStyle is a ValueError that lists the styles

    @model_validator(mode="after")
    def _consistent(self) -> Brief:
        if self.motion == [MOTION_ALL]:
            self.motion = [p for p in self.platforms if p in MOTION_PLATFORMS]
        motion = list(dict.fromkeys(platform(v).name for v in self.motion))
        if odd := [p for p in motion if p not in MOTION_PLATFORMS]:
            raise ValueError(f"motion posts are for {' and '.join(MOTION_PLATFORMS)} (their video formats); not {', '.join(odd)}")
        if missing := [p for p in motion if p not in self.platforms]:
            raise ValueError(f"motion names {', '.join(missing)}, which the brief's platforms leave out; add it to platforms or drop it from motion")
        self.motion = motion
        both = sorted({w.lower() for w in self.use_words} & {w.lower() for w in self.avoid_words})
        if both:
            raise ValueError(f"{', '.join(both)} cannot be both in use_words and in avoid_words")
        if found := avoided(self.call_to_action, self.avoid_words):
            raise ValueError(f"call_to_action uses the avoided word(s) {', '.join(found)}")
        return self

    @property
    def label(self) -> str:
        return f"S{self.season:02d}E{self.episode:02d}" if self.episode else f"season {self.season}"


def brief_from(data: dict[str, Any], *, where: str = "the brief") -> Brief:
    """A Brief from a mapping; an empty value takes the default; errors name the key and say what fits."""
    odd = [repr(k) for k in data if not isinstance(k, str)]
    if odd:  # YAML's `0:` or `~:` keys are numbers and nulls, not a brief's words
        raise CampaignError(f"{where}: the keys {', '.join(odd)} are not key names; a brief takes {', '.join(Brief.model_fields)} (see {EXAMPLE_BRIEF})")
    unknown = sorted(set(data) - set(Brief.model_fields))
    if unknown:
        raise CampaignError(f"{where}: unknown key(s) {', '.join(unknown)}; a brief takes {', '.join(Brief.model_fields)} (see {EXAMPLE_BRIEF})")
    given = {k: _no_surrogates(v) for k, v in data.items() if v is not None and v != ""}
    try:
        return Brief(**given)
    except ValidationError as exc:
        raise CampaignError(f"{where}: {describe(exc)}") from None


def _no_surrogates(value: Any) -> Any:
    """Text with lone surrogates (YAML reads "\\ud800" escapes as them) made encodable: each one a "?"."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if any("\ud800" <= c <= "\udfff" for c in value) else value
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


def load_brief(path: str | Path) -> Brief:
    """The brief in a YAML file: keys show, season, episode, goal, audience, tone, platforms, call_to_action, use_words, avoid_words, style, reference, motion."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CampaignError(f"no brief at {path}; write a YAML file such as {EXAMPLE_BRIEF}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"cannot read the brief {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise CampaignError(f"{path} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: a brief is a YAML mapping of keys (show: ..., season: ...), not a {type(data).__name__}; see {EXAMPLE_BRIEF}")
    return brief_from(data, where=str(path))


def describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:4]:
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where + ': ' if where else ''}{e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


# -- what the steps without a language model make ------------------------------------------------


class Grounding(BaseModel):
    """The catalog art a campaign starts from: the store's (`catalog`), or written now (`meta-prompt`, `self-ask`)."""

    source: str
    brief: SceneBrief
    prompt: str
    negative_prompt: str = ""
    seed: int
    llm: str = ""  # who wrote the catalog prompt
    prompt_key: str | None = None  # the store's key, when from the catalog
    image: str | None = None  # the catalog image, when rendered


class PostImage(BaseModel):
    path: str  # relative to the campaign folder
    video: str | None = None  # a motion post's MP4 (and `gif`), relative to the campaign folder
    gif: str | None = None
    width: int
    height: int
    seed: int
    engine: str
    model: str
    preview: bool = False  # an offline preview card, not an SDXL render


OUTPUTS: dict[str, type[BaseModel]] = {
    "grounding": Grounding, "strategy": Strategy, "copy": PostCopy, "image_brief": ImageBrief, "prompt": StylePrompt, "image": PostImage,
}  # fmt: skip


# -- the chain's state ---------------------------------------------------------------------------


class StepRecord(BaseModel):
    """One step's run: what went in, what came out (editable), how often and how it ran."""

    input: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] | None = None
    input_digest: str = ""  # the digest of the input as the chain built it; a differing `input` was edited
    edited_input: bool = False  # the last run used an input edited by hand
    runs: int = 0
    ran_at: str | None = None
    trace: Trace | None = None  # the language model's part, when the step has one
    notes: list[str] = Field(default_factory=list)
    error: str | None = None


class Blocked(BaseModel):
    """Why a post was held back: the step that found it, what was checked, and the reason."""

    step: str
    what: str
    reason: str


class Post(BaseModel):
    platform: str
    steps: dict[str, StepRecord] = Field(default_factory=lambda: {s: StepRecord() for s in POST_STEPS})
    blocked: Blocked | None = None


class Campaign(BaseModel):
    id: str = Field(default_factory=lambda: secrets.token_hex(6))
    created: str = Field(default_factory=now)
    brief: Brief
    llm: str = ""  # the language model of the last run
    engine: str = ""  # the image engine of the last run
    steps: dict[str, StepRecord] = Field(default_factory=lambda: {s: StepRecord() for s in SHARED})
    posts: dict[str, Post] = Field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)  # brand-safety verdicts by text, checker and blocklist
    package: dict[str, Any] | None = None

    def sync(self) -> None:
        """One post per platform of the brief, in its order (a platform added to the brief gets a fresh post)."""
        self.steps = {s: self.steps.get(s) or StepRecord() for s in SHARED}
        self.posts = {p: self.posts.get(p) or Post(platform=p) for p in self.brief.platforms}
        for post in self.posts.values():
            post.steps = {s: post.steps.get(s) or StepRecord() for s in POST_STEPS}

    def record(self, step: str, platform: str | None = None) -> StepRecord:
        return self.steps[step] if step in SHARED else self.posts[platform].steps[step]

    def output(self, step: str, platform: str | None = None) -> Any:
        """The step's output as its model (an edit that no longer fits is an error that says where)."""
        record = self.record(step, platform)
        if record.output is None:
            raise CampaignError(f"{platform + ' ' if platform else ''}{step} has no output yet; rerun with --from-step {step}")
        try:
            return OUTPUTS[step].model_validate(record.output)
        except ValidationError as exc:
            where = f"posts.{platform}.steps.{step}" if platform else f"steps.{step}"
            raise CampaignError(f"{STATE_FILE}: {where}.output: {describe(exc)}; fix the edit or rerun with --from-step {step}") from None


def save(campaign: Campaign, folder: Path) -> Path:
    """campaign.json, written atomically: a reader sees the old file or the new one, never half of it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STATE_FILE
    write_atomic(path, campaign.model_dump_json(indent=1).encode("utf-8"))
    return path


def load(folder: str | Path) -> Campaign:
    path = Path(folder) / STATE_FILE
    try:
        campaign = Campaign.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise CampaignError(f"no campaign in {folder} yet; start one with --brief") from None
    except ValidationError as exc:
        raise CampaignError(f"{path} cannot be used: {describe(exc)}; fix the edit, or start again with --brief into a new folder") from None
    campaign.sync()
    return campaign


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temp path beside `path` to write; on a clean exit it replaces `path` at once, else it is removed."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
