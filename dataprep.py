"""dataprep: a show's episode and season summaries -> LLM-written SDXL prompts -> a catalog of images.

Stages: `prompts` (language model), `render` (image engine), `run` (both, rendering while prompts
are written), `status`, `export`. Everything lands in one home folder (SQLite + images); a rerun
does only what changed, and a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from assistant.cli_common import echo
from imagegen.errors import KeyartError, one_line_parser, run_edge

EXIT_OK, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 130  # argparse exits 2 on a usage error itself
EXIT_CODES = """exit codes:
  0    everything asked for is in the catalog
  1    finished, but some items failed or some input rows were skipped (see `status`)
  2    bad input or configuration (nothing was done), or the language model is unreachable
  130  interrupted (Ctrl-C); what was finished is kept, rerun to resume"""


def _epilog() -> str:
    from assistant.workflows.settings import help_epilog

    return f"{EXIT_CODES}\n\n{help_epilog()}"


def build_parser() -> argparse.ArgumentParser:
    from assistant.cli_common import catalog_parser
    from assistant.models import LLMS
    from assistant.workflows.service import AUTO_RULE, ENGINES
    from assistant.workflows.plan import BUILD_QUALITIES
    from imagegen.scale import add_flags

    epilog = _epilog()
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", type=Path, help="catalog home folder (default: KEYART_HOME, else data/home)")
    home.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")

    source = argparse.ArgumentParser(add_help=False, parents=[catalog_parser()])
    source.add_argument("--season", type=int, help="only this season")
    source.add_argument("--episodes", help="only these episodes, e.g. 1-3,5 (leaves out season art)")
    source.add_argument("--styles", help="comma-separated styles (default: all five catalog styles)")
    source.add_argument("--limit", type=int, help="at most this many episodes and seasons, in catalog order")
    source.add_argument("--force", action="store_true", help="redo the selection even where the catalog has it")

    llm = argparse.ArgumentParser(add_help=False)
    llm.add_argument("--llm", choices=LLMS, help="language model (default: KEYART_LLM, else offline)")

    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--engine", choices=ENGINES, help=f"{', '.join(ENGINES)}; auto is {AUTO_RULE} (default: KEYART_ENGINE, else auto)")
    engine.add_argument(
        "--quality", choices=BUILD_QUALITIES,
        help="catalog (the default, unless KEYART_QUALITY says otherwise): keep the art the catalog has, make new art final; draft: a quick look; final: full steps and the refiner. "
        "draft and final redo art made otherwise, and say so first",
    )  # fmt: skip
    engine.add_argument("--refiner", action=argparse.BooleanOptionalAction, help="use the SDXL refiner (default: when KEYART_SDXL_REFINER is set)")
    engine.add_argument("--steps", type=int, help="sampling steps (default: from --quality)")
    engine.add_argument("--cfg-scale", type=float, help="CFG scale (default: from --quality)")
    engine.add_argument("--sampler", help="A1111 sampler name (default: from --quality)")
    engine.add_argument("--schedule-type", help="A1111 schedule type (default: from --quality)")
    engine.add_argument("--width", type=int, help="override the width (default: 1216 for episodes, 832 for seasons)")
    engine.add_argument("--height", type=int, help="override the height (default: 832 for episodes, 1216 for seasons)")
    engine.add_argument("--device", help="cuda, cuda:1, mps or cpu (sdxl)")
    engine.add_argument("--dtype", help="auto, fp16, bf16 or fp32 (sdxl)")
    engine.add_argument("--memory", help="normal, medvram or lowvram (sdxl)")
    engine.add_argument("--speed", help="auto, standard, fast or turbo (sdxl: fast is exact optimisations and auto's choice on CUDA GPUs; turbo changes pixels)")
    engine.add_argument("--compile", help="auto, on or off (sdxl: torch.compile; auto compiles with fast or turbo on CUDA GPUs)")
    add_flags(engine)

    parser = one_line_parser(
        prog="python dataprep.py",
        description="Turn a show's summaries into a catalog of SDXL prompts and images: each episode illustrated, each season in five styles.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,prompts,render,status,search,export}")
    fmt = argparse.RawDescriptionHelpFormatter
    sub.add_parser("run", parents=[home, source, llm, engine], help="prompts and images (rendering starts while prompts are written)", epilog=epilog, formatter_class=fmt)
    sub.add_parser("prompts", parents=[home, source, llm], help="write the prompts only (language model)", epilog=epilog, formatter_class=fmt)
    sub.add_parser("render", parents=[home, source, engine], help="render the images whose prompts are written (engine only)", epilog=epilog, formatter_class=fmt)
    s = sub.add_parser("status", parents=[home], help="what is done, pending and failed, with reasons")
    s.add_argument("--show", help="only this show")
    s.add_argument("--json", action="store_true", help="one JSON object")
    q = sub.add_parser(
        "search", parents=[home], help="find art by words in its title, summary or prompt, best first; or images that look alike (--like)",
        epilog="--like ranks the catalog's images by how alike they look: CLIP image similarity with KEYART_CLIP_MODEL, "
        "else colour histograms (offline, and said so); embeddings are kept in the catalog, made once per image",
    )  # fmt: skip
    q.add_argument("query", nargs="?", help='words to find, all of them, as prefixes: "storm lighthouse"')
    q.add_argument("--like", metavar="S01E03|S01|IMAGE", help="more like this: a catalog image (S01E03, S01 for the season's poster) or an image file")
    q.add_argument("--show", help="only this show")
    q.add_argument("--style", help="only this style")
    q.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
    q.add_argument("--json", action="store_true", help="one JSON object")
    e = sub.add_parser("export", parents=[home], help="the catalog as CSV or Parquet, and a contact sheet PNG per season")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--output", type=Path, default=Path("data/outputs/catalog.csv"), help="table file; contact sheets go beside it (default data/outputs/catalog.csv)")
    e.add_argument("--show", help="only this show")
    e.add_argument("--no-contact-sheets", dest="sheets", action="store_false", help="write the table only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)], format="%(levelname)s %(name)s: %(message)s")

    def body() -> int:
        # The environment and the flags, read once; everything below gets this object.
        settings = _read_settings(args)
        if args.command == "status":
            return _status(args, settings)
        if args.command == "export":
            return _export(args, settings)
        if args.command == "search":
            return _search(args, settings)
        return _stages(args, settings)

    # One error policy: our errors one line (exit 2), a partial result 1, a bug 3 with its log, ^C 130.
    return run_edge(body, echo=echo, interrupted="interrupted: what was finished is kept; run the same command again to resume", program="dataprep")


# -- prompts, render, run -------------------------------------------------------------------------


def _read_settings(args: argparse.Namespace):
    from assistant.workflows.settings import Settings

    flags = {name: getattr(args, name, None) for name in ("home", "llm", "engine", "quality", "device", "dtype", "memory", "speed", "compile")}
    return Settings.from_env(**flags).apply()


def _stages(args: argparse.Namespace, config) -> int:
    from assistant.cli_common import catalog_from_args
    from assistant.workflows.build import prepare_build
    from assistant.workflows.plan import Selection, parse_episodes, parse_styles
    from imagegen.scale import options_from

    # 1. Read and check everything before any work: the catalog, the selection, the settings, the engine.
    if args.limit is not None and args.limit < 1:
        raise KeyartError(f"--limit must be at least 1 (got {args.limit})")
    catalog = catalog_from_args(args)
    for problem in catalog.problems:
        echo(f"skipped: {problem}", err=True)
    styles = parse_styles(args.styles)
    selection = Selection(season=args.season, episodes=parse_episodes(args.episodes) if args.episodes is not None else None, styles=styles, limit=args.limit)
    settings = _settings(args, config) if args.command != "prompts" else None
    home = config.home_path
    scale = options_from(args, config.image.ray_address) if settings is not None else None
    # Catalog art renders one request per engine call: batched images differ from single ones in the
    # last bits, and an image must not depend on which others shared its call (a resumed run, or
    # one spread over replicas, must give the same catalog).
    service = config.render_service(front="dataprep", scale=scale, max_batch=1, announce=lambda line: echo(f"ray: {line}", err=True)) if settings is not None else None
    model = config.language_model() if args.command != "render" else None
    build = prepare_build(catalog, home, command=args.command, selection=selection, model=model, service=service, settings=settings, force=args.force)
    store = build.store
    # 2. Say what is about to happen, replaced art included, then do it with a progress bar per stage.
    echo(f"catalog: {catalog.show}, {len(build.items)} item(s) selected; home {store.home}", err=True)
    if service is not None:
        echo(f"engine: {service.name} ({service.reason})", err=True)
    if (redo := build.redo_message()) is not None:
        echo(f"redo: {redo} (--quality {settings.quality}); --quality catalog keeps them", err=True)
    started = time.perf_counter()
    try:
        with _Bars() as bars:
            report = build.run(progress=bars)
    finally:
        if service is not None:
            service.close(cancel=True)
    # 3. The closing summary.
    _summary(report, args.command, time.perf_counter() - started, cache=getattr(build.model, "cache", None))
    if report.interrupted:
        echo("interrupted: what was finished is kept; run the same command again to resume", err=True)
        return EXIT_INTERRUPTED
    return EXIT_PARTIAL if report.failed or catalog.problems else EXIT_OK


def _settings(args: argparse.Namespace, config):
    from assistant.workflows.plan import RenderSettings

    overrides = {
        field: value
        for field, value in (
            ("num_inference_steps", args.steps),
            ("guidance_scale", args.cfg_scale),
            ("sampler", args.sampler),
            ("schedule_type", args.schedule_type),
            ("width", args.width),
            ("height", args.height),
        )
        if value is not None
    }
    refiner = "auto" if args.refiner is None else "on" if args.refiner else "off"
    return RenderSettings(quality=config.quality, refiner=refiner, overrides=overrides)


class _Bars:
    """tqdm bars on stderr, one per stage; failures are printed above them as they happen."""

    def __enter__(self):
        self.bars: dict[str, Any] = {}
        return self

    def __exit__(self, *exc: Any) -> None:
        for bar in self.bars.values():
            bar.close()

    def stage(self, name: str, total: int) -> None:
        from tqdm import tqdm

        unit = "item" if name == "prompts" else "image"
        self.bars[name] = tqdm(total=total, desc=f"{name:<7}", unit=unit, file=sys.stderr, position=len(self.bars), dynamic_ncols=True)

    def step(self, name: str, outcome: str, label: str, detail: str = "") -> None:
        bar = self.bars[name]
        if outcome == "failed":
            bar.write(f"failed: {name} {label}: {detail}", file=sys.stderr)
        bar.set_postfix_str(f"{label} {outcome}", refresh=False)
        bar.update(1)


def _summary(report, command: str, seconds: float, cache: Any = None) -> None:
    p, i = report.prompts, report.images
    if not report.interrupted and p.done == p.failed == i.done == i.failed == 0:
        what = {"prompts": "prompts", "render": "images", "run": "prompts and images"}[command]
        echo(f"nothing to do: all {what} selected were already in the catalog ({p.skipped + i.skipped} item(s); --force redoes them)")
        return
    if command != "render":
        extra = f", {p.fallbacks} fell back to offline" if p.fallbacks else ""
        hits = f", {cache.hits} cached repl{'y' if cache.hits == 1 else 'ies'}" if cache is not None and getattr(cache, "hits", 0) else ""
        echo(f"prompts: {p.done} written, {p.skipped} already done, {p.failed} failed{extra}{hits}")
    if command != "prompts":
        rate = f", {i.done / (i.seconds / 60):.1f} images per minute" if i.done and i.seconds > 0 else ""
        echo(f"images:  {i.done} rendered, {i.skipped} already done, {i.failed} failed{rate}")
    echo(f"time:    {seconds:.1f} s" + ("; see `python dataprep.py status` for the failures" if report.failed else ""))


# -- status, export -------------------------------------------------------------------------------


def _status(args: argparse.Namespace, config) -> int:
    from assistant.store import Store
    from assistant.workflows.export import status

    info = status(Store(config.home_path, create=False), args.show)
    if args.json:
        echo(json.dumps(info, indent=2, ensure_ascii=False))
        return EXIT_OK
    echo(f"catalog: {info['home']}")
    states = ("done", "prompted", "pending", "failed")
    for show, kinds in info["shows"].items():
        echo(f"\n{show}")
        echo(f"  {'':<9}" + "".join(f"{s:>10}" for s in states))
        for kind in ("episode", "season"):
            if kind in kinds:
                echo(f"  {kind + 's':<9}" + "".join(f"{kinds[kind].get(s, 0):>10}" for s in states))
    if info["fallbacks"]:
        echo(f"\n{info['fallbacks']} image(s) have prompts the offline rules wrote after the language model's reply stayed unusable")
    if info["failures"]:
        echo(f"\nfailed ({len(info['failures'])}):")
        for f in info["failures"]:
            where = f"S{f['season']:02d}" + (f"E{f['episode']:02d}" if f["episode"] else " season")
            echo(f"  {f['show']} {where} {f['style']} [{f['failed_at']}]: {f['error']}")
    echo("\n'prompted': prompts written, image not rendered yet; 'pending': nothing yet. `python dataprep.py run` continues.")
    return EXIT_OK


def _search(args: argparse.Namespace, config) -> int:
    from dataclasses import asdict

    from assistant.search import search
    from assistant.store import Store

    store = Store(config.home_path, create=False)
    if args.like is not None:
        return _search_like(args, config, store)
    if args.query is None:
        raise KeyartError('give words to search for ("storm lighthouse"), or --like S01E03 for images that look alike')
    hits = search(store, args.query, show=args.show, style=args.style, limit=args.limit)
    if args.json:
        echo(json.dumps({"query": args.query, "hits": [asdict(h) | {"image": _image_of(store, h)} for h in hits]}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not hits:
        echo(f"nothing in {store.home} matches {args.query!r}")
        return EXIT_OK
    for hit in hits:
        echo(f"{hit.show} {hit.label} {hit.style:<14} {hit.title!r:<32} {_image_of(store, hit) or '(no image yet)'}")
        echo(f"    {hit.snippet}")
    return EXIT_OK


def _search_like(args: argparse.Namespace, config, store) -> int:
    from assistant.workflows import similar

    if args.query is not None:
        raise KeyartError("search takes words or --like, not both")
    found = similar.more_like(store, similar.describer_for(config.image), like=similar.target(args.like), show=args.show, style=args.style, limit=args.limit)
    if args.json:
        echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        return EXIT_OK
    echo(f"like {found.query}, by {found.method}:", err=True)
    if not found.hits:
        echo(f"no other rendered image in {store.home}")
    for hit in found.hits:
        echo(f"{hit.score:6.3f}  {hit.show} {hit.label} {hit.style:<14} {hit.title!r:<32} {hit.path}")
    return EXIT_OK


def _image_of(store, hit) -> str | None:
    path = store.image_file(hit.image_key) if hit.image_key else None
    return str(path) if path is not None else None


def _export(args: argparse.Namespace, config) -> int:
    from assistant.store import Store
    from assistant.workflows.export import export

    output = args.output
    if args.format == "parquet" and output == Path("data/outputs/catalog.csv"):
        output = output.with_suffix(".parquet")
    for path in export(Store(config.home_path, create=False), output, args.format, show=args.show, sheets=args.sheets):
        echo(str(path))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
