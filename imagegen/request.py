"""One render vocabulary for every engine: `RenderRequest` in, `RenderedImage`s out.

Field names are diffusers' (`prompt`, `num_inference_steps`, `guidance_scale`, `strength`...); only
the edges translate to A1111's names. A request validates itself on construction (its init image
and mask files included), so an engine never sees one it cannot render, and bad input fails before
anything is loaded or written.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from . import control, freeu, prompt_syntax, samplers, styles
from .errors import InvalidRequest

# The sizes SDXL was trained on (aspect buckets around one megapixel).
SDXL_SIZES = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344), (1536, 640), (640, 1536))
SIZE_HINT = "SDXL works best at " + ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
MAX_SEED = 2**32 - 1  # A1111's and ComfyUI's range: seeds are 32-bit unsigned
MAX_BATCH_SIZE = 8  # A1111's largest batch size (its slider's end)
REFINER_MODES = ("auto", "on", "off")
INPAINT_AREAS = ("whole", "masked")  # A1111's "Whole picture" and "Only masked"
HR_UPSCALERS = ("latent", "lanczos")  # A1111's "Latent" (bilinear on latents) and "Lanczos" (on pixels)
TILINGS = ("off", "on")  # A1111's Tiling: "on" makes the image repeat seamlessly both ways
# Image-mode fields: left out of to_dict() at their defaults, so a text-to-image request serialises
# as it did before they existed (catalog image keys and old lineage stay the same).
MODE_FIELDS = (
    "init_image", "init_upscaler", "strength", "mask", "mask_blur", "inpaint_area", "masked_padding", "outpaint",
    "outpaint_pixels", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength", "subseed",
    "subseed_strength", "controls", "reference", "reference_scale", "blend_prompt", "blend", "tiling", "freeu",
)  # fmt: skip
# The fields that name one input file each; control units name theirs in `controls` (unit.image).
FILE_FIELDS = ("init_image", "mask", "reference")


@dataclass(frozen=True)
class RenderRequest:
    """What to render. `seed=-1` asks for a random seed; image i of a batch uses seed+i."""

    prompt: str
    negative_prompt: str = ""
    style: str | None = None
    sampler: str = "DPM++ 2M"
    schedule_type: str = "Automatic"  # as chosen; `schedule` is what "Automatic" resolves to
    num_inference_steps: int = 30
    guidance_scale: float = 7.0
    width: int = 1024
    height: int = 1024
    seed: int = -1
    batch_size: int = 1
    batch_count: int = 1
    refiner: str = "auto"  # "auto": use the refiner when one is configured; "on" requires one
    refiner_switch_at: float = 0.8
    # A1111's variation seed: the starting noise is slerp(noise(seed), noise(subseed), subseed_strength).
    subseed: int = -1  # -1 is random, drawn only when subseed_strength > 0
    subseed_strength: float = 0.0  # 0: the seed's image; 1: the variation seed's starting noise
    # img2img, inpaint and outpaint (A1111's img2img tab). The output is width x height, except that
    # inpaint_area="masked" keeps the (outpainted) init image's own size; see canvas.output_size.
    init_image: str | None = None  # a PNG/JPEG path (made absolute); resized to width x height
    init_upscaler: str = "lanczos"  # enlarging it: "lanczos" on pixels (A1111's default) or "latent"
    strength: float = 0.75  # how much of the init image is repainted: A1111's img2img "Denoising strength"
    mask: str | None = None  # inpaint: the init image's size, white = repaint, black = keep
    mask_blur: int = 4  # px of Gaussian blur on the mask's edge, where the repaint is pasted back
    inpaint_area: str = "whole"  # "whole": the picture at width x height; "masked": the mask's box at width x height
    masked_padding: int = 32  # px of context around the mask's box, for inpaint_area="masked"
    outpaint: str | None = None  # "left,right,up,down" (any of them): grow the init image that way
    outpaint_pixels: int = 128  # px added in each outpaint direction
    # The hires fix (text to image only): render, upscale by hr_scale, then a second img2img pass.
    hr_scale: float = 1.0  # 1 = off; 1.5 and 2 are usual
    hr_upscaler: str = "latent"  # "latent" (A1111's default) or "lanczos"
    hr_second_pass_steps: int = 0  # 0 = num_inference_steps, as A1111
    denoising_strength: float = 0.7  # the second pass's strength (A1111's txt2img "Denoising strength")
    # ControlNet (imagegen.control.ControlUnit, or their dicts / --control texts): each unit a type,
    # a control image, a weight and the fraction of the first pass's steps it guides.
    controls: tuple = ()
    # IP-Adapter: a reference image whose style or subject the render takes, at reference_scale.
    reference: str | None = None  # a PNG/JPEG path (made absolute)
    reference_scale: float = 0.6  # 0: ignored; 1: the reference dominates the prompt
    # Interpolated conditioning: the prompt's encoding mixed (1 - blend) : blend with blend_prompt's (styled alike).
    blend_prompt: str | None = None
    blend: float = 0.0
    # A1111's Tiling: every convolution of the UNet and VAE wraps around the edges, so the image tiles seamlessly.
    tiling: str = "off"
    # FreeU: the UNet's deepest up blocks reweighed (imagegen.freeu): "off", "on" (the SDXL values) or "b1=1.3,b2=1.4,s1=0.9,s2=0.2".
    freeu: str = "off"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        if not isinstance(self.prompt, str):
            raise InvalidRequest("prompt must be text")
        if not isinstance(self.negative_prompt, str):
            raise InvalidRequest("negative prompt must be text")
        # The prompt language's syntax errors come now, before any engine loads.
        prompt_syntax.parse(self.prompt)
        prompt_syntax.parse(self.negative_prompt)
        sampler, schedule_type = samplers.normalize(self.sampler, self.schedule_type)
        set_("sampler", sampler)
        set_("schedule_type", schedule_type)
        if self.style is not None:
            if not isinstance(self.style, str):
                raise InvalidRequest(f"style must be a style name (got {self.style!r})")
            set_("style", None if self.style.strip().lower() in ("", styles.NO_STYLE) else styles.get(self.style).name)
        steps = _integer("steps", self.num_inference_steps)
        if not 1 <= steps <= 150:
            raise InvalidRequest(f"steps must be between 1 and 150 (got {steps}); SDXL needs 20-40 for final images")
        set_("num_inference_steps", steps)
        cfg = _number("CFG scale", self.guidance_scale)
        if not 1.0 <= cfg <= 30.0:
            raise InvalidRequest(f"CFG scale must be between 1 and 30 (got {cfg:g}); 5-8 suits SDXL")
        set_("guidance_scale", cfg)
        for name in ("width", "height"):
            value = _integer(name, getattr(self, name))
            if value % 8 or not 64 <= value <= 2048:
                raise InvalidRequest(f"{name} must be a multiple of 8 between 64 and 2048 (got {value}); {SIZE_HINT}")
            set_(name, value)
        seed = _integer("seed", self.seed)
        if not -1 <= seed <= MAX_SEED:
            raise InvalidRequest(f"seed must be -1 (random) or between 0 and {MAX_SEED} (got {seed})")
        set_("seed", seed)
        for name, top in (("batch_size", MAX_BATCH_SIZE), ("batch_count", 100)):
            value = _integer(name.replace("_", " "), getattr(self, name))
            if not 1 <= value <= top:
                raise InvalidRequest(f"{name.replace('_', ' ')} must be between 1 and {top} (got {value})")
            set_(name, value)
        if self.refiner not in REFINER_MODES:
            raise InvalidRequest(f"refiner must be one of {', '.join(REFINER_MODES)} (got {self.refiner!r})")
        if self.tiling not in TILINGS:
            raise InvalidRequest(f"tiling must be off or on (got {self.tiling!r}); on makes the image repeat seamlessly, as A1111's Tiling")
        set_("freeu", freeu.text(freeu.parse(self.freeu)))  # one spelling: "off", or all four factors
        switch = _number("refiner switch at", self.refiner_switch_at)
        if not 0.0 < switch < 1.0:
            raise InvalidRequest(f"refiner switch at must be between 0 and 1, exclusive (got {switch:g}); 0.8 is usual")
        set_("refiner_switch_at", switch)
        subseed = _integer("variation seed", self.subseed)
        if not -1 <= subseed <= MAX_SEED:
            raise InvalidRequest(f"variation seed must be -1 (random) or between 0 and {MAX_SEED} (got {subseed})")
        set_("subseed", subseed)
        strength = _fraction("variation seed strength", self.subseed_strength, "0.05-0.3 gives close variations of the seed's image, 1 the variation seed's own")
        set_("subseed_strength", strength)
        _check_modes(self, set_)
        _check_guides(self, set_)
        _check_blend(self, set_)
        if strength > 0 and self.init_image is not None:
            raise InvalidRequest("a variation seed shapes text-to-image noise; img2img, inpaint and outpaint start from the init image instead")

    # -- derived values ---------------------------------------------------------------------

    @property
    def schedule(self) -> str:
        """The schedule type that runs: "Automatic" resolved per sampler, as A1111 does."""
        return samplers.resolve(self.sampler, self.schedule_type)[1]

    @property
    def mode(self) -> str:
        """"txt2img", "img2img", "inpaint" or "outpaint": what the init image, mask and outpaint ask for."""
        if self.init_image is None:
            return "txt2img"
        return "outpaint" if self.outpaint else "inpaint" if self.mask else "img2img"

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the finished images: width x height, scaled by the hires fix, or the
        init image's own (outpainted) size when only the masked area is rendered."""
        if self.init_image is None and self.hr_scale == 1:
            return self.width, self.height
        from . import canvas

        return canvas.output_size(self)

    @property
    def styled(self) -> tuple[str, str]:
        """The (prompt, negative prompt) after the style is applied: what the model sees."""
        return styles.apply(self.style, self.prompt, self.negative_prompt)

    @property
    def styled_blend(self) -> str | None:
        """The blend prompt after the same style: what the prompt's encoding is mixed with (None without a blend)."""
        if self.blend_prompt is None or self.blend <= 0:
            return None
        return styles.apply(self.style, self.blend_prompt, self.negative_prompt)[0]

    def with_seed(self) -> RenderRequest:
        """This request with concrete seeds: -1 becomes a random one, which is then recorded
        (the variation seed too, when it is used)."""
        changes: dict[str, int] = {}
        if self.seed == -1:
            changes["seed"] = secrets.randbelow(MAX_SEED + 1)
        if self.subseed == -1 and self.subseed_strength > 0:
            changes["subseed"] = secrets.randbelow(MAX_SEED + 1)
        return dataclasses.replace(self, **changes) if changes else self

    def subseeds(self) -> list[int]:
        """Every image's variation seed: subseed+i, as A1111 numbers them."""
        assert self.subseed != -1, "resolve the variation seed with with_seed() first"
        return [(self.subseed + i) % (MAX_SEED + 1) for i in range(self.batch_size * self.batch_count)]

    def seeds(self) -> list[int]:
        """Every image's seed, batch by batch: seed, seed+1, ... as A1111 numbers them."""
        assert self.seed != -1, "resolve the seed with with_seed() first"
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.batch_size * self.batch_count)]

    def replace(self, **changes: Any) -> RenderRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values; image-mode fields only where they differ from their defaults."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if k not in MODE_DEFAULTS or v != MODE_DEFAULTS[k]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidRequest(f"unknown request fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

# Every field's default (`prompt` has none: dataclasses.MISSING), and the image-mode ones, read from
# the class so to_dict() cannot drift from it.
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RenderRequest)}
MODE_DEFAULTS: dict[str, Any] = {name: DEFAULTS[name] for name in MODE_FIELDS}


@dataclass
class RenderedImage:
    """One image and everything needed to reproduce it: its own seed, infotext and lineage."""

    image: Any  # PIL.Image.Image
    request: RenderRequest  # the whole (seed-resolved) request it came from
    seed: int
    index: int  # position in the request's images (batch * batch_size + position in batch)
    infotext: str  # A1111 "parameters"
    lineage: dict[str, Any] = field(default_factory=dict)  # the keyart JSON chunk


def _check_modes(request: RenderRequest, set_) -> None:
    """Validate the img2img, inpaint, outpaint and hires-fix fields, and the files they name.

    Settings (strength, mask blur...) apply only in the modes that use them; an input a mode needs
    but lacks (a mask without an init image) is an error.
    """
    # 1. Strengths: A1111's "Denoising strength", for img2img and for the hires fix's second pass.
    set_("strength", _fraction("strength", request.strength, "0.3 keeps the composition, 0.75 repaints most of it, 1 keeps only the init image's size"))
    set_("denoising_strength", _fraction("denoising strength (the hires fix's second pass)", request.denoising_strength, "0.3-0.5 sharpens, 0.7 (A1111's default) redraws detail"))
    # 2. Whole-number settings with A1111's slider ranges.
    for name, label, low, top, hint in (
        ("mask_blur", "mask blur", 0, 64, "4 softens the seam"),
        ("masked_padding", "masked padding", 0, 256, "32 gives the repaint some context"),
        ("hr_second_pass_steps", "hires steps", 0, 150, "0 uses the steps of the first pass"),
    ):
        value = _integer(label, getattr(request, name))
        if not low <= value <= top:
            raise InvalidRequest(f"{label} must be between {low} and {top} (got {value}); {hint}")
        set_(name, value)
    pixels = _integer("outpaint pixels", request.outpaint_pixels)
    if pixels % 8 or not 8 <= pixels <= 512:
        raise InvalidRequest(f"outpaint pixels must be a multiple of 8 between 8 and 512 (got {pixels}); latents are 8 pixels a cell")
    set_("outpaint_pixels", pixels)
    # 3. Options are words.
    area = str(request.inpaint_area).strip().lower()
    if area not in INPAINT_AREAS:
        raise InvalidRequest(
            f"inpaint area must be 'whole' (the whole picture at width x height) or 'masked' "
            f"(only the masked area, at full resolution) (got {request.inpaint_area!r})"
        )
    set_("inpaint_area", area)
    for name, label in (("hr_upscaler", "hires upscaler"), ("init_upscaler", "init image upscaler")):
        upscaler = str(getattr(request, name)).strip().lower()
        if upscaler not in HR_UPSCALERS:
            raise InvalidRequest(f"{label} must be 'latent' or 'lanczos' (got {getattr(request, name)!r})")
        set_(name, upscaler)
    if request.outpaint is not None:
        from .canvas import directions

        if not isinstance(request.outpaint, str):
            raise InvalidRequest(f"outpaint must be directions such as 'left,right' (got {request.outpaint!r})")
        set_("outpaint", ",".join(directions(request.outpaint)) or None)
    # 4. The hires fix: text to image only, and its second pass must fit the size limit.
    scale = _number("hires scale", request.hr_scale)
    if not 1.0 <= scale <= 4.0:
        raise InvalidRequest(f"hires scale must be between 1 (off) and 4 (got {scale:g}); 1.5 or 2 are usual")
    set_("hr_scale", scale)
    if scale > 1:
        _check_hires(request, scale)
    # 5. The input files: there, readable, and shaped alike.
    for name in FILE_FIELDS:
        value = getattr(request, name)
        if value is not None:
            if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                raise InvalidRequest(f"{name.replace('_', ' ')} must be a path to a PNG or JPEG (got {value!r})")
            set_(name, os.path.abspath(os.path.expanduser(os.fspath(value))))
    if request.init_image is None:
        if request.mask is not None:
            raise InvalidRequest("a mask needs an init image to inpaint (init_image, --init-image); white in the mask is repainted")
        if request.outpaint is not None:
            raise InvalidRequest("outpaint needs an init image to grow (init_image, --init-image)")
        return
    _check_inputs(request)


def _check_blend(request: RenderRequest, set_) -> None:
    """A blend is a fraction, and needs the prompt it blends toward."""
    set_("blend", _fraction("blend", request.blend, "0 is the prompt, 1 the blend prompt, 0.5 halfway between their encodings"))
    if request.blend_prompt is not None and not str(request.blend_prompt).strip():
        set_("blend_prompt", None)
    if request.blend > 0 and request.blend_prompt is None:
        raise InvalidRequest("a blend needs the prompt it blends toward (blend_prompt)")


def _check_guides(request: RenderRequest, set_) -> None:
    """The ControlNet units and the IP-Adapter reference (its path made absolute by _check_modes)."""
    set_("controls", control.units(request.controls))
    if request.controls and request.mode in ("inpaint", "outpaint") and request.inpaint_area == "masked":
        raise InvalidRequest("control units guide the whole picture; with them, inpaint the whole picture (inpaint_area 'whole'), not only the masked area")
    if request.controls and request.init_image is not None and request.init_upscaler == "latent":
        raise InvalidRequest("with control units the init image is enlarged on pixels: use the lanczos init upscaler, not latent")
    set_("reference_scale", _fraction("reference scale", request.reference_scale, "0.5-0.7 keeps the reference's look and lets the prompt speak"))
    if request.reference is not None:
        from .canvas import image_size

        image_size(request.reference, what="reference image")  # there, and an image


def _check_hires(request: RenderRequest, scale: float) -> None:
    from .canvas import MAX_SIDE, hires_size

    if request.init_image is not None:
        raise InvalidRequest(
            "the hires fix applies to text-to-image renders, as in A1111; with an init image, set width and height "
            "to the size you want, or enlarge a finished image with `python -m imagegen upscale`"
        )
    w, h = hires_size(request.width, request.height, scale)
    if max(w, h) > MAX_SIDE:
        largest = MAX_SIDE / max(request.width, request.height)
        raise InvalidRequest(
            f"the hires fix would render {w}x{h} ({request.width}x{request.height} x {scale:g}), past the "
            f"{MAX_SIDE}-pixel limit; lower the hires scale to at most {int(largest * 100) / 100:g} or the size"
        )
    steps = request.hr_second_pass_steps or request.num_inference_steps
    if int(steps * request.denoising_strength) < 1:
        raise InvalidRequest(
            f"denoising strength {request.denoising_strength:g} with {steps} hires steps leaves no step to run "
            "(the second pass runs steps x strength); raise the denoising strength or the hires steps"
        )


def _check_inputs(request: RenderRequest) -> None:
    """The init image (and mask) exist and fit the request; nothing is kept open."""
    from . import canvas

    init_size = canvas.image_size(request.init_image)
    if request.mask is not None:
        if request.outpaint is not None:
            raise InvalidRequest("give either a mask or outpaint: outpaint makes its own mask over the new border")
        canvas.check_mask(request.mask, init_size)
    if int(request.num_inference_steps * request.strength) < 1:
        raise InvalidRequest(
            f"strength {request.strength:g} with {request.num_inference_steps} steps leaves no step to run "
            "(img2img runs steps x strength, as diffusers and A1111 do); raise the strength or the steps"
        )
    if not canvas.uses_crop(request):
        grown = canvas.canvas_size(init_size, request.outpaint, request.outpaint_pixels)
        what = "outpainted init image" if request.outpaint else "init image"
        canvas.check_aspect(grown, request.width, request.height, what=what, masked_hint=bool(request.mask or request.outpaint))


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value:
        raise InvalidRequest(f"{name} must be a whole number (got {value!r})")
    return int(value)


def _fraction(name: str, value: Any, hint: str) -> float:
    """A number from 0 to 1, or an error that says what the values do."""
    number = _number(name, value)
    if not 0.0 <= number <= 1.0:
        raise InvalidRequest(f"{name} must be between 0 and 1 (got {number:g}); {hint}")
    return number


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidRequest(f"{name} must be a number (got {value!r})")
    return float(value)
