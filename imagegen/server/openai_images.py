"""The OpenAI Images API routes: POST /v1/images/generations, POST /v1/images/edits, GET /v1/models.

Compatible with the public API reference (https://platform.openai.com/docs/api-reference/images),
so the official `openai` SDK and clients built on it work unmodified. Fields and answers are
translated in openai_fields; the render goes through the queue (jobs.render).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ..request import RenderRequest
from . import jobs
from .errors import ApiError
from .openai_fields import ImageFields, models_body, request_fields, response_body
from .uploads import open_image

router = APIRouter(prefix="/v1")
MAX_IMAGES = 1  # SDXL's img2img starts from one image; several image[] parts are refused, not half-used
MAX_FORM_FIELDS = 64  # a form with more fields than the API documents is not a client of it


@router.get("/models")
async def list_models() -> dict[str, Any]:
    return models_body()


@router.post("/images/generations")
async def generations(http: Request, fields: ImageFields) -> dict[str, Any]:
    return await _render(http, fields)


@router.post("/images/edits")
async def edits(http: Request) -> dict[str, Any]:
    """Multipart: `image` (or repeated `image[]`), optional `mask` (OpenAI's: alpha 0 = the area to
    edit), the other fields as strings. The image becomes the init image; the mask keyart's own
    (white = repaint)."""
    # 1. The form: files and fields apart.
    form = await http.form(max_files=MAX_IMAGES + 2, max_fields=MAX_FORM_FIELDS)
    try:
        uploads = [v for key in ("image", "image[]") for v in form.getlist(key) if not isinstance(v, str)]
        mask = form.get("mask")
        values = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        if not uploads:
            raise ApiError(400, "image is required: send the picture to edit as the multipart file field 'image'", param="image", code="missing_required_parameter")
        if len(uploads) > MAX_IMAGES:
            raise ApiError(400, f"this server edits one image at a time (got {len(uploads)} image parts)", param="image", code="invalid_value")
        fields = _fields(values)
        image_bytes = await uploads[0].read()
        mask_bytes = await mask.read() if mask is not None and not isinstance(mask, str) else None
    finally:
        await form.close()
    # 2. The init image (and mask) as files for the request, removed once the job is final.
    folder = Path(tempfile.mkdtemp(prefix="keyart-edit-"))
    cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)  # noqa: E731
    try:
        size = await run_in_threadpool(_save_inputs, image_bytes, mask_bytes, folder)
    except BaseException:
        cleanup()
        raise
    extra = {"init_image": str(folder / "image.png")} | ({"mask": str(folder / "mask.png")} if mask_bytes is not None else {})
    return await _render(http, fields, like=size, extra=extra, cleanup=cleanup)


def _fields(values: dict[str, Any]) -> ImageFields:
    try:
        return ImageFields.model_validate(values)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def validation_error(exc: ValidationError | Any) -> ApiError:
    """A 400 naming the first wrong field, from pydantic's (or FastAPI's) list of errors."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return ApiError(400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error', first.get('msg'))})", code="invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if isinstance(p, str) and p != "body"]
    param = loc[-1] if loc else None
    what = "is required" if first.get("type") == "missing" else f"is wrong: {first.get('msg')}"
    return ApiError(400, f"{param or 'the body'} {what}", param=param, code="missing_required_parameter" if first.get("type") == "missing" else "invalid_value")


def _save_inputs(image_bytes: bytes, mask_bytes: bytes | None, folder: Path) -> tuple[int, int]:
    """Write the upload as image.png (and the mask as keyart's white-means-repaint mask.png); its size."""
    # 1. The picture, as RGB.
    picture = open_image(image_bytes, param="image", convert="RGB")
    picture.save(folder / "image.png")
    if mask_bytes is None:
        return picture.size
    # 2. OpenAI's mask: transparent (alpha 0) where to edit. keyart's: white where to repaint. A mask
    # without alpha is taken as keyart's own already.
    given = open_image(mask_bytes, param="mask")
    has_alpha = "A" in given.getbands() or "transparency" in given.info
    mask = given.convert("RGBA").getchannel("A").point(lambda a: 255 if a < 128 else 0) if has_alpha else given.convert("L")
    if mask.size != picture.size:
        raise ApiError(400, f"mask must be the image's size, {picture.size[0]}x{picture.size[1]} (got {mask.size[0]}x{mask.size[1]})", param="mask", code="invalid_value")
    mask.save(folder / "mask.png")
    return picture.size


async def _render(http: Request, fields: ImageFields, *, like=None, extra=None, cleanup=None) -> dict[str, Any]:
    """Validate, queue, wait, answer: the steps both image routes share."""
    state = http.app.state
    # 1. Fields -> a RenderRequest; every error here is the caller's (4xx), before any work.
    values, answer = jobs.build(lambda: request_fields(fields, state.limits, state.queue.max_batch, like=like), cleanup)
    request = jobs.build(lambda: RenderRequest(**(values | (extra or {}))), cleanup)
    # 2. The queue renders it; 3. the answer, encoded off the event loop.
    owner = fields.safety_identifier or fields.user or ""
    images = await jobs.render(state.queue, request, http, state.limits, owner=owner, lineage={"api": "openai"}, cleanup=cleanup)
    return await run_in_threadpool(response_body, images, answer)
