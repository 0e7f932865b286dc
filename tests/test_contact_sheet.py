"""Contact sheets: the grid's size, images in their cells, visible placeholders, labels and bad input."""

import pytest
from PIL import Image

from imagegen.contact_sheet import CAPTION, CELL, PLACEHOLDER, Cell, SheetLayout, contact_sheet
from imagegen.errors import InvalidRequest

ROWS = ["E01 Pilot", "E02 Gulls", "Season"]
COLUMNS = ["cinematic", "watercolor"]
COLOURS = {(0, 0): (220, 30, 30), (0, 1): (30, 200, 40), (1, 0): (30, 60, 230), (1, 1): (240, 220, 20), (2, 0): (250, 120, 0), (2, 1): (130, 0, 200)}
THUMB = 64


def solid(colour, size=(48, 48), mode="RGB"):
    return Image.new(mode, size, colour if mode == "RGB" else (*colour, 255))


def centre(layout, row, column):
    left, top, right, bottom = layout.cell_box(row, column)
    return (left + right) // 2, (top + bottom) // 2


def inside_corner(layout, row, column):
    """A point just inside a cell's top-left corner, clear of the placeholder's border and text."""
    left, top, _, _ = layout.cell_box(row, column)
    return left + 4, top + 4


def test_size_follows_rows_and_columns():
    layout = SheetLayout.for_thumb(THUMB)
    sizes = {}
    for r in (1, 2, 3):
        for c in (1, 2, 3):
            rows, columns = ROWS[:r], [f"style {k}" for k in range(c)]
            sizes[r, c] = contact_sheet([], rows=rows, columns=columns, title="t", thumb=THUMB).size
            assert sizes[r, c] == layout.size(r, c)
    step = THUMB + layout.gap
    assert sizes[1, 2][0] - sizes[1, 1][0] == sizes[1, 3][0] - sizes[1, 2][0] == step
    assert sizes[2, 1][1] - sizes[1, 1][1] == sizes[3, 1][1] - sizes[2, 1][1] == step
    assert sizes[1, 1][1] == sizes[1, 3][1] and sizes[1, 1][0] == sizes[3, 1][0]


def test_images_land_in_their_cells_in_the_given_order(tmp_path):
    cells = []
    for (i, j), colour in COLOURS.items():
        if (i + j) % 2:  # half as files, half as PIL images, some RGBA and palette images
            path = tmp_path / f"{i}{j}.png"
            solid(colour, mode="RGBA" if i == 1 else "RGB").save(path)
            cells.append(Cell(ROWS[i], COLUMNS[j], str(path) if i else path))
        else:
            cells.append(Cell(ROWS[i], COLUMNS[j], solid(colour).convert("P", palette=Image.Palette.ADAPTIVE) if i == 2 else solid(colour)))
    sheet = contact_sheet(cells[::-1], rows=ROWS, columns=COLUMNS, title="Gullhaven", thumb=THUMB)
    layout = SheetLayout.for_thumb(THUMB)
    for (i, j), colour in COLOURS.items():
        assert sheet.getpixel(centre(layout, i, j)) == colour, (i, j)
    # The same cells on a sheet with the rows and columns reversed move with them.
    flipped = contact_sheet(cells, rows=ROWS[::-1], columns=COLUMNS[::-1], title="Gullhaven", thumb=THUMB)
    assert flipped.getpixel(centre(layout, 0, 0)) == COLOURS[2, 1]


def test_images_keep_their_aspect_ratio():
    cells = [Cell("Season", "wide", solid((200, 0, 0), (1216, 832))), Cell("Season", "tall", solid((0, 0, 200), (832, 1216)))]
    sheet = contact_sheet(cells, rows=["Season"], columns=["wide", "tall"], title="t", thumb=THUMB)
    layout = SheetLayout.for_thumb(THUMB)
    (left, top, right, bottom), (tl, tt, tr, tb) = layout.cell_box(0, 0), layout.cell_box(0, 1)
    x, y = centre(layout, 0, 0)
    # Landscape: full width, letterboxed above and below (64 * 832 / 1216 = 44 px tall).
    assert sheet.getpixel((left, y)) == sheet.getpixel((right - 1, y)) == (200, 0, 0)
    assert sheet.getpixel((x, top + 2)) == sheet.getpixel((x, bottom - 2)) == CELL
    x, y = centre(layout, 0, 1)
    assert sheet.getpixel((x, tt)) == sheet.getpixel((x, tb - 1)) == (0, 0, 200)
    assert sheet.getpixel((tl + 2, y)) == sheet.getpixel((tr - 2, y)) == CELL


def test_placeholders_for_none_missing_unreadable_and_absent_cells(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cells = [
        Cell("E01", "a", None, "failed: CUDA out of memory"),
        Cell("E01", "b", tmp_path / "missing.png", "pending"),
        Cell("E02", "a", str(tmp_path / "broken.png")),
        Cell("E02", "b", solid((10, 160, 90))),
        # ("E03", "a") and ("E03", "b") have no cell at all
    ]
    sheet = contact_sheet(cells, rows=["E01", "E02", "E03"], columns=["a", "b"], title="t", thumb=128)
    layout = SheetLayout.for_thumb(128)
    for i, j in [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]:
        assert sheet.getpixel(inside_corner(layout, i, j)) == PLACEHOLDER, (i, j)
    assert sheet.getpixel(centre(layout, 1, 1)) == (10, 160, 90)
    # The note is drawn: the placeholder's middle band holds dark text pixels, not only grey.
    left, top, right, bottom = layout.cell_box(0, 0)
    band = sheet.crop((left + 8, top + 40, right - 8, bottom - 40))
    assert any(sum(rgb) < 200 for _, rgb in band.getcolors(maxcolors=128 * 128))


def test_a_note_on_an_image_is_a_caption():
    sheet = contact_sheet([Cell("E01", "a", solid((10, 160, 90)), "draft")], rows=["E01"], columns=["a"], title="t", thumb=THUMB)
    left, top, _, bottom = SheetLayout.for_thumb(THUMB).cell_box(0, 0)
    assert sheet.getpixel((left + 1, bottom - 2)) == CAPTION and sheet.getpixel((left + 1, top + 20)) == (10, 160, 90)


@pytest.mark.parametrize("thumb", [32, 96, 256])
def test_non_ascii_and_long_labels_do_not_crash(thumb):
    rows = ["E03 The Keeper's Lamp", "Ségolène's Storm — a title far too long for any label column at all", "Øyvind 灯台"]
    columns = ["cinématique", "Øyvind's ink", "x" * 80]
    cells = [Cell(rows[0], columns[0], None, "échec : mémoire CUDA épuisée " * 5), Cell(rows[2], columns[2], solid((1, 2, 3)), "ß · «note»")]
    sheet = contact_sheet(cells, rows=rows, columns=columns, title="Gullhaven — Saison 1 · Ségolène & Øyvind " * 3, thumb=thumb)
    assert sheet.size == SheetLayout.for_thumb(thumb).size(3, 3) and sheet.mode == "RGB"


@pytest.mark.parametrize(
    "cells, rows, columns, thumb, message",
    [
        ([Cell("E09", "a", None)], ["E01"], ["a"], 64, "its row is not one of the sheet's rows: 'E01'"),
        ([Cell("E01", "oil", None)], ["E01"], ["a", "b"], 64, "its column is not one of the sheet's columns: 'a', 'b'"),
        ([Cell("E01", "a", None), Cell("E01", "a", None)], ["E01"], ["a"], 64, "two cells for ('E01', 'a')"),
        ([Cell("E01", "a", b"png bytes")], ["E01"], ["a"], 64, "image must be a file path, a PIL image or None"),
        ([], ["E01", "E01"], ["a"], 64, "row labels must be unique: 'E01' appears twice"),
        ([], [], ["a"], 64, "at least one row and one column"),
        ([], ["E01"], ["a"], 8, "thumb must be a whole number of pixels between 32 and 1024"),
        ([], ["E01"], ["a"], 64.0, "thumb must be a whole number"),
    ],
)
def test_bad_input_is_an_invalid_request(cells, rows, columns, thumb, message):
    with pytest.raises(InvalidRequest) as error:
        contact_sheet(cells, rows=rows, columns=columns, title="t", thumb=thumb)
    assert message in str(error.value)


def test_long_label_lists_are_shortened_in_messages():
    rows = [f"E{k:02d}" for k in range(40)]
    with pytest.raises(InvalidRequest, match=r"'E05', \.\.\. \(34 more\)"):
        contact_sheet([Cell("E99", "a", None)], rows=rows, columns=["a"], title="t")
