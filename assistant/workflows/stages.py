"""The catalog stages: write prompts, render images, or both at once (`run`), resumably.

Each prompt item and each image is one transaction in the store, so a crash or Ctrl-C loses at
most the item in flight, and the next run picks up there. `run` writes prompts on a worker thread
while the main thread renders, so the GPU starts on the first episode at once.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from imagegen import KeyartError

from ..errors import LLMUnavailable
from ..store import Store
from .plan import PromptItem, RenderSettings, catalog_seed, image_key
from .prompts import write_prompts_for
from .renders import Render, Renders
from .service import RenderService

log = logging.getLogger(__name__)

POLL_S = 0.1  # while prompts are written, how often finished images are looked for
GIVE_UP_AFTER = 3  # language-model failures in a row that mean the server is down, not one bad item


class Progress(Protocol):
    """What a front end is told: a stage starts with its total, then one step per item."""

    def stage(self, name: str, total: int) -> None: ...

    def step(self, name: str, outcome: str, label: str, detail: str = "") -> None: ...


class Silent:
    def stage(self, name: str, total: int) -> None:
        pass

    def step(self, name: str, outcome: str, label: str, detail: str = "") -> None:
        pass


@dataclass
class Tally:
    done: int = 0  # made in this run
    skipped: int = 0  # already in the store
    failed: int = 0
    seconds: float = 0.0
    fallbacks: int = 0  # prompts the offline rules filled after the model's reply stayed unusable


@dataclass
class Report:
    prompts: Tally = field(default_factory=Tally)
    images: Tally = field(default_factory=Tally)
    cache_hits: int = 0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return self.prompts.failed + self.images.failed


# -- one item each ------------------------------------------------------------------------------


def write_prompts(item: PromptItem, model: Any) -> dict[str, Any]:
    """The item's prompts in every style, by meta-prompting (episode) or self-ask (season), as JSON data."""
    return write_prompts_for(item.kind, item.source, item.styles, model).model_dump(mode="json")


def ensure_prompts(item: PromptItem, store: Store, model: Any, *, force: bool, report: Report, progress: Progress) -> dict[str, Any] | None:
    """The item's prompts from the store, or written now; None if writing failed (recorded)."""
    stored = None if force else store.prompt(item.key)
    if stored is not None:
        store.link_prompts(item.key, item.entries())
        report.prompts.skipped += 1
        progress.step("prompts", "skipped", item.label)
        return stored
    start = time.perf_counter()
    try:
        result = write_prompts(item, model)
    except KeyartError as exc:
        report.prompts.failed += 1
        store.fail(item.entries(), stage="prompts", error=str(exc))
        progress.step("prompts", "failed", item.label, str(exc))
        raise
    report.prompts.seconds += time.perf_counter() - start
    store.save_prompts(item.key, kind=item.kind, show=item.show, season=item.season, episode=item.episode, llm=result["trace"]["model"], result=result, entries=item.entries())
    report.prompts.done += 1
    if result["trace"].get("fallback"):
        report.prompts.fallbacks += 1
    progress.step("prompts", "done", item.label, "fell back to offline" if result["trace"].get("fallback") else "")
    return result


def render_item(
    item: PromptItem, prompt_key: str, result: dict[str, Any], store: Store, slot: RenderService, settings: RenderSettings, *, force: bool, report: Report,
    progress: Progress, styles: list[str] | None = None, renders: Renders | None = None,
) -> None:  # fmt: skip
    """Render the item's image in each style (or in `styles`) that is not in the store yet.

    With `renders`, the images join its window of jobs in flight (and are written as they finish);
    without, each is rendered and written before this returns.
    """
    own = renders is None
    renders = renders or Renders(store, slot, report, progress)
    by_style = {p["style"]: p for p in result["prompts"]}
    for style in item.styles:
        if styles is not None and style.name not in styles:
            continue
        entry = (item.show, item.season, item.episode, style.name)
        label = f"{item.label} {style.name}"
        # 1. The request and its key: the same inputs give the same key, and the same image.
        given = by_style[style.name]
        request = settings.for_entry(
            item.kind, held_request(store, entry), prompt=given["prompt"], negative_prompt=given["negative_prompt"], style=style.name, seed=catalog_seed(*entry)
        )
        key = image_key(request, slot.identity(request.refiner))
        if not force and store.image_file(key) is not None:
            store.link_image(entry, key)
            report.images.skipped += 1
            progress.step("render", "skipped", label)
            continue
        # 2. Submitted now, written when it finishes (in Renders.finish).
        renders.add(Render(entry, label, request, key, prompt_key, _item_lineage(item, prompt_key, result, style.name, key)))
    if own:
        renders.drain()


def held_request(store: Store, entry: tuple[str, int, int, str]) -> dict[str, Any] | None:
    """The request the entry's current image was rendered from, if it has one whose file exists."""
    held = store.entry(*entry)
    if held is None or not held.image_key or store.image_file(held.image_key) is None:
        return None
    return json.loads(store.image(held.image_key)["request"])


def _item_lineage(item: PromptItem, prompt_key: str, result: dict[str, Any], style: str, key: str) -> dict[str, Any]:
    episode = item.episode if item.kind == "episode" else None
    return lineage(show=item.show, season=item.season, episode=episode, title=item.title, kind=item.kind, style=style, trace=result["trace"], prompt_key=prompt_key, image_key=key)


def lineage(*, show: str, season: int, episode: int | None, title: str, kind: str, style: str, trace: dict[str, Any], prompt_key: str | None, image_key: str) -> dict[str, Any]:
    """The keyart lineage of a piece of catalog art: what it is, and the language model's trace that wrote its prompt."""
    return {
        "show": show,
        "season": season,
        "episode": episode,
        "title": title,
        "kind": kind,
        "style": style,
        "technique": trace.get("technique"),
        "llm": trace.get("model"),
        "fallback": trace.get("fallback"),
        "trace": trace,
        "prompt_key": prompt_key,
        "image_key": image_key,
    }


# -- the stages ---------------------------------------------------------------------------------


def prompts_stage(
    items: list[PromptItem], store: Store, model: Any, *, force: bool = False, progress: Progress | None = None, stop: threading.Event | None = None
) -> Report:
    """Write the prompts of every item (the language model only). Setting `stop` ends it after the item in hand."""
    progress, report = progress or Silent(), Report()
    store.plan_items(items)
    progress.stage("prompts", len(items))
    try:
        _each_prompt(items, store, model, force=force, report=report, progress=progress, then=None, stop=stop)
    except KeyboardInterrupt:
        report.interrupted = True
    report.interrupted |= bool(stop is not None and stop.is_set())
    return report


def render_stage(
    items: list[PromptItem], store: Store, slot: RenderService, settings: RenderSettings, *, force: bool = False, progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Report:  # fmt: skip
    """Render every image whose prompts the prompts stage wrote (the engine only); the rest wait.

    The prompts are found through the catalog's entries, so this stage needs no language model.
    """
    progress, report = progress or Silent(), Report()
    store.plan_items(items)
    # 1. Each item's prompts by the key its entries hold (normally one key for all its styles).
    work: list[tuple[PromptItem, str, dict[str, Any], list[str]]] = []
    for item in items:
        by_key: dict[str, list[str]] = {}
        for entry in item.entries():
            held = store.entry(*entry)
            if held is not None and held.prompt_key:
                by_key.setdefault(held.prompt_key, []).append(entry[3])
        work += [(item, key, result, styles) for key, styles in by_key.items() if (result := store.prompt(key)) is not None]
    total = sum(len(styles) for *_, styles in work)
    waiting = sum(len(item.styles) for item in items) - total
    if waiting:
        log.warning("%d image(s) wait for their prompts; run `dataprep.py prompts` (or `run`) first", waiting)
    # 2. Render what is not in the store yet.
    progress.stage("render", total)
    renders = Renders(store, slot, report, progress)
    try:
        for item, key, result, styles in work:
            if stop is not None and stop.is_set():
                report.interrupted = True
                break
            render_item(item, key, result, store, slot, settings, force=force, report=report, progress=progress, styles=styles, renders=renders)
        renders.drain()  # a stop lets the images in flight finish: they are paid for
    except KeyboardInterrupt:
        report.interrupted = True
    return report


def run_stage(
    items: list[PromptItem], store: Store, model: Any, slot: RenderService, settings: RenderSettings, *, force: bool = False, progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Report:  # fmt: skip
    """Prompts on a worker thread, images on this one as soon as each item's prompts are in.

    Setting `stop` (a front end's Stop button) ends both after the item in hand, as Ctrl-C does.
    """
    progress, report = progress or Silent(), Report()
    store.plan_items(items)
    progress.stage("prompts", len(items))
    progress.stage("render", sum(len(item.styles) for item in items))
    ready: queue.Queue = queue.Queue()
    stop, problems = stop or threading.Event(), []

    def writer() -> None:
        try:
            _each_prompt(items, store, model, force=force, report=report, progress=progress, then=ready.put, stop=stop)
        except BaseException as exc:  # handed to the main thread, which raises it
            problems.append(exc)
        finally:
            ready.put(None)
            store.close()

    thread = threading.Thread(target=writer, name="keyart-prompts", daemon=True)
    thread.start()
    renders = Renders(store, slot, report, progress)
    try:
        while (got := _next(ready, renders)) is not None:
            if stop.is_set():
                report.interrupted = True
                break
            item, result = got
            render_item(item, item.key, result, store, slot, settings, force=force, report=report, progress=progress, renders=renders)
        renders.drain()
    except KeyboardInterrupt:
        # The worker stops after its item; it is a daemon, so a hung request cannot keep us here.
        stop.set()
        report.interrupted = True
        thread.join(timeout=2)
        return report
    thread.join()
    if problems:
        raise problems[0]
    report.interrupted |= stop.is_set()
    return report


def _next(ready: queue.Queue, renders: Renders) -> Any:
    """The next item whose prompts are in; images that finish meanwhile are written at once."""
    while True:
        try:
            return ready.get(timeout=POLL_S)
        except queue.Empty:
            renders.collect()


def _each_prompt(items, store, model, *, force, report, progress, then, stop: threading.Event | None = None) -> None:
    """Prompts for each item; `then(item, result)` hands finished ones on. Stops when the model is down."""
    in_a_row = 0
    for item in items:
        if stop is not None and stop.is_set():
            return
        try:
            result = ensure_prompts(item, store, model, force=force, report=report, progress=progress)
        except LLMUnavailable as exc:
            in_a_row += 1
            if in_a_row >= GIVE_UP_AFTER:
                raise LLMUnavailable(f"stopped after {in_a_row} items in a row failed; the last: {exc}") from exc
            continue
        except KeyartError:
            in_a_row = 0
            continue
        in_a_row = 0
        if then is not None:
            then((item, result))
