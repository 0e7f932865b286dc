"""Blended prompts (interpolated conditioning) with the tiny SDXL: `blend` mixes the prompt's encoding
with `blend_prompt`'s, both encoded at one length: 0 is the prompt's image and 1 the blend prompt's,
to the last bit; the infotext records it and reads back; engines without it, prompt editing beside
it and bad values are refused first. Animations blend between keyframes in `blend` mode."""

import numpy as np
import pytest

from imagegen import RenderRequest
from imagegen.animation import AnimationRequest
from imagegen.engines import check_request
from imagegen.errors import InvalidRequest
from imagegen.metadata import parse_infotext, request_from_infotext

SMALL = dict(num_inference_steps=4, width=64, height=64, seed=5, refiner="off")


def pixels(rendered):
    return np.asarray(rendered.image, dtype=np.int16)


def test_a_blend_runs_from_the_prompt_to_the_blend_prompt(engine):
    harbour = engine.render(RenderRequest("a calm harbour at dusk", **SMALL))[0]
    storm = engine.render(RenderRequest("a lighthouse in a storm", **SMALL))[0]

    def blended(weight):
        return engine.render(RenderRequest("a calm harbour at dusk", blend_prompt="a lighthouse in a storm", blend=weight, **SMALL))[0]

    assert np.array_equal(pixels(blended(0.0)), pixels(harbour)) and np.array_equal(pixels(blended(1.0)), pixels(storm))
    half = blended(0.5)
    assert np.abs(pixels(half) - pixels(harbour)).mean() > 0.5 and np.abs(pixels(half) - pixels(storm)).mean() > 0.5
    prompt, _, fields = parse_infotext(half.infotext)
    assert fields["Prompt blend"] == "0.5" and fields["Blend prompt"] == "a lighthouse in a storm"
    again = request_from_infotext(half.infotext)
    assert (again.blend, again.blend_prompt) == (0.5, "a lighthouse in a storm")


def test_what_a_blend_cannot_take_is_refused_first(engine):
    with pytest.raises(InvalidRequest, match="blend must be between 0 and 1"):
        RenderRequest("a harbour", blend_prompt="a storm", blend=1.5)
    with pytest.raises(InvalidRequest, match="a blend needs the prompt it blends toward"):
        RenderRequest("a harbour", blend=0.3)
    with pytest.raises(InvalidRequest, match="no prompt editing or alternation"):
        engine.render(RenderRequest("a [calm:stormy:2] harbour", blend_prompt="a storm", blend=0.5, **SMALL))
    with pytest.raises(InvalidRequest, match="blend"):
        check_request("a1111", RenderRequest("a harbour", blend_prompt="a storm", blend=0.5))


def test_an_animation_blends_between_its_keyframes(engine, tmp_path):
    from imagegen.animate import animate
    from imagegen.png_files import read_png

    request = AnimationRequest(
        "0: a calm harbour at dusk | 4: a lighthouse in a storm", frames=6, width=64, height=64, seed=3, prompt_mode="blend",
        render={"num_inference_steps": 4, "refiner": "off"},
    )  # fmt: skip
    assert request.blend_at(0) is None and request.blend_at(2) == ("a lighthouse in a storm", 0.5) and request.blend_at(5) is None
    made = animate(engine, request, tmp_path / "a")
    blends = [read_png(p).lineage["lineage"]["animation"]["blend"] for p in made.frames]
    assert [b and b["weight"] for b in blends] == [None, 0.25, 0.5, 0.75, None, None]
    assert read_png(made.frames[2]).lineage["request"]["blend_prompt"] == "a lighthouse in a storm"
    with pytest.raises(InvalidRequest, match="prompt mode is one of switch, blend"):
        request.replace(prompt_mode="morph")
