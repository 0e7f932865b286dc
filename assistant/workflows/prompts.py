"""Catalog prompts: an episode by meta-prompting, a season by self-ask, in imagegen's styles."""

from __future__ import annotations

from typing import Any

from imagegen import styles as style_catalog

from ..catalog import Catalog
from ..prompting.meta_prompt import episode_prompts
from ..prompting.self_ask import season_prompts
from ..schemas import EpisodePrompts, SeasonPrompts, StyleSpec


def style_specs(names: list[str] | None = None) -> list[StyleSpec]:
    """The styles to write for (all catalog styles by default), as the language side sees them."""
    chosen = [style_catalog.get(n) for n in names] if names else list(style_catalog.catalog().values())
    return [StyleSpec(name=s.name, description=s.description) for s in chosen]


def for_episode(catalog: Catalog, season: int, episode: int, model: Any, styles: list[str] | None = None) -> EpisodePrompts:
    return episode_prompts(catalog.episode(season, episode), style_specs(styles), model)


def for_season(catalog: Catalog, season: int, model: Any, styles: list[str] | None = None) -> SeasonPrompts:
    return season_prompts(catalog.season(season), catalog.episodes_of(season), style_specs(styles), model)
