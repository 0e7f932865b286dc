"""The Studio tab: every control of the image engine, laid out as A1111's txt2img, plus a seed hunt
that finalises the picked seed, a fixed-seed A/B of two prompts, "load from PNG" and Describe (image to prompt).

Here: the tab's layout; it parses the controls (studio_controls), calls the Studio workflow
(assistant.workflows.studio: render, seed hunt, finalise, A/B, through the shared render queue),
and shows the result (studio_output). Controls live in `st.session_state` under
`studio_<RenderRequest field>`, so a PNG's parameters load straight into them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import KeyartError

from ..workflows import studio as workflow
from ..workflows.studio import OUTPUT
from . import common, jobs
from .studio_controls import DEFAULTS, HIRES, K, build_request, control_fields, controls, prompt_row
from . import studio_animate
from .studio_describe import describe_panel
from .studio_output import show

CANCEL = K + "cancel"  # the Cancel button's key while an action's jobs wait or run
CANCEL_FINAL = K + "cancel_final"  # ... and while a hunt's pick is finalised


def render() -> None:
    settings = common.settings()
    state = st.session_state
    for name, value in DEFAULTS.items():
        state.setdefault(K + name, value)
    home = Path(settings["home"]).expanduser()
    service = _service()
    # 1. The prompts and the one big button, as at the top of A1111's txt2img.
    action = prompt_row(service is not None)
    loaded = state.pop("studio:loaded", None)  # what "Load from PNG" did, said once
    if loaded is not None:
        ok, message = loaded
        st.success(message, icon=":material/upload_file:") if ok else st.error(message, icon=":material/error:")
    # 2. Controls on the left, the output on the right.
    left, right = st.columns([5, 6], gap="large")
    with left:
        if state[K + "mode"] == "Animate":
            studio_animate.panel()
        controls(home, service)
        describe_panel(service)
    with right, st.container(key="studio_output"):
        for key in (CANCEL, CANCEL_FINAL):
            jobs.notice(key)  # a render the last run stopped (Cancel, or a control changed while it ran)
        if action is not None and service is not None:
            _act(action, service, home)
        show(state[K + "mode"], service, home, _finalise)
    st.caption(f"Saved with their parameters in `{home / OUTPUT}`. Load any of them (or an A1111 PNG) under *Load from PNG*.")


def _service():
    """The shared render service, with a line saying what it is: previews are labelled as such."""
    try:
        service = common.current_service()
    except KeyartError as exc:
        common.show_error(exc)
        return None
    if service.name == "preview":
        st.info(f"**Preview engine.** {service.reason[0].upper()}{service.reason[1:]}.", icon=":material/visibility:")
    else:
        refiner = f", refiner {service.refiner}" if service.refiner else ", no refiner"
        st.caption(f":material/memory: SDXL engine: {service.model}{refiner} ({service.reason})")
    return service


# -- actions ------------------------------------------------------------------------------------


def _act(mode: str, service, home: Path) -> None:
    """Run the clicked action through the workflow; a bad input shows its message and renders nothing."""
    state = st.session_state
    key = f"studio:result:{mode}"
    try:
        label, work = _action(mode, service, home)
        result = jobs.run(service, label, work, key=CANCEL)
    except KeyartError as exc:
        state.pop(key, None)
        common.show_error(exc)
        return
    state[key] = result
    state["studio:last_seed"] = result["seed"] if mode == "Animate" else (result["cells"] if mode == "Seed hunt" else result["images"])[0]["seed"]


def _action(mode: str, service, home: Path) -> tuple[str, Any]:
    """What the controls ask `mode` to do: its progress label and the workflow call (validated, not run)."""
    state = st.session_state
    if mode == "Seed hunt":  # the controls without the hires fix: the workflow renders them at the draft preset
        _, request = build_request(lambda: control_fields(hires=False), home)
        count = state[K + "hunt_count"]
        return f"Hunting {count} seeds", partial(workflow.seed_hunt, service, home, request, count, source="dashboard")
    if mode == "Animate":  # the controls' prompt, size, seed, sampling and init image; the animation panel's schedules
        fields, _ = build_request(lambda: control_fields(hires=False) | {"batch_size": 1, "batch_count": 1}, home)
        animation = studio_animate.request(fields)
        return f"Animating {animation.frames} frames", partial(workflow.animate, service, home, animation, source="dashboard")
    _, request = build_request(control_fields, home)
    if mode == "A/B":
        return "Rendering A and B", partial(workflow.ab, service, home, request, state[K + "ab_prompt"], source="dashboard")
    return "Rendering", partial(workflow.render, service, home, request, source="dashboard")


def _finalise(service, home: Path, seed: int) -> None:
    """Render the picked cell of the hunt again at the final preset (with the hires fix if it is on)."""
    state = st.session_state
    hunt = state.get("studio:result:Seed hunt")
    if hunt is None:
        st.warning("Pick a seed from the hunt first.", icon=":material/touch_app:")
        return
    hires = {name: state[K + name] for name in HIRES} if state[K + "hires"] else {}
    work = partial(workflow.finalise, service, home, hunt, seed, hires=hires, source="dashboard")
    try:
        final = jobs.run(service, f"Finalising seed {seed}", work, key=CANCEL_FINAL)
    except KeyartError as exc:
        hunt["final"] = None
        common.show_error(exc)
        return
    state["studio:last_seed"] = final["seed"]
    hunt["final"] = final
