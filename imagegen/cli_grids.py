"""The `grid` (seed hunt) and `xy` (X/Y plot) subcommands: one labelled grid PNG plus every cell's own PNG.

They take `render`'s options (shared, not copied, so help and names stay one), and validate every
cell before an engine loads or a file is written.
"""

from __future__ import annotations

import argparse
import json

from .settings import ImageSettings

# render's options that a grid cell uses; the batch, --from and image-to-image options are render's own.
SHARED = (
    "negative_prompt", "style", "quality", "sampler", "schedule_type", "steps", "cfg_scale", "width", "height",
    "seed", "subseed", "subseed_strength", "refiner", "refiner_switch_at", "tiling", "freeu", "engine", "device", "dtype", "memory", "output",
)  # fmt: skip
OUTPUT_HELP = (
    "Prints one line per cell ('PATH  seed N'), then the grid ('PATH  grid ROWSxCOLUMNS');\n"
    "--json prints one object. The grid PNG is named after its first cell: grid-00007-SEED.png."
)


def add_parsers(sub: argparse._SubParsersAction, render: argparse.ArgumentParser) -> None:
    """Add `grid` and `xy` to the subcommands `sub`, with `render`'s options named in SHARED."""
    from .axes import AXIS_HELP, MAX_CELLS
    from .cli import _catalog_help

    g = sub.add_parser(
        "grid",
        help="seed hunt: one prompt on N consecutive seeds at draft settings, as one labelled grid",
        description="Render PROMPT on seeds seed, seed+1, ... at the draft preset (--quality final for catalog\n"
        "settings; options given explicitly win), then write each image and one labelled grid.\n" + OUTPUT_HELP,
        epilog=_catalog_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("prompt", help="what to draw")
    g.add_argument("--seeds", type=int, default=9, metavar="N", help=f"how many seeds, 1 to {MAX_CELLS} (default 9: a 3x3 grid)")
    x = sub.add_parser(
        "xy",
        help="X/Y plot: vary CFG, steps, sampler, seed or a prompt word across and down one labelled grid",
        description="Render PROMPT once per cell of an X/Y plot, as A1111's X/Y/Z plot script, then write each\n"
        "image and one labelled grid whose PNG names the axes. Cells share one seed unless Seed varies.\n" + OUTPUT_HELP,
        epilog=f"{AXIS_HELP}\n\n{_catalog_help()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    x.add_argument("prompt", help="what to draw")
    x.add_argument("--x", required=True, metavar="'KIND: VALUES'", help="the axis across, such as 'CFG Scale: 5, 7, 9' (kinds below)")
    x.add_argument("--y", default="", metavar="'KIND: VALUES'", help="the axis down, such as 'Sampler: Euler a, DPM++ 2M' (default: Nothing)")
    for parser, handler in ((g, _grid), (x, _xy)):
        _share(render, parser)
        parser.add_argument("--json", action="store_true", help="print one JSON object with every path instead of lines")
        parser.set_defaults(handler=handler)


def _share(source: argparse.ArgumentParser, target: argparse.ArgumentParser) -> None:
    """Give `target` the very option objects of `source` named in SHARED (what argparse's `parents=` does for all)."""
    actions = {a.dest: a for a in source._actions}
    missing = [dest for dest in SHARED if dest not in actions]
    if missing:
        raise RuntimeError(f"render no longer has the options {missing} that grid and xy share; update cli_grids.SHARED")
    for dest in SHARED:
        target._add_action(actions[dest])


def _grid(args: argparse.Namespace, settings: ImageSettings) -> int:
    from .cli import explicit_fields
    from .grids import plan_seeds
    from .request import RenderRequest

    given = explicit_fields(args)
    request = RenderRequest(prompt=args.prompt, **given)
    # The seed hunt's preset is draft; what the user gave explicitly wins over it.
    return _run(args, plan_seeds(request, args.seeds, quality=args.quality or "draft", explicit=set(given)), settings)


def _xy(args: argparse.Namespace, settings: ImageSettings) -> int:
    from . import presets
    from .cli import explicit_fields
    from .grids import parse_axis, plan_xy
    from .request import RenderRequest

    request = RenderRequest(prompt=args.prompt, **presets.apply_quality(args.quality, explicit_fields(args)))
    return _run(args, plan_xy(request, parse_axis(args.x), parse_axis(args.y)), settings)


def _run(args: argparse.Namespace, plan, settings: ImageSettings) -> int:
    """Render the plan's cells with the engine main's `settings` choose, then save cells and grid."""
    from .cli import echo, engine_options, step_bar
    from .engines import check_request, choose, create_engine
    from .grids import run_grid, save_grid

    # 1. Every cell is valid (the plan built them); now the output folder and the engine, still before loading or writing.
    from .png_files import writable_folder

    writable_folder(args.output)
    choice = choose(args.engine, settings, **engine_options(args))
    check_request(choice.name, *(request for _, _, request in plan.cells), settings=settings)
    echo(f"engine: {choice.name} ({choice.reason})", err=True)
    engine = create_engine(choice.name, settings)
    # 2. Render every cell under one progress bar (steps across cells; SDXL only, cards take milliseconds).
    with step_bar(plan.kind, enabled=choice.name == "sdxl") as progress:
        grid, images = run_grid(engine, plan, progress=progress)
    # 3. Save the cells, then the grid, and say where they are.
    grid_path, paths = save_grid(grid, images, args.output)
    rows, columns = len(plan.requests), len(plan.column_labels)
    if args.json:
        cells = [
            {"path": str(p), "seed": im.seed, "row": i, "column": j, "row_label": plan.row_labels[i], "column_label": plan.column_labels[j]}
            for (i, j, _), im, p in zip(plan.cells, images, paths)
        ]
        echo(json.dumps({"grid": str(grid_path), "rows": rows, "columns": columns, "images": cells}, ensure_ascii=False))
        return 0
    for path, image in zip(paths, images):
        echo(f"{path}  seed {image.seed}")
    echo(f"{grid_path}  grid {rows}x{columns}")
    return 0
