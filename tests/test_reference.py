"""Reference images through IP-Adapter, with a tiny random-init adapter and CLIP image encoder built
from configs: the reference changes the image more as its scale grows, scale 0 is the plain image,
every mode takes it, the adapter leaves the UNet after the render, the PNG records and reproduces it,
and a missing adapter is said before any work."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen import RenderRequest
from imagegen.cli import main
from imagegen.engines.sdxl import SDXLEngine
from imagegen.errors import InvalidRequest, ModelNotFound
from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png

SMALL = dict(num_inference_steps=6, width=64, height=64, seed=21, refiner="off")


@pytest.fixture(scope="module")
def referenced(tiny_pipes, tiny_ip_adapter, tiny_controlnet_dir):
    base, refiner = tiny_pipes
    return SDXLEngine(base, refiner, model_name="tiny-sdxl-base", ip_adapter=tiny_ip_adapter, controlnet_dir=tiny_controlnet_dir)


@pytest.fixture
def poster(tmp_path):
    image = Image.new("RGB", (80, 80), (200, 40, 30))
    ImageDraw.Draw(image).ellipse((10, 10, 70, 70), fill=(20, 40, 200))
    path = tmp_path / "poster.png"
    image.save(path)
    return path


def pixels(rendered):
    return np.asarray(rendered.image, dtype=np.int16)


def render(engine, **fields):
    return engine.render(RenderRequest("a harbour at dusk", **(SMALL | fields)))[0]


def test_the_reference_changes_the_image_with_its_scale(referenced, poster):
    plain = render(referenced)
    changes = [np.abs(pixels(render(referenced, reference=str(poster), reference_scale=s)) - pixels(plain)).mean() for s in (0.0, 0.4, 1.0)]
    assert changes[0] <= 0.01 and 0.3 < changes[1] < changes[2], changes
    # Out of the UNet again: the next plain render is the plain image.
    assert np.array_equal(pixels(render(referenced)), pixels(plain))
    assert referenced.base.unet.encoder_hid_proj is None


def test_every_mode_and_a_control_unit_take_the_reference(referenced, poster, tmp_path):
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (90, 120, 60)).save(init)
    for fields in (dict(init_image=str(init), strength=0.7), dict(hr_scale=1.5, denoising_strength=0.5), dict(refiner="on"), dict(controls=[f"canny:{poster}"]), dict(batch_size=2)):
        plain, guided = render(referenced, **fields), render(referenced, reference=str(poster), reference_scale=0.8, **fields)
        assert np.abs(pixels(guided) - pixels(plain)).mean() > 0.2, fields


def test_the_png_records_the_reference_and_reproduces_it(referenced, poster, tmp_path, tiny_model_dirs, tiny_ip_adapter, monkeypatch, capsys):
    rendered = render(referenced, reference=str(poster), reference_scale=0.7)
    fields = parse_infotext(rendered.infotext)[2]
    assert fields["IP-Adapter scale"] == "0.7" and fields["IP-Adapter"] == "ip-adapter_tiny"
    assert rendered.lineage["reference"] == {"adapter": "ip-adapter_tiny", "scale": 0.7}
    assert rendered.lineage["inputs"]["reference"]["path"] == str(poster)
    # The CLI: render with --reference, then --from reproduces it bit for bit; a changed reference is refused.
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    monkeypatch.setenv("KEYART_IP_ADAPTER", str(tiny_ip_adapter))
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["render", "a harbour at dusk", "--width", "64", "--height", "64", "--steps", "3", "--seed", "9", "--no-refiner"]
    assert main([*args, "--reference", f"{poster}:0.5", "--output", str(first)]) == 0
    [png] = sorted(first.glob("*.png"))
    assert read_png(png).lineage["request"]["reference_scale"] == 0.5
    assert main(["render", "--from", str(png), "--output", str(again)]) == 0
    [copy] = sorted(again.glob("*.png"))
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(png)))
    Image.new("RGB", (80, 80)).save(poster)
    capsys.readouterr()
    assert main(["render", "--from", str(png), "--output", str(tmp_path / "changed")]) == 2
    assert "the reference" in capsys.readouterr().err


def test_a_missing_adapter_or_reference_is_said_before_any_work(tiny_pipes, tiny_model_dirs, poster, tmp_path, monkeypatch, capsys):
    base, refiner = tiny_pipes
    with pytest.raises(ModelNotFound, match="set KEYART_IP_ADAPTER"):
        SDXLEngine(base, refiner).render(RenderRequest("a quay", reference=str(poster), **SMALL))
    with pytest.raises(InvalidRequest, match="reference image .* does not exist"):
        RenderRequest("a quay", reference=str(tmp_path / "gone.png"))
    with pytest.raises(InvalidRequest, match="reference scale must be between 0 and 1"):
        RenderRequest("a quay", reference=str(poster), reference_scale=1.5)
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(b"")
    for value, says in ((None, "set KEYART_IP_ADAPTER"), (str(tmp_path / "nope.bin"), "not a .safetensors file"), (str(lone), "needs its CLIP image encoder")):
        if value is None:
            monkeypatch.delenv("KEYART_IP_ADAPTER", raising=False)
        else:
            monkeypatch.setenv("KEYART_IP_ADAPTER", value)
        out = tmp_path / "out"
        assert main(["render", "x", "--width", "64", "--height", "64", "--reference", str(poster), "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert says in err and "engine: sdxl" not in err and not out.exists()


def test_guided_requests_do_not_batch_and_remote_engines_refuse_them(poster):
    from imagegen.engines import check_request
    from imagegen.queue import batch_key

    request = RenderRequest("a quay", reference=str(poster), **SMALL)
    assert batch_key(request) is None
    for engine in ("a1111", "openai"):
        with pytest.raises(InvalidRequest, match="reference images"):
            check_request(engine, request)


def test_an_a1111_ip_adapter_unit_is_the_reference(referenced, poster, tmp_path):
    import base64
    import io
    import json

    import httpx

    from imagegen.queue import RenderQueue
    from imagegen.server.app import create_app
    from imagegen.server.limits import Limits
    from tests.test_server_openai import serving

    image = base64.b64encode(poster.read_bytes()).decode()
    body = {"prompt": "a harbour at dusk", "steps": 4, "seed": 5, "width": 1024, "height": 1024}
    unit = {"module": "ip-adapter_clip_sdxl", "model": "ip-adapter_sdxl [7d943a46]", "weight": 0.7, "image": image}
    with RenderQueue(referenced, tmp_path / "home") as queue, serving(create_app(queue, limits=Limits(sizes=((64, 64),)))) as url:
        plain = httpx.post(f"{url}/sdapi/v1/txt2img", json=body, timeout=60)
        answer = httpx.post(f"{url}/sdapi/v1/txt2img", json=body | {"alwayson_scripts": {"controlnet": {"args": [unit]}}}, timeout=60)
        two = httpx.post(f"{url}/sdapi/v1/txt2img", json=body | {"alwayson_scripts": {"controlnet": {"args": [unit, unit]}}}, timeout=60)
    assert plain.status_code == 200 and answer.status_code == 200, answer.text
    infotext = json.loads(answer.json()["info"])["infotexts"][0]
    assert "IP-Adapter scale: 0.7" in infotext and "ControlNet 0" not in infotext
    images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(a.json()["images"][0]))), dtype=np.int16) for a in (plain, answer)]
    assert np.abs(images[0] - images[1]).mean() > 0.3
    assert two.status_code == 400 and "one IP-Adapter unit" in two.json()["error"]["message"]
