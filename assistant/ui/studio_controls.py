"""The Studio tab's controls: the mode, prompts and style row, every engine control in A1111's order,
the RenderRequest they ask for, and "Load from PNG", which reads a PNG's parameters back into them.

Controls live in `st.session_state` under `studio_<RenderRequest field>` (`K` + the name).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import InvalidRequest, KeyartError, RenderRequest, freeu, presets, samplers, styles
from imagegen.canvas import DIRECTIONS, default_size, hires_size
from imagegen.request import HR_UPSCALERS, INPAINT_AREAS, MAX_SEED, REFINER_MODES, SDXL_SIZES, TILINGS

from . import studio_guides as guides


K = "studio_"  # widget keys: K + a RenderRequest field name (or a control of the tab's own)
MODES = ("Render", "Seed hunt", "A/B", "Animate")
MODE_ICONS = {"Render": ":material/brush:", "Seed hunt": ":material/grid_view:", "A/B": ":material/compare:", "Animate": ":material/movie:"}
UPLOADS = Path("tmp") / "studio-uploads"  # <home>/tmp/studio-uploads/: uploads, named by their content
FIELDS = {f.name: f.default for f in dataclasses.fields(RenderRequest) if f.default is not dataclasses.MISSING}
# The controls that always reach the request; the hires fix, img2img and inpaint fields join when their mode is on.
BASE = (
    "prompt", "negative_prompt", "sampler", "schedule_type", "num_inference_steps", "guidance_scale", "width", "height",
    "seed", "batch_size", "batch_count", "refiner", "refiner_switch_at", "subseed", "subseed_strength", "tiling",
)  # fmt: skip
HIRES = ("hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength")
IMG2IMG = ("strength", "init_upscaler")
INPAINT = ("mask_blur", "inpaint_area", "masked_padding")
DEFAULTS: dict[str, Any] = FIELDS | {
    "prompt": "",
    "style": "none",
    "hires": False,
    "hr_scale": 2.0,  # what the slider shows when the hires fix is switched on: A1111's "Upscale by" default
    "outpaint": [],
    "own_size": True,
    "mode": "Render",
    "ab_prompt": "",
    "hunt_count": 9,  # a 3x3 grid
    "size_preset": None,
    "freeu_on": False,
    **{f"freeu_{name}": value for name, value in freeu.SDXL.items()},  # what the sliders show when FreeU is switched on
}
UPSCALER_LABELS = {"latent": "Latent", "lanczos": "Lanczos"}
AREA_LABELS = {"whole": "Whole picture", "masked": "Only masked"}
REFINER_LABELS = {"auto": "Auto (when configured)", "on": "On", "off": "Off"}
TILING_LABELS = {"off": "Off", "on": "On"}
# A1111's Generate button is the size of the prompt box beside it; this one is as tall as two lines of it.
BIG_BUTTON = "<style>.st-key-studio_go button { min-height: 4.5rem; font-size: 1.15rem; }</style>"
PLACEHOLDER = "A lighthouse keeper on a storm-lashed cliff at dusk, lantern raised, cinematic key art"


# -- the controls -------------------------------------------------------------------------------


def prompt_row(enabled: bool) -> str | None:
    """Mode, prompts, the action button and the style; returns the action clicked (a mode) or None."""
    state = st.session_state
    st.segmented_control(
        "Mode", MODES, key=K + "mode", required=True, label_visibility="collapsed", format_func=lambda m: f"{MODE_ICONS[m]} {m}"
    )
    mode = state[K + "mode"]
    prompts, side = st.columns([5, 1.5], gap="medium")
    with prompts:
        st.text_area("Prompt", key=K + "prompt", height=96, placeholder=PLACEHOLDER)
        if mode == "A/B":
            st.text_area(
                "Prompt B", key=K + "ab_prompt", height=96, persist_state="session",
                placeholder="The same scene, another idea: a lighthouse keeper at dawn, calm sea, warm light",
                help="Rendered on the same seed and settings as the prompt above: only the words differ",
            )  # fmt: skip
        st.text_area("Negative prompt", key=K + "negative_prompt", height=68, placeholder="blurry, text, watermark, extra fingers")
    with side:
        label, icon, help_ = {
            "Render": ("Render", ":material/brush:", None),
            "Seed hunt": ("Hunt seeds", ":material/grid_view:", f"Consecutive seeds at draft settings ({presets.describe_quality('draft')})"),
            "A/B": ("Render A and B", ":material/compare:", "Both prompts on one fixed seed, side by side"),
            "Animate": ("Animate", ":material/movie:", "Keyframed prompts and motion, frame after frame: an MP4 and a GIF"),
        }[mode]
        st.html(BIG_BUTTON)
        clicked = st.button(label, key=K + "go", type="primary", icon=icon, width="stretch", help=help_, disabled=not enabled)
        if mode == "Seed hunt":
            st.slider("Seeds", 2, 25, key=K + "hunt_count", persist_state="session", help="9 makes a 3x3 grid")
        st.selectbox("Style", ["none", *styles.names()], key=K + "style", help=_style_help())
    return mode if clicked else None


def _style_help() -> str:
    return "Wraps the prompt in a style preset (and adds its negative):\n\n" + "\n".join(
        f"- **{s.name}**: {s.description}" for s in styles.catalog().values()
    )


def controls(home: Path, service) -> None:
    """Every engine control, in A1111's order: sampling, hires fix, refiner, size, batch, CFG, seed, img2img, then ControlNet and the reference."""
    state = st.session_state
    a, b = st.columns(2)
    a.selectbox("Sampling method", list(samplers.SAMPLERS), key=K + "sampler", on_change=_fit_schedule)
    b.selectbox(
        "Schedule type", samplers.SCHEDULE_TYPES, key=K + "schedule_type",
        help="Automatic is the sampler's own (A1111's); the list under the sampler says which it can run",
    )  # fmt: skip
    st.slider("Sampling steps", 1, 150, key=K + "num_inference_steps", help="20-40 for final SDXL images")
    with st.expander("Hires. fix", icon=":material/high_res:", expanded=state[K + "hires"]):
        st.toggle("Upscale with a second pass", key=K + "hires", help="Text to image only: render, upscale, then repaint detail")
        a, b = st.columns(2)
        a.selectbox("Upscaler", HR_UPSCALERS, key=K + "hr_upscaler", format_func=UPSCALER_LABELS.get)
        b.slider("Hires steps", 0, 150, key=K + "hr_second_pass_steps", help="0 uses the sampling steps")
        a.slider("Upscale by", 1.0, 4.0, step=0.05, key=K + "hr_scale")
        b.slider("Denoising strength", 0.0, 1.0, step=0.01, key=K + "denoising_strength", help="0.3-0.5 sharpens, 0.7 redraws detail")
        w, h, s = state[K + "width"], state[K + "height"], state[K + "hr_scale"]
        hw, hh = hires_size(w, h, s)
        st.caption(f"{w}x{h} → {hw}x{hh}" + ("" if state[K + "hires"] else " (off)"))
    with st.expander("Refiner", icon=":material/auto_fix_high:"):
        a, b = st.columns(2)
        a.radio("Refiner", REFINER_MODES, key=K + "refiner", format_func=REFINER_LABELS.get, horizontal=True)
        b.slider("Switch at", 0.01, 0.99, step=0.01, key=K + "refiner_switch_at", help="The share of the steps the base model runs; 0.8 is usual")
        configured = getattr(service, "refiner", None)
        st.caption(f"Refiner: {configured}" if configured else "No refiner is configured (KEYART_SDXL_REFINER): Auto runs without one, On is an error.")
    with st.expander("FreeU", icon=":material/tune:", expanded=state[K + "freeu_on"]):
        st.toggle("Reweigh the UNet's deepest blocks", key=K + "freeu_on", help="FreeU: more structure and colour, less over-smoothing; no extra time")
        a, b = st.columns(2)
        for column, name, what in ((a, "b1", "Backbone"), (b, "b2", "Backbone"), (a, "s1", "Skip"), (b, "s2", "Skip")):
            column.slider(f"{what} {name}", 0.05, 3.0, step=0.01, key=K + "freeu_" + name, help=f"The SDXL value is {freeu.SDXL[name]:g}")
    a, b, c, d = st.columns([3, 3, 4, 1], vertical_alignment="bottom")
    a.number_input("Width", 64, 2048, step=8, key=K + "width")
    b.number_input("Height", 64, 2048, step=8, key=K + "height")
    c.selectbox(
        "SDXL size", [f"{w}x{h}" for w, h in SDXL_SIZES], key=K + "size_preset", index=None, placeholder="Pick a trained size",
        on_change=_pick_size, help="The sizes SDXL was trained on (about one megapixel): sets Width and Height",
    )  # fmt: skip
    d.button("", key=K + "swap", icon=":material/swap_vert:", on_click=_swap_size, help="Swap width and height")
    a, b = st.columns(2)
    a.slider("Batch count", 1, 100, key=K + "batch_count", help="Batches, one after another")
    b.slider("Batch size", 1, 8, key=K + "batch_size", help="Images per batch; image i uses seed+i")
    a, b = st.columns([3, 1])
    a.slider("CFG Scale", 1.0, 30.0, step=0.5, key=K + "guidance_scale", help="5-8 suits SDXL")
    b.radio("Tiling", TILINGS, key=K + "tiling", format_func=TILING_LABELS.get, horizontal=True, help="On: the image repeats seamlessly both ways (A1111's Tiling)")
    a, b, c = st.columns([8, 1, 1], vertical_alignment="bottom")
    a.number_input("Seed", -1, MAX_SEED, step=1, key=K + "seed", help="-1 is random; the seed used is recorded in the PNG")
    b.button("", key=K + "random_seed", icon=":material/casino:", on_click=_set_seed, args=(-1,), help="Random seed (-1)")
    c.button("", key=K + "reuse_seed", icon=":material/recycling:", on_click=_reuse_seed, help="Reuse the last image's seed")
    with st.expander("Variation seed", icon=":material/shuffle:"):
        a, b = st.columns(2)
        a.number_input("Variation seed", -1, MAX_SEED, step=1, key=K + "subseed", help="-1 is random, drawn when the strength is above 0")
        b.slider("Variation strength", 0.0, 1.0, step=0.01, key=K + "subseed_strength", help="0 is off; 0.05-0.3 gives close variations of the seed's image")
    with st.expander("img2img / inpaint", icon=":material/imagesmode:"):
        st.file_uploader("Init image", type=["png", "jpg", "jpeg", "webp"], key=K + "init_upload", help="Start from this picture instead of noise (img2img)")
        st.file_uploader("Mask", type=["png", "jpg", "jpeg", "webp"], key=K + "mask_upload", help="Inpaint: the init image's size, white = repaint, black = keep")
        a, b = st.columns(2)
        a.slider("Denoising strength", 0.0, 1.0, step=0.01, key=K + "strength", help="How much is repainted: 0.3 keeps the composition, 0.75 repaints most")
        b.selectbox("Upscaler for img2img", HR_UPSCALERS, key=K + "init_upscaler", format_func=UPSCALER_LABELS.get)
        st.toggle("Render at the init image's own size", key=K + "own_size", help="Off: render at Width x Height")
        a, b = st.columns(2)
        a.slider("Mask blur", 0, 64, key=K + "mask_blur")
        b.slider("Masked padding", 0, 256, key=K + "masked_padding", help="Context around the mask's box, with Only masked")
        st.radio("Inpaint area", INPAINT_AREAS, key=K + "inpaint_area", format_func=AREA_LABELS.get, horizontal=True)
        a, b = st.columns(2)
        a.multiselect("Outpaint", DIRECTIONS, key=K + "outpaint", placeholder="left, right, up, down", help="Grow the init image this way (instead of a mask)")
        b.slider("Outpaint pixels", 8, 512, step=8, key=K + "outpaint_pixels")
    guides.panel((state[K + "width"], state[K + "height"]), service is not None and service.takes("reference"))  # ControlNet, IP-Adapter
    with st.expander("Load from PNG", icon=":material/upload_file:"):
        st.file_uploader("A PNG made by keyart, A1111 or Forge", type=["png"], key=K + "png_upload")
        st.button("Load its parameters into the controls", key=K + "load", icon=":material/input:", on_click=_load_png, args=(str(home),))


def _fit_schedule() -> None:
    """A new sampler keeps the schedule type where it can run it, else goes back to Automatic."""
    state = st.session_state
    if state[K + "schedule_type"] not in samplers.SAMPLERS[state[K + "sampler"]].schedule_types:
        state[K + "schedule_type"] = "Automatic"


def _pick_size() -> None:
    state = st.session_state
    picked = state[K + "size_preset"]
    if picked:
        state[K + "width"], state[K + "height"] = (int(x) for x in picked.split("x"))
    state[K + "size_preset"] = None  # a menu, not a setting: Width and Height hold the size


def _swap_size() -> None:
    state = st.session_state
    state[K + "width"], state[K + "height"] = state[K + "height"], state[K + "width"]


def _set_seed(seed: int) -> None:
    st.session_state[K + "seed"] = seed


def _reuse_seed() -> None:
    last = st.session_state.get("studio:last_seed")
    if last is not None:
        st.session_state[K + "seed"] = last


# -- controls -> request ------------------------------------------------------------------------


def control_fields(*, hires: bool = True) -> dict[str, Any]:
    """The RenderRequest fields the controls ask for (no files yet); hires fields only when it is on."""
    state = st.session_state
    fields = {name: state[K + name] for name in BASE}
    if not fields["prompt"].strip():
        raise InvalidRequest("write a prompt first: what should the picture show?")
    style = state[K + "style"]
    fields["style"] = None if style == styles.NO_STYLE else style
    if hires and state[K + "hires"]:
        fields |= {name: state[K + name] for name in HIRES}
    if state[K + "freeu_on"]:
        fields["freeu"] = freeu.text({name: state[K + "freeu_" + name] for name in freeu.FACTORS})
    return fields


class _Uploads:
    """Uploaded files saved under <home>/tmp/studio-uploads/ by content; `discard()` removes the new ones."""

    def __init__(self, home: Path):
        self.folder = home / UPLOADS
        self.created: list[Path] = []

    def save(self, upload) -> str:
        data = upload.getvalue()
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(upload.name).stem)[:40] or "upload"
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:16]}-{stem}{Path(upload.name).suffix.lower() or '.png'}"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self.created.append(path)
        return str(path)

    def discard(self) -> None:
        for path in self.created:
            path.unlink(missing_ok=True)


def _with_inputs(fields: dict[str, Any], uploads: _Uploads) -> dict[str, Any]:
    """`fields` plus the init image, mask and outpaint settings from the img2img expander, and the guides."""
    state = st.session_state
    fields = fields | guides.fields(uploads.save)
    init, mask, outpaint = state.get(K + "init_upload"), state.get(K + "mask_upload"), state[K + "outpaint"]
    if init is None:  # a mask or outpaint without an init image: the request says what is missing
        return fields | ({"mask": uploads.save(mask)} if mask is not None else {}) | ({"outpaint": ",".join(outpaint)} if outpaint else {})
    fields = fields | {"init_image": uploads.save(init)} | {name: state[K + name] for name in IMG2IMG}
    if mask is not None:
        fields["mask"] = uploads.save(mask)
    if outpaint:
        fields |= {"outpaint": ",".join(outpaint), "outpaint_pixels": state[K + "outpaint_pixels"]}
    if mask is not None or outpaint:
        fields |= {name: state[K + name] for name in INPAINT}
    if state[K + "own_size"]:  # the init image's own (outpainted) size, in multiples of 8
        pixels = fields.get("outpaint_pixels", FIELDS["outpaint_pixels"])
        fields |= dict(zip(("width", "height"), default_size(fields["init_image"], fields.get("outpaint"), pixels)))
    return fields


def build_request(fields_of: Callable[[], dict[str, Any]], home: Path) -> tuple[dict[str, Any], RenderRequest]:
    """The fields and the validated request; uploads saved for it are removed again if it is invalid."""
    uploads = _Uploads(home)
    try:
        fields = _with_inputs(fields_of(), uploads)
        return fields, RenderRequest(**fields)
    except KeyartError:
        uploads.discard()
        raise


# -- load from PNG ------------------------------------------------------------------------------


def _load_png(home: str) -> None:
    """Read an uploaded PNG's parameters into the controls (a callback: it runs before the widgets)."""
    from imagegen.metadata import request_from_infotext
    from imagegen.png_files import read_png, request_from_png

    state = st.session_state
    upload = state.get(K + "png_upload")
    if upload is None:
        state["studio:loaded"] = (False, "Choose a PNG first: drop it on the box above the button.")
        return
    note, path = "", _Uploads(Path(home)).save(upload)
    try:
        try:
            request, index = request_from_png(path)
        except KeyartError as exc:
            meta = read_png(path)
            if meta.infotext is None:
                raise
            request, index = request_from_infotext(meta.infotext), 0  # the A1111 text, when the lineage cannot be used
            note = f" Its keyart lineage could not be used ({exc}), so its A1111 parameters were read."
    except KeyartError as exc:
        # The upload's saved copy has a content-hash name; the user knows the file by its own.
        state["studio:loaded"] = (False, f"{upload.name}: {str(exc).replace(path, upload.name)}")
        return
    values = _control_values(request, index)
    for name, value in values.items():
        state[K + name] = value
    state[K + "mode"] = "Render"
    if request.init_image is not None:
        note += f" It was an {request.mode} render: upload its init image{' and mask' if request.mask else ''} under img2img / inpaint to render it again."
    style = f", style {request.style}" if request.style else ""
    hires = f", hires fix x{request.hr_scale:g}" if request.hr_scale > 1 else ""
    variation = f", variation seed {values['subseed']} at {request.subseed_strength:g}" if request.subseed_strength > 0 else ""
    state["studio:loaded"] = (True, (
        f"Loaded {upload.name}: {request.num_inference_steps} steps, {request.sampler} {request.schedule_type}, "
        f"CFG {request.guidance_scale:g}, {request.width}x{request.height}, seed {values['seed']}{style}{hires}{variation}, "
        f"refiner {request.refiner}.{note}"
    ))  # fmt: skip


def _control_values(request: RenderRequest, index: int) -> dict[str, Any]:
    """The controls' values that render image `index` of `request` on its own: one image, its own seed."""
    values: dict[str, Any] = {name: getattr(request, name) for name in (*BASE, *HIRES, *IMG2IMG, *INPAINT, "outpaint_pixels")}
    values |= {
        "seed": request.seeds()[index],
        "subseed": request.subseeds()[index] if request.subseed_strength > 0 else request.subseed,
        "batch_size": 1,
        "batch_count": 1,
        "style": request.style or styles.NO_STYLE,
        "hires": request.hr_scale > 1,
        "hr_scale": request.hr_scale if request.hr_scale > 1 else DEFAULTS["hr_scale"],
        "outpaint": request.outpaint.split(",") if request.outpaint else [],
        "freeu_on": request.freeu != "off",
        **{f"freeu_{name}": value for name, value in (freeu.parse(request.freeu) or freeu.SDXL).items()},
    }
    return {name: float(v) if isinstance(DEFAULTS[name], float) else v for name, v in values.items()}
