"""New scenes for the chat illustrator: a catalog reference or a free description, made into prompts.

An episode or season starts from the catalog's own prompts and seed when dataprep has made that art
(the store's entry for it in the chosen style); otherwise it is meta-prompted (an episode) or
self-asked (a season) now, on the catalog's seed. A character, a place or free words are
meta-prompted as a one-scene story, on a seed derived from the words, so the same request draws the same image.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagegen import styles as style_catalog

from ..catalog import Catalog
from ..errors import LLMUnavailable
from ..models.offline import OfflineModel
from ..prompting.intents import Intent
from ..prompting.meta_prompt import episode_prompts
from ..references import CatalogIndex, Reference
from ..schemas import Episode, StyleSpec
from ..store import SEASON_ART, stored_art
from .chat_state import ChatState, size_of
from .plan import KIND_ASPECT, catalog_seed, hashed_seed
from .prompts import catalog_prompts

log = logging.getLogger(__name__)

KIND_SIZE = dict(KIND_ASPECT)  # the catalog's shapes (aspect names are size names); anything else starts square


@dataclass
class Drawn:
    """A new scene, what to say about where it came from, and the traces of any model that wrote it."""

    state: ChatState
    said: str
    traces: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # fallbacks to say in the reply


def chat_seed(show: str, words: str) -> int:
    """A free description's seed: the same words, the same image (case and spacing aside)."""
    return hashed_seed(show, "chat", " ".join(words.lower().split()))


class SceneMaker:
    """Turns a draw intent into a fresh ChatState with a prompt for every style."""

    def __init__(self, catalog: Catalog, index: CatalogIndex, styles: list[StyleSpec], home: Path):
        self.catalog, self.index, self.styles, self.home = catalog, index, styles, home

    def draw(self, intent: Intent, current: ChatState, model: Any) -> Drawn:
        # 1. The style: the one asked for, else the current one, else the first catalog style.
        style = style_catalog.get(intent.style).name if intent.style.strip() else current.style or self.styles[0].name
        # 2. What the reference names; words that name nothing in the catalog are a free description.
        ref = self.index.find(intent.reference, season=current.season) if intent.reference.strip() else None
        description = intent.description.strip() or (intent.reference.strip() if ref is None else "")
        # 3. The scene's prompts, seed and size, from the store or written now.
        if ref is not None and ref.kind in ("episode", "season"):
            drawn = self._catalog_scene(ref, style, model)
        else:
            drawn = self._described_scene(ref, description, model)
        drawn.state.style = style
        drawn.state.description = description
        return drawn

    # -- episodes and seasons ---------------------------------------------------------------

    def _catalog_scene(self, ref: Reference, style: str, model: Any) -> Drawn:
        number = ref.episode if ref.kind == "episode" else SEASON_ART
        state = ChatState(
            kind=ref.kind, show=self.catalog.show, season=ref.season, episode=ref.episode, title=ref.name,
            reference=ref.label, size=KIND_SIZE[ref.kind], seed=catalog_seed(self.catalog.show, ref.season, number, style),
        )
        stored = self._stored(ref.season, number, style)
        if stored is not None:
            state.prompts, seed, size = stored
            state.source = "the catalog's prompt" + (" and seed" if seed is not None else "") + ", made by dataprep"
            state.seed = seed if seed is not None else state.seed
            state.size = size or state.size
            return Drawn(state, state.source)
        episode = ref.episode if ref.kind == "episode" else None
        result, notes = self._written(lambda m: catalog_prompts(self.catalog, ref.season, episode, self.styles, m), model)
        state.prompts = {p.style: {"prompt": p.prompt, "negative_prompt": p.negative_prompt} for p in result.prompts}
        state.source = f"{result.trace.technique} by {result.trace.label}; the catalog's seed"
        return Drawn(state, state.source, [result.trace.model_dump(mode="json")], notes)

    def _stored(self, season: int, number: int, style: str) -> tuple[dict[str, dict[str, str]], int | None, str | None] | None:
        """(prompts by style, the image's seed, its size) of the art dataprep made, when it has."""
        art = stored_art(self.home, self.catalog.show, season, number, style)
        if art is None:
            return None
        prompts = {p["style"]: {"prompt": p["prompt"], "negative_prompt": p.get("negative_prompt", "")} for p in art.result["prompts"]}
        if art.image is None:
            return prompts, None, None
        request = json.loads(art.image["request"])
        return prompts, int(art.image["seed"]), size_of(request.get("width", 0), request.get("height", 0), "")

    # -- characters, places and free words -----------------------------------------------------

    def _described_scene(self, ref: Reference | None, description: str, model: Any) -> Drawn:
        """A one-scene story meta-prompted like an episode: the user's words, or the catalog's sentence for a name."""
        kind, season, number, title = (ref.kind if ref else "free"), None, None, ""
        if ref is not None:
            title = ref.name
            found = self.index.key_sentence(ref.name)
            if found is not None:
                season, number = found[0].season, found[0].episode
            own_words = _beyond(description, ref)
            # A name alone draws the catalog's moment with them; more words are the user's scene, the name dressed.
            story = _dressed(description, ref, self.index.person(ref.name)) if own_words else (found[1] if found else self.index.person(ref.name))
        else:
            story = description
        scene = Episode(show=self.catalog.show, season=season or 0, episode=number or 0, title=title, summary=story)
        result, notes = self._written(lambda m: episode_prompts(scene, self.styles, m), model)
        state = ChatState(
            kind=kind, show=self.catalog.show, season=season, episode=number, title=title,
            reference=ref.label if ref else "", size="square", seed=chat_seed(self.catalog.show, description or title),
            prompts={p.style: {"prompt": p.prompt, "negative_prompt": p.negative_prompt} for p in result.prompts},
            source=f"{result.trace.technique} by {result.trace.label}",
        )
        where = f"; their moment in S{season:02d}E{number:02d}" if ref is not None and number and not _beyond(description, ref) else ""
        return Drawn(state, f"{state.source}{where}", [result.trace.model_dump(mode="json")], notes)

    def _written(self, write, model: Any) -> tuple[Any, list[str]]:
        """`write(model)`; when the model cannot be reached, `write(offline)` and a note that says so."""
        try:
            return write(model), []
        except LLMUnavailable as exc:
            log.warning("prompts fell back to the offline rules: %s", exc)
            return write(OfflineModel()), [f"the prompts were written by the offline rules: the model could not be reached ({exc})"]


def _beyond(description: str, ref: Reference) -> bool:
    """Whether the words say more than the name ("Mara Quill on the causeway", not just "Mara Quill")."""
    rest = description.lower().replace(ref.name.lower(), " ")
    words = [w for w in rest.replace(",", " ").split() if w not in ("the", "a", "an", "of", "me", "please")]
    return len(words) > 0 and description.lower() != ref.name.lower()


def _dressed(description: str, ref: Reference, person: str) -> str:
    """The user's words with the name given its role and look from the catalog, once."""
    at = description.lower().find(ref.name.lower())
    if at < 0 or ref.kind != "character":
        return f"{person}: {description}" if at < 0 else description
    return description[:at] + person + description[at + len(ref.name) :]
