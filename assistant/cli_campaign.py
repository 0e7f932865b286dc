"""`python -m assistant campaign`: a brief in, a campaign package out (posts.md, posts.csv, images, campaign.zip).

Rerunning into the same folder keeps what is done; `--from-step` redoes a step and the ones after
it (for one `--platform`, if given) after campaign.json was edited there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imagegen.presets import QUALITIES

from .cli_common import catalog_from_args, catalog_parser, echo
from .models import LLM_ENV, LLMS
from .platforms import PLATFORMS
from .workflows.campaign_state import EXAMPLE_BRIEF, STEPS

EPILOG = """a brief is YAML; every key is optional, an unknown key is an error:
  show, season, episode (leave out for the season as a whole), goal, audience, tone,
  platforms (instagram, facebook, x, linkedin, tiktok), call_to_action, use_words, avoid_words, style,
  reference (a catalog image every post image keeps: "the same harbour as in S01E03", "keep Mara as in the season 1 poster"),
  motion (tiktok, instagram, or true for both: those posts get an animated loop beside the still)
  example: {example}

the chain: grounding (the catalog's art, else meta-prompting) and strategy, then per platform
copy -> image_brief -> prompt -> image; edit DIR/campaign.json and rerun with --from-step"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .workflows.service import AUTO_RULE, ENGINES

    p = subparsers.add_parser(
        "campaign", help="a social campaign from a brief: strategy, per-platform posts and images, one zip",
        description="Chain a brief into a campaign: strategy, per-platform copy, image briefs, SDXL prompts and renders.",
        epilog=EPILOG.format(example=EXAMPLE_BRIEF), formatter_class=argparse.RawDescriptionHelpFormatter, parents=[catalog_parser()],
    )  # fmt: skip
    p.add_argument("--brief", type=Path, metavar="YAML", help="the brief (needed unless --output already holds a campaign)")
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="the campaign's folder: campaign.json, posts.md, posts.csv, images/, campaign.zip")
    p.add_argument("--llm", choices=LLMS, help=f"language model (default: {LLM_ENV}, else offline)")
    p.add_argument("--engine", choices=ENGINES, help=f"{', '.join(ENGINES)}; auto is {AUTO_RULE} (default: KEYART_ENGINE, else auto)")
    p.add_argument("--quality", choices=QUALITIES, default="final", help="render preset (default final)")
    p.add_argument("--from-step", choices=STEPS, help="redo this step and every later one; earlier outputs (edited ones too) are kept")
    p.add_argument("--platform", choices=tuple(PLATFORMS), help="with --from-step: redo that platform's post only")
    p.add_argument("--home", type=Path, help="the catalog store whose art the images start from (default: KEYART_HOME, else data/home)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return p


class Bar:
    """Progress on stderr: a bar over the chain's steps, a line for each blocked or failed one."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="campaign", unit="step", file=sys.stderr, leave=False)

    def __call__(self, step: str, platform: str | None, outcome: str, detail: str = "") -> None:
        if outcome in ("blocked", "failed"):
            self.bar.write(f"{outcome}: {step}{' ' + platform if platform else ''}: {detail}", file=sys.stderr)
        self.bar.set_postfix_str(f"{step} {platform or ''}".strip())
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run(args: argparse.Namespace, settings) -> int:
    from .workflows.campaign import STATE_FILE, Tools, check_ready, load, load_brief, new_campaign
    from .workflows.campaign import run as run_chain
    from .workflows.campaign_state import CampaignError

    # 1. The campaign: the one in --output (its brief replaced when --brief differs), or a new one.
    from_step = args.from_step
    if args.platform and not from_step:
        raise CampaignError("--platform names the post to redo; give --from-step too (copy, image_brief, prompt or image)")
    if (args.output / STATE_FILE).is_file():
        campaign = load(args.output)
        brief = load_brief(args.brief) if args.brief else campaign.brief
        if brief != campaign.brief:
            campaign.brief, from_step = brief, from_step or "grounding"  # a new brief changes every step
    elif args.brief is None:
        raise CampaignError(f"{args.output} holds no campaign yet; give --brief (for example {EXAMPLE_BRIEF})")
    else:
        campaign = new_campaign(load_brief(args.brief))
    # 2. Everything the chain uses, checked before any work and before campaign.json is written:
    # the brief's show, season and episode in the catalog, the blocklist, the home's catalog store, --output.
    catalog = catalog_from_args(args)
    check_ready(campaign, catalog, settings.home_path, args.output)
    slot, model = settings.render_service(front="campaign"), settings.language_model()
    bar = Bar(total=2 + 4 * len(campaign.brief.platforms) + 1)
    tools = Tools(folder=args.output, model=model, slot=slot, catalog=catalog, home=settings.home_path, quality=args.quality, progress=bar)
    # 3. The chain, then what came out.
    try:
        run_chain(campaign, tools, from_step=from_step, platform=args.platform)
    finally:
        bar.close()
    return _report(campaign, tools)


def _report(campaign: Any, tools: Any) -> int:
    package, folder = campaign.package or {}, tools.folder
    echo(f"campaign {campaign.id}: {campaign.brief.label} of {tools.catalog.show}, written by {campaign.llm}")
    if tools.slot.name == "preview":
        echo(f"images: preview cards, not SDXL renders ({tools.slot.reason})")
    for name in campaign.posts:
        title = PLATFORMS[name].title
        if title in package.get("ready", []):
            image = campaign.posts[name].steps["image"].output
            echo(f"  {title:<10} ready       {image['path']} ({image['width']}x{image['height']})")
        elif title in package.get("blocked", {}):
            echo(f"  {title:<10} blocked     {package['blocked'][title]}")
        else:
            echo(f"  {title:<10} incomplete  {package.get('incomplete', {}).get(title, 'not run')}")
    echo(f"package: {folder / package.get('zip', 'campaign.zip')}")
    # Any post held back or unfinished makes a partial result (exit 1), said in one line on stderr.
    missing = len(package.get("blocked", {})) + len(package.get("incomplete", {}))
    if missing:
        ready = len(package.get("ready", []))
        echo(f"partial: {ready} of {ready + missing} posts ready; the others are listed above with why", err=True)
    return 1 if missing else 0
