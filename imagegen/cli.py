"""The imagegen command line: `render` a prompt with A1111-named options, `info` on a PNG.

Errors a user can fix exit with code 2 and one line that says how; nothing is written for them.
An edge: main reads the settings (environment, then flags) once and passes them down.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import presets, samplers, styles
from .cli_modes import MODES_HELP, add_render_options, add_upscale_parser, check_belongs, mode_fields, sized
from .errors import KeyartError, one_line_parser, run_edge
from .request import SDXL_SIZES, RenderRequest
from .settings import ENGINE_OPTIONS, VARIABLES, ImageSettings, configure, help_text

DEFAULT_OUTPUT = Path("data/outputs")

# CLI option -> RenderRequest field (diffusers' names inside, A1111's names at the edge).
FIELDS = {
    "negative_prompt": "negative_prompt",
    "sampler": "sampler",
    "schedule_type": "schedule_type",
    "steps": "num_inference_steps",
    "cfg_scale": "guidance_scale",
    "width": "width",
    "height": "height",
    "seed": "seed",
    "batch_size": "batch_size",
    "batch_count": "batch_count",
    "style": "style",
    "refiner_switch_at": "refiner_switch_at",
    "subseed": "subseed",
    "subseed_strength": "subseed_strength",
    "freeu": "freeu",
}


def engine_options(args: argparse.Namespace) -> dict[str, str]:
    """The sdxl engine's options given on the command line (--device, --dtype, --memory, --speed, --compile)."""
    return {name: value for name in ENGINE_OPTIONS if (value := getattr(args, name, None))}


def explicit_fields(args: argparse.Namespace) -> dict[str, Any]:
    """RenderRequest fields from the options the user gave (diffusers' names inside), --refiner and --tiling as on/off."""
    given = {field: getattr(args, option) for option, field in FIELDS.items() if getattr(args, option, None) is not None}
    if getattr(args, "refiner", None) is not None:
        given["refiner"] = "on" if args.refiner else "off"
    if getattr(args, "tiling", None) is not None:
        given["tiling"] = "on" if args.tiling else "off"
    return given


@contextmanager
def step_bar(desc: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A tqdm step bar on stderr, yielding the engines' `progress(done, total)` callback that moves it."""
    from tqdm import tqdm

    with tqdm(desc=desc, unit="step", file=sys.stderr, leave=False, disable=not enabled) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def echo(text: str = "", *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(text + "\n")


def _engine_rows() -> list[tuple[str, str]]:
    """(name, one line) for auto and each engine, from the engine table."""
    from .engines import describe

    return describe()


def _engine_lines() -> str:
    rows = _engine_rows()
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {line}" for name, line in rows)


def _catalog_help() -> str:
    width = max(len(s.name) for s in styles.catalog().values())
    style_lines = "\n".join(f"  {s.name:<{width}}  {s.description}" for s in styles.catalog().values())
    quality_lines = "\n".join(f"  {q:<{width}}  {presets.describe_quality(q)}" for q in presets.QUALITIES)
    return (
        f"samplers:\n  {', '.join(samplers.SAMPLERS)}\n"
        f"  (legacy combined names work too: {', '.join(samplers.legacy_names()[:4])}, ...)\n"
        f"schedule types:\n  {', '.join(samplers.SCHEDULE_TYPES)}\n"
        f"styles:\n{style_lines}\n  none{' ' * (width - 2)}  the prompt as written\n"
        f"quality presets (--quality; options given explicitly win):\n{quality_lines}\n"
        f"SDXL sizes (WxH):\n  {', '.join(f'{w}x{h}' for w, h in SDXL_SIZES)}\n"
        f"engines (--engine):\n{_engine_lines()}\n"
        f"environment (an empty value is unset; --device, --dtype and --memory win):\n{help_text(VARIABLES)}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = one_line_parser(prog="python -m imagegen", description="keyart's image engine: SDXL renders with A1111's controls.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{render,info,describe,animate,upscale,grid,xy,schedule,serve}")

    r = sub.add_parser(
        "render",
        help="render a prompt (or reproduce a PNG with --from)",
        description="Render PROMPT to PNGs that carry A1111 parameters and keyart lineage: text to image,\n"
        "img2img, inpaint or outpaint (--init-image), with the hires fix (--hires-scale).",
        epilog=f"{_catalog_help()}\n{MODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("prompt", nargs="?", help="what to draw (optional with --from)")
    r.add_argument("--negative-prompt", help="what to keep out of the image")
    r.add_argument("--style", help="style preset (see below); 'none' for the prompt as written")
    r.add_argument(
        "--quality",
        metavar="{" + ",".join(presets.QUALITIES) + "}",
        help="one word for steps, sampler, schedule, CFG and refiner: draft (a fast look) or final (catalog art); "
        "--steps and the other options win over it, and with --from it replaces the PNG's settings",
    )
    r.add_argument("--sampler", help="A1111 sampler name, e.g. 'DPM++ 2M' or 'Euler a' (default DPM++ 2M)")
    r.add_argument("--schedule-type", help="Automatic, Karras, Exponential, SGM Uniform... (default Automatic)")
    r.add_argument("--steps", type=int, help="sampling steps (default 30)")
    r.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (default 7)")
    r.add_argument("--width", type=int, help="multiple of 8 (default 1024)")
    r.add_argument("--height", type=int, help="multiple of 8 (default 1024)")
    r.add_argument("--seed", type=int, help="-1 for random (default); image i of a batch uses seed+i")
    r.add_argument("--batch-size", type=int, help="images per batch (default 1)")
    r.add_argument("--batch-count", type=int, help="batches, one after another (default 1)")
    r.add_argument("--refiner", action=argparse.BooleanOptionalAction, help="use the SDXL refiner (default: when KEYART_SDXL_REFINER is set)")
    r.add_argument("--refiner-switch-at", type=float, help="fraction of the steps the base runs before the refiner (default 0.8)")
    r.add_argument("--subseed", type=int, help="A1111's variation seed (-1 random); used when --subseed-strength > 0")
    r.add_argument("--subseed-strength", type=float, help="0..1: how far the starting noise moves toward the variation seed's (0.05-0.3: close variations)")
    r.add_argument("--tiling", action=argparse.BooleanOptionalAction, help="A1111's Tiling: the image repeats seamlessly both ways (textures, patterns, backdrops)")
    r.add_argument(
        "--freeu", nargs="?", const="on", metavar="FACTORS",
        help="FreeU: reweigh the UNet's deepest up blocks (more structure and colour, less smoothing); alone, the SDXL values "
        "b1=1.3,b2=1.4,s1=0.9,s2=0.2, or any of them as name=value",
    )  # fmt: skip
    r.add_argument("--engine", default="auto", help=f"{', '.join(name for name, _ in _engine_rows())} (default auto; see engines below)")
    r.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    r.add_argument("--dtype", help="auto, fp16, bf16 or fp32 (default: fp16 on GPUs, fp32 on the CPU)")
    r.add_argument("--memory", help="normal, medvram (model offload) or lowvram (sequential offload) for small GPUs")
    r.add_argument("--speed", help="auto (fast on CUDA GPUs), standard (stock diffusers), fast (exact optimisations: fused QKV, channels_last, bf16, torch.compile on GPUs) or turbo (fast plus step caching and fp8 linears: changes pixels, labelled)")
    r.add_argument("--compile", help="auto (with fast or turbo on CUDA GPUs), on or off: torch.compile of the UNet's blocks and the VAE decoder, kernels cached under KEYART_CACHE")
    r.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"folder for the PNGs (default {DEFAULT_OUTPUT})")
    r.add_argument("--from", dest="from_png", type=Path, metavar="PNG", help="reproduce this PNG from its own metadata; other options override")
    add_render_options(r)  # img2img, inpaint, outpaint and the hires fix (cli_modes)

    i = sub.add_parser("info", help="print a PNG's A1111 parameters and keyart lineage")
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true", help="one JSON object instead of text")
    from .cli_describe import add_parser as add_describe_parser  # `describe`: image to prompt (cli_describe)

    add_describe_parser(sub)
    from .cli_animate import add_parser as add_animate_parser  # `animate`: keyframed img2img animations (cli_animate)

    add_animate_parser(sub)
    add_upscale_parser(sub)  # `upscale` brings its own handler (cli_modes)
    sc = sub.add_parser(
        "schedule",
        help="show the prompt in force at each step (prompt editing [from:to:when], alternation [a|b])",
        description="Print a prompt's schedule: the text in force up to and including each step, as the engine encodes it.",
    )
    sc.add_argument("prompt")
    sc.add_argument("--steps", type=int, default=30, help="sampling steps to lay the schedule over (default 30)")
    sc.add_argument("--json", action="store_true", help="a JSON list of [last_step, text] instead of text")
    sc.set_defaults(handler=_schedule)

    from .cli_grids import add_parsers  # `grid` and `xy`, sharing render's options

    add_parsers(sub, r)
    from .cli_serve import add_parser as add_serve_parser  # `serve`: the image service (cli_serve)

    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        # 1. The environment, read once: --help lists the extra style files it names.
        settings = ImageSettings.from_env()
        configure(settings)
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)], format="%(levelname)s %(name)s: %(message)s")
        # 2. The flags win over the environment; the handlers get this one settings object.
        settings = settings.overridden(**{name: getattr(args, name, None) for name in ENGINE_OPTIONS})
        if hasattr(args, "handler"):  # describe, animate, schedule, upscale, grid and xy bring their own (cli_describe, cli_animate, cli_modes, cli_grids)
            return args.handler(args, settings)
        return _info(args) if args.command == "info" else _render(args, settings)

    # One error policy: our errors one line (exit 2), a bug 3 with its log, ^C 130.
    return run_edge(body, echo=echo, interrupted="interrupted: images already saved are kept", program="imagegen")


def _schedule(args: argparse.Namespace, _settings: ImageSettings) -> int:
    from .prompt_schedule import prompt_schedule

    rows = prompt_schedule(args.prompt, args.steps)
    if args.json:
        echo(json.dumps(rows, ensure_ascii=False))
        return 0
    first = 1
    for last, text in rows:
        steps = f"step {first}" if first == last else f"steps {first}-{last}"
        echo(f"{steps:>13}: {text}")
        first = last + 1
    return 0


def _info(args: argparse.Namespace) -> int:
    from .png_files import read_png

    meta = read_png(args.file)
    if args.json:
        echo(json.dumps({"parameters": meta.infotext, "keyart": meta.lineage}, indent=2, ensure_ascii=False))
        return 0
    echo("parameters:")
    echo(meta.infotext if meta.infotext is not None else "(none)")
    echo()
    echo("keyart:")
    echo(json.dumps(meta.lineage, indent=2, ensure_ascii=False) if meta.lineage is not None else "(none)")
    return 0


def _request(args: argparse.Namespace) -> tuple[RenderRequest, int | None]:
    """The request to render and, when reproducing a batch exactly, which of its images to keep."""
    explicit = explicit_fields(args)
    modes = mode_fields(args)  # img2img, inpaint, outpaint, hires fix
    # The quality preset fills only what the options left unset: an explicit option always wins.
    overrides = presets.apply_quality(args.quality, explicit) | modes
    if args.prompt is not None:
        overrides["prompt"] = args.prompt
    if args.from_png is None:
        if "prompt" not in overrides:
            raise KeyartError("give a PROMPT to render, or --from PNG to reproduce an image")
        request = RenderRequest(**sized(overrides))  # an init image's own size when none is given
        check_belongs(request, modes)
        return request, None
    from .png_files import request_from_png

    original, index = request_from_png(args.from_png, init_image=modes.get("init_image"), mask=modes.get("mask"), controls=modes.get("controls"), reference=modes.get("reference"))
    seed = original.seeds()[index]
    if overrides:  # a variation on that one image: its own seed, one image, the new settings
        request = original.replace(seed=seed, batch_size=1, batch_count=1).replace(**overrides)
        check_belongs(request, modes)
        return request, None
    # An exact reproduction re-runs the image's own batch: batched maths is only bit-identical
    # for the same batch shape.
    batch_start = original.seeds()[index - index % original.batch_size]
    return original.replace(seed=batch_start, batch_count=1), index % original.batch_size


def _render(args: argparse.Namespace, settings: ImageSettings) -> int:
    from .engines import check_request, choose, create_engine
    from .png_files import save_png, writable_folder

    # 1. Validate everything before loading a model or writing a file (flags for sdxl asked of preview too).
    request, keep = _request(args)
    writable_folder(args.output)
    choice = choose(args.engine, settings, **engine_options(args))
    check_request(choice.name, request, settings=settings)  # a feature the engine lacks, a ControlNet not there: before loading
    echo(f"engine: {choice.name} ({choice.reason})", err=True)
    # 2. Load the engine (the settings carry the flags) and render with a progress bar.
    engine = create_engine(choice.name, settings)
    # Preview cards take milliseconds; a step bar is for SDXL, where a CPU render takes minutes.
    with step_bar("render", enabled=choice.name == "sdxl") as progress:
        images = engine.render(request, progress=progress)
    # 3. Save: one atomic PNG per image, with its parameters and lineage.
    for image in images if keep is None else [images[keep]]:
        path = save_png(image, args.output)
        echo(f"{path}  seed {image.seed}")
    return 0
