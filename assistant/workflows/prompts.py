"""Catalog prompts: an episode by meta-prompting, a season by self-ask, in imagegen's styles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imagegen import styles as style_catalog

from ..catalog import Catalog
from ..prompting.meta_prompt import episode_prompts
from ..prompting.self_ask import season_prompts
from ..schemas import Episode, EpisodePrompts, Season, SeasonPrompts, StyleSpec


def style_specs(names: list[str] | None = None) -> list[StyleSpec]:
    """The styles to write for (all catalog styles by default), as the language side sees them."""
    chosen = [style_catalog.get(n) for n in names] if names else list(style_catalog.catalog().values())
    return [StyleSpec(name=s.name, description=s.description) for s in chosen]


def write_prompts_for(kind: str, source: Episode | tuple[Season, Sequence[Episode]], styles: Sequence[StyleSpec], model: Any) -> EpisodePrompts | SeasonPrompts:
    """An episode's prompts by meta-prompting, or a season's (`source`: the season and its episodes) by self-ask."""
    if kind == "episode":
        return episode_prompts(source, list(styles), model)
    season, episodes = source
    return season_prompts(season, list(episodes), list(styles), model)


def catalog_prompts(catalog: Catalog, season: int, episode: int | None, styles: Sequence[StyleSpec], model: Any) -> EpisodePrompts | SeasonPrompts:
    """The prompts of a catalog episode, or of the season when `episode` is None."""
    if episode is not None:
        return write_prompts_for("episode", catalog.episode(season, episode), styles, model)
    return write_prompts_for("season", (catalog.season(season), catalog.episodes_of(season)), styles, model)


def for_episode(catalog: Catalog, season: int, episode: int, model: Any, styles: list[str] | None = None) -> EpisodePrompts:
    return catalog_prompts(catalog, season, episode, style_specs(styles), model)


def for_season(catalog: Catalog, season: int, model: Any, styles: list[str] | None = None) -> SeasonPrompts:
    return catalog_prompts(catalog, season, None, style_specs(styles), model)
