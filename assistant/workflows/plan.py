"""What a catalog run has to make, and the keys that say whether it is made already.

A prompt item is an episode (meta-prompting) or a season (self-ask), written in every chosen style
at once; an image is one (item, style). Keys hash everything a result depends on, so a changed
summary re-does that episode (and its season), and a changed style template re-renders only its images.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

from imagegen import RenderRequest
from imagegen.presets import ASPECTS, QUALITIES, apply_quality, describe_quality, quality_fields
from imagegen.request import MAX_SEED

from ..catalog import Catalog
from ..errors import CatalogError
from ..models import is_offline, label
from ..schemas import MAX_NUMBER, Episode, Season, StyleSpec
from ..store import SEASON_ART
from ..store import digest as _digest
from .prompts import style_specs

# Catalog art shapes: an episode is a still (landscape), a season a poster (portrait).
KIND_ASPECT = {"episode": "landscape", "season": "portrait"}


@dataclass(frozen=True)
class PromptItem:
    kind: str  # "episode" | "season"
    show: str
    season: int
    episode: int  # SEASON_ART for a season
    title: str
    key: str
    styles: tuple[StyleSpec, ...]
    source: Episode | tuple[Season, tuple[Episode, ...]]

    @property
    def label(self) -> str:
        return f"S{self.season:02d}E{self.episode:02d}" if self.kind == "episode" else f"S{self.season:02d} season"

    def entries(self) -> list[tuple[str, int, int, str]]:
        return [(self.show, self.season, self.episode, s.name) for s in self.styles]

    @property
    def summary(self) -> str:
        """What the item's art is drawn from: the episode's summary, or the season's."""
        return self.source.summary if self.kind == "episode" else self.source[0].summary


@dataclass(frozen=True)
class Selection:
    """Which part of the catalog a run covers."""

    season: int | None = None
    episodes: tuple[int, ...] | None = None  # None: all; given: those episodes and no season art
    styles: tuple[str, ...] | None = None  # None: every catalog style
    limit: int | None = None  # at most this many prompt items, in catalog order


CATALOG = "catalog"  # a quality word: as the catalog's own art was made (final for new art)
BUILD_QUALITIES = (CATALOG, *QUALITIES)
# The fields a quality preset sets: what tells a final image from a draft.
QUALITY_MARKS = ("num_inference_steps", "sampler", "schedule_type", "guidance_scale")


@dataclass(frozen=True)
class RenderSettings:
    """How catalog art is rendered: a quality preset, the refiner, and explicit overrides.

    quality "catalog" keeps the art the catalog has: an entry with an image is rendered again only
    if its prompt or engine changed, and then with that image's own settings and seed; new art is
    final. "draft" and "final" ask for that preset, and redo art made otherwise (`redo_plan` says
    what, before a build starts).
    """

    quality: str = CATALOG
    refiner: str = "auto"  # "auto" | "on" | "off"
    overrides: dict[str, Any] = field(default_factory=dict)

    def request(self, kind: str, *, prompt: str, negative_prompt: str, style: str | None, seed: int, size: tuple[int, int] | None = None) -> RenderRequest:
        """The request for art of `kind` at its aspect (or at `size`, when given); the overrides win over both."""
        width, height = size or ASPECTS[KIND_ASPECT[kind]]
        given = {"width": width, "height": height, **self._asked()}
        preset = "final" if self.quality == CATALOG else self.quality
        return RenderRequest(prompt=prompt, negative_prompt=negative_prompt, style=style, seed=seed, **apply_quality(preset, given))

    def for_entry(self, kind: str, held: dict[str, Any] | None, *, prompt: str, negative_prompt: str, style: str | None, seed: int) -> RenderRequest:
        """The request for one catalog entry whose current image was rendered from `held` (a request dict, or None)."""
        if self.quality != CATALOG or held is None:
            return self.request(kind, prompt=prompt, negative_prompt=negative_prompt, style=style, seed=seed)
        return RenderRequest.from_dict(held).replace(prompt=prompt, negative_prompt=negative_prompt, style=style, **self._asked())

    def _asked(self) -> dict[str, Any]:
        return {**({"refiner": self.refiner} if self.refiner != "auto" else {}), **self.overrides}


def describe_build_quality(name: str) -> str:
    """One line for a quality choice, from the presets themselves."""
    if name == CATALOG:
        return f"keep the catalog's art as it was made; new art final ({describe_quality('final')})"
    return describe_quality(name)


def quality_of(request: dict[str, Any]) -> str:
    """Which preset a stored request was made at: "final", "draft", or "custom"."""
    for name in QUALITIES:
        preset = quality_fields(name)
        if all(request.get(k) == preset[k] for k in QUALITY_MARKS):
            return name
    return "custom"


MAX_EPISODE = MAX_NUMBER  # past any show's episode count, long-running ones numbered from 1 included


def parse_episodes(text: str) -> tuple[int, ...]:
    """ "1-3,5" -> (1, 2, 3, 5), with a message that teaches on bad input. Numbers run from 1 to
    MAX_EPISODE: a range past it is refused in a short line, never expanded."""
    numbers: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d{1,12})(?:\s*-\s*(\d{1,12}))?", part)
        if not match:
            raise CatalogError(f"--episodes takes numbers and ranges such as 1-3,5 (got {_short(text)!r})")
        start, end = int(match.group(1)), int(match.group(2) or match.group(1))
        if end < start:
            raise CatalogError(f"--episodes range {part!r} runs backwards; write {end}-{start}")
        if start < 1 or end > MAX_EPISODE:
            raise CatalogError(f"--episodes numbers run from 1 to {MAX_EPISODE} (got {part!r})")
        numbers += range(start, end + 1)
    return tuple(dict.fromkeys(numbers))


def parse_styles(text: str | None) -> tuple[str, ...] | None:
    """ "anime, watercolor" -> ("anime", "watercolor"); None (not given) means every catalog style.
    Given but naming none (",,", " ") is an error, never "all"."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not names:
        raise CatalogError(f"--styles names no style (got {_short(text)!r}); give names such as anime,watercolor, or leave it out for all five")
    return names


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _numbers(values, limit: int = 8) -> str:
    """Up to `limit` numbers, then how many more: an error line stays one line."""
    values = list(values)
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def hashed_seed(*parts: Any) -> int:
    """A seed derived from `parts` (joined with "|"): the same parts, the same seed, on every machine."""
    key = "|".join(str(p) for p in parts)
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % (MAX_SEED + 1)  # 8 hex digits: 32 bits, any seed


def catalog_seed(show: str, season: int, episode: int, style: str) -> int:
    """The default seed of a piece of catalog art: the same (show, season, episode, style), the same image."""
    return hashed_seed(show, season, episode, style)


def offline_rule_modules() -> list[ModuleType]:
    """The offline model's rules behind catalog prompts: `offline` and every rules module it imports."""
    from ..models import offline, offline_actions, offline_reading, offline_rules, offline_season, offline_words

    return [offline, offline_reading, offline_season, offline_rules, offline_actions, offline_words]


@lru_cache(maxsize=None)
def _technique_fingerprint(offline: bool) -> str:
    """What the prompts depend on besides the data: the templates, or for the offline model its rules."""
    from ..prompting import clean, meta_prompt, self_ask

    modules = [clean, meta_prompt, self_ask] + (offline_rule_modules() if offline else [])
    return _digest([inspect.getsource(m) for m in modules])[:16]


def model_identity(model: Any) -> dict[str, Any]:
    """The model as the prompt keys see it: its label, and for a server, where it is."""
    return {"llm": label(model), "server": getattr(model, "openai_api_base", None)}


def plan_prompts(catalog: Catalog, model: Any, selection: Selection) -> list[PromptItem]:
    """The prompt items of `selection`, in catalog order: each season's episodes, then the season.

    With `model=None` (the render stage, which reads prompts the store already holds) keys are empty.
    """
    styles = tuple(style_specs(list(selection.styles) if selection.styles else None))
    style_data = [s.model_dump() for s in styles]
    identity = {**model_identity(model), "technique": _technique_fingerprint(is_offline(model))} if model is not None else None

    def key_of(data: dict[str, Any]) -> str:
        return _digest(data | identity) if identity is not None else ""

    seasons = [selection.season] if selection.season is not None else catalog.season_numbers()
    items: list[PromptItem] = []
    for number in seasons:
        episodes = tuple(catalog.episodes_of(number))
        chosen = [e for e in episodes if selection.episodes is None or e.episode in selection.episodes]
        if selection.episodes is not None and selection.season is not None:
            missing = sorted(set(selection.episodes) - {e.episode for e in episodes})
            if missing:
                raise CatalogError(f"{catalog.show} season {number} has no episode {_numbers(missing)}")
        for e in chosen:
            key = key_of({"kind": "episode", "episode": e.model_dump(), "styles": style_data})
            items.append(PromptItem("episode", catalog.show, number, e.episode, e.title, key, styles, e))
        if selection.episodes is None:
            season = catalog.season(number)
            data = {"kind": "season", "season": season.model_dump(), "episodes": [e.model_dump() for e in episodes], "styles": style_data}
            items.append(PromptItem("season", catalog.show, number, SEASON_ART, season.title, key_of(data), styles, (season, episodes)))
    if selection.episodes is not None and not items:
        raise CatalogError(f"{catalog.show} has no episode {_numbers(selection.episodes)} in the selected season(s)")
    return items[: selection.limit] if selection.limit is not None else items


def image_key(request: RenderRequest, engine_identity: str) -> str:
    """Everything an image depends on: the whole request, what the style makes of it, and the model."""
    return _digest({"request": request.to_dict(), "styled": list(request.styled), "engine": engine_identity})


def image_path(show: str, season: int, episode: int, style: str, key: str) -> str:
    """Where an image lives under the home's images folder; the key in the name makes reruns idempotent."""
    slug = re.sub(r"[^a-z0-9]+", "-", show.lower()).strip("-") or "show"
    name = f"season-{style}" if episode == SEASON_ART else f"e{episode:02d}-{style}"
    return f"{slug}/s{season:02d}/{name}-{key[:12]}.png"
