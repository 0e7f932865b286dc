"""OpenAI Images API fields -> a RenderRequest, and rendered images -> OpenAI's response body.

Follows the public API reference (https://platform.openai.com/docs/api-reference/images) and the
fields the official SDK sends (../shared/reference/image_apis.md). Every documented field is
accepted, unknown ones are ignored; keyart's own extras ride in the SDK's `extra_body`
(`negative_prompt`, `seed`, `steps` or `num_inference_steps`, `guidance_scale`, `strength`,
`sampler`, `schedule_type`, `refiner`).
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from .. import presets, styles
from ..errors import InvalidRequest
from ..metadata import LINEAGE_KEY, PARAMETERS_KEY
from ..request import RenderedImage
from .errors import ApiError, bad_field
from .limits import Limits, batches

MODEL = "keyart-sdxl"  # the configured SDXL model; "keyart-sdxl-<style>" adds one of keyart's styles
OWNER = "keyart"
# OpenAI's quality words -> (keyart's preset, the word the response gives back). low and medium are
# a fast look (16 steps); everything else is catalog quality (30 steps).
QUALITIES = {
    "low": ("draft", "low"), "medium": ("draft", "medium"), "auto": ("final", "high"), "standard": ("final", "high"),
    "high": ("final", "high"), "hd": ("final", "high"), "xhigh": ("final", "high"), "max": ("final", "high"),
}  # fmt: skip
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
BACKGROUNDS = ("auto", "opaque")  # SDXL renders opaque images: "transparent" is refused, not faked
RESPONSE_FORMATS = ("b64_json", "url")
MODERATIONS = ("auto", "low")
OPENAI_STYLES = ("vivid", "natural")  # DALL-E 3's; accepted and not used (keyart's styles come by model id)
DEFAULT_QUALITY = 90  # JPEG/WebP quality when output_compression is not given


class ImageFields(BaseModel):
    """The JSON body of /images/generations, or the form fields of /images/edits (strings, coerced)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    response_format: str | None = None
    moderation: str | None = None
    style: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    stream: bool | None = None
    # keyart's extras
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    strength: float | None = None
    sampler: str | None = None
    schedule_type: str | None = None
    refiner: str | None = None  # auto, on or off


@dataclass(frozen=True)
class Answer:
    """How to answer: the image format and its compression, b64_json or url, the quality word."""

    output_format: str
    compression: int | None
    response_format: str
    quality: str


def model_ids() -> list[str]:
    return [MODEL] + [f"{MODEL}-{name}" for name in styles.names()]


def models_body() -> dict[str, Any]:
    created = int(time.time())
    return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": OWNER} for m in model_ids()]}


def style_of(model: str | None) -> str | None:
    """The keyart style a model id names (None for plain keyart-sdxl); 404 for an id this server lacks."""
    if model is None or model.strip() == MODEL:
        return None
    name = model.strip().removeprefix(f"{MODEL}-")
    if model.strip().startswith(f"{MODEL}-") and name in styles.names():
        return name
    raise ApiError(
        404, f"the model {model!r} does not exist on this server; its models: {', '.join(model_ids())}", param="model", code="model_not_found"
    )


def _choice(fields: ImageFields, name: str, allowed: tuple[str, ...] | dict, default: str | None) -> str | None:
    value = getattr(fields, name)
    if value is None:
        return default
    word = value.strip().lower()
    if word not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)} (got {value!r})", param=name, code="invalid_value")
    return word


def request_fields(fields: ImageFields, limits: Limits, max_batch: int, *, like: tuple[int, int] | None = None) -> tuple[dict[str, Any], Answer]:
    """RenderRequest keyword arguments and the Answer for `fields`; 400/404 for fields out of bounds.

    `like` is an edit's image size: with size "auto" the render takes the table's size nearest to it.
    """
    # 1. The words: each one of the documented values.
    quality = _choice(fields, "quality", QUALITIES, "auto")
    background = _choice(fields, "background", (*BACKGROUNDS, "transparent"), "auto")
    if background == "transparent":
        raise ApiError(400, "background 'transparent' is not supported: SDXL renders opaque images; use 'auto' or 'opaque'", param="background", code="invalid_value")
    fmt = _choice(fields, "output_format", FORMATS, "png")
    answer_as = _choice(fields, "response_format", RESPONSE_FORMATS, "b64_json")
    _choice(fields, "moderation", MODERATIONS, None)
    _choice(fields, "style", OPENAI_STYLES, None)
    if fields.stream:
        raise ApiError(400, "stream is not supported by this server yet; leave it unset for one JSON answer", param="stream", code="unsupported")
    if fields.output_compression is not None and not 0 <= fields.output_compression <= 100:
        raise ApiError(400, f"output_compression must be between 0 and 100 (got {fields.output_compression})", param="output_compression", code="invalid_value")
    # 2. The numbers, within this server's limits.
    try:
        n = limits.count(fields.n)
        width, height = limits.size(fields.size, like)
        steps = fields.steps if fields.steps is not None else fields.num_inference_steps
        steps = limits.check_steps(steps) if steps is not None else limits.steps
    except InvalidRequest as exc:
        raise bad_field(exc) from exc
    # 3. The request: the quality preset under what was given.
    preset, word = QUALITIES[quality]
    given: dict[str, Any] = {
        "num_inference_steps": steps, "negative_prompt": fields.negative_prompt, "seed": fields.seed, "guidance_scale": fields.guidance_scale,
        "strength": fields.strength, "sampler": fields.sampler, "schedule_type": fields.schedule_type, "refiner": fields.refiner,
    }  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    batch_size, batch_count = batches(n, max_batch)
    values = presets.apply_quality(preset, given) | {
        "prompt": fields.prompt, "style": style_of(fields.model), "width": width, "height": height,
        "batch_size": batch_size, "batch_count": batch_count,
    }  # fmt: skip
    return values, Answer(fmt, fields.output_compression, answer_as, word)


def encode(image: RenderedImage, answer: Answer) -> bytes:
    """The image file: a PNG carrying A1111's parameters and keyart's lineage chunks, or a JPEG/WebP."""
    from PIL.PngImagePlugin import PngInfo

    out = io.BytesIO()
    if answer.output_format == "png":
        info = PngInfo()
        if image.infotext:
            info.add_text(PARAMETERS_KEY, image.infotext)
        if image.lineage:
            info.add_itxt(LINEAGE_KEY, json.dumps(image.lineage, ensure_ascii=False))
        image.image.save(out, format="PNG", pnginfo=info)
    else:
        quality = DEFAULT_QUALITY if answer.compression is None else answer.compression
        image.image.convert("RGB").save(out, format=FORMATS[answer.output_format], quality=quality)
    return out.getvalue()


def response_body(images: list[RenderedImage], answer: Answer) -> dict[str, Any]:
    """OpenAI's ImagesResponse: data[] with b64_json (or a data: URL), plus size, quality and the rest."""
    data = []
    for image in images:
        b64 = base64.b64encode(encode(image, answer)).decode("ascii")
        item = {"url": f"data:image/{answer.output_format};base64,{b64}"} if answer.response_format == "url" else {"b64_json": b64}
        item["revised_prompt"] = image.request.styled[0]  # the prompt the model saw, its style applied
        data.append(item)
    width, height = images[0].image.size if images else (0, 0)
    no_tokens = {"text_tokens": 0, "image_tokens": 0}  # a diffusion model counts no tokens
    return {
        "created": int(time.time()), "data": data, "background": "opaque", "output_format": answer.output_format,
        "size": f"{width}x{height}", "quality": answer.quality,
        "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "input_tokens_details": no_tokens, "output_tokens_details": no_tokens},
    }  # fmt: skip
