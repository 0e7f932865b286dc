"""Seed hunts and X/Y plots: plan the cells' requests, render them with any engine, compose one labelled grid.

Planning is pure (requests in, requests out); `run_grid` renders through the engine contract and
`save_grid` writes the cells (each with its own infotext) and the grid PNG. PIL is imported lazily.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import presets
from .axes import AXIS_HELP, KINDS, MAX_CELLS, Axis, parse_axis
from .errors import InvalidRequest
from .request import DEFAULTS as _DEFAULTS
from .request import MAX_SEED, RenderedImage, RenderRequest

__all__ = [
    "AXIS_HELP", "KINDS", "MAX_CELLS", "Axis", "GridPlan", "compose_grid", "parse_axis", "plan_seeds",
    "plan_xy", "run_grid", "save_grid", "seed_hunt", "xy_requests",
]  # fmt: skip

MAX_GRID_PIXELS = 64_000_000  # PIL warns past 89 MP when opening ("decompression bomb"); 64 MP stays clear


# -- planning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridPlan:
    """A grid to render: the cells' requests row by row (None leaves a cell empty) and their labels."""

    kind: str  # "seeds" or "xy"
    requests: list[list[RenderRequest | None]]
    row_labels: list[str]
    column_labels: list[str]
    title: str
    captions: list[list[str]] | None = None  # a note on each cell's image ("Seed: 42")
    fields: dict[str, Any] = field(default_factory=dict)  # A1111 infotext fields of the grid ("X Type"...)
    details: dict[str, Any] = field(default_factory=dict)  # the grid's keyart lineage ("grid" key)

    @property
    def cells(self) -> list[tuple[int, int, RenderRequest]]:
        """(row, column, request) of every cell that renders, row by row."""
        return [(i, j, r) for i, row in enumerate(self.requests) for j, r in enumerate(row) if r is not None]


def seed_hunt(
    request: RenderRequest, count: int, *, quality: str | None = "draft", explicit: Collection[str]
) -> list[RenderRequest]:
    """`count` one-image requests on seeds seed, seed+1, ... at the `quality` preset (None: as given).

    A seed of -1 is resolved once, so the hunt is a run of consecutive seeds that can be recorded.
    The user's fields win over the preset: `explicit` names the fields the user set (the CLI and the
    Studio know them), so even a default value chosen on purpose (steps=30) is kept.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CELLS:
        raise InvalidRequest(f"a seed hunt renders between 1 and {MAX_CELLS} seeds (got {count!r}); 9 makes a 3x3 grid")
    names = set(explicit)
    unknown = names - set(_DEFAULTS)
    if unknown:
        raise InvalidRequest(f"unknown request fields {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
    given = {name: getattr(request, name) for name in names}
    request = request.replace(**presets.apply_quality(quality, given) | {"batch_size": 1, "batch_count": 1}).with_seed()
    return [request.replace(seed=(request.seed + i) % (MAX_SEED + 1)) for i in range(count)]


def xy_requests(request: RenderRequest, x: Axis, y: Axis) -> list[list[RenderRequest]]:
    """One request per cell, `[row][column]`: rows follow `y`, columns `x`, all on the request's one seed.

    The seed is resolved once (a Seed axis sets its own); every cell renders one image.
    """
    # 1. Check the axes against each other and the request.
    if x.kind == y.kind != "Nothing":
        raise InvalidRequest(f"X and Y both vary {x.kind}; pick two different kinds, or Nothing for Y")
    if x.kind == y.kind == "Nothing":
        raise InvalidRequest("an X/Y plot needs at least one axis, such as 'CFG Scale: 5, 7, 9'")
    cells = len(x.points) * len(y.points)
    if cells > MAX_CELLS:
        raise InvalidRequest(
            f"an X/Y plot of {len(x.points)} x {len(y.points)} = {cells} cells is too many (at most {MAX_CELLS}); "
            "use fewer values or a range with a step, such as '1-10 (+2)'"
        )
    request = request.replace(batch_size=1, batch_count=1).with_seed()
    for axis in (x, y):
        axis.check(request)
    # 2. Y first, then X: the X value is the last word, as in A1111.
    return [[x.apply(y.apply(request, yv), xv) for xv in x.points] for yv in y.points]


def plan_seeds(
    request: RenderRequest, count: int, *, quality: str | None = "draft", explicit: Collection[str]
) -> GridPlan:
    """A seed hunt as a near-square grid: rows labelled by their first seed, columns by the offset."""
    requests = seed_hunt(request, count, quality=quality, explicit=explicit)
    columns = math.ceil(math.sqrt(count))  # 9 -> 3x3, 10 -> 4 wide, 3 rows: landscape, as screens are
    rows = math.ceil(count / columns)
    grid = [[requests[i * columns + j] if i * columns + j < count else None for j in range(columns)] for i in range(rows)]
    first = requests[0]
    settings = f"{first.num_inference_steps} steps, {first.sampler} {first.schedule}, CFG {first.guidance_scale:g}"
    return GridPlan(
        kind="seeds",
        requests=grid,
        row_labels=[f"Seed: {row[0].seed}" for row in grid],
        column_labels=[f"+{j}" for j in range(columns)],
        title=f"{count} seeds from {first.seed} · {settings} · {first.prompt}",
        captions=[[f"Seed: {r.seed}" if r is not None else "" for r in row] for row in grid],
        details={"kind": "seeds", "count": count, "seed": first.seed, "quality": quality, "rows": rows, "columns": columns},
    )


def plan_xy(request: RenderRequest, x: Axis, y: Axis | None = None) -> GridPlan:
    """An X/Y plot: `x` across, `y` down (None: Nothing), labelled as A1111 labels them."""
    y = y or Axis("Nothing")
    requests = xy_requests(request, x, y)
    fields: dict[str, Any] = {"Script": "X/Y/Z plot"}  # A1111's names, so its "PNG Info" reads the grid
    for name, axis in (("X", x), ("Y", y)):
        if axis.kind != "Nothing":
            fields |= {f"{name} Type": axis.kind, f"{name} Values": axis.text}
    axes = " by ".join(a.kind for a in (x, y) if a.kind != "Nothing")
    return GridPlan(
        kind="xy",
        requests=requests,
        row_labels=y.labels,
        column_labels=x.labels,
        title=f"{axes} · {requests[0][0].prompt}",
        fields=fields,
        details={
            "kind": "xy",
            "x": {"type": x.kind, "values": list(x.values)},
            "y": {"type": y.kind, "values": list(y.values)},
            "rows": len(requests),
            "columns": len(requests[0]),
        },
    )


# -- composing and rendering --------------------------------------------------------------------


def compose_grid(
    images: Sequence[Any],
    *,
    rows: int,
    columns: int,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str,
    captions: Sequence[str] | None = None,
    thumb: int | None = None,
):
    """One labelled PIL image of `images` (row by row; None or a short list leaves cells empty).

    Drawn by the contact sheet: the title bar, column labels above, row labels to the left. Each
    cell is `thumb` pixels square (default: the images' own size, within 1024 px and 64 MP in all).
    """
    from .contact_sheet import Cell

    # 1. Check the shape before drawing anything.
    if len(row_labels) != rows or len(column_labels) != columns:
        raise InvalidRequest(f"a {rows}x{columns} grid needs {rows} row and {columns} column labels (got {len(row_labels)} and {len(column_labels)})")
    if len(images) > rows * columns or (captions is not None and len(captions) > rows * columns):
        raise InvalidRequest(f"{len(images)} images (or captions) do not fit a {rows}x{columns} grid")
    # 2. The contact sheet draws the cells and labels; slots without an image are left blank.
    notes = list(captions or [])
    cells = [
        Cell(row_labels[k // columns], column_labels[k % columns], im, notes[k] if k < len(notes) else "")
        for k, im in enumerate(images)
        if im is not None
    ]
    return _sheet(cells, row_labels, column_labels, title, thumb)


def _sheet(cells: list[Any], row_labels: Sequence[str], column_labels: Sequence[str], title: str, thumb: int | None = None):
    """The grid of `cells` (contact sheet Cells, PIL images) with places that have none left blank."""
    from .contact_sheet import contact_sheet

    if thumb is None:
        biggest = max((max(cell.image.size) for cell in cells), default=256)
        fits = math.isqrt(MAX_GRID_PIXELS // max(1, len(row_labels) * len(column_labels)))
        thumb = max(32, min(biggest, 1024, fits))  # contact sheet thumbnails run from 32 to 1024 px
    return contact_sheet(cells, rows=list(row_labels), columns=list(column_labels), title=title, thumb=thumb, placeholders=False)


def run_grid(engine: Any, plan: GridPlan, *, lineage: dict[str, Any] | None = None, progress=None) -> tuple[RenderedImage, list[RenderedImage]]:
    """Render every cell of `plan` with `engine`, then compose the grid.

    Returns (grid, cells): the grid carries the first cell's infotext plus the plan's A1111 fields
    and a keyart lineage whose "grid" key describes the axes; each cell keeps its own infotext.
    `progress(done, total)` counts sampling steps across all cells.
    """
    # 1. Render cell by cell; each cell's steps weigh its share of the progress.
    cells = plan.cells
    total, done = sum(r.num_inference_steps for _, _, r in cells), 0
    rendered: list[RenderedImage] = []
    for i, j, request in cells:
        weight = request.num_inference_steps

        def cell_progress(d: int, t: int, offset: int = done, weight: int = weight) -> None:
            progress(offset + round(weight * d / max(t, 1)), total)

        where = {"kind": plan.kind, "row": i, "column": j, "row_label": plan.row_labels[i], "column_label": plan.column_labels[j]}
        images = engine.render(request, lineage={**(lineage or {}), "grid": where}, progress=cell_progress if progress else None)
        rendered.append(images[0])
        done += weight
        if progress is not None:
            progress(done, total)
    # 2. Compose: one contact sheet cell per rendered image; places without one stay empty.
    from .contact_sheet import Cell

    captions = plan.captions or []
    sheet_cells = [
        Cell(plan.row_labels[i], plan.column_labels[j], image.image, captions[i][j] if i < len(captions) and j < len(captions[i]) else "")
        for (i, j, _), image in zip(cells, rendered)
    ]
    image = _sheet(sheet_cells, plan.row_labels, plan.column_labels, plan.title)
    # 3. The grid's own metadata: the first cell's, plus what the grid varies (A1111's habit).
    from .metadata import format_infotext

    first = rendered[0]
    extra = format_infotext("", "", plan.fields) if plan.fields else ""
    infotext = f"{first.infotext}, {extra}" if extra else first.infotext
    record = {
        **first.lineage,
        "lineage": dict(lineage or {}),
        "grid": {
            **plan.details,
            "row_labels": plan.row_labels,
            "column_labels": plan.column_labels,
            "cells": [{"row": i, "column": j, "seed": image.seed} for (i, j, _), image in zip(cells, rendered)],
        },
    }
    grid = RenderedImage(image=image, request=first.request, seed=first.seed, index=0, infotext=infotext, lineage=record)
    return grid, rendered


def save_grid(grid: RenderedImage, images: Sequence[RenderedImage], directory: str | Path) -> tuple[Path, list[Path]]:
    """Write the cells as `{n:05d}-{seed}.png`, then the grid as `grid-{n:05d}-{seed}.png`, n the first cell's number.

    The grid's lineage lists the cells' file names; every file is written atomically.
    """
    from .png_files import save_png, write_png

    directory = Path(directory)
    paths = [save_png(image, directory) for image in images]
    number = paths[0].name.split("-", 1)[0]  # the first cell's number is ours alone, so the grid's name is too
    lineage = {**grid.lineage, "grid": {**grid.lineage.get("grid", {}), "files": [p.name for p in paths]}}
    path = write_png(dataclasses.replace(grid, lineage=lineage), directory / f"grid-{number}-{grid.seed}.png")
    return path, paths
