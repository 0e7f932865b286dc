"""A1111's img2img, inpaint, hires-fix and ControlNet fields in the infotext, and the input files'
records in the lineage.

A1111's parameters cannot name an init image, mask or control image: keyart's lineage keeps each
input's path and SHA-256, and a reproduction refuses a file that is gone or has changed. ControlNet
units are written as A1111's ControlNet extension writes them: `ControlNet 0: "Module: canny, Model:
..., Weight: 1, ..., Guidance Start: 0, Guidance End: 1, ..."`, one field per unit.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .control import CANNY_THRESHOLDS, CONTROL_TYPES, NONE, type_named
from .errors import MetadataError
from .hashes import file_sha256
from .request import FILE_FIELDS, RenderRequest

log = logging.getLogger(__name__)

UPSCALER_NAMES = {"latent": "Latent", "lanczos": "Lanczos"}  # A1111's names in "Hires upscaler"
AREA_NAMES = {"whole": "Whole picture", "masked": "Only masked"}  # A1111's "Inpaint area" choices
INPUTS = FILE_FIELDS  # recorded by path and sha256, with each control unit's image
CONTROL_KEY = "ControlNet {}"  # A1111's ControlNet extension: "ControlNet 0", "ControlNet 1", ...


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
    if request.tiling == "on":  # A1111 writes it among its core fields, only when on
        head["Tiling"] = True
    tail |= control_fields(request)
    if request.reference is not None:  # keyart's own (A1111 writes an IP-Adapter as a ControlNet unit)
        tail["IP-Adapter scale"] = request.reference_scale
    if request.styled_blend is not None:  # keyart's own: A1111 has no interpolated conditioning
        tail |= {"Prompt blend": request.blend, "Blend prompt": request.blend_prompt}
    if request.freeu != "off":  # keyart's own: A1111 has no FreeU (Forge and ComfyUI name it their own ways)
        tail["FreeU"] = request.freeu
    return head, tail


def control_fields(request: RenderRequest, models: list[str] | None = None) -> dict[str, str]:
    """One `ControlNet N` field per unit; `models` are the models' names as the engine loaded them
    (default: the unit's type). Our maps are resized to the render ("Just Resize") at its size."""
    fields = {}
    for i, unit in enumerate(request.controls):
        parts = {"Module": unit.module, "Model": models[i] if models else unit.type, "Weight": unit.weight, "Resize Mode": "Just Resize",
                 "Processor Res": min(request.width, request.height)}  # fmt: skip
        if unit.module == "canny":
            parts |= {"Threshold A": CANNY_THRESHOLDS[0], "Threshold B": CANNY_THRESHOLDS[1]}
        parts |= {"Guidance Start": unit.start, "Guidance End": unit.end, "Pixel Perfect": False, "Control Mode": "Balanced"}
        fields[CONTROL_KEY.format(i)] = ", ".join(f"{k}: {_number_text(v)}" for k, v in parts.items())
    return fields


def control_units(fields: dict[str, str], number) -> list[dict[str, Any]]:
    """The units an infotext's `ControlNet N` fields describe, in order, without their images (A1111's
    parameters cannot name them): [{"type", "weight", "start", "end", "preprocessor"}]. A unit of a
    type keyart has no ControlNet for is left out, with a warning."""
    from .metadata import parameter_pairs

    described = []
    for i in range(len(fields)):
        text = fields.get(CONTROL_KEY.format(i))
        if text is None:
            break
        parts = dict(parameter_pairs(text))
        module = parts.get("Module", "").strip().lower()
        kind = type_named(parts.get("Model", ""), module)
        if kind is None:  # an A1111 unit keyart has no model for (tile, ip-adapter...): the rest still renders
            log.warning("ControlNet %d (%s) is of a type keyart has no ControlNet for (keyart's: %s); it is left out", i, text, ", ".join(CONTROL_TYPES))
            continue
        described.append({
            "type": kind, "weight": number(parts.get("Weight", "1")), "start": number(parts.get("Guidance Start", "0")),
            "end": number(parts.get("Guidance End", "1")), "preprocessor": NONE if module in ("", NONE) else "auto",
        })  # fmt: skip
    return described


def control_flags(described: list[dict[str, Any]]) -> str:
    """The `--control` flags that give these units again, with IMAGE for each image to pass."""
    flags = []
    for unit in described:
        kind = unit["type"] + ("/none" if unit["preprocessor"] == NONE else "")
        flags.append(f"--control {kind}:IMAGE:{_number_text(unit['weight'])}:{_number_text(unit['start'])}:{_number_text(unit['end'])}")
    return " ".join(flags)


def _number_text(value: object) -> str:
    if isinstance(value, float):
        from .metadata import number_text

        return number_text(value)
    return str(value)


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
    if "IP-Adapter scale" in fields:
        options["reference_scale"] = number(fields["IP-Adapter scale"])
    if "Prompt blend" in fields and "Blend prompt" in fields:
        options |= {"blend": number(fields["Prompt blend"]), "blend_prompt": fields["Blend prompt"]}
    if "Upscaler for img2img" in fields:
        options["init_upscaler"] = _upscaler(fields["Upscaler for img2img"], "Upscaler for img2img")
    if "Tiling" in fields:  # "True" as A1111 writes it; another word goes on to RenderRequest's own error
        said = fields["Tiling"].strip()
        options["tiling"] = {"true": "on", "on": "on", "false": "off", "off": "off"}.get(said.lower(), said)
    if "FreeU" in fields:
        options["freeu"] = fields["FreeU"]
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
    """{"init_image": {"path", "sha256", "size"}, "mask": {...}, "controls": [{...}]} for the files a request reads."""
    records: dict[str, Any] = {name: file_record(path) for name in INPUTS if (path := getattr(request, name)) is not None}
    if request.controls:
        records["controls"] = [file_record(unit.image) for unit in request.controls]
    return records


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
    files = [(name, records.get(name), name.replace("_", " "), "--" + name.replace("_", "-")) for name in INPUTS]
    if isinstance(records.get("controls"), (list, tuple)):
        files += [("controls", record, "control image", "--control") for record in records["controls"]]
    for name, record, what, option in files:
        if name in replaced or not isinstance(record, dict) or not record.get("path"):
            continue
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
