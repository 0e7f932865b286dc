"""A1111's img2img, inpaint and hires-fix fields in the infotext, and the init image's record in the lineage.

A1111's parameters cannot name an init image or mask: keyart's lineage keeps each input's path and
SHA-256, and a reproduction refuses a file that is gone or has changed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import MetadataError
from .hashes import file_sha256
from .request import RenderRequest

log = logging.getLogger(__name__)

UPSCALER_NAMES = {"latent": "Latent", "lanczos": "Lanczos"}  # A1111's names in "Hires upscaler"
AREA_NAMES = {"whole": "Whole picture", "masked": "Only masked"}  # A1111's "Inpaint area" choices
INPUTS = ("init_image", "mask")


def infotext_fields(request: RenderRequest) -> tuple[dict[str, object], dict[str, object]]:
    """(fields right after "Model", fields after the batch's) for a request's mode, in A1111's order:
    "Denoising strength" among the core fields, the mode's own ones among A1111's extra parameters."""
    head: dict[str, object] = {}
    tail: dict[str, object] = {}
    if request.init_image is not None:
        head["Denoising strength"] = request.strength  # img2img's strength
        if request.mask or request.outpaint:
            tail["Mask blur"] = request.mask_blur
            tail["Inpaint area"] = AREA_NAMES[request.inpaint_area]
            if request.inpaint_area == "masked":
                tail["Masked area padding"] = request.masked_padding
        if request.outpaint:  # keyart's own: A1111's outpainting scripts record nothing
            tail |= {"Outpaint": request.outpaint, "Outpaint pixels": request.outpaint_pixels}
        if request.init_upscaler != "lanczos":  # A1111's "Upscaler for img2img" setting, when not its default
            tail["Upscaler for img2img"] = UPSCALER_NAMES[request.init_upscaler]
    elif request.hr_scale > 1:
        head["Denoising strength"] = request.denoising_strength  # the hires fix's second pass
        tail["Hires upscale"] = request.hr_scale
        if request.hr_second_pass_steps:
            tail["Hires steps"] = request.hr_second_pass_steps
        tail["Hires upscaler"] = UPSCALER_NAMES[request.hr_upscaler]
    return head, tail


def request_fields(fields: dict[str, str], number) -> dict[str, Any]:
    """RenderRequest fields from parsed infotext fields: the inverse of `infotext_fields`.

    "Denoising strength" is the hires fix's when "Hires upscale" is there, img2img's otherwise, as in A1111.
    """
    options: dict[str, Any] = {}
    if "Hires upscale" in fields:
        options["hr_scale"] = number(fields["Hires upscale"])
        if "Denoising strength" in fields:
            options["denoising_strength"] = number(fields["Denoising strength"])
        if "Hires steps" in fields:
            options["hr_second_pass_steps"] = number(fields["Hires steps"])
        if "Hires upscaler" in fields:
            options["hr_upscaler"] = _upscaler(fields["Hires upscaler"], "Hires upscaler")
    elif "Denoising strength" in fields:
        options["strength"] = number(fields["Denoising strength"])
    for key, name in (("Mask blur", "mask_blur"), ("Masked area padding", "masked_padding"), ("Outpaint pixels", "outpaint_pixels")):
        if key in fields:
            options[name] = number(fields[key])
    if "Inpaint area" in fields:
        area = fields["Inpaint area"].strip()
        options["inpaint_area"] = next((k for k, v in AREA_NAMES.items() if v.lower() == area.lower()), area)
    if "Outpaint" in fields:
        options["outpaint"] = fields["Outpaint"]
    if "Upscaler for img2img" in fields:
        options["init_upscaler"] = _upscaler(fields["Upscaler for img2img"], "Upscaler for img2img")
    return options


def _upscaler(name: str, key: str) -> str:
    """A1111's upscaler name as keyart's: its latent variants are "latent", any pixel upscaler "lanczos"."""
    name = name.strip()
    if name.lower() in ("latent", "lanczos"):
        return name.lower()
    kind = "latent" if name.lower().startswith("latent") else "lanczos"
    log.warning("%s %r is not keyart's; using %s (keyart has Latent and Lanczos)", key, name, UPSCALER_NAMES[kind])
    return kind


# -- the inputs' records ------------------------------------------------------------------------


def input_records(request: RenderRequest) -> dict[str, Any]:
    """{"init_image": {"path", "sha256", "size"}, "mask": {...}} for the files a request reads."""
    return {name: file_record(path) for name in INPUTS if (path := getattr(request, name)) is not None}


def file_record(path: str, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """{"path", "sha256", "size"} of an input file; `size` when the caller already knows it."""
    from .canvas import image_size

    return {"path": path, "sha256": file_sha256(path), "size": list(size if size is not None else image_size(path))}


def check_inputs(records: Any, png: object, replaced: set[str]) -> None:
    """Refuse to reproduce from an init image or mask that is gone or has changed since the render.

    Inputs in `replaced` were given anew (a variation, not a reproduction) and are not checked.
    """
    if not isinstance(records, dict):
        return
    for name in INPUTS:
        record = records.get(name)
        if name in replaced or not isinstance(record, dict) or not record.get("path"):
            continue
        what, option = name.replace("_", " "), "--" + name.replace("_", "-")
        path, expected = record["path"], record.get("sha256")
        if not os.path.isfile(path):
            raise MetadataError(
                f"{png} was rendered from the {what} {path}, which is gone; put it back "
                f"(sha256 {str(expected)[:12]}…), or pass {option} to render a variation from another file"
            )
        if expected and file_sha256(path) != expected:
            raise MetadataError(
                f"the {what} {path} has changed since {png} was rendered (sha256 was {expected[:12]}…, is "
                f"{file_sha256(path)[:12]}…); restore it, or pass {option} to render a variation from it as it is"
            )
