"""ControlNet units in the vocabulary of A1111's ControlNet extension: a type (the ControlNet model),
a control image, a weight, and the fraction of the steps it guides (start, end); parsed from
`TYPE[/PREPROCESSOR]:IMAGE[:WEIGHT[:START:END]]`, checked before any work, and the preprocessors that
turn a picture into the map a ControlNet reads.

Preprocessors that need no weights: `canny` (OpenCV's Canny edge detector, A1111's thresholds),
`softedge` (soft, blurred edges) and `lineart` (thin, hard lines), both with Pillow; `none` takes the
image as a ready map. `depth` and `pose` maps come from their own models, or ready made with `/none`.
Extension's documentation: https://github.com/Mikubill/sd-webui-controlnet/wiki
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidRequest, ModelNotFound

CONTROL_TYPES = ("canny", "softedge", "lineart", "depth", "pose")  # the ControlNet models a unit may name
MODEL_FREE = ("canny", "softedge", "lineart")  # types whose preprocessor is pixels only
NONE = "none"  # the preprocessor that takes the control image as the map
AUTO = "auto"  # the type's own preprocessor
MAX_WEIGHT = 2.0  # A1111's Control Weight slider goes to 2
CANNY_THRESHOLDS = (100, 200)  # A1111's canny defaults: low and high hysteresis thresholds
MAX_UNITS = 4  # A1111 shows 3 units by default and allows more; each ControlNet costs about a UNet's encoder per step
EXAMPLE = "canny:sketch.png:0.8:0:0.6"
SYNTAX = "TYPE[/PREPROCESSOR]:IMAGE[:WEIGHT[:START:END]]"


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet unit: `type` names the model, `image` the picture (or ready map with
    preprocessor "none"), `weight` its strength (0-2), `start`/`end` the fraction of the steps it guides."""

    type: str
    image: str
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    preprocessor: str = AUTO

    def __post_init__(self) -> None:
        kind = str(self.type).strip().lower()
        if kind not in CONTROL_TYPES:
            raise InvalidRequest(f"unknown control type {self.type!r}; choose one of: {', '.join(CONTROL_TYPES)} (e.g. --control {EXAMPLE})")
        object.__setattr__(self, "type", kind)
        pre = str(self.preprocessor).strip().lower()
        if pre not in (AUTO, NONE):
            raise InvalidRequest(f"a {kind} unit's preprocessor is its own ({kind}) or none for a ready map (got {self.preprocessor!r})")
        object.__setattr__(self, "preprocessor", pre)
        weight = _number("control weight", self.weight)
        if not 0 <= weight <= MAX_WEIGHT:
            raise InvalidRequest(f"control weight must be between 0 and {MAX_WEIGHT:g} (got {weight:g}); 1 follows the map, 0.5 leans on it lightly")
        start, end = _number("control start", self.start), _number("control end", self.end)
        if not 0 <= start < end <= 1:
            raise InvalidRequest(f"control start and end are fractions of the steps with 0 <= start < end <= 1 (got {start:g} and {end:g}); 0:0.6 guides the composition and frees the detail")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        from .canvas import image_size

        image_size(str(self.image), what="control image")  # there, and an image Pillow reads
        object.__setattr__(self, "image", str(Path(self.image).expanduser().absolute()))

    @property
    def module(self) -> str:
        """The preprocessor that runs, as A1111's infotext names it ("Module: canny", "Module: none")."""
        return self.type if self.preprocessor == AUTO else NONE

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "image": self.image, "weight": self.weight, "start": self.start, "end": self.end, "preprocessor": self.preprocessor}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControlUnit:
        known = {"type", "image", "weight", "start", "end", "preprocessor"}
        if not isinstance(data, dict) or set(data) - known or not {"type", "image"} <= set(data):
            raise InvalidRequest(f"a control unit is an object with type and image (and weight, start, end, preprocessor); got {data!r}")
        return cls(**data)


# Words in A1111's module and model names that say the control type ("softedge_hed", "diffusers_xl_canny_full").
TYPE_WORDS = (("canny", "canny"), ("softedge", "softedge"), ("hed", "softedge"), ("pidi", "softedge"), ("lineart", "lineart"),
              ("depth", "depth"), ("pose", "pose"))  # fmt: skip


def type_named(model: str, module: str = "") -> str | None:
    """The control type an A1111 unit's model name says (its module's, when it names no model); None
    when neither names one of CONTROL_TYPES."""
    model, module = str(model or "").strip().lower(), str(module or "").strip().lower()
    named = model if model not in ("", NONE) else module
    return next((kind for word, kind in TYPE_WORDS if word in named), None)


def units(value: Any) -> tuple[ControlUnit, ...]:
    """A request's control units from what a caller gives: units, their dicts (JSON), `--control` texts."""
    if value is None:
        return ()
    if isinstance(value, (str, ControlUnit, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidRequest(f"controls must be a list of control units ({SYNTAX}, or objects with type and image); got {value!r}")
    parsed = tuple(v if isinstance(v, ControlUnit) else ControlUnit.from_dict(v) if isinstance(v, dict) else parse_control(v) for v in value)
    if len(parsed) > MAX_UNITS:
        raise InvalidRequest(f"at most {MAX_UNITS} control units in one render (got {len(parsed)}); combine maps into one image, or drop the weakest")
    return parsed


def parse_control(text: str) -> ControlUnit:
    """A unit from `TYPE[/PREPROCESSOR]:IMAGE[:WEIGHT[:START:END]]` (the image path may hold colons)."""
    head, sep, rest = str(text).partition(":")
    if not sep or not rest.strip():
        raise InvalidRequest(f"--control takes {SYNTAX} (got {text!r}); e.g. --control {EXAMPLE}")
    kind, _, pre = head.partition("/")
    parts = rest.split(":")
    numbers: list[float] = []
    while len(parts) > 1 and len(numbers) < 3 and _is_number(parts[-1]):
        numbers.insert(0, float(parts.pop()))
    if len(numbers) == 2:
        raise InvalidRequest(f"--control {text!r}: after the image give WEIGHT, or WEIGHT:START:END, not two numbers; e.g. --control {EXAMPLE}")
    weight, start, end = (numbers + [1.0, 0.0, 1.0][len(numbers) :])[:3] if numbers else (1.0, 0.0, 1.0)
    return ControlUnit(kind, ":".join(parts), weight=weight, start=start, end=end, preprocessor=pre or AUTO)


def control_map(unit: ControlUnit, size: tuple[int, int], depth: Any = None):
    """(the unit's map as an RGB image of `size`, notes for the user): the image resized when its
    size differs (and said so), then preprocessed; `depth` (an estimator with `estimate(picture)`,
    imagegen.depth's) makes a depth unit's map."""
    from PIL import Image

    from .canvas import open_image

    picture = open_image(unit.image, what="control image").convert("RGB")
    notes = []
    if picture.size != tuple(size):
        notes.append(f"the {unit.type} control image {Path(unit.image).name} is {picture.width}x{picture.height}; resized to {size[0]}x{size[1]}, the render's size")
        picture = picture.resize(tuple(size), Image.Resampling.LANCZOS)
    if unit.module == NONE:
        return picture, notes
    if unit.type == "depth" and depth is not None:
        return depth.estimate(picture), notes
    if unit.type not in MODEL_FREE:
        needs = "set KEYART_DEPTH_MODEL to a depth-estimation model, or" if unit.type == "depth" else "keyart has no pose estimator yet:"
        raise ModelNotFound(f"the {unit.type} preprocessor needs an estimation model; {needs} give a ready {unit.type} map: --control {unit.type}/none:MAP.png")
    return PREPROCESSORS[unit.type](picture), notes


# -- the preprocessors: an RGB picture in, an RGB map (white lines on black) out ---------------------


def canny(picture):
    """OpenCV's Canny edges at A1111's thresholds: one-pixel white edges on black."""
    import cv2
    import numpy as np
    from PIL import Image

    gray = cv2.cvtColor(np.asarray(picture), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, *CANNY_THRESHOLDS)
    return Image.fromarray(edges).convert("RGB")


def softedge(picture):
    """Soft edges: the gradient of a blurred picture, stretched to full range and blurred again, as
    HED-style maps look (thick, graded), without a model."""
    from PIL import ImageFilter, ImageOps

    gray = ImageOps.grayscale(picture).filter(ImageFilter.GaussianBlur(2))
    edges = ImageOps.autocontrast(gray.filter(ImageFilter.FIND_EDGES), cutoff=1)
    return edges.filter(ImageFilter.GaussianBlur(1.5)).convert("RGB")


def lineart(picture):
    """Thin, hard lines: a sharpened picture's edges, thresholded at their own mean plus a spread."""
    import numpy as np
    from PIL import Image, ImageFilter, ImageOps

    gray = ImageOps.grayscale(picture).filter(ImageFilter.SMOOTH_MORE)
    edges = np.asarray(gray.filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    cut = edges.mean() + 2 * edges.std()  # the strongest few percent: outlines, not texture
    return Image.fromarray(np.where(edges > cut, 255, 0).astype(np.uint8)).convert("RGB")


PREPROCESSORS = {"canny": canny, "softedge": softedge, "lineart": lineart}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _number(label: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidRequest(f"{label} must be a number (got {value!r})")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{label} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{label} must be a finite number (got {value!r})")
    return number
