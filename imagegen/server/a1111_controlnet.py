"""The units of A1111's ControlNet extension in an A1111 body (`alwayson_scripts.controlnet.args`) as
keyart control units, their base64 images written to the request's scratch folder.

Each unit is an object with `image` (base64; or `{"image": ..., "mask": ...}`; older clients send
`input_image`), `module`, `model`, `weight`, `guidance_start`, `guidance_end` and `enabled`, as the
extension's API documents (https://github.com/Mikubill/sd-webui-controlnet/wiki/API). The control
type is read from the model's name ("diffusers_xl_canny_full"), or the module's ("softedge_hed") when
the unit names no model;
module "none" takes the image as a ready map. A unit without an image guides an img2img render from
its init image, as in A1111. Settings keyart's units do not have (thresholds, processor resolution,
resize and control modes, pixel perfect) are accepted and not used: maps are made at the render's
size with A1111's default canny thresholds. An IP-Adapter unit (module or model `ip-adapter...`, as
the extension sends one) becomes the render's reference image, its weight the reference scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..control import CONTROL_TYPES, MAX_UNITS, type_named
from .a1111_fields import decode_b64
from .errors import ApiError
from .uploads import open_image

SCRIPT = "controlnet"
ADAPTER = "ip-adapter"  # an IP-Adapter unit: the render's reference image


def fields(alwayson: dict[str, Any] | None, folder: Path, *, init_image: str | None = None) -> dict[str, Any]:
    """RenderRequest fields from a body's ControlNet units: `controls` and, for an IP-Adapter unit,
    `reference` and `reference_scale`; {} when there are none. Images are files in `folder`."""
    found = units(alwayson, folder, init_image=init_image)
    adapters = [u for u in found if u["type"] == ADAPTER]
    if len(adapters) > 1:
        raise ApiError(400, "one IP-Adapter unit per render (a single reference image)", param="alwayson_scripts", code="invalid_value")
    values: dict[str, Any] = {"controls": [u for u in found if u["type"] != ADAPTER]} if len(adapters) < len(found) else {}
    if adapters:
        values |= {"reference": adapters[0]["image"], "reference_scale": adapters[0]["weight"]}
    return values


def units(alwayson: dict[str, Any] | None, folder: Path, *, init_image: str | None = None) -> list[dict[str, Any]]:
    """The enabled ControlNet units of a body's `alwayson_scripts`, as control unit dicts whose images
    are files in `folder` (type "ip-adapter" for an IP-Adapter unit); [] when there are none. 400 for
    a unit keyart cannot honour."""
    script = next((v for k, v in (alwayson or {}).items() if str(k).strip().lower() == SCRIPT), None)
    if script is None:
        return []
    args = script.get("args") if isinstance(script, dict) else script
    if not isinstance(args, list):
        raise ApiError(400, "alwayson_scripts.controlnet.args must be a list of ControlNet units", param="alwayson_scripts", code="invalid_value")
    enabled = [(i, unit) for i, unit in enumerate(args) if isinstance(unit, dict) and unit.get("enabled", True)]
    if len(enabled) > MAX_UNITS:
        raise ApiError(400, f"at most {MAX_UNITS} ControlNet units in one render (got {len(enabled)})", param="alwayson_scripts", code="invalid_value")
    return [_unit(i, unit, folder, init_image) for i, unit in enabled]


def _unit(i: int, unit: dict[str, Any], folder: Path, init_image: str | None) -> dict[str, Any]:
    param = f"alwayson_scripts.controlnet.args[{i}]"
    module, model = str(unit.get("module") or "none").strip().lower(), str(unit.get("model") or "").strip().lower()
    kind = type_named(model, module)
    if any(word in name for name in (module, model) for word in ("ip-adapter", "ip_adapter")):
        kind = ADAPTER
    if kind is None:
        raise ApiError(
            400, f"ControlNet unit {i} (model {unit.get('model')!r}, module {unit.get('module')!r}) is of a type this server has no "
            f"ControlNet for; its types: {', '.join(CONTROL_TYPES)}", param=param, code="invalid_value",
        )  # fmt: skip
    image = unit.get("image", unit.get("input_image"))
    if isinstance(image, dict):  # the newer API: {"image": b64, "mask": b64}
        image = image.get("image")
    if image:
        path = folder / f"control-{i}.png"
        open_image(decode_b64(image, f"{param}.image"), param=f"{param}.image", convert="RGB").save(path)
    elif init_image is not None:
        path = Path(init_image)  # A1111 guides img2img from the init image when a unit has none
    else:
        raise ApiError(400, f"ControlNet unit {i} has no image (base64 in 'image')", param=f"{param}.image", code="missing_required_parameter")
    return {
        "type": kind, "image": str(path), "weight": unit.get("weight", 1.0), "start": unit.get("guidance_start", 0.0),
        "end": unit.get("guidance_end", 1.0), "preprocessor": "none" if module in ("none", "") else "auto",
    }  # fmt: skip

