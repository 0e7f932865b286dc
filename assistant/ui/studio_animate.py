"""The Studio's Animate mode: the prompt box takes keyframed prompts (`0: ... | 24: ...`), these
controls the frames, fps, motion schedules, strength, seed behaviour and colour coherence, and the
output shows the loop (imagegen.animation's request, rendered by the Studio workflow on the queue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import KeyartError
from imagegen.animation import COHERENCE, MOTION_KEYS, PROMPT_MODES, SEED_BEHAVIOURS, AnimationRequest

A = "studio_anim_"  # widget keys
DEFAULTS: dict[str, Any] = {
    "frames": 24, "fps": 12, "zoom": "0:(1.0), 23:(1.04)", "angle": "0", "translation_x": "0", "translation_y": "0",
    "strength": "0.45", "seed_behaviour": "iter", "colour_coherence": "lab", "prompt_mode": "switch",
}  # fmt: skip
MOTION_LABELS = {"zoom": "Zoom (1 is still)", "angle": "Angle (degrees a frame)", "translation_x": "Translation x (pixels a frame)", "translation_y": "Translation y (pixels a frame)"}


def panel() -> None:
    """The animation's own controls, shown in Animate mode above the engine's."""
    state = st.session_state
    for name, value in DEFAULTS.items():
        state.setdefault(A + name, value)
    with st.container(border=True):
        st.caption("Animate: write keyframed prompts in the prompt box, e.g. `0: a calm harbour at dusk | 12: the same harbour in a storm`; "
                   "frame 0 starts from the init image when one is uploaded (img2img below).")  # fmt: skip
        a, b = st.columns(2)
        a.slider("Frames", 2, 240, key=A + "frames")
        b.slider("Frames a second", 1, 30, key=A + "fps")
        left, right = st.columns(2)
        for i, key in enumerate(MOTION_KEYS):
            (left if i % 2 == 0 else right).text_input(MOTION_LABELS[key], key=A + key, help="A number, or keyframes such as 0:(1.0), 23:(1.04)")
        a, b = st.columns(2)
        a.text_input("Strength", key=A + "strength", help="How much of each moved frame is repainted: a number or keyframes")
        b.radio("Between keyframes", PROMPT_MODES, key=A + "prompt_mode", horizontal=True, help="switch: the last keyframe's prompt; blend: its encoding mixed toward the next one's")
        a, b = st.columns(2)
        a.radio("Seed", SEED_BEHAVIOURS, key=A + "seed_behaviour", horizontal=True, format_func={"iter": "seed + frame", "fixed": "one seed"}.get)
        b.radio("Colour coherence", COHERENCE, key=A + "colour_coherence", horizontal=True)


def request(fields: dict[str, Any]) -> AnimationRequest:
    """The animation of the panel and the request fields the Studio's controls give (prompt, size, seed, sampling, init image)."""
    state = st.session_state
    render = {k: fields[k] for k in ("num_inference_steps", "guidance_scale", "sampler", "schedule_type", "refiner", "refiner_switch_at") if k in fields}
    motion = {k: state[A + k].strip() for k in MOTION_KEYS if state[A + k].strip()}
    return AnimationRequest(
        prompts=fields["prompt"], frames=state[A + "frames"], fps=state[A + "fps"], width=fields["width"], height=fields["height"],
        negative_prompt=fields.get("negative_prompt", ""), style=fields.get("style"), motion=motion, strength=state[A + "strength"].strip() or "0.45",
        seed=fields.get("seed", -1), seed_behaviour=state[A + "seed_behaviour"], init_image=fields.get("init_image"),
        colour_coherence=state[A + "colour_coherence"], render=render, prompt_mode=state[A + "prompt_mode"],
    )  # fmt: skip


def show(result: dict[str, Any]) -> None:
    """The last animation: the loop, its downloads and where it was saved."""
    video = Path(result["video"])
    if not video.is_file():
        st.warning("This animation is no longer on disk.", icon=":material/broken_image:")
        return
    st.video(str(video), loop=True, autoplay=True, muted=True)
    st.caption(f"{result['frames']} frames at {result['fps']:g} fps · seed {result['seed']}" + (" · preview frames, not an SDXL render" if result["engine"] == "preview" else ""))
    with st.container(horizontal=True):
        for key, label, mime in (("video", "Download MP4", "video/mp4"), ("gif", "Download GIF", "image/gif"), ("sidecar", "Download the request (JSON)", "application/json")):
            try:
                data = Path(result[key]).read_bytes()
            except OSError as exc:
                st.caption(f"{label}: {KeyartError(str(exc))}")
                continue
            st.download_button(label, data, file_name=Path(result[key]).name, mime=mime, key=f"studio_anim_dl_{key}")
    st.caption(f"Saved in `{video.parent}`; `python -m imagegen animate --from {result['sidecar']}` renders it again.")
