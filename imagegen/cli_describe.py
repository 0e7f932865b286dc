"""The `describe` subcommand: an SDXL prompt for an image (imagegen.describe), on stdout; its trace with --json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .describe import CAPTION_ENV, CLIP_ENV, Describer
from .settings import ImageSettings


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "describe",
        help="write an SDXL prompt for an image: a caption extended with the medium, style and lighting words CLIP ranks highest",
        description="Write an SDXL prompt for IMAGE, as clip-interrogator does: a caption from the captioning model\n"
        f"({CAPTION_ENV}), then the medium, style and lighting words the CLIP model ({CLIP_ENV}) finds\n"
        "most like the image, then composition words while each makes the prompt more like it.\n"
        "Without the models the prompt is offline (light, colour and framing read from the pixels) and says so.",
        epilog="the prompt goes to stdout (pipe it into `render`); how it was found goes to stderr, or all of it to stdout with --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("image", type=Path, help="a PNG, JPEG or WebP")
    d.add_argument("--caption-model", help=f"a captioning model folder or hub id (default: {CAPTION_ENV})")
    d.add_argument("--clip-model", help=f"a CLIP model folder or hub id (default: {CLIP_ENV})")
    d.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    d.add_argument("--json", action="store_true", help="the prompt, caption, method and trace as one JSON object")
    d.set_defaults(handler=describe)


def describe(args: argparse.Namespace, settings: ImageSettings) -> int:
    from .cli import echo

    describer = Describer(args.caption_model or settings.caption_model, args.clip_model or settings.clip_model, device=settings.device)
    found = describer.describe(args.image)
    if args.json:
        echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        return 0
    echo(found.prompt)
    echo(f"method: {found.method}", err=True)
    if found.caption:
        echo(f"caption: {found.caption}", err=True)
    for kind, ranked in found.trace.get("ranking", {}).items():
        echo(f"{kind}: " + ", ".join(f"{phrase} ({score:g})" for phrase, score in ranked), err=True)
    if "similarity" in found.trace:
        echo(f"CLIP similarity of the prompt: {found.trace['similarity']:g}", err=True)
    return 0
