"""Standalone upscale: a finished image enlarged by Lanczos, optionally refined by an SDXL img2img
pass at low strength (A1111's "SD upscale" idea), as a PNG that records its source and scale.

The Lanczos step needs no model. The refinement is an ordinary img2img RenderRequest (the source as
init image, the larger size), so `render --from` reproduces it like any other render.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import canvas, samplers
from .errors import InvalidRequest, MetadataError
from .request import MAX_SEED, RenderedImage, RenderRequest

SCALES = (1.0, 4.0)  # exclusive of 1: enlarging only, up to A1111's largest hires scale
MAX_LANCZOS_SIDE = 8192  # Lanczos alone has no model limit; past this a PNG gets unwieldy
DEFAULT_STEPS = 20  # at strength 0.3, 6 denoising steps: enough to sharpen, too few to redraw
UPSCALERS = ("lanczos", "latent")
# What a refinement pass reuses from the source's A1111 parameters, besides the prompts.
REUSED = ("sampler", "schedule_type", "guidance_scale", "seed")


@dataclass(frozen=True)
class Upscale:
    """A validated upscale: the source, the new size, and the refinement request if there is one."""

    source: str
    scale: float
    size: tuple[int, int]
    upscaler: str
    refine: RenderRequest | None  # None: Lanczos only
    settings: dict[str, Any]  # what the source's A1111 parameters say (prompt, seed...), maybe nothing
    infotext: str | None  # the source's A1111 parameters
    source_size: tuple[int, int]  # the source's (width, height), as plan() read it

    @property
    def stem(self) -> str:
        """The file name after the sequence number: the seed when known, and the scale."""
        seed = self.refine.seed if self.refine is not None else self.settings.get("seed")
        return f"{seed if isinstance(seed, int) and seed >= 0 else 'upscale'}-x{self.scale:g}"


def plan(
    source: str | Path,
    *,
    scale: float = 2.0,
    upscaler: str = "lanczos",
    strength: float | None = None,
    steps: int | None = None,
    prompt: str | None = None,
    seed: int | None = None,
) -> Upscale:
    """Check an upscale before anything loads or is written: the file, the scale, the refinement."""
    # 1. The source image and the new size.
    width, height = canvas.image_size(str(source), "image to upscale")
    source = str(Path(source).expanduser().resolve())
    if not SCALES[0] < scale <= SCALES[1]:
        raise InvalidRequest(f"scale must be above 1 and at most 4 (got {scale:g}); 1.5 and 2 are usual")
    upscaler = str(upscaler).strip().lower()
    if upscaler not in UPSCALERS:
        raise InvalidRequest(f"upscaler must be 'lanczos' or 'latent' (got {upscaler!r})")
    size = round(width * scale), round(height * scale)
    infotext, settings = _source_settings(source)
    # 2. Lanczos only: any size up to MAX_LANCZOS_SIDE; a latent upscale decodes blurry without a pass.
    if strength is None:
        if upscaler == "latent":
            raise InvalidRequest(
                "a latent upscale needs a refinement pass: give --strength (0.5 or more; upscaled latents "
                "decode blurry until they are denoised), or use the lanczos upscaler"
            )
        if steps is not None or prompt is not None or seed is not None:
            raise InvalidRequest("--steps, --prompt and --seed belong to the refinement pass: give --strength too (0.3 is gentle)")
        if max(size) > MAX_LANCZOS_SIDE:
            raise InvalidRequest(f"upscaling {width}x{height} by {scale:g} gives {size[0]}x{size[1]}; keep each side within {MAX_LANCZOS_SIDE}")
        return Upscale(source, scale, size, upscaler, None, settings, infotext, (width, height))
    # 3. With a refinement pass: an img2img request at the new size, in whole latent cells.
    size = size[0] // 8 * 8, size[1] // 8 * 8
    if max(size) > canvas.MAX_SIDE:
        largest = int(canvas.MAX_SIDE / max(width, height) * 100) / 100
        raise InvalidRequest(
            f"upscaling {width}x{height} by {scale:g} gives {size[0]}x{size[1]}, but a refinement pass renders at most "
            f"{canvas.MAX_SIDE} pixels a side: use --scale {largest:g} or less, or leave out --strength for a Lanczos-only upscale"
        )
    given = {"prompt": prompt, "seed": seed, "num_inference_steps": steps}
    refine = RenderRequest(
        **{"prompt": "", "num_inference_steps": DEFAULT_STEPS, **settings, **{k: v for k, v in given.items() if v is not None}},
        init_image=source,
        init_upscaler=upscaler,
        width=size[0],
        height=size[1],
        strength=strength,
        refiner="off",  # the refiner's detail pass would fight a low-strength sharpening
    )
    return Upscale(source, scale, size, upscaler, refine, settings, infotext, (width, height))


def lanczos(job: Upscale) -> RenderedImage:
    """The source enlarged by Lanczos, carrying the source's parameters plus A1111's postprocess fields."""
    from PIL import Image

    from .metadata import format_infotext, parse_infotext, stamp
    from .metadata_modes import file_record

    image = canvas.as_rgb(canvas.open_image(job.source, "image to upscale")).resize(job.size, Image.Resampling.LANCZOS)
    infotext = ""
    if job.infotext:  # A1111's extras keep the generation's parameters and add their own
        prompt, negative, fields = parse_infotext(job.infotext)
        infotext = format_infotext(prompt, negative, {**fields, "Postprocess upscale by": job.scale, "Postprocess upscaler": "Lanczos"})
    lineage = stamp() | {
        "engine": "upscale",
        "upscale": {"scale": job.scale, "upscaler": "lanczos", "size": list(job.size)},
        "source": file_record(job.source, job.source_size),
    }
    seed = job.settings.get("seed", 0)
    return RenderedImage(image=image, request=None, seed=seed if isinstance(seed, int) and seed >= 0 else 0, index=0, infotext=infotext, lineage=lineage)  # type: ignore[arg-type]


def _source_settings(source: str) -> tuple[str | None, dict[str, Any]]:
    """The source's A1111 parameters and the settings a refinement reuses: prompt, negative, sampler, CFG, seed."""
    from .metadata import NUMBER_FIELDS, TEXT_FIELDS, parse_infotext, parse_number
    from .png_files import read_png

    try:
        infotext = read_png(source).infotext
    except MetadataError:  # a photo, or a PNG without parameters: nothing to reuse
        return None, {}
    if not infotext:
        return None, {}
    prompt, negative, fields = parse_infotext(infotext)
    settings: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative}
    settings |= {name: fields[key] for key, name in TEXT_FIELDS.items() if name in REUSED and key in fields}
    for key, name in NUMBER_FIELDS.items():
        if name in REUSED and key in fields and not isinstance(value := parse_number(fields[key]), str):
            settings[name] = value  # a field A1111 wrote oddly is left out: the refinement uses its own default
    if "seed" in settings and not (isinstance(settings["seed"], int) and 0 <= settings["seed"] <= MAX_SEED):
        settings.pop("seed")
    try:
        samplers.normalize(settings.get("sampler", "DPM++ 2M"), settings.get("schedule_type", "Automatic"))
    except InvalidRequest:  # a sampler keyart lacks (A1111 has more): the refinement uses keyart's default
        settings.pop("sampler", None), settings.pop("schedule_type", None)
    return infotext, settings
