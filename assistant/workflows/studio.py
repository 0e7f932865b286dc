"""The Studio's actions for every front end: render, seed hunt, finalise a hunt's pick, A/B of two
prompts, an animation, and describe (an image to a prompt). Each submits its jobs to the render queue through a RenderService, writes the PNGs (with
their parameters and lineage) under `home / "studio"`, and returns plain dicts.

Every action takes the same keywords, so a front end can wrap any of them alike: `owner` (whose jobs
they are), `progress(done, total)` (steps across the action's jobs, called from the queue's worker
thread), `stop` (a threading.Event: setting it cancels the jobs) and `on_job(job)` (called with each
queued Job right after it is submitted, to show its place in the queue). Errors are KeyartErrors:
the request's own, QueueFull, or `Cancelled` when `stop` was set.

An image record is `{"path", "seed", "infotext", "caption", "request"}` (the request as rendered, a
dict); the results are JSON-ready, so a front end can keep them in its state or send them on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from imagegen import InvalidRequest, RenderedImage, RenderRequest, presets

OUTPUT = "studio"  # <home>/studio/: renders and finals
HUNTS = "hunts"  # <home>/studio/hunts/: a seed hunt's draft cells and grid
ANIMATIONS = "animations"  # <home>/studio/animations/<time>-<seed>/: an animation's frames, MP4, GIF and sidecar
AB = "ab"  # <home>/studio/ab/: A/B pairs
Progress = Callable[[int, int], None]
OnJob = Callable[[Any], None]


# -- the actions --------------------------------------------------------------------------------


def animate(
    service, home: str | Path, request: Any, *, owner: str = "", source: str = "studio", progress: Progress | None = None,
    stop: threading.Event | None = None, on_job: OnJob | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Render an animation (imagegen.animation.AnimationRequest) as one queue job into home/studio/animations.

    Returns {"video", "gif", "sidecar", "frames", "fps", "seed", "engine"}; progress counts frames.
    """
    import random
    import time

    from imagegen.request import MAX_SEED

    if request.seed < 0:
        request = request.replace(seed=random.randint(0, MAX_SEED))
    folder = Path(home) / OUTPUT / ANIMATIONS / f"{time.strftime('%Y%m%d-%H%M%S')}-{request.seed}"
    made = service.animate(request, folder, owner=owner, lineage={"source": source, "action": "studio animate"}, progress=progress, stop=stop, on_job=on_job)
    return {
        "video": str(made.video), "gif": str(made.gif), "sidecar": str(made.sidecar), "frames": made.request.frames, "fps": made.request.fps,
        "seed": made.request.seed, "engine": service.name,
    }  # fmt: skip


def describe(service, image: Any) -> dict[str, Any]:
    """An SDXL prompt for `image` (a path or a PIL image) by the service's describe models, else the
    labelled offline one: {"prompt", "caption", "method", "offline", "trace"}."""
    return service.describer().describe(image).to_dict()


def render(
    service, home: str | Path, request: RenderRequest, *, owner: str = "", source: str = "studio", progress: Progress | None = None,
    stop: threading.Event | None = None, on_job: OnJob | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Render `request` (all its batches) and save each image under home/studio.

    Returns {"images": [record, ...], "engine": the engine's name}.
    """
    # 1. One job for the whole request: the engine runs its batches in turn.
    lineage = {"source": source, "action": "studio render"}
    [images] = _render_all(service, [(request, lineage)], owner=owner, progress=progress, stop=stop, on_job=on_job)
    # 2. Save each image with its parameters; previews say so in their caption.
    caption = "Preview card · seed {}" if service.name == "preview" else "Seed {}"
    folder = Path(home) / OUTPUT
    return {"images": [_save(image, folder, caption.format(image.seed)) for image in images], "engine": service.name}


def seed_hunt(
    service, home: str | Path, request: RenderRequest, count: int, *, explicit: Collection[str] | None = None, owner: str = "",
    source: str = "studio", progress: Progress | None = None, stop: threading.Event | None = None, on_job: OnJob | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Render `request` on `count` consecutive seeds at the draft preset, and compose the grid.

    `explicit` names the fields that win over the preset (default: every field but the preset's,
    so the prompt, size, style and seed stay the request's and steps, sampler, CFG turn draft).
    The cells are queued all at once, so the queue batches them where the engine can.
    Returns {"grid": its path, "infotext", "title", "cells": [record, ...], "engine", "final": None}.
    """
    from imagegen.grids import plan_seeds, run_grid, save_grid
    from imagegen.request import DEFAULTS

    # 1. Plan the cells; a random seed is resolved once, so the hunt's seeds are consecutive.
    if explicit is None:
        explicit = set(DEFAULTS) - set(presets.quality_fields("draft"))
    plan = plan_seeds(request, count, quality="draft", explicit=explicit)
    lineage = {"source": source, "action": "studio seed hunt"}
    # 2. Queue every cell at once, each with the grid cell it fills (the lineage run_grid gives a cell).
    cells = [(r, {**lineage, "grid": _where(plan, i, j)}) for i, j, r in plan.cells]
    rendered = _render_all(service, cells, owner=owner, progress=progress, stop=stop, on_job=on_job)
    # 3. Compose the grid from the finished cells, then save the cells and the grid.
    grid, images = run_grid(_Finished(plan, rendered), plan, lineage=lineage)
    grid_path, paths = save_grid(grid, images, Path(home) / OUTPUT / HUNTS)
    return {
        "grid": str(grid_path),
        "infotext": grid.infotext,
        "title": plan.title,
        "cells": [_record(image, path, f"Seed {image.seed}") for image, path in zip(images, paths)],
        "engine": service.name,
        "final": None,
    }


def finalise(
    service, home: str | Path, hunt: dict[str, Any], seed: int, *, hires: dict[str, Any] | None = None, owner: str = "",
    source: str = "studio", progress: Progress | None = None, stop: threading.Event | None = None, on_job: OnJob | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Render the cell of `hunt` (a seed_hunt result) on `seed` again at the final preset, and save it
    under home/studio. `hires`: the hires fix's fields (hr_scale, ...) to add, if it is wanted.

    Returns the final image's record.
    """
    # 1. The picked cell's own request (its seed, prompt, size) at the final preset.
    cell = next((c for c in hunt.get("cells", []) if c["seed"] == seed), None)
    if cell is None:
        seeds = ", ".join(str(c["seed"]) for c in hunt.get("cells", []))
        raise InvalidRequest(f"seed {seed} is not one of the hunt's cells ({seeds or 'none'}); pick a seed from the hunt first")
    request = RenderRequest.from_dict(cell["request"]).replace(**presets.quality_fields("final"), **(hires or {}))
    # 2. Render and save it beside the renders.
    lineage = {"source": source, "action": "studio finalise"}
    [[image]] = _render_all(service, [(request, lineage)], owner=owner, progress=progress, stop=stop, on_job=on_job)
    return _save(image, Path(home) / OUTPUT, f"Final · seed {image.seed}")


def ab(
    service, home: str | Path, request: RenderRequest, prompt_b: str, *, owner: str = "", source: str = "studio",
    progress: Progress | None = None, stop: threading.Event | None = None, on_job: OnJob | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Render `request` (one image) and the same request with `prompt_b`, on one seed: only the words differ.

    Returns {"images": [record A, record B], "engine"}; the PNGs go to home/studio/ab.
    """
    # 1. One image, its seed resolved once, then the same request with prompt B.
    prompt_b = prompt_b.strip()
    if not prompt_b:
        raise InvalidRequest("write prompt B: the A/B renders both prompts on one seed")
    a = request.replace(batch_size=1, batch_count=1).with_seed()
    b = a.replace(prompt=prompt_b)
    # 2. Both queued at once: they are compatible, so the queue can render them in one batch.
    lineage = {"source": source, "action": "studio A/B"}
    pairs = [(req, {**lineage, "side": side}) for side, req in zip("AB", (a, b))]
    rendered = _render_all(service, pairs, owner=owner, progress=progress, stop=stop, on_job=on_job)
    folder = Path(home) / OUTPUT / AB
    return {"images": [_save(image, folder, f"{side} · seed {image.seed}") for side, [image] in zip("AB", rendered)], "engine": service.name}


# -- queueing -----------------------------------------------------------------------------------


def _render_all(
    service, jobs: Sequence[tuple[RenderRequest, dict[str, Any]]], *, owner: str, progress: Progress | None,
    stop: threading.Event | None, on_job: OnJob | None,
) -> list[list[RenderedImage]]:  # fmt: skip
    """Queue every (request, lineage) at once, then wait for all: each request's images, in order.

    `progress` adds up the steps of all the jobs (a job not yet started counts its sampling steps).
    If anything goes wrong (a failed job, `stop`, QueueFull part way), the jobs still pending are
    cancelled, so nothing is left rendering for nobody.
    """
    # 1. Each job's (done, total), summed into the one progress the caller sees.
    steps = [(0, request.num_inference_steps) for request, _ in jobs]
    lock = threading.Lock()

    def step(k: int, done: int, total: int) -> None:
        with lock:
            steps[k] = (done, total)
            summed = (sum(d for d, _ in steps), sum(t for _, t in steps))
        progress(*summed)

    # 2. Submit all, telling the caller of each; then wait for each in turn.
    submitted = []
    try:
        for k, (request, lineage) in enumerate(jobs):
            tell = (lambda d, t, k=k: step(k, d, t)) if progress is not None else None
            job = service.submit(request, owner=owner, lineage=lineage, progress=tell)
            submitted.append(job)
            if on_job is not None:
                on_job(job)
        return [service.wait(job, stop=stop) for job in submitted]
    finally:
        for job in submitted:
            if not job.is_final:  # after a failure or a stop: the rest are no one's now
                service.cancel(job.id, owner)


class _Finished:
    """The engine `run_grid` asks for, over cells the queue has already rendered: the k-th render()
    call gets the k-th cell's images (plan.cells order, which is run_grid's)."""

    def __init__(self, plan, rendered: list[list[RenderedImage]]):
        self._cells = list(zip((r for _, _, r in plan.cells), rendered))

    def render(self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None) -> list[RenderedImage]:
        want, images = self._cells.pop(0)
        assert request == want, "run_grid asked for the cells in another order than plan.cells"
        return images


def _where(plan, i: int, j: int) -> dict[str, Any]:
    """The grid cell a request fills, as run_grid records it in each cell's lineage."""
    return {"kind": plan.kind, "row": i, "column": j, "row_label": plan.row_labels[i], "column_label": plan.column_labels[j]}


# -- records ------------------------------------------------------------------------------------


def _save(image: RenderedImage, folder: Path, caption: str) -> dict[str, Any]:
    from imagegen.png_files import save_png

    return _record(image, save_png(image, folder), caption)


def _record(image: RenderedImage, path: Path, caption: str) -> dict[str, Any]:
    return {"path": str(path), "seed": image.seed, "infotext": image.infotext, "caption": caption, "request": image.request.to_dict()}
