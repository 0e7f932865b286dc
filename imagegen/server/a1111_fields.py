"""AUTOMATIC1111 API (/sdapi/v1) fields -> a RenderRequest, and rendered images -> A1111's answers.

Body fields are A1111's processing names (../shared/reference/image_apis.md, "AUTOMATIC1111 API");
unknown ones are tolerated, not errors. Sizes snap to the server's size table (Limits.size), as the
OpenAI routes do; steps past Limits.max_steps are a 400 naming the limit.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from .. import samplers, styles
from ..errors import InvalidRequest
from ..metadata import LINEAGE_KEY, PARAMETERS_KEY, parse_infotext
from ..request import DEFAULTS, RenderedImage
from .errors import ApiError, bad_field
from .limits import Limits

DEFAULT_MODEL = "keyart-sdxl"
UPSCALERS = {"latent": "Latent", "lanczos": "Lanczos"}  # keyart's hires upscalers -> A1111's names
LATENT_MODES = ("Latent",)


class Txt2ImgFields(BaseModel):
    """A1111's StableDiffusionProcessingTxt2Img fields that keyart uses; the rest are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] | None = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    sampler_name: str | None = None
    sampler_index: str | None = None  # the old name of sampler_name
    scheduler: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int | None = None
    cfg_scale: float | None = None
    width: int = 512
    height: int = 512
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = 0
    denoising_strength: float | None = None
    refiner_checkpoint: str | None = None
    refiner_switch_at: float | None = None
    tiling: bool = False  # A1111's Tiling: the image repeats seamlessly
    override_settings: dict[str, Any] | None = None
    send_images: bool = True
    save_images: bool = False
    alwayson_scripts: dict[str, Any] | None = None


RESIZE_LATENT = 3  # A1111's resize_mode "Just resize (latent upscale)"; 0 "Just resize" is Lanczos


class Img2ImgFields(Txt2ImgFields):
    init_images: list[str] | None = None
    resize_mode: int = 0
    mask: str | None = None
    mask_blur: int | None = None
    inpainting_fill: int | None = None  # A1111's masked-content choice; keyart always starts from the original
    inpaint_full_res: bool | int = False
    inpaint_full_res_padding: int | None = None
    inpainting_mask_invert: int = 0


def _style(names: list[str] | None) -> str | None:
    """The first of A1111's `styles` that names a keyart style; unknown names are ignored."""
    known = {n.lower(): n for n in styles.names()}
    for name in names or ():
        if isinstance(name, str) and name.strip().lower() in known:
            return known[name.strip().lower()]
    return None


def _upscaler(name: str | None) -> str:
    if name is None or not name.strip():
        return "latent"
    word = name.strip().lower()
    if word.startswith("latent"):
        return "latent"
    if word == "lanczos":
        return "lanczos"
    raise ApiError(400, f"hr_upscaler {name!r} is not on this server; its upscalers: {', '.join(UPSCALERS.values())}", param="hr_upscaler", code="invalid_value")


def request_values(fields: Txt2ImgFields, limits: Limits, *, like: tuple[int, int] | None = None, img2img: bool = False) -> dict[str, Any]:
    """RenderRequest keyword arguments for an A1111 body; 400 for values past this server's limits."""
    try:
        limits.count(fields.batch_size * fields.n_iter)
        width, height = limits.size(f"{fields.width}x{fields.height}", like)
        if fields.steps is not None:
            steps = limits.check_steps(fields.steps)
        else:
            steps = limits.steps or DEFAULTS["num_inference_steps"]
    except InvalidRequest as exc:
        raise bad_field(exc) from exc
    values: dict[str, Any] = {
        "prompt": fields.prompt, "negative_prompt": fields.negative_prompt or "", "style": _style(fields.styles),
        "seed": fields.seed, "subseed": fields.subseed, "subseed_strength": fields.subseed_strength,
        "batch_size": fields.batch_size, "batch_count": fields.n_iter, "num_inference_steps": steps,
        "width": width, "height": height, "tiling": "on" if fields.tiling else "off",
    }  # fmt: skip
    sampler = fields.sampler_name or fields.sampler_index
    if sampler:
        values["sampler"] = sampler
    if fields.scheduler:
        values["schedule_type"] = fields.scheduler
    if fields.cfg_scale is not None:
        values["guidance_scale"] = fields.cfg_scale
    # A1111 refines only when a refiner checkpoint is named; keyart has one refiner, so any name is it.
    refiner = (fields.refiner_checkpoint or "").strip()
    values["refiner"] = "on" if refiner and refiner.lower() != "none" else "off"
    if fields.refiner_switch_at is not None and 0 < fields.refiner_switch_at < 1:
        values["refiner_switch_at"] = fields.refiner_switch_at
    if img2img:
        values["strength"] = 0.75 if fields.denoising_strength is None else fields.denoising_strength
    elif fields.enable_hr and fields.hr_scale != 1:
        values |= {"hr_scale": fields.hr_scale, "hr_upscaler": _upscaler(fields.hr_upscaler), "hr_second_pass_steps": fields.hr_second_pass_steps}
        if fields.denoising_strength is not None:
            values["denoising_strength"] = fields.denoising_strength
    return values


def decode_b64(text: str, param: str) -> bytes:
    """Base64 image data, with or without a `data:image/...;base64,` prefix."""
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, f"{param} must be a base64-encoded image", param=param, code="invalid_value")
    data = text.strip()
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"{param} is not valid base64 ({exc})", param=param, code="invalid_image") from exc


def encode_png(image: RenderedImage) -> str:
    """Raw base64 (no data: prefix) of a PNG with its A1111 parameters and keyart lineage chunks."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if image.infotext:
        info.add_text(PARAMETERS_KEY, image.infotext)
    if image.lineage:
        info.add_itxt(LINEAGE_KEY, json.dumps(image.lineage, ensure_ascii=False))
    out = io.BytesIO()
    image.image.save(out, format="PNG", pnginfo=info)
    return base64.b64encode(out.getvalue()).decode("ascii")


def info_text(images: list[RenderedImage], fields: Txt2ImgFields) -> str:
    """A1111's `info`: a JSON string describing the render."""
    request = images[0].request if images else None
    if request is None:
        return json.dumps({"prompt": fields.prompt, "all_prompts": [], "infotexts": [], "all_seeds": [], "all_subseeds": []})
    prompt, negative = request.styled
    seeds = [im.seed for im in images]
    subseeds = request.subseeds() if request.subseed != -1 else [-1] * len(images)
    return json.dumps({
        "prompt": prompt, "all_prompts": [prompt] * len(images), "negative_prompt": negative,
        "all_negative_prompts": [negative] * len(images), "seed": seeds[0], "all_seeds": seeds,
        "subseed": subseeds[0], "all_subseeds": subseeds[: len(images)], "subseed_strength": request.subseed_strength,
        "width": images[0].image.size[0], "height": images[0].image.size[1], "sampler_name": request.sampler,
        "scheduler": request.schedule_type, "cfg_scale": request.guidance_scale, "steps": request.num_inference_steps,
        "batch_size": request.batch_size, "n_iter": request.batch_count, "styles": [request.style] if request.style else [],
        "denoising_strength": request.strength if request.init_image else (request.denoising_strength if request.hr_scale != 1 else None),
        "sd_model_name": images[0].lineage.get("model") if isinstance(images[0].lineage, dict) else None,
        "infotexts": [im.infotext for im in images], "index_of_first_image": 0, "is_using_inpainting_conditioning": False,
    }, ensure_ascii=False)  # fmt: skip


def response_body(images: list[RenderedImage], fields: Txt2ImgFields, received: dict[str, Any]) -> dict[str, Any]:
    return {"images": [encode_png(im) for im in images] if fields.send_images else [], "parameters": received, "info": info_text(images, fields)}


def parsed_parameters(infotext: str) -> dict[str, Any]:
    """A1111's png-info `parameters`: Prompt, Negative prompt, each Key: value, and Size-1/Size-2."""
    prompt, negative, pairs = parse_infotext(infotext)
    out: dict[str, Any] = {"Prompt": prompt, "Negative prompt": negative} | pairs
    width, _, height = str(pairs.get("Size", "")).partition("x")
    if width.isdigit() and height.isdigit() and len(width) <= 5 and len(height) <= 5:
        out |= {"Size-1": int(width), "Size-2": int(height)}
    return out


def samplers_body() -> list[dict[str, Any]]:
    return [
        {"name": name, "aliases": [], "options": {"scheduler": spec.automatic}} for name, spec in samplers.SAMPLERS.items()
    ] + [{"name": legacy, "aliases": [], "options": {}} for legacy in samplers.legacy_names()]


def schedulers_body() -> list[dict[str, Any]]:
    return [{"name": t.lower().replace(" ", "_"), "label": t, "aliases": None, "default_rho": -1, "need_inner_model": False} for t in samplers.SCHEDULE_TYPES]


def upscalers_body() -> list[dict[str, Any]]:
    return [{"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": 4 if key == "lanczos" else None} for key, name in UPSCALERS.items()]
