"""The AUTOMATIC1111 API subset under /sdapi/v1: txt2img, img2img, png-info, interrogate, options,
the model, sampler, scheduler and upscaler lists, progress, interrupt and skip.

For A1111 clients (Open WebUI's automatic1111 engine, LibreChat's Stable Diffusion tool). Errors
keep the app's one error shape ({"error": {message, type, param, code}}) with A1111's HTTP statuses.
The renders go through the queue (jobs.render). The checkpoints listed are the served model and
keyart's styles on it (`keyart-sdxl`, `keyart-sdxl-<style>`, as /v1/models lists them): POST options
with `sd_model_checkpoint` switches which one txt2img and img2img use when a body names no style,
and `override_settings.sd_model_checkpoint` does so for one request. Jobs belong to their caller
(jobs_api.owner_of); interrupt and skip stop the caller's own running jobs.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ..errors import MetadataError
from ..metadata import PARAMETERS_KEY
from ..png_files import read_png
from ..request import RenderRequest
from . import a1111_controlnet as controlnet
from . import jobs
from .a1111_fields import (
    LATENT_MODES, DEFAULT_MODEL, RESIZE_LATENT, Img2ImgFields, Txt2ImgFields, decode_b64, parsed_parameters, request_values,
    response_body, samplers_body, schedulers_body, upscalers_body,
)  # fmt: skip
from .errors import ApiError
from .jobs_api import owner_of
from .openai_fields import MODEL, model_ids, style_of
from .uploads import open_image

router = APIRouter(prefix="/sdapi/v1")


def model_name(http: Request) -> str:
    """The served model's name: the app's, else the first loaded engine's, else keyart's id."""
    state = http.app.state
    name = getattr(state, "model_name", None)
    if name:
        return name
    for worker in getattr(state.queue, "_workers", ()):
        name = getattr(worker.engine, "model_name", None)
        if name:
            return str(name)
    return DEFAULT_MODEL


def _validate(model: type, body: Any) -> Any:
    from .openai_images import validation_error

    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_value")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from exc


async def _body(http: Request) -> dict[str, Any]:
    import json

    raw = await http.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from exc


def checkpoint_style(http: Request, fields: Txt2ImgFields) -> str | None:
    """The style the checkpoint asked for gives: override_settings' for this request, else the one
    POST options chose; None for the plain model. An unknown checkpoint is a 400 naming the known."""
    override = (fields.override_settings or {}).get("sd_model_checkpoint")
    name = override if isinstance(override, str) and override.strip() else getattr(http.app.state, "a1111_checkpoint", None)
    return _style_of_checkpoint(http, name)


def _style_of_checkpoint(http: Request, name: str | None) -> str | None:
    if name is None:
        return None
    word = name.strip().removesuffix(" [None]")
    if word in ("", MODEL, model_name(http)):
        return None
    try:
        return style_of(word)
    except ApiError:
        known = ", ".join(checkpoints(http))
        raise ApiError(400, f"no checkpoint {name!r} on this server; its checkpoints: {known}", param="sd_model_checkpoint", code="invalid_value") from None


def checkpoints(http: Request) -> list[str]:
    """The titles sd-models lists: the served model's name, then keyart-sdxl-<style> per style."""
    return [model_name(http), *model_ids()[1:]]


async def _render(http: Request, fields: Txt2ImgFields, received: dict[str, Any], *, like=None, extra=None, cleanup=None, img2img=False) -> dict[str, Any]:
    state = http.app.state
    try:
        style = checkpoint_style(http, fields)
    except ApiError:
        if cleanup is not None:
            cleanup()
        raise

    def make() -> RenderRequest:
        values = request_values(fields, state.limits, like=like, img2img=img2img) | (extra or {})
        if values.get("style") is None and style is not None:
            values["style"] = style  # the body's own `styles` win over the checkpoint's
        return RenderRequest(**values)

    request = jobs.build(make, cleanup)
    images = await jobs.render(state.queue, request, http, state.limits, owner=owner_of(http), lineage={"api": "a1111"}, cleanup=cleanup)
    return await run_in_threadpool(response_body, images, fields, received)


@router.post("/txt2img")
async def txt2img(http: Request) -> dict[str, Any]:
    received = await _body(http)
    fields = _validate(Txt2ImgFields, received)
    if not fields.alwayson_scripts:
        return await _render(http, fields, received)
    folder = Path(tempfile.mkdtemp(prefix="keyart-a1111-"))
    cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)  # noqa: E731
    try:
        guides = await run_in_threadpool(controlnet.fields, fields.alwayson_scripts, folder)
    except BaseException:
        cleanup()
        raise
    if not guides:
        cleanup()
        return await _render(http, fields, received)
    return await _render(http, fields, received, extra=guides, cleanup=cleanup)


@router.post("/img2img")
async def img2img(http: Request) -> dict[str, Any]:
    received = await _body(http)
    fields: Img2ImgFields = _validate(Img2ImgFields, received)
    if not fields.init_images:
        raise ApiError(400, "init_images is required: a list with one base64 image", param="init_images", code="missing_required_parameter")
    image_bytes = decode_b64(fields.init_images[0], "init_images")
    mask_bytes = decode_b64(fields.mask, "mask") if fields.mask else None
    folder = Path(tempfile.mkdtemp(prefix="keyart-a1111-"))
    cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)  # noqa: E731
    try:
        size = await run_in_threadpool(_save_inputs, image_bytes, mask_bytes, bool(fields.inpainting_mask_invert), folder)
        guides = await run_in_threadpool(controlnet.fields, fields.alwayson_scripts, folder, init_image=str(folder / "image.png"))
    except BaseException:
        cleanup()
        raise
    extra: dict[str, Any] = {"init_image": str(folder / "image.png")} | guides
    if fields.resize_mode == RESIZE_LATENT:
        extra["init_upscaler"] = "latent"
    if mask_bytes is not None:
        extra["mask"] = str(folder / "mask.png")
        if fields.mask_blur is not None:
            extra["mask_blur"] = fields.mask_blur
        if fields.inpaint_full_res:
            extra["inpaint_area"] = "masked"
        if fields.inpaint_full_res_padding is not None:
            extra["masked_padding"] = fields.inpaint_full_res_padding
    # Only the fields sent count as the render's size; A1111's 512x512 default otherwise snaps near the image.
    like = None if "width" in received or "height" in received else size
    if like is not None:
        fields = fields.model_copy(update={"width": size[0], "height": size[1]})
    return await _render(http, fields, received, like=like, extra=extra, cleanup=cleanup, img2img=True)


def _save_inputs(image_bytes: bytes, mask_bytes: bytes | None, invert: bool, folder: Path) -> tuple[int, int]:
    """image.png (RGB) and mask.png (keyart's and A1111's convention: white = repaint); the image's size."""
    from PIL import ImageOps

    picture = open_image(image_bytes, param="init_images", convert="RGB")
    picture.save(folder / "image.png")
    if mask_bytes is None:
        return picture.size
    mask = open_image(mask_bytes, param="mask", convert="L")
    if invert:
        mask = ImageOps.invert(mask)
    if mask.size != picture.size:
        mask = mask.resize(picture.size)  # A1111 resizes the mask to the image too
    mask.save(folder / "mask.png")
    return picture.size


@router.post("/png-info")
async def png_info(http: Request) -> dict[str, Any]:
    received = await _body(http)
    data = decode_b64(received.get("image") if isinstance(received, dict) else None, "image")
    return await run_in_threadpool(_png_info, data)


def _png_info(data: bytes) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            items = {k: str(v) for k, v in getattr(im, "text", {}).items()}
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ApiError(400, f"image is not a readable image ({exc})", param="image", code="invalid_image") from exc
    with tempfile.TemporaryDirectory(prefix="keyart-pnginfo-") as folder:
        path = Path(folder) / "image.png"
        path.write_bytes(data)
        try:
            infotext = read_png(path).infotext or ""
        except MetadataError:
            infotext = ""
    items.pop(PARAMETERS_KEY, None)
    return {"info": infotext, "items": items, "parameters": parsed_parameters(infotext) if infotext else {}}


INTERROGATORS = ("clip",)  # A1111's interrogate models keyart has: clip (its describe); deepdanbooru is not


@router.post("/interrogate")
async def interrogate(http: Request) -> dict[str, Any]:
    """A1111's Interrogate: {"image": base64, "model": "clip"} -> {"caption": prompt}, through `describe`
    (the app's describer, else the offline one); keyart's method and trace ride along under "keyart"."""
    received = await _body(http)
    if not isinstance(received, dict):
        raise ApiError(400, "the body is a JSON object: {\"image\": BASE64, \"model\": \"clip\"}", code="invalid_body")
    model = str(received.get("model") or "clip").strip().lower()
    if model not in INTERROGATORS:
        raise ApiError(400, f"interrogate model {model!r} is not available here; use {', '.join(INTERROGATORS)}", param="model", code="invalid_value")
    data = decode_b64(received.get("image"), "image")
    picture = open_image(data, param="image", convert="RGB")
    from ..describe import Describer

    describer = getattr(http.app.state, "describer", None) or Describer()
    found = await run_in_threadpool(describer.describe, picture)
    return {"caption": found.prompt, "keyart": {"method": found.method, "offline": found.offline, "caption": found.caption, "trace": found.trace}}


@router.get("/options")
async def get_options(http: Request) -> dict[str, Any]:
    name = getattr(http.app.state, "a1111_checkpoint", None) or model_name(http)
    return {
        "sd_model_checkpoint": name, "sd_checkpoint_hash": None, "sd_vae": _vae_name(http), "CLIP_stop_at_last_layers": 1,
        "samples_format": "png", "samples_save": False, "sd_model_refiner": None, "eta_noise_seed_delta": 0,
    }  # fmt: skip


@router.post("/options")
async def set_options(http: Request) -> dict[str, Any]:
    received = await _body(http)
    if not isinstance(received, dict):
        raise ApiError(400, "the options body must be a JSON object", code="invalid_value")
    wanted = received.get("sd_model_checkpoint")
    if isinstance(wanted, str) and wanted.strip():
        style = _style_of_checkpoint(http, wanted)  # a 400 for a checkpoint this server lacks
        http.app.state.a1111_checkpoint = f"{MODEL}-{style}" if style else None
    return {}


@router.get("/sd-models")
async def sd_models(http: Request) -> list[dict[str, Any]]:
    return [{"title": name, "model_name": name, "hash": None, "sha256": None, "filename": name, "config": None} for name in checkpoints(http)]


@router.get("/samplers")
async def list_samplers() -> list[dict[str, Any]]:
    return samplers_body()


@router.get("/schedulers")
async def list_schedulers() -> list[dict[str, Any]]:
    return schedulers_body()


@router.get("/upscalers")
async def list_upscalers() -> list[dict[str, Any]]:
    return upscalers_body()


@router.get("/latent-upscale-modes")
async def latent_upscale_modes() -> list[dict[str, Any]]:
    return [{"name": m} for m in LATENT_MODES]


@router.get("/loras")
async def loras(http: Request) -> list[dict[str, Any]]:
    folder = getattr(http.app.state, "lora_dir", None)
    if not folder or not Path(folder).is_dir():
        return []
    return [{"name": p.stem, "alias": p.stem, "path": str(p), "metadata": {}} for p in sorted(Path(folder).glob("*.safetensors"))]


@router.get("/embeddings")
async def embeddings(http: Request) -> dict[str, Any]:
    """A1111's embeddings list: the SDXL textual inversions in KEYART_EMBEDDINGS_DIR, and the files skipped, with why."""
    found = getattr(http.app.state, "embeddings", None)  # the served engine's folder, read by the serve command
    if found is None:
        return {"loaded": {}, "skipped": {}}
    return {"loaded": {name: e.describe() for name, e in found.usable().items()}, "skipped": {name: {"reason": why} for name, why in found.skipped().items()}}


@router.post("/refresh-embeddings")
async def refresh_embeddings(http: Request) -> dict[str, Any]:
    """A1111's refresh: the folder is read again whenever it changes, so this only reads it now."""
    found = getattr(http.app.state, "embeddings", None)
    if found is not None:
        found.usable()
    return {}


@router.get("/sd-vae")
async def sd_vae(http: Request) -> list[dict[str, Any]]:
    vae = getattr(http.app.state, "vae", None)  # KEYART_SDXL_VAE's source, when the served engine has one
    return [] if vae is None else [{"model_name": vae.name, "filename": vae.location}]


def _vae_name(http: Request) -> str:
    """A1111's sd_vae option: the configured VAE's name, else "Automatic" (the model's own)."""
    vae = getattr(http.app.state, "vae", None)
    return vae.name if vae is not None else "Automatic"


@router.get("/progress")
async def progress(http: Request) -> dict[str, Any]:
    jobs_now = [j for j in http.app.state.queue.jobs() if j.state in ("queued", "running")]
    owner = owner_of(http)
    running = sorted((j for j in jobs_now if j.state == "running"), key=lambda j: j.owner != owner)  # the caller's own first
    job = running[0] if running else None
    done, total = job.progress if job else (0, 0)
    fraction = done / total if total else 0.0
    eta = 0.0
    if job is not None and job.started and fraction > 0:
        elapsed = time.time() - job.started
        eta = max(0.0, elapsed / fraction - elapsed)
    state = {
        "skipped": False, "interrupted": bool(job and job.cancel_requested), "stopping_generation": False,
        "job": job.id if job else "", "job_count": len(jobs_now), "job_timestamp": "0", "job_no": 0,
        "sampling_step": done, "sampling_steps": total,
    }  # fmt: skip
    text = f"job {job.id}: step {done} of {total}" if job else ("queued" if jobs_now else "")
    return {"progress": fraction, "eta_relative": eta, "state": state, "current_image": None, "textinfo": text}


def _cancel_running(http: Request) -> dict[str, Any]:
    """Stop the caller's running jobs, as A1111 stops what runs; other callers' jobs run on."""
    queue, owner = http.app.state.queue, owner_of(http)
    for job in queue.jobs():
        if job.state == "running" and job.owner == owner:
            jobs._cancel(queue, job.id)
    return {}


@router.post("/interrupt")
async def interrupt(http: Request) -> dict[str, Any]:
    return _cancel_running(http)


@router.post("/skip")
async def skip(http: Request) -> dict[str, Any]:
    return _cancel_running(http)
