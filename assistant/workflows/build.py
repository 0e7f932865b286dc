"""Building the catalog: the one workflow behind `dataprep.py prompts|render|run` and the dashboard's Build.

`prepare_build` checks everything that can fail with a message (the selection, the settings, the
engine) and plans the items, loading nothing heavy; `Build.redo` says which existing art the
build would replace, so a front end can ask first; `Build.run` does the work, resumably, with
progress and a cooperative stop.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..store import DB_NAME, HOME_ENV, Store, resolve_home
from . import stages
from .plan import CATALOG, PromptItem, RenderSettings, Selection, catalog_seed, image_key, plan_prompts, quality_of
from .service import RenderService

COMMANDS = ("prompts", "render", "run")


@dataclass
class Build:
    """A planned build of part of the catalog; nothing has run yet."""

    command: str
    catalog: Catalog
    items: list[PromptItem]
    store: Store
    model: Any | None  # None for "render": the prompts come from the store
    service: RenderService | None  # None for "prompts"
    settings: RenderSettings | None
    force: bool = False

    @property
    def images(self) -> int:
        return sum(len(item.styles) for item in self.items) if self.command != "prompts" else 0

    def redo(self) -> Counter:
        """Existing images this build would replace with others, by their quality.

        `Counter({"final": 80})` for a draft build over a final catalog; empty with quality
        "catalog" (which keeps what is there). Judged on the prompts the store holds now.
        """
        if self.settings is None or self.service is None or (self.settings.quality == CATALOG and not self.force):
            return Counter()  # "catalog" re-renders an entry only for a new prompt or engine, with its own settings
        redone: Counter = Counter()
        for item in self.items:
            for entry in item.entries():
                held = self.store.entry(*entry)
                stored = stages.held_request(self.store, entry)
                if held is None or stored is None:
                    continue
                result = self.store.prompt(held.prompt_key) if held.prompt_key else None
                given = next((p for p in (result or {}).get("prompts", []) if p["style"] == entry[3]), None)
                if given is None:
                    continue
                request = self.settings.for_entry(
                    item.kind, stored, prompt=given["prompt"], negative_prompt=given["negative_prompt"], style=entry[3], seed=catalog_seed(*entry)
                )
                if self.force or image_key(request, self.service.identity(request.refiner)) != held.image_key:
                    redone[quality_of(stored)] += 1
        return redone

    def redo_message(self) -> str | None:
        """ "80 images are final; this build redoes them as drafts." or None when nothing is replaced."""
        redone = self.redo()
        if not redone:
            return None
        have = ", ".join(f"{n} image{'s' * (n != 1)} {'are' if n != 1 else 'is'} {quality}" for quality, n in redone.most_common())
        wanted = {"draft": "as drafts", "final": "at final quality"}.get(self.settings.quality, "with the settings asked for")
        return f"{have}; this build redoes {'them' if sum(redone.values()) != 1 else 'it'} {wanted}"

    def run(self, *, progress: stages.Progress | None = None, stop: threading.Event | None = None) -> stages.Report:
        """The build itself, holding the home's lock; `stop` ends it after the item in hand."""
        with self.store.lock():  # a second build of the same home is told, not interleaved
            if self.command == "prompts":
                return stages.prompts_stage(self.items, self.store, self.model, force=self.force, progress=progress, stop=stop)
            if self.command == "render":
                return stages.render_stage(self.items, self.store, self.service, self.settings, force=self.force, progress=progress, stop=stop)
            return stages.run_stage(self.items, self.store, self.model, self.service, self.settings, force=self.force, progress=progress, stop=stop)


def prepare_build(
    catalog: Catalog, store: Store | str | Path, *, command: str = "run", selection: Selection | None = None, model: Any = None,
    service: RenderService | None = None, settings: RenderSettings | None = None, force: bool = False,
) -> Build:  # fmt: skip
    """Plan a build: the items of `selection`, the model with its replies cached in the store.

    `store` is the catalog's Store, or its home folder (opened only once every check passed, so
    bad input leaves no folder behind). `model` is needed unless the command is "render";
    `service` unless it is "prompts". Settings default to quality "catalog": what is there stays,
    what is missing is made final.
    """
    from ..errors import CatalogError

    # 1. What the command needs, checked before anything runs.
    if command not in COMMANDS:
        raise CatalogError(f"unknown build command {command!r}; choose one of: {', '.join(COMMANDS)}")
    if command != "render" and model is None:
        raise CatalogError(f"`{command}` writes prompts and needs a language model")
    if command != "prompts" and service is None:
        raise CatalogError(f"`{command}` renders images and needs an image engine")
    settings = settings or RenderSettings(quality=CATALOG)
    if command != "prompts":  # a request with these settings must be valid: fail now, not on the first image
        for kind in ("episode", "season"):
            settings.request(kind, prompt="check", negative_prompt="", style=None, seed=0)
    # 2. The items, and the language model's replies cached in the catalog (--force asks again).
    # "render" only reads prompts already written: it opens an existing catalog and creates none.
    items = plan_prompts(catalog, model if command != "render" else None, selection or Selection())
    if not isinstance(store, Store):
        home = resolve_home(store)
        if command == "render" and not (home / DB_NAME).is_file() and not home.is_file():  # a file: Store says so
            raise CatalogError(
                f"no prompts to render in {home}: it has no catalog yet; write them first with `python dataprep.py prompts` "
                f"(or `python dataprep.py run` for prompts and images), or point --home / {HOME_ENV} at a catalog"
            )
        store = Store(home, create=command != "render")
    if model is not None and command != "render":
        from ..llm_cache import StoreCache, attach

        model = attach(model, StoreCache(store, read=not force))
    return Build(command, catalog, items, store, model if command != "render" else None, service if command != "prompts" else None, settings, force)
