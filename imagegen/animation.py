"""An animation request: keyframed prompts and motion over a number of frames (Deforum's schedules).

A prompt schedule is `0: a calm harbour at dusk | 48: the same harbour in a storm` (frame: prompt,
frames from 0); between keyframes the last keyframe's prompt holds (`switch`), or, with `blend`,
its encoding is mixed toward the next keyframe's in step with the frames (interpolated conditioning). A value schedule is a number, or
Deforum's `0:(1.0), 24:(1.04)`: linear between keyframes, held before the first and after the last.
Motion keys are Deforum's: zoom (1 is still, 1.02 zooms in 2% a frame), angle (degrees a frame,
counter-clockwise), translation_x and translation_y (pixels a frame). `strength` is each frame's
img2img strength (how much of the moved previous frame is repainted). Everything is checked here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import InvalidRequest
from .request import MAX_SEED, RenderRequest

MOTION_KEYS = ("zoom", "angle", "translation_x", "translation_y")
MOTION_DEFAULTS = {"zoom": 1.0, "angle": 0.0, "translation_x": 0.0, "translation_y": 0.0}
PROMPT_MODES = ("switch", "blend")  # between keyframes: the last keyframe's prompt, or its encoding mixed toward the next one's
SEED_BEHAVIOURS = ("iter", "fixed")  # iter: seed + frame (Deforum's default); fixed: the same seed every frame
COHERENCE = ("lab", "histogram", "none")  # colours matched to the first frame's before each frame is repainted
MAX_FRAMES = 1000
MAX_FPS = 60
# The RenderRequest fields an animation passes to every frame; the rest are the animation's own.
RENDER_FIELDS = ("num_inference_steps", "guidance_scale", "sampler", "schedule_type", "refiner", "refiner_switch_at")
EXAMPLE = '"0: a calm harbour at dusk | 48: the same harbour in a storm"'
_VALUE = re.compile(r"^\s*(\d+)\s*:\s*\(\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*\)\s*$")


def prompt_schedule(text: str, frames: int) -> list[tuple[int, str]]:
    """[(frame, prompt), ...] in frame order from `0: ... | 24: ...`; text without keyframes is one prompt from frame 0."""
    text = str(text).strip()
    if not text:
        raise InvalidRequest(f"give the animation a prompt, or keyframed prompts such as {EXAMPLE}")
    parts = [p.strip() for p in text.split("|")]
    keyed = [re.match(r"^(\d+)\s*:\s*(.+)$", p, re.DOTALL) for p in parts]
    if not any(keyed):
        return [(0, text)]
    found: dict[int, str] = {}
    for part, m in zip(parts, keyed):
        if m is None or not m.group(2).strip():
            raise InvalidRequest(f"each keyframe is FRAME: PROMPT (got {part!r}); e.g. {EXAMPLE}")
        frame = int(m.group(1))
        if frame >= frames:
            raise InvalidRequest(f"the keyframe at frame {frame} is past the last frame ({frames - 1}; frames count from 0); use fewer, or more --frames")
        if frame in found:
            raise InvalidRequest(f"two prompts for frame {frame}; give each keyframe once")
        found[frame] = m.group(2).strip()
    return sorted(found.items())


def value_schedule(name: str, text: Any, frames: int, *, low: float | None = None, high: float | None = None) -> list[float]:
    """The value at every frame of a schedule: a number, or `0:(1.0), 24:(1.04)` interpolated linearly."""
    given = str(text).strip()
    try:
        points = {0: float(given)}
    except ValueError:
        points = {}
        for part in given.split(","):
            m = _VALUE.match(part)
            if m is None:
                raise InvalidRequest(f"{name} is a number or keyframes such as 0:(1.0), 24:(1.04) (got {given!r})") from None
            frame = int(m.group(1))
            if frame >= frames:
                raise InvalidRequest(f"the {name} keyframe at frame {frame} is past the last frame ({frames - 1})")
            points[frame] = float(m.group(2))
    for value in points.values():
        if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
            bounds = f" from {low:g}" if low is not None else ""
            bounds += f" to {high:g}" if high is not None else ""
            raise InvalidRequest(f"{name} values run{bounds} (got {value:g})")
    keys = sorted(points)
    out = []
    for i in range(frames):
        before = max((k for k in keys if k <= i), default=keys[0])
        after = min((k for k in keys if k >= i), default=keys[-1])
        t = 0.0 if after == before else (i - before) / (after - before)
        out.append(points[before] + t * (points[after] - points[before]))
    return out


@dataclass(frozen=True)
class AnimationRequest:
    """Everything an animation needs; `frame_request(i, ...)` is frame i's RenderRequest."""

    prompts: str  # keyframed: "0: ... | 24: ..."
    frames: int = 24
    fps: float = 12.0
    width: int = 1024
    height: int = 1024
    negative_prompt: str = ""
    style: str | None = None
    motion: dict[str, str] = field(default_factory=dict)  # key -> schedule
    strength: str = "0.45"  # img2img strength per frame (frame 0 too, when there is an init image)
    seed: int = -1
    seed_behaviour: str = "iter"
    init_image: str | None = None
    colour_coherence: str = "lab"
    render: dict[str, Any] = field(default_factory=dict)  # RENDER_FIELDS for every frame
    prompt_mode: str = "switch"

    def __post_init__(self) -> None:
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or not 2 <= self.frames <= MAX_FRAMES:
            raise InvalidRequest(f"frames is a whole number from 2 to {MAX_FRAMES} (got {self.frames!r})")
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise InvalidRequest(f"fps is a number of frames a second (got {self.fps!r})") from None
        if not 0 < fps <= MAX_FPS or isinstance(self.fps, bool):
            raise InvalidRequest(f"fps runs above 0 up to {MAX_FPS} (got {self.fps!r}); 12 suits short social loops, 24 film")
        object.__setattr__(self, "fps", fps)
        unknown = sorted(set(self.motion) - set(MOTION_KEYS))
        if unknown:
            raise InvalidRequest(f"unknown motion key(s) {', '.join(unknown)}; motion keys: {', '.join(MOTION_KEYS)} (e.g. --motion zoom=0:(1.0),24:(1.03))")
        if self.seed_behaviour not in SEED_BEHAVIOURS:
            raise InvalidRequest(f"seed behaviour is one of {', '.join(SEED_BEHAVIOURS)} (got {self.seed_behaviour!r})")
        if self.prompt_mode not in PROMPT_MODES:
            raise InvalidRequest(f"prompt mode is one of {', '.join(PROMPT_MODES)} (got {self.prompt_mode!r}): switch at each keyframe, or blend between them")
        if self.colour_coherence not in COHERENCE:
            raise InvalidRequest(f"colour coherence is one of {', '.join(COHERENCE)} (got {self.colour_coherence!r})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -1 <= self.seed <= MAX_SEED:
            raise InvalidRequest(f"seed is -1 (random) or a whole number up to {MAX_SEED} (got {self.seed!r})")
        odd = sorted(set(self.render) - set(RENDER_FIELDS))
        if odd:
            raise InvalidRequest(f"an animation's frames take {', '.join(RENDER_FIELDS)} from the render settings, not {', '.join(odd)}")
        # The schedules, and frame 0's request, checked now: a bad one fails before any work.
        self.keyframes
        self.motion_values()
        self.strengths()
        self.frame_request(0, init_image=None)
        if self.init_image is not None:  # cropped to the size when frame 0 starts from it; here: there, and a picture
            from .canvas import image_size

            image_size(str(self.init_image), what="init image")

    # -- the schedules, read ---------------------------------------------------------------------

    @cached_property
    def keyframes(self) -> list[tuple[int, str]]:
        """The prompt schedule, read once (a frozen request: it cannot change)."""
        return prompt_schedule(self.prompts, self.frames)

    def prompt_at(self, frame: int) -> str:
        """Frame `frame`'s prompt: the last keyframe's at or before it (the first keyframe's before any)."""
        keyed = self.keyframes
        return next((p for start, p in reversed(keyed) if start <= frame), keyed[0][1])

    def blend_at(self, frame: int) -> tuple[str, float] | None:
        """(the next keyframe's prompt, how far toward it) for a frame between two keyframes in blend mode; else None."""
        if self.prompt_mode != "blend":
            return None
        keyed = self.keyframes
        for (start, _), (end, following) in zip(keyed, keyed[1:]):
            if start < frame < end:
                return following, round((frame - start) / (end - start), 6)
        return None

    @cached_property
    def _strengths(self) -> list[float]:
        return value_schedule("strength", self.strength, self.frames, low=0.0, high=1.0)

    def motion_values(self) -> dict[str, list[float]]:
        limits = {"zoom": (0.5, 2.0), "angle": (-45.0, 45.0), "translation_x": (-512.0, 512.0), "translation_y": (-512.0, 512.0)}
        return {k: value_schedule(k, self.motion.get(k, MOTION_DEFAULTS[k]), self.frames, low=limits[k][0], high=limits[k][1]) for k in MOTION_KEYS}

    def strengths(self) -> list[float]:
        return list(self._strengths)

    def seed_at(self, seed: int, frame: int) -> int:
        return (seed + frame) % (MAX_SEED + 1) if self.seed_behaviour == "iter" else seed

    def frame_request(self, frame: int, *, init_image: str | None, seed: int | None = None) -> RenderRequest:
        """Frame `frame`'s render: its prompt and seed; img2img from `init_image` at its strength when given."""
        fields = dict(self.render) | {"width": self.width, "height": self.height, "negative_prompt": self.negative_prompt, "style": self.style}
        base = self.seed if seed is None else seed  # the animation's seed, resolved by the run (-1 here: checking only)
        fields["seed"] = self.seed_at(base, frame) if base >= 0 else -1
        if init_image is not None:
            fields |= {"init_image": init_image, "strength": self.strengths()[frame]}
        if (toward := self.blend_at(frame)) is not None:
            fields |= {"blend_prompt": toward[0], "blend": toward[1]}
        return RenderRequest(prompt=self.prompt_at(frame), **fields)

    # -- the sidecar -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnimationRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise InvalidRequest(f"an animation request takes {', '.join(sorted(known))}; got {sorted(set(data) - known) if isinstance(data, dict) else data!r}")
        return cls(**data)

    def replace(self, **changes: Any) -> AnimationRequest:
        return dataclasses.replace(self, **changes)
