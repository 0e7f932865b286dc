"""One render vocabulary for every engine: `RenderRequest` in, `RenderedImage`s out.

Field names are diffusers' (`prompt`, `num_inference_steps`, `guidance_scale`...); only the edges
translate to A1111's names. A request validates itself on construction, so an engine never sees
one it cannot render, and bad input fails before anything is loaded or written.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any

from . import samplers, styles
from .errors import InvalidRequest

# The sizes SDXL was trained on (aspect buckets around one megapixel).
SDXL_SIZES = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344), (1536, 640), (640, 1536))
SIZE_HINT = "SDXL works best at " + ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
MAX_SEED = 2**32 - 1  # A1111's and ComfyUI's range: seeds are 32-bit unsigned
REFINER_MODES = ("auto", "on", "off")


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

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        if not isinstance(self.prompt, str):
            raise InvalidRequest("prompt must be text")
        if not isinstance(self.negative_prompt, str):
            raise InvalidRequest("negative prompt must be text")
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
        for name, top in (("batch_size", 8), ("batch_count", 100)):
            value = _integer(name.replace("_", " "), getattr(self, name))
            if not 1 <= value <= top:
                raise InvalidRequest(f"{name.replace('_', ' ')} must be between 1 and {top} (got {value})")
            set_(name, value)
        if self.refiner not in REFINER_MODES:
            raise InvalidRequest(f"refiner must be one of {', '.join(REFINER_MODES)} (got {self.refiner!r})")
        switch = _number("refiner switch at", self.refiner_switch_at)
        if not 0.0 < switch < 1.0:
            raise InvalidRequest(f"refiner switch at must be between 0 and 1, exclusive (got {switch:g}); 0.8 is usual")
        set_("refiner_switch_at", switch)

    # -- derived values ---------------------------------------------------------------------

    @property
    def schedule(self) -> str:
        """The schedule type that runs: "Automatic" resolved per sampler, as A1111 does."""
        return samplers.resolve(self.sampler, self.schedule_type)[1]

    @property
    def styled(self) -> tuple[str, str]:
        """The (prompt, negative prompt) after the style is applied: what the model sees."""
        return styles.apply(self.style, self.prompt, self.negative_prompt)

    def with_seed(self) -> RenderRequest:
        """This request with a concrete seed: -1 becomes a random one, which is then recorded."""
        if self.seed != -1:
            return self
        return dataclasses.replace(self, seed=secrets.randbelow(MAX_SEED + 1))

    def seeds(self) -> list[int]:
        """Every image's seed, batch by batch: seed, seed+1, ... as A1111 numbers them."""
        assert self.seed != -1, "resolve the seed with with_seed() first"
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.batch_size * self.batch_count)]

    def replace(self, **changes: Any) -> RenderRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidRequest(f"unknown request fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


@dataclass
class RenderedImage:
    """One image and everything needed to reproduce it: its own seed, infotext and lineage."""

    image: Any  # PIL.Image.Image
    request: RenderRequest  # the whole (seed-resolved) request it came from
    seed: int
    index: int  # position in the request's images (batch * batch_size + position in batch)
    infotext: str  # A1111 "parameters"
    lineage: dict[str, Any] = field(default_factory=dict)  # the keyart JSON chunk


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InvalidRequest(f"{name} must be a whole number (got {value!r})")
    return int(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidRequest(f"{name} must be a number (got {value!r})")
    return float(value)
