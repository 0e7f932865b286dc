"""ControlNet units and their maps: `--control` parsing, every bad value refused before any work, and
the preprocessors that need no weights (canny, softedge, lineart, none) on a drawn picture."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen.control import ControlUnit, control_map, parse_control
from imagegen.errors import InvalidRequest, ModelNotFound


@pytest.fixture
def picture(tmp_path):
    """A grey square on a dark ground, 96x64: edges only at the square's border."""
    image = Image.new("RGB", (96, 64), (20, 20, 30))
    ImageDraw.Draw(image).rectangle((24, 16, 71, 47), fill=(200, 200, 200))
    path = tmp_path / "sketch.png"
    image.save(path)
    return path


@pytest.mark.parametrize(
    "text, expected",
    [
        ("canny:{p}", ("canny", 1.0, 0.0, 1.0, "auto")),
        ("Canny:{p}:0.8", ("canny", 0.8, 0.0, 1.0, "auto")),
        ("softedge:{p}:1.2:0:0.6", ("softedge", 1.2, 0.0, 0.6, "auto")),
        ("depth/none:{p}:0.5:0.2:1", ("depth", 0.5, 0.2, 1.0, "none")),
    ],
)
def test_control_flags_parse_into_units(picture, text, expected):
    unit = parse_control(text.format(p=picture))
    assert (unit.type, unit.weight, unit.start, unit.end, unit.preprocessor) == expected
    assert unit.image == str(picture) and ControlUnit.from_dict(unit.to_dict()) == unit
    assert unit.module == ("none" if expected[4] == "none" else expected[0])


def test_a_path_with_colons_is_kept_whole(tmp_path):
    odd = tmp_path / "take:2.png"
    Image.new("RGB", (64, 64)).save(odd)
    unit = parse_control(f"lineart:{odd}:0.7")
    assert unit.image == str(odd) and unit.weight == 0.7


@pytest.mark.parametrize(
    "text, says",
    [
        ("canny", "--control takes TYPE[/PREPROCESSOR]:IMAGE"),
        ("scribble:{p}", "unknown control type 'scribble'"),
        ("canny:{p}:2.5", "control weight must be between 0 and 2"),
        ("canny:{p}:-0.1", "control weight must be between 0 and 2"),
        ("canny:{p}:1:0.6:0.4", "0 <= start < end <= 1"),
        ("canny:{p}:1:0:1.5", "0 <= start < end <= 1"),
        ("canny:{p}:1:0.5", "not two numbers"),
        ("canny/hed:{p}", "its own (canny) or none"),
        ("canny:/no/such/map.png", "control image '/no/such/map.png' does not exist"),
    ],
)
def test_bad_control_flags_are_refused_with_a_reason(picture, text, says):
    with pytest.raises(InvalidRequest, match=says.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_control(text.format(p=picture))


def _white(image):
    return np.asarray(image.convert("L")) > 127


def test_canny_finds_the_square_and_nothing_else(picture):
    unit = parse_control(f"canny:{picture}")
    edges, notes = control_map(unit, (96, 64))
    assert edges.mode == "RGB" and edges.size == (96, 64) and notes == []
    white = _white(edges)
    ys, xs = np.nonzero(white)
    assert white.any() and 22 <= xs.min() and xs.max() <= 73 and 14 <= ys.min() and ys.max() <= 49  # at the border
    assert not white[28:44, 30:66].any()  # the square's flat inside has no edge


def test_softedge_and_lineart_differ_and_stay_on_the_outline(picture):
    soft, _ = control_map(parse_control(f"softedge:{picture}"), (96, 64))
    line, _ = control_map(parse_control(f"lineart:{picture}"), (96, 64))
    soft_a, line_a = np.asarray(soft.convert("L")), np.asarray(line.convert("L"))
    assert set(np.unique(line_a)) <= {0, 255} and len(np.unique(soft_a)) > 10  # hard lines against graded edges
    assert soft_a[32, 24] > soft_a[32, 48] and line_a[32, 48] == 0  # strongest at the edge, nothing in the middle


def test_a_ready_map_is_taken_as_it_is_and_a_size_change_is_said(picture):
    unit = parse_control(f"depth/none:{picture}:0.6")
    same, notes = control_map(unit, (96, 64))
    assert np.array_equal(np.asarray(same), np.asarray(Image.open(picture).convert("RGB"))) and notes == []
    bigger, notes = control_map(unit, (192, 128))
    assert bigger.size == (192, 128)
    assert notes == ["the depth control image sketch.png is 96x64; resized to 192x128, the render's size"]


def test_depth_and_pose_without_their_models_say_how_to_give_a_map(picture):
    with pytest.raises(ModelNotFound, match="no pose estimator yet: give a ready pose map: --control pose/none:MAP.png"):
        control_map(parse_control(f"pose:{picture}"), (96, 64))
    with pytest.raises(ModelNotFound, match="set KEYART_DEPTH_MODEL to a depth-estimation model, or give a ready depth map: --control depth/none:MAP.png"):
        control_map(parse_control(f"depth:{picture}"), (96, 64))


def test_a_control_image_that_is_no_image_is_refused(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    # The file exists, but the unit is refused when it is made, before any work, saying what is wrong.
    with pytest.raises(InvalidRequest, match="control image .*notes.png' is not an image Pillow can read"):
        parse_control(f"canny:{bad}")
