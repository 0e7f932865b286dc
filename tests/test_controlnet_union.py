"""A union ControlNet (union/ under KEYART_CONTROLNET_DIR: one model for every type, as xinsir's
controlnet-union-sdxl) with a tiny random-init ControlNetUnionModel: it serves the types that have no
model of their own through diffusers' union pipelines, each unit told its type, with its own weight
and steps; a type with its own model keeps it; a render that mixes the two is refused first."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen import RenderRequest
from imagegen.engines.sdxl import SDXLEngine
from imagegen.engines.sdxl_control import UNION_MODES, check_request, locate
from imagegen.errors import InvalidRequest
from imagegen.settings import ImageSettings

SMALL = dict(num_inference_steps=8, width=64, height=64, seed=5, refiner="off")


@pytest.fixture(scope="module")
def engine(tiny_pipes, tiny_union_dir):
    base, refiner = tiny_pipes
    return SDXLEngine(base, refiner, model_name="tiny-sdxl-base", controlnet_dir=tiny_union_dir)


@pytest.fixture
def sketch(tmp_path):
    image = Image.new("RGB", (64, 64), (15, 15, 25))
    ImageDraw.Draw(image).rectangle((14, 14, 49, 49), fill=(230, 230, 230))
    path = tmp_path / "sketch.png"
    image.save(path)
    return path


def pixels(rendered):
    return np.asarray(rendered.image, dtype=np.int16)


def render(engine, **fields):
    return engine.render(RenderRequest("a lighthouse on a cliff", **(SMALL | fields)))[0]


def test_the_union_model_serves_the_types_without_a_model_of_their_own(tiny_union_dir):
    assert locate(tiny_union_dir, "softedge") == tiny_union_dir / "union" and locate(tiny_union_dir, "depth") == tiny_union_dir / "union"
    assert locate(tiny_union_dir, "canny") == tiny_union_dir / "canny"


def test_union_units_change_the_image_each_by_its_type_and_combine(engine, sketch):
    plain = render(engine)
    soft = render(engine, controls=[f"softedge:{sketch}"])
    lines = render(engine, controls=[f"lineart:{sketch}"])
    depth = render(engine, controls=[f"depth/none:{sketch}"])
    assert all(np.abs(pixels(r) - pixels(plain)).mean() > 1.0 for r in (soft, lines, depth))
    # The same map told another type (depth 1, not softedge 2) is another image: the mode reaches the model.
    same_map = render(engine, controls=[f"softedge/none:{sketch}"])
    assert UNION_MODES["softedge"] != UNION_MODES["depth"] and np.abs(pixels(same_map) - pixels(depth)).mean() > 0.2
    # Two units on the one union model, each with its weight and steps, recorded as they ran.
    both = render(engine, controls=[f"softedge:{sketch}:0.8:0:0.5", f"depth/none:{sketch}:0.6:0.25:1"])
    assert np.abs(pixels(both) - pixels(soft)).mean() > 0.2
    first, second = both.lineage["controls"]
    assert (first["model"], first["steps"], second["model"], second["steps"]) == ("union", [1, 4], "union", [3, 8])
    assert "Model: union" in both.infotext
    # Weight 0: the image without control.
    assert np.abs(pixels(render(engine, controls=[f"softedge:{sketch}:0"])) - pixels(plain)).max() <= 1


def test_img2img_takes_a_union_unit(engine, sketch, tmp_path):
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (90, 120, 60)).save(init)
    plain = render(engine, init_image=str(init), strength=0.7)
    guided = render(engine, init_image=str(init), strength=0.7, controls=[f"lineart:{sketch}"])
    assert np.abs(pixels(guided) - pixels(plain)).mean() > 0.5 and guided.lineage["controls"][0]["model"] == "union"


def test_a_render_that_mixes_union_and_own_models_is_refused_first(engine, sketch, tiny_union_dir):
    request = RenderRequest("a lighthouse", **SMALL, controls=[f"canny:{sketch}", f"softedge:{sketch}"])
    with pytest.raises(InvalidRequest, match="the softedge unit.* run on the union ControlNet and the canny unit"):
        check_request(ImageSettings(controlnet_dir=str(tiny_union_dir)), request)
    with pytest.raises(InvalidRequest, match="one render takes one or the other"):
        engine.render(request)
