"""ControlNet in the SDXL engine, with tiny random-init ControlNets built from configs: each control
type changes the image against no control, two units combine, start/end take effect at the steps
recorded, every mode takes units, the infotext is A1111's ControlNet extension's and reproduces,
and bad input (a missing model, an image of another size) is said before any work."""

import json
import logging

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen import RenderRequest
from imagegen.cli import main
from imagegen.engines.sdxl import SDXLEngine
from imagegen.errors import InvalidRequest, ModelNotFound
from imagegen.metadata import parse_infotext, request_from_infotext
from imagegen.png_files import read_png, save_png

SMALL = dict(num_inference_steps=10, width=64, height=64, seed=11, refiner="off")


@pytest.fixture(scope="module")
def guided(tiny_pipes, tiny_controlnet_dir):
    base, refiner = tiny_pipes
    return SDXLEngine(base, refiner, model_name="tiny-sdxl-base", refiner_name="tiny-sdxl-refiner", controlnet_dir=tiny_controlnet_dir)


@pytest.fixture
def sketch(tmp_path):
    """A bright square on a dark ground at the render's size: edges, lines and a 'depth' blob."""
    image = Image.new("RGB", (64, 64), (15, 15, 25))
    draw = ImageDraw.Draw(image)
    draw.rectangle((14, 14, 49, 49), fill=(230, 230, 230))
    draw.ellipse((24, 24, 40, 40), fill=(90, 90, 90))
    path = tmp_path / "sketch.png"
    image.save(path)
    return path


def pixels(rendered):
    return np.asarray(rendered.image, dtype=np.int16)


def render(engine, **fields):
    return engine.render(RenderRequest("a lighthouse on a cliff", **(SMALL | fields)))[0]


@pytest.mark.parametrize("kind", ["canny", "softedge", "lineart", "depth/none", "pose/none"])
def test_each_control_type_changes_the_image_and_weight_zero_does_not(guided, sketch, kind):
    plain = render(guided)
    controlled = render(guided, controls=[f"{kind}:{sketch}"])
    assert np.abs(pixels(controlled) - pixels(plain)).mean() > 1.0
    # Weight 0 runs the ControlNet at zero scale: the image without control, to the last bits.
    weightless = render(guided, controls=[f"{kind}:{sketch}:0"])
    assert np.abs(pixels(weightless) - pixels(plain)).max() <= 1
    [record] = controlled.lineage["controls"]
    assert record["type"] == kind.split("/")[0] and record["model"] == kind.split("/")[0] and record["steps"] == [1, 10]
    assert controlled.lineage["inputs"]["controls"][0]["path"] == str(sketch)


def test_two_units_combine_into_an_image_neither_gives_alone(guided, sketch):
    canny = render(guided, controls=[f"canny:{sketch}"])
    lineart = render(guided, controls=[f"lineart:{sketch}:0.7"])
    both = render(guided, controls=[f"canny:{sketch}", f"lineart:{sketch}:0.7"])
    assert np.abs(pixels(both) - pixels(canny)).mean() > 0.5 and np.abs(pixels(both) - pixels(lineart)).mean() > 0.5
    assert [u["type"] for u in both.lineage["controls"]] == ["canny", "lineart"]
    assert 'ControlNet 0: "Module: canny, Model: canny, Weight: 1,' in both.infotext
    assert 'ControlNet 1: "Module: lineart, Model: lineart, Weight: 0.7,' in both.infotext


def test_start_and_end_fractions_guide_only_their_steps(guided, sketch):
    whole = render(guided, controls=[f"canny:{sketch}"])
    window = render(guided, controls=[f"canny:{sketch}:1:0.2:0.6"])
    late = render(guided, controls=[f"canny:{sketch}:1:0.7:1"])
    # Of 10 steps, 0.2-0.6 is steps 3-6 and 0.7-1 steps 8-10: as the ControlNet actually ran.
    assert window.lineage["controls"][0]["steps"] == [3, 6] and late.lineage["controls"][0]["steps"] == [8, 10]
    assert np.abs(pixels(window) - pixels(whole)).mean() > 0.5
    assert "Guidance Start: 0.2, Guidance End: 0.6" in window.infotext


def test_img2img_inpaint_and_the_refiner_take_control_units(guided, sketch, tmp_path):
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    Image.new("RGB", (64, 64), (140, 60, 40)).save(init)
    Image.new("L", (64, 64), 0).save(mask)
    ImageDraw.Draw(im := Image.open(mask).copy()).rectangle((0, 0, 31, 63), fill=255)
    im.save(mask)
    for fields in (dict(init_image=str(init), strength=0.6), dict(init_image=str(init), mask=str(mask), strength=0.8), dict(refiner="on")):
        plain, controlled = render(guided, **fields), render(guided, controls=[f"canny:{sketch}"], **fields)
        assert np.abs(pixels(controlled) - pixels(plain)).mean() > 0.3, fields
        steps = controlled.lineage["controls"][0]["steps"]
        assert steps[0] == 1 and steps[1] < 10, fields  # strength or the refiner's hand-off end the base's pass early
    # The inpaint keeps what the mask keeps: the right half is the init image's.
    kept = pixels(render(guided, controls=[f"canny:{sketch}"], init_image=str(init), mask=str(mask), strength=0.8))[:, 40:]
    assert np.abs(kept - np.array([140, 60, 40])).max() <= 2


def test_an_image_of_another_size_is_resized_and_said_so(guided, tmp_path, caplog):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (128, 80), (200, 200, 200)).save(wide)
    with caplog.at_level(logging.WARNING):
        rendered = render(guided, controls=[f"softedge:{wide}"])
    assert "wide.png is 128x80; resized to 64x64" in caplog.text
    assert rendered.lineage["notes"] == ["the softedge control image wide.png is 128x80; resized to 64x64, the render's size"]


def test_a_missing_model_is_said_before_any_step(tiny_pipes, tmp_path, sketch):
    base, refiner = tiny_pipes
    (tmp_path / "nets" / "canny").mkdir(parents=True)
    steps = []
    request = RenderRequest("a quay", controls=[f"lineart:{sketch}"], **SMALL)
    for folder, says in ((None, "set KEYART_CONTROLNET_DIR"), (tmp_path / "none", "no such folder"), (tmp_path / "nets", "no lineart ControlNet in")):
        engine = SDXLEngine(base, refiner, controlnet_dir=folder)
        with pytest.raises(ModelNotFound, match=says):
            engine.render(request, progress=lambda done, total: steps.append(done))
    engine = SDXLEngine(base, refiner, controlnet_dir=tmp_path / "nets")
    with pytest.raises(ModelNotFound, match="not a diffusers ControlNet folder"):
        engine.render(request.replace(controls=[f"canny:{sketch}"]))
    assert steps == []


def test_batches_never_mix_guided_requests(guided, sketch):
    from imagegen.queue import batch_key

    request = RenderRequest("a quay", controls=[f"canny:{sketch}"], **SMALL)
    assert batch_key(request) is None
    with pytest.raises(InvalidRequest, match="without a variation seed, control units, a reference image or a blend"):
        guided.render_batch([request, request.replace(seed=12)])


def test_the_infotext_is_a1111s_and_reads_back_into_the_same_units(guided, sketch, tmp_path, caplog):
    rendered = render(guided, controls=[f"canny:{sketch}:0.8:0.1:0.9", f"depth/none:{sketch}:1.5"])
    fields = parse_infotext(rendered.infotext)[2]
    assert fields["ControlNet 0"] == (
        "Module: canny, Model: canny, Weight: 0.8, Resize Mode: Just Resize, Processor Res: 64, Threshold A: 100, "
        "Threshold B: 200, Guidance Start: 0.1, Guidance End: 0.9, Pixel Perfect: False, Control Mode: Balanced"
    )
    assert fields["ControlNet 1"].startswith("Module: none, Model: depth, Weight: 1.5,")
    # A1111's parameters cannot name the images: given them, the same units; without, the flags to pass.
    again = request_from_infotext(rendered.infotext, control_images=[sketch, sketch])
    assert again.controls == rendered.request.controls
    with caplog.at_level(logging.WARNING):
        assert request_from_infotext(rendered.infotext).controls == ()
    assert "--control canny:IMAGE:0.8:0.1:0.9 --control depth/none:IMAGE:1.5:0:1" in caplog.text
    with pytest.raises(InvalidRequest, match="pass one control image for each"):
        request_from_infotext(rendered.infotext, control_images=[sketch])
    # An A1111 infotext's own names: the type read from the model's name.
    theirs = 'a cat\nSteps: 20, Seed: 1, Size: 64x64, ControlNet 0: "Module: softedge_hed, Model: diffusers_xl_softedge [aa11bb22], Weight: 0.6, Guidance Start: 0, Guidance End: 0.5"'
    [unit] = request_from_infotext(theirs, control_images=[sketch]).controls
    assert (unit.type, unit.preprocessor, unit.weight, unit.end) == ("softedge", "auto", 0.6, 0.5)
    # A unit keyart has no model for is left out, said; the PNG still renders.
    tile = 'a cat\nSteps: 20, Seed: 1, Size: 64x64, ControlNet 0: "Module: tile_resample, Model: diffusers_xl_tile, Weight: 1"'
    with caplog.at_level(logging.WARNING):
        assert request_from_infotext(tile).controls == ()
    assert "ControlNet 0 (Module: tile_resample" in caplog.text and "it is left out" in caplog.text


@pytest.fixture
def controlnet_env(tiny_model_dirs, tiny_controlnet_dir, monkeypatch):
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    monkeypatch.setenv("KEYART_CONTROLNET_DIR", str(tiny_controlnet_dir))


def test_the_cli_renders_with_control_and_render_from_reproduces_it(controlnet_env, sketch, tmp_path, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["render", "a harbour at dusk", "--width", "64", "--height", "64", "--steps", "4", "--seed", "5", "--no-refiner"]
    assert main([*args, "--control", f"canny:{sketch}:0.9:0:0.75", "--control", f"softedge:{sketch}:0.5", "--output", str(first)]) == 0
    [png] = sorted(first.glob("*.png"))
    meta = read_png(png)
    assert [u["type"] for u in meta.lineage["controls"]] == ["canny", "softedge"] and meta.lineage["controls"][0]["steps"] == [1, 3]
    assert main(["render", "--from", str(png), "--output", str(again)]) == 0
    [copy] = sorted(again.glob("*.png"))
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(png)))
    # A changed control image is not the one the image was made from.
    Image.new("RGB", (64, 64), (0, 0, 0)).save(sketch)
    capsys.readouterr()
    assert main(["render", "--from", str(png), "--output", str(tmp_path / "changed")]) == 2
    assert "the control image" in capsys.readouterr().err and not (tmp_path / "changed").exists()


@pytest.mark.parametrize(
    "flag, says",
    [
        ("scribble:{s}", "unknown control type 'scribble'"),
        ("canny:{s}:2.5", "control weight must be between 0 and 2"),
        ("canny:{s}:1:0.8:0.2", "0 <= start < end <= 1"),
        ("depth:{s}", "set KEYART_DEPTH_MODEL to one"),
        ("pose:{s}", "give a ready pose map"),
    ],
)
def test_bad_units_exit_2_before_the_engine_loads(controlnet_env, sketch, tmp_path, capsys, flag, says):
    out = tmp_path / "out"
    assert main(["render", "x", "--width", "64", "--height", "64", "--control", flag.format(s=sketch), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert says in err and "engine: sdxl" not in err and not out.exists()


def test_a_depth_unit_makes_its_map_with_the_configured_estimator(tiny_pipes, tiny_controlnet_dir, tiny_depth, sketch, tmp_path):
    from imagegen.depth import DepthEstimator

    base, refiner = tiny_pipes
    engine = SDXLEngine(base, refiner, model_name="tiny-sdxl-base", controlnet_dir=tiny_controlnet_dir, depth_model=str(tiny_depth))
    estimated = render(engine, controls=[f"depth:{sketch}:0.9"])
    # The map is the estimator's: the same render from that map given ready is the same image.
    depth_map = DepthEstimator(str(tiny_depth)).estimate(Image.open(sketch).convert("RGB"))
    assert depth_map.size == (64, 64) and np.asarray(depth_map).std() > 10  # a graded map, full range
    depth_map.save(tmp_path / "depth.png")
    ready = render(engine, controls=[f"depth/none:{tmp_path / 'depth.png'}:0.9"])
    assert np.array_equal(pixels(estimated), pixels(ready))
    assert np.abs(pixels(estimated) - pixels(render(engine))).mean() > 1.0
    [record] = estimated.lineage["controls"]
    assert record["module"] == "depth" and record["estimator"] == tiny_depth.name and "estimator" not in ready.lineage["controls"][0]
    assert 'ControlNet 0: "Module: depth, Model: depth, Weight: 0.9' in estimated.infotext


def test_a_missing_model_folder_exits_2_before_the_engine_loads(tiny_model_dirs, sketch, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    monkeypatch.setenv("KEYART_CONTROLNET_DIR", str(tmp_path / "no-nets"))
    assert main(["render", "x", "--width", "64", "--height", "64", "--control", f"canny:{sketch}", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "KEYART_CONTROLNET_DIR" in err and "no such folder" in err and "engine: sdxl" not in err


def test_preview_records_the_units_it_cannot_draw(sketch, tmp_path):
    from imagegen.engines.preview import PreviewEngine

    [card] = PreviewEngine().render(RenderRequest("a quay", controls=[f"canny:{sketch}:0.5"], **SMALL))
    assert 'ControlNet 0: "Module: canny, Model: canny, Weight: 0.5,' in card.infotext
    path = save_png(card, tmp_path)
    assert json.loads(json.dumps(read_png(path).lineage))["request"]["controls"][0]["weight"] == 0.5


# -- the image service: A1111's ControlNet extension bodies, and the Ray wire ------------------


@pytest.fixture(scope="module")
def served(guided, tmp_path_factory):
    from imagegen.queue import RenderQueue
    from imagegen.server.app import create_app
    from imagegen.server.limits import Limits
    from tests.test_server_openai import serving

    with RenderQueue(guided, tmp_path_factory.mktemp("cn-home")) as queue, serving(create_app(queue, limits=Limits(sizes=((64, 64),)))) as url:
        yield url


def b64(path):
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def test_an_a1111_controlnet_body_guides_the_render(served, sketch):
    import base64
    import io

    import httpx

    body = {"prompt": "a lighthouse on a cliff", "steps": 6, "width": 1024, "height": 1024, "seed": 3}
    unit = {"enabled": True, "module": "canny", "model": "diffusers_xl_canny_full [2b69fca4]", "weight": 0.9, "image": b64(sketch),
            "guidance_start": 0.0, "guidance_end": 0.5, "resize_mode": "Crop and Resize", "processor_res": 512, "threshold_a": 100, "threshold_b": 200}  # fmt: skip
    off = unit | {"enabled": False, "model": "control_v11p_sd15_scribble"}  # a disabled unit is skipped, whatever it names
    plain = httpx.post(f"{served}/sdapi/v1/txt2img", json=body, timeout=60)
    guided_answer = httpx.post(f"{served}/sdapi/v1/txt2img", json=body | {"alwayson_scripts": {"controlnet": {"args": [unit, off]}}}, timeout=60)
    assert plain.status_code == 200 and guided_answer.status_code == 200, guided_answer.text
    images = [Image.open(io.BytesIO(base64.b64decode(a.json()["images"][0]))) for a in (plain, guided_answer)]
    assert np.abs(np.asarray(images[0], dtype=np.int16) - np.asarray(images[1], dtype=np.int16)).mean() > 1.0
    infotext = json.loads(guided_answer.json()["info"])["infotexts"][0]
    assert 'ControlNet 0: "Module: canny, Model: canny, Weight: 0.9,' in infotext and "Guidance End: 0.5" in infotext
    # img2img: a unit without an image is guided by the init image, as in A1111.
    init = {"init_images": [b64(sketch)], "denoising_strength": 0.6, "alwayson_scripts": {"ControlNet": {"args": [{"module": "lineart_realistic", "model": "lineart"}]}}}
    answer = httpx.post(f"{served}/sdapi/v1/img2img", json=body | init, timeout=60)
    assert answer.status_code == 200, answer.text
    assert 'ControlNet 0: "Module: lineart, Model: lineart' in json.loads(answer.json()["info"])["infotexts"][0]


@pytest.mark.parametrize(
    "unit, status, says",
    [
        ({"module": "canny", "model": "control_v11e_sd15_shuffle", "image": "x"}, 400, "no ControlNet for"),
        ({"module": "canny", "model": "canny"}, 400, "has no image"),
        ({"module": "canny", "model": "canny", "image": "bm90IGFuIGltYWdl"}, 400, "alwayson_scripts.controlnet.args[0].image"),
        ({"module": "canny", "model": "canny", "image": "SKETCH", "weight": 3}, 400, "control weight must be between 0 and 2"),
    ],
)
def test_bad_a1111_controlnet_units_are_400s_with_a_json_body(served, sketch, unit, status, says):
    import httpx

    unit = {k: (b64(sketch) if v == "SKETCH" else v) for k, v in unit.items()}
    body = {"prompt": "a quay", "steps": 2, "alwayson_scripts": {"controlnet": {"args": [unit]}}}
    answer = httpx.post(f"{served}/sdapi/v1/txt2img", json=body, timeout=60)
    assert answer.status_code == status and says in json.dumps(answer.json()), answer.text


def test_the_jobs_api_refuses_server_side_control_and_reference_paths(served, sketch):
    import httpx

    answer = httpx.post(f"{served}/keyart/v1/jobs", json={"prompt": "a quay", "controls": [f"canny:{sketch}"]}, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "controls"
    answer = httpx.post(f"{served}/keyart/v1/jobs", json={"prompt": "a quay", "reference": str(sketch)}, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "reference" and "IP-Adapter unit" in answer.json()["error"]["message"]


def test_control_images_travel_to_a_replica_and_come_back_as_the_drivers(guided, sketch, tmp_path):
    from imagegen.scale.wire import pack_images, pack_request, unpack_images, unpack_request

    sent = RenderRequest("a quay", controls=[f"canny:{sketch}:0.8"], **SMALL)
    scratch = tmp_path / "replica"
    scratch.mkdir()
    there = unpack_request(pack_request(sent), scratch)
    assert there.controls[0].image == str(scratch / "control-0.png") and there.controls[0].weight == 0.8
    [back] = unpack_images(pack_images(guided.render(there)), sent)
    assert back.request.controls == sent.controls
    assert back.lineage["controls"][0]["image"] == str(sketch) and back.lineage["inputs"]["controls"][0]["path"] == str(sketch)
    assert str(scratch) not in json.dumps(back.lineage), json.dumps(back.lineage)
