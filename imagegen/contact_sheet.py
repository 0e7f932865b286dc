"""Contact sheets: one labelled grid of thumbnails, rows such as episodes and columns such as styles.

A cell without an image (pending, failed, missing or unreadable file) is a grey placeholder that
carries its note, so a sheet always shows every cell. Pillow only; text uses the preview card's font.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from . import lettering
from .errors import InvalidRequest
from .lettering import INK_DARK

log = logging.getLogger(__name__)

BACKGROUND = (24, 24, 27)  # near-black, as a lightbox: renders read truer on dark than on white
TITLE_BAR = (46, 46, 54)
CELL = (36, 36, 41)  # behind a thumbnail that does not fill its square (letterboxing)
PLACEHOLDER = (150, 150, 150)  # mid grey: no render is mistaken for it at a glance, and dark text reads on it
PLACEHOLDER_EDGE = (105, 105, 105)
CAPTION = (0, 0, 0)  # the strip under a note on a real image
INK = (236, 236, 236)
MUTED = (178, 178, 186)
THUMB_RANGE = (32, 1024)  # below 32 px the labels cannot fit; above 1024 a thumbnail is the full image
NO_IMAGE = "no image"


@dataclass
class Cell:
    """One square of the sheet: which row and column, the image (path, PIL image or None) and a note."""

    row: str
    column: str
    image: str | Path | Image.Image | None
    note: str = ""  # "failed: CUDA out of memory", "pending"...; shown on a placeholder, captioned on an image


@dataclass(frozen=True)
class SheetLayout:
    """Where things go on a sheet; it depends on `thumb` and the counts only, never on the text."""

    thumb: int
    gap: int
    label_width: int
    title_height: int
    header_height: int

    @classmethod
    def for_thumb(cls, thumb: int) -> SheetLayout:
        gap = max(4, thumb // 32)  # 8 px at 256: cells read as separate without wasting the sheet
        return cls(
            thumb=thumb,
            gap=gap,
            label_width=round(thumb * 0.75),  # room for "E03 The Keeper's Lamp" in two or three lines
            title_height=lettering.line_height(_title_font(thumb)) + 2 * gap,
            header_height=2 * lettering.line_height(_label_font(thumb)) + gap,  # column headers: two lines at most
        )

    def size(self, rows: int, columns: int) -> tuple[int, int]:
        """(width, height) of a sheet with `rows` x `columns` cells."""
        step = self.thumb + self.gap
        return self.label_width + self.gap + columns * step, self.title_height + self.header_height + rows * step

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a cell, right and bottom exclusive, as Pillow's crop takes it."""
        left = self.label_width + self.gap + column * (self.thumb + self.gap)
        top = self.title_height + self.header_height + row * (self.thumb + self.gap)
        return left, top, left + self.thumb, top + self.thumb


def _title_font(thumb: int):
    return lettering.font(max(14, thumb * 0.1))  # 14 px: the smallest title that still reads as a title


def _label_font(thumb: int):
    return lettering.font(max(10, thumb * 0.065))  # about 17 px at 256: a label per row without crowding


def contact_sheet(
    cells: list[Cell], *, rows: list[str], columns: list[str], title: str, thumb: int = 256, placeholders: bool = True
) -> Image.Image:
    """A grid of `cells` under `title`: `rows` top to bottom and `columns` left to right, as given.

    Each image is scaled to fit `thumb` x `thumb`, keeping its aspect ratio; a cell with no image,
    or no cell at all, is a grey placeholder with its note. With `placeholders=False`, a place with
    no cell is left as background instead (a grid's empty corner).
    """
    # 1. Check everything before drawing: every cell must have a place, and only one cell each.
    grid = _place(cells, rows, columns, thumb)
    # 2. The canvas, the title bar and the labels.
    layout = SheetLayout.for_thumb(thumb)
    sheet = Image.new("RGB", layout.size(len(rows), len(columns)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    _draw_title(draw, layout, sheet.width, title)
    _draw_labels(draw, layout, rows, columns)
    # 3. The cells, one image loaded at a time so a big catalog does not hold every render in memory.
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            cell = grid.get((row, column))
            if cell is None and not placeholders:
                continue
            box = layout.cell_box(i, j)
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=CELL)
            image, problem = _thumbnail(cell, thumb) if cell is not None else (None, "")
            if image is None:
                note = cell.note.strip() if cell is not None else ""
                text = f"{note} ({problem})" if note and problem else note or problem or NO_IMAGE
                _draw_placeholder(draw, layout, box, text)
            else:
                left = box[0] + (thumb - image.width) // 2
                top = box[1] + (thumb - image.height) // 2
                sheet.paste(image, (left, top), image)  # RGBA: the alpha is the paste mask
                if cell.note.strip():
                    _draw_caption(draw, layout, box, cell.note.strip())
    return sheet


def _place(cells: list[Cell], rows: list[str], columns: list[str], thumb: int) -> dict[tuple[str, str], Cell]:
    """The cells by (row, column), after checking the grid and that every cell has a place on it."""
    low, high = THUMB_RANGE
    if isinstance(thumb, bool) or not isinstance(thumb, int) or not low <= thumb <= high:
        raise InvalidRequest(f"thumb must be a whole number of pixels between {low} and {high} (got {thumb!r}); 256 suits a screen")
    if not rows or not columns:
        raise InvalidRequest(f"a contact sheet needs at least one row and one column (got {len(rows)} rows, {len(columns)} columns)")
    for kind, labels in (("row", rows), ("column", columns)):
        seen: set[str] = set()
        for label in labels:
            if not isinstance(label, str):
                raise InvalidRequest(f"{kind} labels must be text (got {label!r})")
            if label in seen:
                raise InvalidRequest(f"{kind} labels must be unique: {label!r} appears twice")
            seen.add(label)
    row_set, column_set = set(rows), set(columns)
    grid: dict[tuple[str, str], Cell] = {}
    for cell in cells:
        if cell.row not in row_set:
            raise InvalidRequest(f"cell ({cell.row!r}, {cell.column!r}): its row is not one of the sheet's rows: {_some(rows)}")
        if cell.column not in column_set:
            raise InvalidRequest(f"cell ({cell.row!r}, {cell.column!r}): its column is not one of the sheet's columns: {_some(columns)}")
        if not (cell.image is None or isinstance(cell.image, (str, Path, Image.Image))):
            raise InvalidRequest(f"cell ({cell.row!r}, {cell.column!r}): image must be a file path, a PIL image or None (got {type(cell.image).__name__})")
        if (cell.row, cell.column) in grid:
            raise InvalidRequest(f"two cells for ({cell.row!r}, {cell.column!r}); a sheet has one cell per row and column")
        grid[cell.row, cell.column] = cell
    return grid


def _some(labels: list[str], shown: int = 6) -> str:
    """Labels for a message: the first few, then how many more (a catalog can have hundreds)."""
    more = f", ... ({len(labels) - shown} more)" if len(labels) > shown else ""
    return ", ".join(repr(label) for label in labels[:shown]) + more


def _thumbnail(cell: Cell, size: int) -> tuple[Image.Image | None, str]:
    """The cell's image as RGBA fitted into `size` x `size`, or (None, why) when there is none to show."""
    if cell.image is None:
        return None, ""
    if isinstance(cell.image, Image.Image):
        return _fit(cell.image, size), ""
    path = Path(cell.image)
    try:
        with Image.open(path) as im:
            return _fit(im, size), ""
    except FileNotFoundError:
        log.debug("contact sheet: %s does not exist (yet); drawing a placeholder", path)
        return None, f"missing: {path.name}"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        log.warning("contact sheet: cannot read %s (%s); drawing a placeholder", path, exc)
        return None, f"unreadable: {path.name}"


def _fit(image: Image.Image, size: int) -> Image.Image:
    scale = min(size / image.width, size / image.height)
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap: a fast box pre-shrink for big renders, then Lanczos for the last factor of 3.
    return image.convert("RGBA").resize(fitted, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _draw_title(draw: ImageDraw.ImageDraw, layout: SheetLayout, width: int, title: str) -> None:
    draw.rectangle((0, 0, width - 1, layout.title_height - 1), fill=TITLE_BAR)
    font = _title_font(layout.thumb)
    lines = lettering.wrap(draw, lettering.plain(title), font, width - 2 * layout.gap, 1)
    if lines:
        draw.text((layout.gap, layout.title_height / 2), lines[0], font=font, fill=INK, anchor="lm")


def _draw_labels(draw: ImageDraw.ImageDraw, layout: SheetLayout, rows: list[str], columns: list[str]) -> None:
    """Column headers above the cells (bottom-aligned, centred) and row labels left of them (centred)."""
    font = _label_font(layout.thumb)
    step = lettering.line_height(font)
    for j, column in enumerate(columns):
        left, top, right, _ = layout.cell_box(0, j)
        lines = lettering.wrap(draw, lettering.plain(column), font, layout.thumb, 2)
        y = top - layout.gap // 2 - len(lines) * step
        for k, line in enumerate(lines):
            draw.text(((left + right) / 2, y + k * step), line, font=font, fill=INK, anchor="ma")
    width = layout.label_width - layout.gap
    for i, row in enumerate(rows):
        _, top, _, bottom = layout.cell_box(i, 0)
        lines = lettering.wrap(draw, lettering.plain(row), font, width, max(1, layout.thumb // step))
        y = (top + bottom) / 2 - len(lines) * step / 2
        for k, line in enumerate(lines):
            draw.text((layout.gap, y + k * step), line, font=font, fill=INK, anchor="la")


def _draw_placeholder(draw: ImageDraw.ImageDraw, layout: SheetLayout, box: tuple[int, int, int, int], text: str) -> None:
    """A grey square with the note in the middle: visibly not an image."""
    left, top, right, bottom = box
    edge = max(1, layout.thumb // 128)  # 2 px at 256: visible, not heavy
    draw.rectangle((left, top, right - 1, bottom - 1), fill=PLACEHOLDER, outline=PLACEHOLDER_EDGE, width=edge)
    font = _label_font(layout.thumb)
    step = lettering.line_height(font)
    pad = 2 * layout.gap
    lines = lettering.wrap(draw, lettering.plain(text), font, layout.thumb - 2 * pad, max(1, (layout.thumb - 2 * pad) // step))
    y = (top + bottom) / 2 - len(lines) * step / 2
    for k, line in enumerate(lines):
        draw.text(((left + right) / 2, y + k * step), line, font=font, fill=INK_DARK, anchor="ma")


def _draw_caption(draw: ImageDraw.ImageDraw, layout: SheetLayout, box: tuple[int, int, int, int], text: str) -> None:
    """A one-line note on a dark strip along the bottom of an image cell."""
    left, _, right, bottom = box
    font = lettering.font(max(9, layout.thumb * 0.05))  # smaller than labels: a caption must not hide the image
    height = lettering.line_height(font) + layout.gap // 2
    draw.rectangle((left, bottom - height, right - 1, bottom - 1), fill=CAPTION)
    lines = lettering.wrap(draw, lettering.plain(text), font, layout.thumb - layout.gap, 1)
    if lines:
        draw.text(((left + right) / 2, bottom - height / 2), lines[0], font=font, fill=MUTED, anchor="mm")
