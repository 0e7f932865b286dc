"""Presets: one quality word (`draft`, `final`) sets many render knobs, as Fooocus's presets do;
`lcm`, `lightning` and `hyper` set the scheduler, steps and CFG that the distilled few-step LoRAs
(and checkpoints) users bring were trained for: LCM-LoRA, SDXL-Lightning, Hyper-SD.

Also the SDXL aspect presets the catalog uses: landscape for episode stills, portrait for season posters.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest

QUALITIES = ("draft", "final", "lcm", "lightning", "hyper")
DISTILLED = ("lcm", "lightning", "hyper")  # few-step words: for a distilled LoRA in the prompt, or a distilled checkpoint

# RenderRequest field values per quality. A preset fills only what the user left unset.
_QUALITY_FIELDS: dict[str, dict[str, Any]] = {
    # A fast look at composition and colour, about half the time of a final render.
    "draft": {
        # DPM++ 2M with Karras sigmas settles the composition in about 15 steps; 16 keeps it clear of the edge.
        "num_inference_steps": 16,
        "sampler": "DPM++ 2M",
        "schedule_type": "Karras",  # Karras sigmas front-load the big steps, so few steps still converge
        # Lower guidance than final: with few steps a high CFG oversaturates and burns highlights.
        "guidance_scale": 6.0,
        "refiner": "off",  # the refiner costs a second model in memory and load time; drafts judge composition
    },
    # What the catalog ships: Stability's recommended SDXL settings.
    "final": {
        "num_inference_steps": 30,  # past ~30 steps DPM++ 2M Karras changes little but the render time
        "sampler": "DPM++ 2M",
        "schedule_type": "Karras",
        "guidance_scale": 7.0,  # SDXL's sweet spot is 5-8; 7 follows the prompt closely without burning
        "refiner": "auto",  # the refiner's fine detail whenever one is configured, no error when none is
    },
    # The distilled models' own settings, as their model cards give them. CFG 1 is no guidance at
    # all (diffusers then skips the unconditional half: each step costs half); the refiner is not
    # distilled, so it stays off.
    "lcm": {  # LCM-LoRA SDXL: the LCM scheduler, 4 steps, no guidance
        "num_inference_steps": 4,
        "sampler": "LCM",
        "schedule_type": "Uniform",
        "guidance_scale": 1.0,
        "refiner": "off",
    },
    "lightning": {  # SDXL-Lightning 4-step: Euler on trailing timesteps (A1111's SGM Uniform), no guidance
        "num_inference_steps": 4,
        "sampler": "Euler",
        "schedule_type": "SGM Uniform",
        "guidance_scale": 1.0,
        "refiner": "off",
    },
    "hyper": {  # Hyper-SD SDXL 8-step: DDIM on trailing timesteps, no guidance
        "num_inference_steps": 8,
        "sampler": "DDIM",
        "schedule_type": "SGM Uniform",
        "guidance_scale": 1.0,
        "refiner": "off",
    },
}

# SDXL training buckets (about one megapixel each) for catalog art: episode stills are
# landscape, as a frame of the episode is; season posters are portrait, as a one-sheet is.
ASPECTS: dict[str, tuple[int, int]] = {
    "landscape": (1216, 832),
    "portrait": (832, 1216),
    "square": (1024, 1024),
}


def quality_fields(name: str) -> dict[str, Any]:
    """The RenderRequest field values of quality preset `name` ("draft" or "final"), as a new dict."""
    key = str(name).strip().lower()
    if key not in _QUALITY_FIELDS:
        raise InvalidRequest(
            f"unknown quality {name!r}; choose one of: {', '.join(QUALITIES)} "
            "(draft for a fast look, final for the catalog, lcm, lightning or hyper for a distilled few-step LoRA or model)"
        )
    return dict(_QUALITY_FIELDS[key])


def describe_quality(name: str) -> str:
    """One line for help text, from the preset itself: "16 steps, DPM++ 2M Karras, CFG 6, refiner off"."""
    f = quality_fields(name)
    line = f"{f['num_inference_steps']} steps, {f['sampler']} {f['schedule_type']}, CFG {f['guidance_scale']:g}, refiner {f['refiner']}"
    return line + (f" (for {_FAMILY[name]} in the prompt, or a checkpoint distilled the same way)" if name in DISTILLED else "")


_FAMILY = {"lcm": "an LCM-LoRA", "lightning": "an SDXL-Lightning LoRA", "hyper": "a Hyper-SD LoRA"}


def apply_quality(name: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """RenderRequest fields: quality preset `name` (None: no preset) under the fields in `given`, which win.

    A sampler in `given` takes the preset's schedule type with it: schedule types belong to a
    sampler ("Euler a" has no Karras), so the request falls back to that sampler's own default.
    """
    preset = quality_fields(name) if name is not None else {}
    if "sampler" in given:
        preset.pop("schedule_type", None)
    return preset | given
