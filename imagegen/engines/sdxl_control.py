"""ControlNet for the SDXL engine: the models (KEYART_CONTROLNET_DIR/<type>), the control pipelines
built over the base's own models, and each render's guidance (maps, weights, start/end, what ran).

The units guide the first pass: text to image through diffusers' SDXL ControlNet pipeline; img2img,
inpaint and outpaint through its ControlNet inpaint pipeline (img2img as an inpaint of the whole
picture, which keeps the refiner's hand-off: diffusers' ControlNet img2img pipeline has none). The
hires fix's second pass and the refiner run without them, as the refiner has no ControlNet.

A union model (`union/` or `union.safetensors`: one ControlNet for many types, as xinsir's
controlnet-union-sdxl) serves every type that has no model of its own, through diffusers' union
pipelines: each unit is the union model told its type (`control_mode`), with its own weight and
steps. A render's units are all union or all their own models (diffusers runs the two apart).
torch and diffusers are imported in functions.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..control import MODEL_FREE, ControlUnit, control_map
from ..depth import locate as locate_depth
from ..errors import InvalidRequest, ModelNotFound
from ..settings import variable

log = logging.getLogger(__name__)

ENV = variable("controlnet_dir").env  # KEYART_CONTROLNET_DIR
SINGLE_FILE = (".safetensors", ".ckpt")
UNION = "union"  # the union model's name under KEYART_CONTROLNET_DIR
# The union model's control types (diffusers' `control_mode`, as the union models number them).
UNION_MODES = {"pose": 0, "depth": 1, "softedge": 2, "canny": 3, "lineart": 3}


def _model_at(root: Path, name: str) -> Path | None:
    if (root / name / "config.json").is_file():
        return root / name
    return next((root / f"{name}{suffix}" for suffix in SINGLE_FILE if (root / f"{name}{suffix}").is_file()), None)


def is_union(path: Path) -> bool:
    return (path.name if path.is_dir() else path.stem) == UNION


def locate(folder: str | Path | None, kind: str) -> Path:
    """Where the `kind` ControlNet is under `folder`: `<kind>/` (a diffusers folder) or `<kind>.safetensors`,
    else the union model (`union/` or `union.safetensors`) when there is one."""
    if not folder:
        raise ModelNotFound(f"a {kind} control unit needs a {kind} ControlNet: set {ENV} to a folder holding {kind}/ (a diffusers ControlNet) or {kind}.safetensors")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ModelNotFound(f"{ENV}={folder}: no such folder; make it, with one ControlNet per control type ({kind}/ or {kind}.safetensors)")
    own = _model_at(root, kind)
    if own is not None:
        return own
    if (root / kind).is_dir():
        raise ModelNotFound(f"{root / kind} is not a diffusers ControlNet folder (no config.json); save the model there with save_pretrained, or put {kind}.safetensors in {root}")
    union = _model_at(root, UNION)
    if union is not None:
        return union
    raise ModelNotFound(
        f"no {kind} ControlNet in {root}: put an SDXL {kind} ControlNet there as {kind}/ (a diffusers folder) or {kind}.safetensors, "
        f"or a union model as {UNION}/"
    )


def check_request(settings: Any, request) -> None:
    """The sdxl engine's request check (the engine table's `check_request`): every control unit's
    model is in KEYART_CONTROLNET_DIR, and its map can be made, loading nothing."""
    paths = [locate(settings.controlnet_dir, unit.type) for unit in request.controls]
    check_union(request.controls, [is_union(p) for p in paths])
    for unit in request.controls:
        if unit.module != "none" and unit.type == "depth":
            locate_depth(settings.depth_model)  # its map needs the depth-estimation model
        elif unit.module != "none" and unit.type not in MODEL_FREE:
            control_map(unit, (request.width, request.height))  # pose says to pass a ready map


def check_union(units: tuple[ControlUnit, ...], union: list[bool]) -> None:
    """Refuse units some of which run on the union model and some on their own models."""
    if any(union) and not all(union):
        shared = ", ".join(u.type for u, on in zip(units, union) if on)
        own = ", ".join(u.type for u, on in zip(units, union) if not on)
        raise InvalidRequest(
            f"the {shared} unit(s) run on the {UNION} ControlNet and the {own} unit(s) on their own models; diffusers runs a union "
            f"model in its own pipeline, so one render takes one or the other: drop a unit, or give {shared} a model of its own"
        )


class ControlNets:
    """The ControlNets of one engine, loaded on first use onto the base's device and dtype, kept."""

    def __init__(self, folder: str | Path | None):
        self.folder = folder
        self._loaded: dict[Path, tuple[Any, str, str | None]] = {}  # model path -> (model, name, short hash): the union model once for all its types

    def get(self, kind: str, device, dtype) -> tuple[Any, str, str | None]:
        path = locate(self.folder, kind)
        if path not in self._loaded:
            self._loaded[path] = self._load(path, device, dtype)
        return self._loaded[path]

    @staticmethod
    def _load(path: Path, device, dtype) -> tuple[Any, str, str | None]:
        from diffusers import ControlNetModel, ControlNetUnionModel

        cls = ControlNetUnionModel if is_union(path) else ControlNetModel
        try:
            if path.is_file():
                from ..hashes import model_hash

                net, name, short = cls.from_single_file(str(path), dtype=dtype), path.stem, model_hash(str(path))
            else:
                net, name, short = cls.from_pretrained(str(path), dtype=dtype), path.name, None
        except (OSError, ValueError) as exc:
            hint = " A single ControlNet file reads its config from the hub; offline, save it as a diffusers folder instead." if path.is_file() else ""
            raise ModelNotFound(f"cannot load the ControlNet {path}: {exc}.{hint}") from exc
        # Offload modes keep the ControlNet on the device: it runs beside the UNet at every step.
        return net.to(device), name, short


class Guidance:
    """One render's ControlNet guidance: its units, their maps at the render's size, and their models."""

    def __init__(self, units: tuple[ControlUnit, ...], maps: list, models: list[tuple[Any, str, str | None]], notes: list[str], estimator: str | None = None):
        self.units, self.maps, self.models, self.notes = units, maps, models, notes
        self.estimator = estimator  # the depth-estimation model that made depth units' maps
        self.calls: list[list[float]] = []  # each ControlNet evaluation's scales, one per unit, as it ran
        self.order = 1  # model evaluations per step (2 for Heun and DPM2), set when the pass starts

    @classmethod
    def prepare(cls, nets: ControlNets, units: tuple[ControlUnit, ...], size: tuple[int, int], device, dtype, *, depth: Any = None) -> Guidance:
        """The maps (each image resized to `size` if it differs, said in a warning; a depth unit's made
        by `depth`, imagegen.depth's estimator), then the models."""
        maps, notes = [], []
        for unit in units:
            picture, said = control_map(unit, size, depth)
            maps.append(picture)
            notes += said
        for note in notes:
            log.warning("%s", note)
        models = [nets.get(u.type, device, dtype) for u in units]
        check_union(units, [_union_model(m) for m, _, _ in models])
        estimated = any(u.type == "depth" and u.module != "none" for u in units)
        return cls(units, maps, models, notes, depth.name if estimated and depth is not None else None)

    @property
    def union(self) -> bool:
        """Whether the units run on the union model (its pipelines, each unit told its type)."""
        return _union_model(self.models[0][0])

    @property
    def net(self):
        """The pipeline's `controlnet`: one model, or a list (diffusers makes it a MultiControlNetModel)."""
        nets = [model for model, _, _ in self.models]
        return nets[0] if len(nets) == 1 else nets

    def kwargs(self, image_key: str) -> dict[str, Any]:
        """The ControlNet arguments of a pipeline call; `image_key` is where its maps go ("image" for
        text to image, "control_image" for the inpaint pipeline)."""
        one = len(self.units) == 1
        steps = {"control_guidance_start": [u.start for u in self.units], "control_guidance_end": [u.end for u in self.units]}
        if self.union:  # a map and a type per unit, as lists even for one; the union pipelines all call the maps control_image
            modes = [UNION_MODES[u.type] for u in self.units]
            return {"control_image": list(self.maps), "control_mode": modes, "controlnet_conditioning_scale": self.units[0].weight if one else [u.weight for u in self.units], **steps}
        return {
            image_key: self.maps[0] if one else list(self.maps),
            "controlnet_conditioning_scale": self.units[0].weight if one else [u.weight for u in self.units],
            **steps,
        }

    @contextmanager
    def watched(self, pipe):
        """Record the scale each unit ran at in every ControlNet evaluation of a pipeline call."""
        self.order = getattr(pipe.scheduler, "order", 1)

        def seen(module, args, kwargs):
            scale = kwargs.get("conditioning_scale", 1.0)
            self.calls.append([float(s) for s in scale] if isinstance(scale, (list, tuple)) else [float(scale)])

        handle = pipe.controlnet.register_forward_pre_hook(seen, with_kwargs=True)
        self.calls.clear()  # one call's record: every batch of a render runs the same steps
        try:
            yield
        finally:
            handle.remove()

    def steps(self, unit: int) -> list[int] | None:
        """[first, last] step (1-based) unit `unit` guided in the last call, or None if it never did."""
        active = [i // self.order + 1 for i, scales in enumerate(self.calls) if scales[unit] > 0]
        return [active[0], active[-1]] if active else None

    def record(self) -> list[dict[str, Any]]:
        """The lineage's "controls": each unit as asked, its model, and the steps it guided."""
        return [
            unit.to_dict() | {"module": unit.module, "model": name, "model_hash": short, "steps": self.steps(i)}
            | ({"estimator": self.estimator} if unit.type == "depth" and unit.module != "none" else {})
            for i, (unit, (_, name, short)) in enumerate(zip(self.units, self.models))
        ]

    def model_names(self) -> list[str]:
        """Each unit's model as A1111 writes it: "name [hash]" for a file, the folder's name otherwise."""
        return [f"{name} [{short}]" if short else name for _, name, short in self.models]


def _union_model(model) -> bool:
    from diffusers import ControlNetUnionModel

    return isinstance(model, ControlNetUnionModel)


def control_pipe(base, kind: str, guidance: Guidance):
    """The SDXL ControlNet pipeline for `kind` ("txt2img" or "inpaint") over `base`'s models and the guidance's ControlNets."""
    from diffusers import (
        StableDiffusionXLControlNetInpaintPipeline, StableDiffusionXLControlNetPipeline, StableDiffusionXLControlNetUnionInpaintPipeline,
        StableDiffusionXLControlNetUnionPipeline,
    )  # fmt: skip

    pipes = {"txt2img": StableDiffusionXLControlNetPipeline, "inpaint": StableDiffusionXLControlNetInpaintPipeline}
    if guidance.union:
        pipes = {"txt2img": StableDiffusionXLControlNetUnionPipeline, "inpaint": StableDiffusionXLControlNetUnionInpaintPipeline}
    pipe = pipes[kind](
        **base.components,
        controlnet=guidance.net,
        force_zeros_for_empty_prompt=base.config.force_zeros_for_empty_prompt,
        add_watermarker=getattr(base, "watermark", None) is not None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
