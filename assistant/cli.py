"""The assistant's command line: `episode` (meta-prompting) and `season` (self-ask) with their trace,
`chat` (the illustrator in a terminal, cli_chat.py) and `campaign` (the campaign chain, cli_campaign.py).

Errors a user can fix exit with code 2 and one line that says how.
"""

from __future__ import annotations

import argparse
import json
import logging

from imagegen.errors import one_line_parser, run_edge

from .cli_campaign import add_parser as add_campaign_parser
from .cli_campaign import run as run_campaign
from .cli_chat import add_parser as add_chat_parser
from .cli_chat import run as run_chat
from .cli_common import catalog_from_args, catalog_parser, echo
from .models import LLM_ENV, LLMS


def build_parser() -> argparse.ArgumentParser:
    from .workflows.settings import help_epilog

    common = argparse.ArgumentParser(add_help=False, parents=[catalog_parser()])
    common.add_argument("--llm", choices=LLMS, help=f"language model (default: {LLM_ENV}, else offline)")
    common.add_argument("--styles", help="comma-separated style names (default: all catalog styles)")
    common.add_argument("--json", action="store_true", help="print the whole result, trace included, as JSON")
    common.add_argument("--trace", action="store_true", help="also print every message sent and reply received")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser = one_line_parser(
        prog="python -m assistant",
        description="Write SDXL prompts from a show's summaries: meta-prompting for an episode, self-ask for a season.",
        epilog=(
            "language models:\n"
            "  offline       rules over the summary text, no model (the default)\n"
            "  openai        OpenAI or any compatible server: OPENAI_API_KEY, OPENAI_BASE_URL, KEYART_LLM_MODEL\n"
            "  transformers  a local model folder: KEYART_LLM_MODEL=/path/to/model\n\n"
            + help_epilog()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{episode,season,chat,campaign}")
    e = sub.add_parser("episode", parents=[common], help="an episode's prompts, by meta-prompting")
    e.add_argument("--season", type=int, required=True)
    e.add_argument("--episode", type=int, required=True)
    s = sub.add_parser("season", parents=[common], help="a season's prompts in every style, by self-ask")
    s.add_argument("season", type=int)
    add_chat_parser(sub)
    add_campaign_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)], format="%(levelname)s %(name)s: %(message)s")
    return run_edge(lambda: _run(args, _settings(args)), echo=echo, program="assistant")


def _settings(args: argparse.Namespace):
    """The environment and the flags, read once; every command gets this object."""
    from .workflows.settings import Settings

    return Settings.from_env(**{name: getattr(args, name, None) for name in ("home", "llm", "engine")}).apply()


def _run(args: argparse.Namespace, settings) -> int:
    if args.command == "chat":
        return run_chat(args, settings)
    if args.command == "campaign":
        return run_campaign(args, settings)
    from .workflows.prompts import for_episode, for_season

    catalog = catalog_from_args(args)
    for problem in catalog.problems:
        echo(f"warning: {problem}", err=True)
    from .workflows.plan import parse_styles

    chosen = parse_styles(args.styles)
    styles = list(chosen) if chosen is not None else None
    model = settings.language_model()
    if args.command == "episode":
        result = for_episode(catalog, args.season, args.episode, model, styles)
    else:
        result = for_season(catalog, args.season, model, styles)
    if args.json:
        echo(result.model_dump_json(indent=2))
        return 0
    _show(result, args.trace)
    return 0


def _show(result, full_trace: bool) -> None:
    trace = result.trace
    where = f"season {result.season}" + (f", episode {result.episode}" if hasattr(result, "episode") else "")
    echo(f"{result.show}, {where}{': ' + result.title if result.title else ''}")
    echo(f"written by: {trace.label} ({trace.technique})")
    if getattr(result, "summary_written", False):
        echo(f"season summary (written, the catalog has none): {result.summary}")
    if hasattr(result, "follow_ups"):
        echo()
        for f in result.follow_ups:
            echo(f"Follow up: {f.question}")
            echo(f"Intermediate answer: {f.answer}")
        echo(f"So the final answer is: {result.final_answer}")
    echo()
    echo("scene: " + "; ".join(f"{k}: {v if isinstance(v, str) else ', '.join(v)}" for k, v in result.brief.model_dump().items() if v))
    for p in result.prompts:
        echo()
        echo(f"[{p.style}]")
        echo(f"  prompt:   {p.prompt}")
        echo(f"  negative: {p.negative_prompt}")
    echo()
    for label, items in (("retries", trace.retries), ("warnings", trace.warnings)):
        for item in items:
            echo(f"{label[:-1]}: {item}")
    if trace.repairs:
        echo(f"repair rounds: {trace.repairs}")
    if trace.fallback:
        echo(f"fallback: {trace.fallback}")
    if full_trace:
        for i, (sent, reply) in enumerate(zip(trace.messages, trace.replies), 1):
            echo(f"\n--- request {i} ---")
            echo(json.dumps(sent, indent=1, ensure_ascii=False))
            echo(f"--- reply {i} ---")
            echo(reply)
