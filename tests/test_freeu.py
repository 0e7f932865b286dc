"""FreeU (`freeu=`, --freeu, the Studio's FreeU panel) on the tiny SDXL: the UNet's two deepest up
blocks reweighed for one render and put back after, its factors parsed into one spelling, recorded
in the infotext and read back."""

import numpy as np
import pytest

from imagegen import InvalidRequest, RenderRequest
from imagegen.engines.sdxl_freeu import applied
from imagegen.freeu import SDXL, parse, text
from imagegen.metadata import parse_infotext, request_from_infotext
from imagegen.queue import batch_key

TINY = dict(num_inference_steps=2, width=64, height=64, seed=8, refiner="off")


def pixels(rendered):
    return np.asarray(rendered.image, dtype=np.int16)


@pytest.mark.parametrize(
    "given, spelled",
    [
        ("on", "b1=1.3,b2=1.4,s1=0.9,s2=0.2"),
        (" ON ", "b1=1.3,b2=1.4,s1=0.9,s2=0.2"),
        ("off", "off"),
        ("", "off"),
        ("b1=1.1", "b1=1.1,b2=1.4,s1=0.9,s2=0.2"),  # the others: the SDXL values
        ("s2=0.5, b2=1.25", "b1=1.3,b2=1.25,s1=0.9,s2=0.5"),
    ],
)
def test_the_factors_have_one_spelling(given, spelled):
    assert RenderRequest("a quay", freeu=given).freeu == spelled
    assert text(parse(spelled)) == spelled


@pytest.mark.parametrize(
    "bad, says",
    [("b3=1", "b1, b2, s1 and s2 as name=value"), ("b1", "name=value"), ("b1=much", "must be a number"), ("s1=0", "above 0"),
     ("b2=-1", "above 0"), ("b1=nan", "above 0"), ("b1=9", "at most 3"), (None, "freeu must be off, on or factors")],
)  # fmt: skip
def test_a_bad_factor_is_a_clear_error(bad, says):
    with pytest.raises(InvalidRequest, match=says):
        RenderRequest("a quay", freeu=bad)


def test_freeu_changes_the_render_and_leaves_the_unet_as_it_was(engine, tiny_pipes):
    base = tiny_pipes[0]
    [before] = engine.render(RenderRequest("a harbour", **TINY))
    [reweighed] = engine.render(RenderRequest("a harbour", freeu="on", **TINY))
    [after] = engine.render(RenderRequest("a harbour", **TINY))
    assert np.abs(pixels(reweighed) - pixels(before)).max() > 0
    assert (pixels(after) == pixels(before)).all()
    assert all(getattr(block, name, None) is None for block in base.unet.up_blocks for name in SDXL)
    with pytest.raises(RuntimeError, match="mid-render"), applied([base.unet], "on"):
        assert base.unet.up_blocks[0].b1 == SDXL["b1"]
        raise RuntimeError("mid-render")
    assert all(getattr(block, name, None) is None for block in base.unet.up_blocks for name in SDXL)


def test_unit_factors_are_the_model_itself_within_the_fourier_filters_rounding(engine):
    # b = s = 1 scales nothing; the skip connections still go through an FFT and back.
    [plain] = engine.render(RenderRequest("a harbour", **TINY))
    [ones] = engine.render(RenderRequest("a harbour", freeu="b1=1,b2=1,s1=1,s2=1", **TINY))
    assert np.abs(pixels(ones) - pixels(plain)).max() <= 1


def test_the_refiner_is_reweighed_too_and_the_infotext_reads_back(engine):
    [image] = engine.render(RenderRequest("a harbour", freeu="b1=1.1", **{**TINY, "refiner": "on"}))
    assert parse_infotext(image.infotext)[2]["FreeU"] == "b1=1.1,b2=1.4,s1=0.9,s2=0.2"
    again = request_from_infotext(image.infotext)
    assert again.freeu == "b1=1.1,b2=1.4,s1=0.9,s2=0.2" and again.refiner == "on"
    [plain] = engine.render(RenderRequest("a harbour", **TINY))
    assert "FreeU" not in plain.infotext and "freeu" not in plain.lineage["request"]  # older image keys unchanged


def test_requests_with_other_factors_never_share_a_pipeline_call():
    assert batch_key(RenderRequest("a", **TINY)) != batch_key(RenderRequest("a", freeu="on", **TINY))
    assert batch_key(RenderRequest("a", freeu="on", **TINY)) == batch_key(RenderRequest("b", freeu="b1=1.3", **TINY))


def test_engines_without_freeu_refuse_it_before_any_work():
    from imagegen.engines import check_request

    check_request("sdxl", RenderRequest("a", freeu="on", **TINY))
    for name in ("a1111", "openai"):
        with pytest.raises(InvalidRequest, match=f"the {name} engine cannot do FreeU"):
            check_request(name, RenderRequest("a", freeu="on", **TINY))


def test_render_freeu_on_the_command_line(tmp_path, monkeypatch):
    from imagegen.cli import main
    from imagegen.png_files import read_png

    monkeypatch.delenv("KEYART_SDXL_MODEL", raising=False)
    assert main(["render", "a quay", "--freeu", "--engine", "preview", "--width", "256", "--height", "256", "--output", str(tmp_path / "a")]) == 0
    assert main(["render", "a quay", "--freeu", "s2=0.4", "--engine", "preview", "--width", "256", "--height", "256", "--output", str(tmp_path / "b")]) == 0
    [a], [b] = (list((tmp_path / d).glob("*.png")) for d in "ab")
    assert parse_infotext(read_png(a).infotext)[2]["FreeU"] == "b1=1.3,b2=1.4,s1=0.9,s2=0.2"
    assert parse_infotext(read_png(b).infotext)[2]["FreeU"] == "b1=1.3,b2=1.4,s1=0.9,s2=0.4"
    assert main(["render", "a quay", "--freeu", "b9=1", "--engine", "preview", "--output", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()
