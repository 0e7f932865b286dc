"""The Studio's guides, below the main controls as A1111 places its extensions: ControlNet units
(type, image or ready map, weight, the steps they guide), each with a preview of its preprocessed
map, and an IP-Adapter reference image with its scale.

Widgets live under `studio_cn<i>_*` and `studio_ref_*`; `fields(save)` gives the request's
`controls`, `reference` and `reference_scale`, saving each uploaded image with `save`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import streamlit as st

from imagegen import control
from imagegen.errors import InvalidRequest

UNITS = 3  # A1111 shows three units; the engine takes up to control.MAX_UNITS
CN = "studio_cn{}_"  # one unit's widget keys
REF = "studio_ref_"
PREVIEW_WIDTH = 180
REFERENCE_SCALE = 0.6  # the request's default
TYPE_LABELS = {"canny": "Canny (edges)", "softedge": "Soft edge", "lineart": "Lineart", "depth": "Depth", "pose": "OpenPose (a ready map)"}


def panel(size: tuple[int, int], takes_reference: bool) -> None:
    """The ControlNet and reference expanders; `size` is the render's (the maps are made at it)."""
    with st.expander("ControlNet", icon=":material/architecture:", expanded=any(_unit_on(i) for i in range(UNITS))):
        tabs = st.tabs([f"Unit {i}" + (" ●" if _unit_on(i) else "") for i in range(UNITS)])
        for i, tab in enumerate(tabs):
            with tab:
                _unit(i, size)
        st.caption("Models come from KEYART_CONTROLNET_DIR/<type>; units guide the first pass (not the refiner or the hires fix's second pass).")
    with st.expander("Reference image (IP-Adapter)", icon=":material/photo_library:", expanded=bool(st.session_state.get(REF + "upload"))):
        upload = st.file_uploader("Reference image", type=["png", "jpg", "jpeg", "webp"], key=REF + "upload", help="Its style or subject guides the render")
        st.slider("Reference scale", 0.0, 1.0, REFERENCE_SCALE, step=0.05, key=REF + "scale", help="0 ignores it; 0.5-0.7 keeps its look and lets the prompt speak; 1 lets it dominate")
        if upload is not None:
            st.image(upload.getvalue(), width=PREVIEW_WIDTH, caption="Reference")
        if not takes_reference:
            st.caption("No IP-Adapter is configured (KEYART_IP_ADAPTER): the SDXL engine refuses a reference; the preview engine records it.")


def _unit(i: int, size: tuple[int, int]) -> None:
    key = CN.format(i)
    a, b = st.columns([1, 2])
    a.toggle("Enable", key=key + "on")
    b.selectbox("Control type", control.CONTROL_TYPES, key=key + "type", format_func=TYPE_LABELS.get)
    upload = st.file_uploader("Control image", type=["png", "jpg", "jpeg", "webp"], key=key + "upload", help="A sketch or photo (its map is made here), or a ready map")
    st.checkbox("The image is a ready map (preprocessor: none)", key=key + "ready", help="Pose needs one, depth too without KEYART_DEPTH_MODEL; keyart makes canny, soft edge and lineart maps itself")
    a, b = st.columns(2)
    a.slider("Control weight", 0.0, control.MAX_WEIGHT, 1.0, step=0.05, key=key + "weight")
    b.slider("Guidance start and end", 0.0, 1.0, (0.0, 1.0), step=0.05, key=key + "steps", help="The share of the steps it guides: 0-0.6 fixes the layout and frees the detail")
    if upload is not None:
        _preview(upload.getvalue(), st.session_state[key + "type"], st.session_state[key + "ready"], size)


def _preview(data: bytes, kind: str, ready: bool, size: tuple[int, int]) -> None:
    """The image and the map the unit will guide with, made at the render's size as the engine makes it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        st.error(f"The control image is not a PNG, JPEG or WebP image ({exc}).", icon=":material/error:")
        return
    resized = picture.size != tuple(size)
    picture = picture.resize(tuple(size), Image.Resampling.LANCZOS) if resized else picture
    left, right = st.columns(2)
    left.image(picture, width=PREVIEW_WIDTH, caption="Control image" + (f" (resized to {size[0]}x{size[1]})" if resized else ""))
    if ready:
        right.image(picture, width=PREVIEW_WIDTH, caption="Map: the image itself")
    elif kind in control.MODEL_FREE:
        right.image(control.PREPROCESSORS[kind](picture), width=PREVIEW_WIDTH, caption=f"Map: {kind}")
    elif kind == "depth":
        right.info("The depth map is made when it renders, by the depth-estimation model (KEYART_DEPTH_MODEL); without one, tick the box and upload a ready map.", icon=":material/info:")
    else:
        right.warning(f"{TYPE_LABELS[kind]} needs a ready map: tick the box above and upload one.", icon=":material/info:")


def _unit_on(i: int) -> bool:
    return bool(st.session_state.get(CN.format(i) + "on"))


def fields(save: Callable[[Any], str]) -> dict[str, Any]:
    """The request's guide fields from the panel: each enabled unit and the reference, their uploads saved."""
    state, units = st.session_state, []
    for i in range(UNITS):
        key = CN.format(i)
        if not state.get(key + "on"):
            continue
        upload = state.get(key + "upload")
        if upload is None:
            raise InvalidRequest(f"ControlNet unit {i} is enabled but has no control image; upload one or switch the unit off")
        start, end = state[key + "steps"]
        units.append({
            "type": state[key + "type"], "image": save(upload), "weight": state[key + "weight"], "start": start, "end": end,
            "preprocessor": control.NONE if state[key + "ready"] else control.AUTO,
        })  # fmt: skip
    out: dict[str, Any] = {"controls": units} if units else {}
    if (reference := state.get(REF + "upload")) is not None:
        out |= {"reference": save(reference), "reference_scale": state[REF + "scale"]}
    return out
