"""The `animate` subcommand: keyframed prompts and motion rendered as a chain of img2img frames, out as
frames, an MP4, a GIF and the sidecar JSON (imagegen.animate); `--from animation.json` reproduces one."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .animation import COHERENCE, EXAMPLE, MOTION_KEYS, PROMPT_MODES, SEED_BEHAVIOURS, AnimationRequest
from .errors import InvalidRequest
from .settings import ImageSettings

DEFAULT_OUTPUT = Path("data/outputs/animations")


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "animate",
        help="animate keyframed prompts (Deforum-style): img2img frames moved by zoom, rotation and translation, out as MP4 and GIF",
        description="Render an animation: frame 0 from the first prompt (or --init-image), then each frame the previous one moved\n"
        "(--motion), its colours matched to the first frame's, and repainted with the prompt of its keyframe.\n"
        f"PROMPTS: {EXAMPLE} (frames count from 0).\n"
        "A schedule is a number or Deforum's keyframes: 0:(1.0), 24:(1.04), linear between them.",
        epilog="out: DIR/frames/0000.png... (each with its infotext), DIR/animation.mp4 (H.264), DIR/animation.gif and\n"
        "DIR/animation.json (the whole request: --from reproduces it). The same command again resumes an interrupted run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("prompts", nargs="?", help="a prompt, or keyframed prompts: '0: ... | 24: ...' (optional with --from)")
    a.add_argument("--frames", type=int, help="how many frames (default 24)")
    a.add_argument("--fps", type=float, help="frames a second (default 12)")
    a.add_argument("--width", type=int, help="multiple of 8 (default 1024)")
    a.add_argument("--height", type=int, help="multiple of 8 (default 1024)")
    a.add_argument("--negative-prompt", help="kept out of every frame")
    a.add_argument("--style", help="a style preset for every frame")
    a.add_argument(
        "--motion", action="append", metavar="KEY=SCHEDULE",
        help=f"per-frame motion, repeatable: {', '.join(MOTION_KEYS)}; e.g. zoom=0:(1.0),23:(1.04) or angle=0.5 (degrees) or translation_x=2 (pixels)",
    )  # fmt: skip
    a.add_argument("--prompt-mode", choices=PROMPT_MODES, help="between keyframes: switch (the last keyframe's prompt; the default) or blend (its encoding mixed toward the next one's)")
    a.add_argument("--strength", help="each frame's img2img strength, a schedule (default 0.45: how much of the moved frame is repainted)")
    a.add_argument("--seed", type=int, help="-1 for random (default); recorded in the sidecar")
    a.add_argument("--seed-behaviour", choices=SEED_BEHAVIOURS, help="iter: seed + frame (default); fixed: one seed for every frame")
    a.add_argument("--init-image", type=Path, help="frame 0 starts from this picture (a catalog still, say), cropped to the size")
    a.add_argument("--colour-coherence", choices=COHERENCE, help="match each frame's colours to the first's before repainting: lab (default), histogram, none")
    a.add_argument("--steps", type=int, help="sampling steps per frame (default 30)")
    a.add_argument("--cfg-scale", type=float, help="CFG scale (default 7)")
    a.add_argument("--sampler", help="A1111 sampler name (default DPM++ 2M)")
    a.add_argument("--schedule-type", help="A1111 schedule type (default Automatic)")
    a.add_argument("--engine", default="auto", help="auto, sdxl or preview (the engine must take img2img)")
    a.add_argument("--output", type=Path, help=f"the animation's folder (default {DEFAULT_OUTPUT}/<first words>-<seed>)")
    a.add_argument("--from", dest="from_json", type=Path, metavar="JSON", help="reproduce the animation of this sidecar; other options override")
    a.set_defaults(handler=animate_command)


def request_from_args(args: argparse.Namespace) -> AnimationRequest:
    """The animation the flags ask for: the sidecar's (--from) with the flags over it, or the flags alone."""
    given = {
        "prompts": args.prompts, "frames": args.frames, "fps": args.fps, "width": args.width, "height": args.height,
        "negative_prompt": args.negative_prompt, "style": args.style, "strength": args.strength, "seed": args.seed,
        "seed_behaviour": args.seed_behaviour, "colour_coherence": args.colour_coherence, "prompt_mode": args.prompt_mode,
        "init_image": str(args.init_image.expanduser().absolute()) if args.init_image else None,
    }  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    render = {k: v for k, v in (("num_inference_steps", args.steps), ("guidance_scale", args.cfg_scale), ("sampler", args.sampler), ("schedule_type", args.schedule_type)) if v is not None}
    motion = {}
    for item in args.motion or []:
        key, sep, value = item.partition("=")
        if not sep or not value.strip():
            raise InvalidRequest(f"--motion takes KEY=SCHEDULE, e.g. zoom=0:(1.0),23:(1.04) (got {item!r})")
        motion[key.strip()] = value.strip()
    if args.from_json is not None:
        from .animate import load_sidecar

        base = load_sidecar(args.from_json)
        return base.replace(**given, render=base.render | render, **({"motion": base.motion | motion} if motion else {}))
    if "prompts" not in given:
        raise InvalidRequest(f"give PROMPTS to animate ({EXAMPLE}), or --from animation.json to reproduce one")
    return AnimationRequest(**given, render=render, motion=motion)


def animate_command(args: argparse.Namespace, settings: ImageSettings) -> int:
    from .animate import animate
    from .cli import echo, engine_options
    from .engines import check_request, choose, create_engine

    # 1. Everything checked before the engine loads: the schedules, frame 0's request, the engine's img2img.
    request = request_from_args(args)
    choice = choose(args.engine, settings, **engine_options(args))
    check_request(choice.name, request.frame_request(0, init_image=None), settings=settings)
    if "img2img" not in _features(choice.name):
        raise InvalidRequest(f"the {choice.name} engine has no img2img, which every frame after the first needs; use sdxl or preview")
    if request.seed < 0:
        import random

        from .request import MAX_SEED

        request = request.replace(seed=random.randint(0, MAX_SEED))
    folder = args.output or DEFAULT_OUTPUT / f"{_slug(request.prompt_at(0))}-{request.seed}"
    echo(f"engine: {choice.name} ({choice.reason})", err=True)
    engine = create_engine(choice.name, settings)
    # 2. The frames, with a line per frame.
    done = animate(engine, request, folder, progress=lambda i, n: echo(f"frame {i}/{n}", err=True))
    echo(f"{done.video}\n{done.gif}\n{done.sidecar}  ({request.frames} frames at {request.fps:g} fps, seed {request.seed})")
    return 0


def _features(name: str) -> frozenset[str]:
    from .engines import spec

    return spec(name).supports


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower())[:40].strip("-") or "animation"
