"""The Studio tab: every control of the image engine, laid out as A1111's txt2img, plus a seed hunt
that finalises the picked seed, a fixed-seed A/B of two prompts, and "load from PNG".

Here: the tab's layout and its actions. Controls live in `st.session_state` under
`studio_<RenderRequest field>` (studio_controls), so a PNG's parameters load straight into them;
images render through the shared engine slot, are saved under <home>/studio/ and shown by studio_output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import InvalidRequest, KeyartError, RenderRequest, presets

from . import common
from .studio_controls import DEFAULTS, HIRES, K, OUTPUT, build_request, control_fields, controls, prompt_row
from .studio_output import show


def render() -> None:
    settings = common.settings()
    state = st.session_state
    for name, value in DEFAULTS.items():
        state.setdefault(K + name, value)
    home = Path(settings["home"]).expanduser()
    slot = _engine_slot(settings["engine"])
    # 1. The prompts and the one big button, as at the top of A1111's txt2img.
    action = prompt_row(slot is not None)
    loaded = state.pop("studio:loaded", None)  # what "Load from PNG" did, said once
    if loaded is not None:
        ok, message = loaded
        st.success(message, icon=":material/upload_file:") if ok else st.error(message, icon=":material/error:")
    # 2. Controls on the left, the output on the right.
    left, right = st.columns([5, 6], gap="large")
    with left:
        controls(home, slot)
    with right, st.container(key="studio_output"):
        if action is not None and slot is not None:
            _act(action, slot, home)
        show(state[K + "mode"], slot, home, _finalise)
    st.caption(f"Saved with their parameters in `{home / OUTPUT}`. Load any of them (or an A1111 PNG) under *Load from PNG*.")


# -- the engine ---------------------------------------------------------------------------------


def _engine_slot(name: str):
    """The shared engine slot, with a line saying what it is: previews are labelled as such."""
    try:
        slot = common.engine_slot(name)
    except KeyartError as exc:
        common.show_error(exc)
        return None
    if slot.name == "preview":
        st.info(f"**Preview engine.** {slot.reason[0].upper()}{slot.reason[1:]}.", icon=":material/visibility:")
    else:
        refiner = f", refiner {slot.refiner}" if slot.refiner else ", no refiner"
        st.caption(f":material/memory: SDXL engine: {slot.model}{refiner} ({slot.reason})")
    return slot


def _progress(label: str) -> tuple[Any, Callable[[int, int], None]]:
    """A progress bar and the engine callback that moves it: (steps done, steps in all)."""
    bar = st.progress(0.0, text=f"{label}...")

    def update(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{label}: step {done} of {total}")

    return bar, update


def _engine(slot):
    with st.spinner(f"Loading the {slot.name} engine ({slot.model})..."):
        return slot.get()


# -- actions ------------------------------------------------------------------------------------


def _act(mode: str, slot, home: Path) -> None:
    """Run the clicked action; a bad input shows the engine's message and renders nothing."""
    key = f"studio:result:{mode}"
    try:
        st.session_state[key] = {"Render": _do_render, "Seed hunt": _do_hunt, "A/B": _do_ab}[mode](slot, home)
    except KeyartError as exc:
        st.session_state.pop(key, None)
        common.show_error(exc)


def _record(image, path: Path, caption: str) -> dict[str, Any]:
    return {"path": str(path), "seed": image.seed, "infotext": image.infotext, "caption": caption, "request": image.request.to_dict()}


def _do_render(slot, home: Path) -> dict[str, Any]:
    from imagegen.metadata import save_png

    # 1. Validate everything before loading a model or writing a file.
    _, request = build_request(control_fields, home)
    # 2. Render with a progress bar, then save each image with its parameters.
    engine = _engine(slot)
    bar, progress = _progress("Rendering")
    images = engine.render(request, lineage={"source": "dashboard", "action": "studio render"}, progress=progress)
    bar.empty()
    caption = "Preview card · seed {}" if slot.name == "preview" else "Seed {}"
    records = [_record(im, save_png(im, home / OUTPUT), caption.format(im.seed)) for im in images]
    st.session_state["studio:last_seed"] = images[0].seed
    return {"images": records, "engine": slot.name}


def _do_hunt(slot, home: Path) -> dict[str, Any]:
    from imagegen.grids import plan_seeds, run_grid, save_grid

    # 1. The controls without the hires fix, at the draft preset; the prompt, size, style and seed stay the user's.
    fields, request = build_request(lambda: control_fields(hires=False), home)
    explicit = set(fields) - set(presets.quality_fields("draft"))
    plan = plan_seeds(request, st.session_state[K + "hunt_count"], quality="draft", explicit=explicit)
    # 2. Render every cell under one bar, then save the cells and the grid.
    engine = _engine(slot)
    bar, progress = _progress(f"Hunting {len(plan.cells)} seeds")
    grid, cells = run_grid(engine, plan, lineage={"source": "dashboard", "action": "studio seed hunt"}, progress=progress)
    bar.empty()
    grid_path, paths = save_grid(grid, cells, home / OUTPUT / "hunts")
    st.session_state["studio:last_seed"] = cells[0].seed
    return {
        "grid": str(grid_path),
        "infotext": grid.infotext,
        "title": plan.title,
        "cells": [_record(im, path, f"Seed {im.seed}") for im, path in zip(cells, paths)],
        "engine": slot.name,
        "final": None,
    }


def _finalise(slot, home: Path, seed: int) -> None:
    """Render the picked cell of the hunt again at the final preset (with the hires fix if it is on)."""
    from imagegen.metadata import save_png

    state = st.session_state
    hunt = state.get("studio:result:Seed hunt")
    cell = next((c for c in hunt["cells"] if c["seed"] == seed), None) if hunt else None
    if cell is None:
        st.warning("Pick a seed from the hunt first.", icon=":material/touch_app:")
        return
    try:
        hires = {name: state[K + name] for name in HIRES} if state[K + "hires"] else {}
        request = RenderRequest.from_dict(cell["request"]).replace(**presets.quality_fields("final"), **hires)
        engine = _engine(slot)
        bar, progress = _progress(f"Finalising seed {seed}")
        [image] = engine.render(request, lineage={"source": "dashboard", "action": "studio finalise"}, progress=progress)
        bar.empty()
    except KeyartError as exc:
        hunt["final"] = None
        common.show_error(exc)
        return
    path = save_png(image, home / OUTPUT)
    state["studio:last_seed"] = image.seed
    hunt["final"] = _record(image, path, f"Final · seed {image.seed}")


def _do_ab(slot, home: Path) -> dict[str, Any]:
    from imagegen.metadata import save_png

    # 1. One request, its seeds resolved once, then the same request with prompt B.
    state = st.session_state
    prompt_b = state[K + "ab_prompt"].strip()
    if not prompt_b:
        raise InvalidRequest("write prompt B: the A/B renders both prompts on one seed")
    _, request = build_request(lambda: control_fields() | {"batch_size": 1, "batch_count": 1}, home)
    a = request.with_seed()
    b = a.replace(prompt=prompt_b)
    # 2. Render both under one bar, half each.
    engine = _engine(slot)
    bar, progress = _progress("Rendering A and B")
    images = []
    for k, req in enumerate((a, b)):
        [image] = engine.render(
            req, lineage={"source": "dashboard", "action": "studio A/B", "side": "AB"[k]}, progress=lambda d, t, k=k: progress(k * t + d, 2 * t)
        )
        images.append(image)
    bar.empty()
    folder = home / OUTPUT / "ab"
    state["studio:last_seed"] = a.seed
    return {"images": [_record(im, save_png(im, folder), f"{side} · seed {im.seed}") for side, im in zip("AB", images)], "engine": slot.name}
