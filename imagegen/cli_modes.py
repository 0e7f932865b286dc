"""`render`'s img2img, inpaint, outpaint and hires-fix options, and the `upscale` subcommand.

Options take A1111's words at the edge (--denoising-strength, --hires-scale, --inpaint-area masked)
and become RenderRequest fields (diffusers' names) here; nothing heavy is imported.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import KeyartError
from .settings import ImageSettings

# CLI option -> RenderRequest field.
MODE_FIELDS = {
    "init_image": "init_image",
    "strength": "strength",
    "init_upscaler": "init_upscaler",
    "mask": "mask",
    "mask_blur": "mask_blur",
    "inpaint_area": "inpaint_area",
    "masked_padding": "masked_padding",
    "outpaint": "outpaint",
    "outpaint_pixels": "outpaint_pixels",
    "hires_scale": "hr_scale",
    "hires_upscaler": "hr_upscaler",
    "hires_steps": "hr_second_pass_steps",
    "denoising_strength": "denoising_strength",
    "control": "controls",
}
# A setting given without the mode it belongs to is a mistake worth a word: field -> (needs, message).
_BELONGS = {
    "strength": (lambda r: r.init_image is not None, "--strength is img2img's (with --init-image); the hires fix's second pass takes --denoising-strength"),
    "init_upscaler": (lambda r: r.init_image is not None, "--init-upscaler enlarges an --init-image"),
    "mask_blur": (lambda r: bool(r.mask or r.outpaint), "--mask-blur applies to --mask or --outpaint"),
    "inpaint_area": (lambda r: bool(r.mask or r.outpaint), "--inpaint-area applies to --mask or --outpaint"),
    "masked_padding": (lambda r: bool(r.mask or r.outpaint) and r.inpaint_area == "masked", "--masked-padding applies to --inpaint-area masked"),
    "outpaint_pixels": (lambda r: bool(r.outpaint), "--outpaint-pixels applies to --outpaint"),
    "hr_upscaler": (lambda r: r.hr_scale > 1, "--hires-upscaler applies to the hires fix (--hires-scale above 1)"),
    "hr_second_pass_steps": (lambda r: r.hr_scale > 1, "--hires-steps applies to the hires fix (--hires-scale above 1)"),
    "denoising_strength": (
        lambda r: r.hr_scale > 1,
        "--denoising-strength is the hires fix's second pass (with --hires-scale above 1); img2img's is --strength",
    ),
}
MODES_HELP = (
    "image modes (A1111's img2img tab):\n"
    "  img2img   --init-image FILE [--strength 0.75]\n"
    "  inpaint   --init-image FILE --mask FILE (white = repaint) [--inpaint-area masked]\n"
    "  outpaint  --init-image FILE --outpaint left,right,up,down [--outpaint-pixels 128] (--strength 0.9+ works best)\n"
    "  Without --width/--height an init image renders at its own (outpainted) size in multiples of 8.\n"
    "  The output is WIDTHxHEIGHT, except --inpaint-area masked, which keeps the init image's size.\n"
    "hires fix (text to image): --hires-scale 1.5|2 [--hires-upscaler latent|lanczos] [--hires-steps N]\n"
    "  [--denoising-strength 0.7]: a first pass at WIDTHxHEIGHT, then an img2img pass at the scaled size.\n"
    "ControlNet (any mode): --control TYPE[/none]:IMAGE[:WEIGHT[:START:END]], repeatable; models from KEYART_CONTROLNET_DIR.\n"
    "IP-Adapter (any mode): --reference IMAGE[:SCALE]; the adapter from KEYART_IP_ADAPTER."
)


def add_render_options(r: argparse.ArgumentParser) -> None:
    """The image-mode and hires-fix options of `render`."""
    img = r.add_argument_group("img2img, inpaint and outpaint")
    img.add_argument("--init-image", metavar="FILE", help="start from this PNG/JPEG instead of noise (img2img)")
    img.add_argument(
        "--strength",
        type=float,
        metavar="0..1",
        help="how much of the init image is repainted, 0 to 1: A1111's img2img 'Denoising strength' "
        "(default 0.75; 0.3 keeps the composition, 1 keeps only its size)",
    )
    img.add_argument("--init-upscaler", choices=("lanczos", "latent"), help="how a smaller init image is enlarged to the size: lanczos (default) or latent")
    img.add_argument("--mask", metavar="FILE", help="inpaint: the init image's size, white = repaint, black = keep (kept exactly)")
    img.add_argument("--mask-blur", type=int, metavar="PX", help="pixels of blur on the mask's edge, where the repaint blends in (default 4)")
    img.add_argument(
        "--inpaint-area",
        choices=("whole", "masked"),
        help="whole: the whole picture at WIDTHxHEIGHT (default); masked: only the mask's box, rendered at "
        "WIDTHxHEIGHT and pasted back (A1111's 'Only masked': full resolution for small areas)",
    )
    img.add_argument("--masked-padding", type=int, metavar="PX", help="pixels of context around the mask's box for --inpaint-area masked (default 32)")
    img.add_argument("--outpaint", metavar="DIRECTIONS", help="grow the init image: any of left,right,up,down, comma-separated")
    img.add_argument("--outpaint-pixels", type=int, metavar="PX", help="pixels added in each --outpaint direction, a multiple of 8 (default 128)")
    guide = r.add_argument_group("guides: ControlNet (KEYART_CONTROLNET_DIR/<type>) and IP-Adapter (KEYART_IP_ADAPTER)")
    guide.add_argument(
        "--control",
        action="append",
        metavar="TYPE:IMAGE[:W[:S:E]]",
        help="guide the render with a map made from IMAGE: TYPE canny, softedge or lineart (made here), depth or pose "
        "(ready maps: TYPE/none:MAP.png); W the weight 0-2 (default 1), S:E the fraction of the steps it guides "
        "(default 0:1; 0:0.6 fixes the composition and frees the detail). Repeat for several units",
    )
    guide.add_argument(
        "--reference",
        metavar="IMAGE[:SCALE]",
        help="take the style or subject of IMAGE (IP-Adapter from KEYART_IP_ADAPTER); SCALE 0-1 (default 0.6)",
    )
    hires = r.add_argument_group("hires fix (text to image)")
    hires.add_argument("--hires-scale", "--hr-scale", dest="hires_scale", type=float, metavar="SCALE", help="upscale the first pass by this, e.g. 1.5 or 2 (default 1: off)")
    hires.add_argument("--hires-upscaler", choices=("latent", "lanczos"), help="latent (A1111's 'Latent', default) or lanczos (on pixels)")
    hires.add_argument("--hires-steps", type=int, metavar="N", help="steps of the second pass (default 0: the same as --steps)")
    hires.add_argument(
        "--denoising-strength", type=float, metavar="0..1", help="the second pass's strength, 0 to 1: A1111's txt2img 'Denoising strength' (default 0.7)"
    )


def mode_fields(args: argparse.Namespace) -> dict[str, Any]:
    """RenderRequest fields from the image-mode options the user gave."""
    fields = {field: getattr(args, option) for option, field in MODE_FIELDS.items() if getattr(args, option, None) is not None}
    if getattr(args, "reference", None) is not None:
        fields |= reference_fields(args.reference)
    return fields


def reference_fields(text: str) -> dict[str, Any]:
    """`--reference IMAGE[:SCALE]` as the reference and reference_scale fields (a path may hold colons)."""
    path, sep, scale = str(text).rpartition(":")
    try:
        return {"reference": path, "reference_scale": float(scale)} if sep and path else {"reference": text}
    except ValueError:
        return {"reference": text}


def sized(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with a width and height for an init image when none were given: its own (outpainted)
    size in multiples of 8 (one side given: the other follows its aspect)."""
    if fields.get("init_image") is None or ("width" in fields and "height" in fields):
        return fields
    from .canvas import canvas_size, default_size, image_size, round8

    if "width" not in fields and "height" not in fields:
        width, height = default_size(str(fields["init_image"]), fields.get("outpaint"), fields.get("outpaint_pixels", 128))
        return fields | {"width": width, "height": height}
    w, h = canvas_size(image_size(str(fields["init_image"])), fields.get("outpaint"), fields.get("outpaint_pixels", 128))
    if "width" in fields:
        return fields | {"height": round8(fields["width"] * h / w)}
    return fields | {"width": round8(fields["height"] * w / h)}


def check_belongs(request, given: dict[str, Any]) -> None:
    """A mode setting given without its mode (--strength without --init-image...) is an error."""
    for field in given:
        needs, message = _BELONGS.get(field, (None, ""))
        if needs is not None and not needs(request):
            raise KeyartError(message)


# -- upscale ------------------------------------------------------------------------------------


def add_upscale_parser(sub: argparse._SubParsersAction) -> None:
    u = sub.add_parser(
        "upscale",
        help="enlarge an image: Lanczos, optionally refined by an SDXL img2img pass",
        description="Enlarge FILE by --scale with Lanczos. With --strength, an SDXL img2img pass at that strength "
        "then redraws fine detail at the new size (A1111's 'SD upscale' idea); it reuses the prompt, seed and "
        "sampler in FILE's parameters unless given. The PNG records the source file and the scale.",
    )
    u.add_argument("file", type=Path, help="the image to enlarge (PNG or JPEG)")
    u.add_argument("--scale", type=float, default=2.0, help="how much larger, above 1 and at most 4 (default 2)")
    u.add_argument("--upscaler", default="lanczos", choices=("lanczos", "latent"), help="lanczos (default) or latent (needs --strength)")
    u.add_argument("--strength", type=float, help="refine at this img2img strength, e.g. 0.3 (needs KEYART_SDXL_MODEL)")
    u.add_argument("--steps", type=int, help="the refinement's steps (default 20: at 0.3, 6 denoising steps)")
    u.add_argument("--prompt", help="the refinement's prompt (default: the one in FILE's parameters)")
    u.add_argument("--seed", type=int, help="the refinement's seed (default: FILE's, else random)")
    u.add_argument("--engine", default="auto", help="auto or sdxl for a refinement (default auto)")
    u.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    u.add_argument("--dtype", help="auto, fp16, bf16 or fp32")
    u.add_argument("--memory", help="normal, medvram or lowvram")
    u.add_argument("--output", type=Path, default=Path("data/outputs"), help="folder for the PNG (default data/outputs)")
    u.set_defaults(handler=run_upscale)


def run_upscale(args: argparse.Namespace, settings: ImageSettings) -> int:
    """`upscale`: Lanczos, then an SDXL img2img pass when --strength is given; `settings` are main's."""
    from .cli import echo, engine_options, step_bar
    from .engines import MODEL_ENV, choose, create_engine
    from .png_files import save_png, writable_folder
    from .upscale import lanczos, plan

    # 1. Validate everything (file, scale, output folder, engine) before loading a model or writing a file.
    job = plan(args.file, scale=args.scale, upscaler=args.upscaler, strength=args.strength, steps=args.steps, prompt=args.prompt, seed=args.seed)
    writable_folder(args.output)
    options = engine_options(args)
    if job.refine is None:
        if options or args.engine != "auto":
            raise KeyartError("--engine, --device, --dtype and --memory apply to a refinement pass (--strength)")
        # 2. Lanczos only: no model.
        image = lanczos(job)
    else:
        choice = choose(args.engine, settings, **options)
        if choice.name != "sdxl":
            raise KeyartError(
                f"a refinement pass (--strength) renders with SDXL: set {MODEL_ENV} to a diffusers folder, .safetensors "
                "file or hub id; without one, leave out --strength for a Lanczos-only upscale"
            )
        echo(f"engine: {choice.name} ({choice.reason})", err=True)
        # 2. Refine: the Lanczos enlargement is the img2img pass's first step (its init image, resized).
        engine = create_engine(choice.name, settings)
        with step_bar("upscale") as progress:
            lineage = {"upscale": {"source": job.source, "scale": job.scale, "upscaler": job.upscaler}}
            [image] = engine.render(job.refine, lineage=lineage, progress=progress)
    # 3. Save one PNG with its parameters and lineage.
    path = save_png(image, args.output, stem=job.stem if job.refine is None else f"{image.seed}-x{job.scale:g}")
    echo(f"{path}  {image.image.width}x{image.image.height}")
    return 0
