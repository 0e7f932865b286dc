"""What the command lines share: the catalog's --input/--map/--seasons options and the catalog they
name, the engine's options, and one way to print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog import Catalog


def catalog_parser() -> argparse.ArgumentParser:
    """A parent parser with the options that choose the catalog: --input, --map and --seasons."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--input", type=Path, help="episodes file: CSV, JSON, JSONL or Parquet (default: the sample show)")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="read a keyart field (show, season, episode, title, summary) from another column, e.g. summary=plot; repeatable",
    )
    p.add_argument("--seasons", type=Path, metavar="FILE", help="season summaries file (default: seasons.<suffix> beside --input, if any)")
    return p


def catalog_from_args(args: argparse.Namespace) -> Catalog:
    """The catalog that a parser built with `catalog_parser` names (the sample show by default)."""
    from .catalog import load_catalog, parse_mapping

    return load_catalog(args.input, mapping=parse_mapping(args.map), seasons=args.seasons)


def echo(text: str = "", *, err: bool = False) -> None:
    """A line for the user on stdout (results) or stderr (progress, warnings, errors)."""
    (sys.stderr if err else sys.stdout).write(text + "\n")


def engine_options(args: argparse.Namespace) -> dict[str, str]:
    """The sdxl engine's options given on the command line (--device, --dtype, --memory)."""
    return {name: value for name in ("device", "dtype", "memory") if (value := getattr(args, name, None))}
