"""The remote engines, a1111 and openai, rendering through a keyart server (the tiny SDXL behind
`python -m imagegen serve`'s app on 127.0.0.1) and through a recording fake: what they send, what
lands in the lineage, retries, refusals, cancels; and dataprep filling a catalog from a served keyart."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from imagegen.engines import check_request, choose, create_engine
from imagegen.engines.a1111 import A1111Engine
from imagegen.engines.remote_http import Remote
from imagegen.errors import InvalidRequest, RemoteUnavailable
from imagegen.queue import RenderQueue
from imagegen.request import RenderRequest
from imagegen.server.app import create_app
from imagegen.server.limits import Limits
from imagegen.settings import ImageSettings
from tests.fake_images import MODEL, FakeImages
from tests.test_server_openai import serving

LIMITS = Limits(sizes=((64, 64), (96, 64), (64, 96)), steps=2)


@pytest.fixture(scope="module")
def keyart(engine, tmp_path_factory):
    """A keyart server over the tiny SDXL, with a key; yields its base URL."""
    with RenderQueue(engine, tmp_path_factory.mktemp("remote-home")) as queue, serving(create_app(queue, api_key="sk-box", limits=LIMITS)) as url:
        yield url


def pixels(images):
    return [np.asarray(im.image) for im in images]


def files(tmp_path):
    """An init image and a mask (white = repaint) at 64x64."""
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    Image.new("RGB", (64, 64), (30, 90, 150)).save(init)
    m = Image.new("L", (64, 64), 0)
    m.paste(255, (16, 16, 48, 48))
    m.save(mask)
    return init, mask


# -- a1111 through a keyart server ----------------------------------------------------------------


def test_a1111_engine_on_a_keyart_server_renders_the_local_pixels(engine, keyart):
    """Same request, same pixels: the styled prompt, sampler and schedule type, seeds and batch all travel."""
    remote = create_engine("a1111", ImageSettings(a1111_url=keyart, a1111_api_key="sk-box"))
    request = RenderRequest("a lighthouse at dusk", style="watercolor", width=64, height=64, num_inference_steps=2,
                            seed=21, batch_size=2, sampler="Euler", schedule_type="Karras", refiner="off")  # fmt: skip
    images = remote.render(request, lineage={"show": "Gullhaven"})
    local = engine.render(request)
    assert all(np.array_equal(a, b) for a, b in zip(pixels(images), pixels(local), strict=True))
    first = images[1].lineage
    assert first["engine"] == "a1111" and first["model"] == "tiny-sdxl-base" and first["lineage"] == {"show": "Gullhaven"}
    assert first["remote"]["url"] == keyart and first["remote"]["seed"] == 22 and "Seed: 22" in first["remote"]["infotext"]
    assert images[1].infotext == first["remote"]["infotext"] and "Sampler: Euler" in images[1].infotext and "Schedule type: Karras" in images[1].infotext
    assert remote.model_name == "tiny-sdxl-base"


def test_a1111_engine_inpaints_on_a_keyart_server_as_locally(engine, keyart, tmp_path):
    init, mask = files(tmp_path)
    remote = create_engine("a1111", ImageSettings(a1111_url=keyart, a1111_api_key="sk-box"))
    request = RenderRequest("a red door", init_image=str(init), mask=str(mask), strength=0.6, mask_blur=2,
                            width=64, height=64, num_inference_steps=3, seed=8, refiner="off")  # fmt: skip
    images = remote.render(request)
    assert np.array_equal(pixels(images)[0], pixels(engine.render(request))[0])
    assert "Denoising strength: 0.6" in images[0].infotext and "Mask blur: 2" in images[0].infotext


def test_a1111_engine_without_the_servers_key_says_which_variable_to_set(keyart):
    with pytest.raises(RemoteUnavailable, match="refused the credentials.*KEYART_A1111_API_KEY"):
        create_engine("a1111", ImageSettings(a1111_url=keyart))
    # A1111's --api-auth style: the key as the basic-auth password, any user name.
    user, host = keyart.split("//")
    assert create_engine("a1111", ImageSettings(a1111_url=f"{user}//studio:sk-box@{host}")).model_name == "tiny-sdxl-base"


# -- a1111 against the recording fake -------------------------------------------------------------


@pytest.fixture
def fake():
    fake = FakeImages()
    with serving(fake.app) as url:
        fake.url = url
        yield fake


def test_a1111_engine_sends_a1111s_fields_and_keeps_the_remote_seeds_and_infotexts(fake):
    remote = create_engine("a1111", ImageSettings(a1111_url=fake.url, a1111_api_key="k1"))
    request = RenderRequest("a <lora:film:0.6> harbour, [fog:rain:0.5]", negative_prompt="blurry", style="cinematic", width=64, height=96,
                            num_inference_steps=12, guidance_scale=5.5, sampler="DPM++ 2M", schedule_type="Karras", seed=40,
                            batch_size=2, batch_count=2, subseed=7, subseed_strength=0.2, hr_scale=1.5, hr_upscaler="lanczos",
                            hr_second_pass_steps=6, denoising_strength=0.4)  # fmt: skip
    images = remote.render(request)
    body = fake.renders()[0].body
    prompt, negative = request.styled
    assert fake.renders()[0].path == "/sdapi/v1/txt2img"
    assert body["prompt"] == prompt and body["negative_prompt"] == negative and body["styles"] == []
    assert "<lora:film:0.6>" in body["prompt"] and "[fog:rain:0.5]" in body["prompt"]  # A1111 reads both itself
    assert (body["sampler_name"], body["scheduler"], body["steps"], body["cfg_scale"]) == ("DPM++ 2M", "Karras", 12, 5.5)
    assert (body["width"], body["height"], body["batch_size"], body["n_iter"], body["seed"]) == (64, 96, 2, 2, 40)
    assert (body["subseed"], body["subseed_strength"]) == (7, 0.2)
    assert body["enable_hr"] is True and (body["hr_scale"], body["hr_upscaler"], body["hr_second_pass_steps"], body["denoising_strength"]) == (1.5, "Lanczos", 6, 0.4)
    headers = fake.renders()[0].headers
    assert headers["authorization"] == "Bearer k1" and headers["x-keyart-owner"].startswith("keyart-a1111-")
    assert [im.seed for im in images] == [40, 41, 42, 43] and [im.index for im in images] == [0, 1, 2, 3]
    assert images[3].lineage["remote"]["model"] == MODEL and images[3].infotext.endswith(f"Seed: 43, Size: 96x144, Model: {MODEL}")


def test_a1111_engine_skips_a_grid_and_sends_img2img_inpaint_and_outpaint(tmp_path):
    fake = FakeImages(grid=True)
    init, mask = files(tmp_path)
    with serving(fake.app) as url:
        remote = create_engine("a1111", ImageSettings(a1111_url=url))
        images = remote.render(RenderRequest("x", width=64, height=64, num_inference_steps=2, batch_size=2, seed=1))
        assert [im.image.size for im in images] == [(64, 64), (64, 64)]  # the 8x8 grid before them is not an image of the batch
        remote.render(RenderRequest("a door", init_image=str(init), mask=str(mask), strength=0.5, inpaint_area="masked",
                                    masked_padding=16, init_upscaler="latent", width=64, height=64, num_inference_steps=4))  # fmt: skip
        remote.render(RenderRequest("more sea", init_image=str(init), outpaint="left,right", outpaint_pixels=16, width=96, height=64, num_inference_steps=4))
    inpaint, outpaint = fake.renders()[1].body, fake.renders()[2].body
    assert fake.renders()[1].path == "/sdapi/v1/img2img" and inpaint["denoising_strength"] == 0.5 and inpaint["resize_mode"] == 3
    assert inpaint["inpaint_full_res"] is True and inpaint["inpaint_full_res_padding"] == 16 and inpaint["inpainting_fill"] == 1
    sent = Image.open(io.BytesIO(base64.b64decode(inpaint["mask"])))
    assert sent.getpixel((32, 32)) == 255 and sent.getpixel((2, 2)) == 0
    grown = Image.open(io.BytesIO(base64.b64decode(outpaint["init_images"][0])))
    border = Image.open(io.BytesIO(base64.b64decode(outpaint["mask"])))
    assert grown.size == border.size == (96, 64) and border.getpixel((2, 32)) == 255 and border.getpixel((48, 32)) == 0


def test_a1111_engine_retries_busy_and_failing_servers_and_records_it(fake):
    remote = create_engine("a1111", ImageSettings(a1111_url=fake.url))
    fake.fail(503, retry_after="0")
    fake.fail(429, retry_after="0")
    images = remote.render(RenderRequest("x", width=64, height=64, num_inference_steps=2, seed=3))
    assert len(fake.renders()) == 3 and len(images) == 1
    retries = images[0].lineage["remote"]["retries"]
    assert retries[0].startswith("HTTP 503: scripted 503: retrying in 0.00 s (attempt 2 of 4)") and retries[1].startswith("HTTP 429")


def test_a1111_engine_refusals_are_clear_and_early(fake):
    remote = create_engine("a1111", ImageSettings(a1111_url=fake.url))
    fake.fail(422, {"detail": "Sampler 'Bogus' not found"})
    with pytest.raises(InvalidRequest, match="HTTP 422.*Sampler 'Bogus' not found"):
        remote.render(RenderRequest("x", width=64, height=64, num_inference_steps=2))
    assert len(fake.renders()) == 1  # a request the server refuses is not retried
    with pytest.raises(InvalidRequest, match="the a1111 engine cannot do the refiner"):
        remote.render(RenderRequest("x", width=64, height=64, refiner="on"))
    with pytest.raises(InvalidRequest, match="cannot do the refiner"):
        check_request("a1111", RenderRequest("x", refiner="on"))  # before any engine exists
    assert len(fake.renders()) == 1


def test_a1111_engine_bad_or_dead_addresses_are_one_clear_error():
    with pytest.raises(InvalidRequest, match="KEYART_A1111_URL is not a valid URL"):
        create_engine("a1111", ImageSettings(a1111_url="http://127.0.0.1:none"))
    with pytest.raises(InvalidRequest, match="KEYART_A1111_URL must be an http:// or https:// address"):
        create_engine("a1111", ImageSettings(a1111_url="ftp://box"))
    # Port 9 (discard) has nobody listening on loopback: refused at once, retried, then given up.
    dead = Remote("http://127.0.0.1:9", what="the a1111 engine", variable="KEYART_A1111_URL", sleep=lambda s: None)
    with pytest.raises(RemoteUnavailable, match=r"gave up on http://127.0.0.1:9/sdapi/v1/options after 4 attempts: could not connect.*KEYART_A1111_URL"):
        A1111Engine("http://127.0.0.1:9", remote=dead)
    with pytest.raises(Exception, match="KEYART_A1111_URL"):
        choose("a1111", ImageSettings())
    assert choose("auto", ImageSettings(a1111_url="http://u:secret@box:7860")).reason == "KEYART_A1111_URL is set (http://***@box:7860)"


def test_a1111_engine_reports_remote_progress_and_a_cancel_interrupts(fake):
    fake.delay = 1.6

    class Stop(BaseException):
        pass

    seen = []

    def progress(done, total):
        seen.append((done, total))
        raise Stop

    remote = create_engine("a1111", ImageSettings(a1111_url=fake.url))
    with pytest.raises(Stop):
        remote.render(RenderRequest("x", width=64, height=64, num_inference_steps=4, seed=1), progress=progress)
    assert seen == [(2, 4)]  # the fake's 0.5 of 4 steps
    assert [r.path for r in fake.requests][-2:] == ["/sdapi/v1/progress", "/sdapi/v1/interrupt"]


# -- openai ---------------------------------------------------------------------------------------


def test_openai_engine_on_a_keyart_server_honours_seeds_and_renders_the_local_pixels(engine, keyart, tmp_path):
    settings = ImageSettings(images_base_url=f"{keyart}/v1", images_api_key="sk-box")
    remote = create_engine("openai", settings)
    assert remote.keyart and remote.model_name == "keyart-sdxl"
    request = RenderRequest("a ferry in fog", negative_prompt="text", style="anime", width=64, height=64, num_inference_steps=2,
                            guidance_scale=6.0, sampler="DPM++ 2M", schedule_type="Karras", seed=5, batch_size=2, refiner="off")  # fmt: skip
    images = remote.render(request)
    assert all(np.array_equal(a, b) for a, b in zip(pixels(images), pixels(engine.render(request)), strict=True))
    assert [im.seed for im in images] == [5, 6] and "not_sent" not in images[0].lineage["remote"]
    assert images[1].lineage["remote"]["seed"] == 6 and "Seed: 6" in images[1].infotext
    init, mask = files(tmp_path)
    edit = RenderRequest("a red door", init_image=str(init), mask=str(mask), strength=0.6, width=64, height=64, num_inference_steps=3, seed=8, refiner="off")
    edited = remote.render(edit)
    assert edited[0].image.size == (64, 64) and "Denoising strength: 0.6" in edited[0].infotext


def test_openai_engine_speaks_plain_openai_and_records_what_it_cannot_send(fake, tmp_path):
    remote = create_engine("openai", ImageSettings(images_base_url=f"{fake.url}/v1", images_api_key="sk-o"))
    assert not remote.keyart and remote.model_name == "gpt-image-1.5"
    images = remote.render(RenderRequest("a harbour", style="watercolor", width=1216, height=832, seed=9, batch_size=2))
    sent = fake.renders()[0]
    assert sent.path == "/v1/images/generations" and sent.headers["authorization"] == "Bearer sk-o"
    assert sent.body == {"model": "gpt-image-1.5", "prompt": RenderRequest("a harbour", style="watercolor").styled[0], "n": 2, "size": "1536x1024", "output_format": "png"}
    record = images[0].lineage["remote"]
    assert record["size"] == "1536x1024" and "seed" in record["not_sent"] and "strength" not in record["not_sent"]
    assert images[0].image.size == (1536, 1024) and "seed, negative prompt, steps, CFG and sampler not sent" in images[0].infotext
    init, mask = files(tmp_path)
    remote.render(RenderRequest("a red door", init_image=str(init), mask=str(mask), width=64, height=64))
    edit = fake.renders()[1]
    assert edit.path == "/v1/images/edits" and edit.body["n"] == "1" and edit.body["model"] == "gpt-image-1.5"
    alpha = Image.open(io.BytesIO(edit.files["mask"])).getchannel("A")
    assert alpha.getpixel((32, 32)) == 0 and alpha.getpixel((2, 2)) == 255  # OpenAI's: transparent where to edit
    with pytest.raises(InvalidRequest, match="the openai engine cannot do the hires fix"):
        remote.render(RenderRequest("x", hr_scale=1.5, width=64, height=64))
    assert len(fake.renders()) == 2


def test_openai_engine_checks_its_model_and_key(fake, keyart, caplog):
    with pytest.raises(InvalidRequest, match="lists no model 'keyart-sdxl-oil'.*keyart-sdxl-watercolor"):  # a keyart server lists them all
        create_engine("openai", ImageSettings(images_base_url=f"{keyart}/v1", images_api_key="sk-box", images_model="keyart-sdxl-oil"))
    with caplog.at_level("WARNING"):  # elsewhere /models may list chat models only: said, and tried
        assert create_engine("openai", ImageSettings(images_base_url=f"{fake.url}/v1", images_model="gpt-image-9")).model_name == "gpt-image-9"
    assert "lists no model 'gpt-image-9'" in caplog.text and "trying it anyway" in caplog.text
    with pytest.raises(InvalidRequest, match="needs a key for https://api.openai.com/v1"):
        create_engine("openai", ImageSettings())
    fake.models.append({"id": "local-sd", "object": "model", "owned_by": "someone"})
    fake.fail(400, {"error": {"message": "Invalid size '64x96'", "type": "invalid_request_error", "param": "size", "code": None}})
    remote = create_engine("openai", ImageSettings(images_base_url=f"{fake.url}/v1", images_model="local-sd"))
    with pytest.raises(InvalidRequest, match="HTTP 400.*Invalid size '64x96'"):
        remote.render(RenderRequest("x", width=64, height=96))
    remote.render(RenderRequest("x", width=64, height=96, batch_size=8, batch_count=2))
    assert [r.body["n"] for r in fake.renders()[1:]] == [10, 6] and fake.renders()[-1].body["response_format"] == "b64_json"


def test_openai_key_falls_back_to_openai_api_key():
    env = {"OPENAI_API_KEY": "sk-env", "KEYART_IMAGES_BASE_URL": "http://box:7860/v1"}
    assert ImageSettings.from_env(env).images_api_key == "sk-env"
    assert ImageSettings.from_env(env | {"KEYART_IMAGES_API_KEY": "sk-own"}).images_api_key == "sk-own"
    assert "sk-" not in repr(ImageSettings.from_env(env)) and ImageSettings.from_env(env).value("KEYART_IMAGES_API_KEY") == "set"
    with pytest.raises(InvalidRequest, match="KEYART_REMOTE_TIMEOUT must be a number of seconds"):
        ImageSettings.from_env({"KEYART_REMOTE_TIMEOUT": "soon"})


# -- a catalog from a served keyart -----------------------------------------------------------------


def test_dataprep_run_with_the_a1111_engine_fills_a_catalog_from_a_served_keyart(keyart, tmp_path, monkeypatch, capsys):
    import dataprep
    from imagegen.png_files import read_png

    monkeypatch.setenv("KEYART_A1111_URL", keyart)
    monkeypatch.setenv("KEYART_A1111_API_KEY", "sk-box")
    home = tmp_path / "home"
    args = ["run", "--home", str(home), "--engine", "a1111", "--episodes", "1-2", "--styles", "anime,watercolor", "--width", "64", "--height", "64", "--steps", "2"]
    assert dataprep.main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr()
    assert "engine: a1111 (KEYART_A1111_URL is set" in out.err
    pngs = sorted((home / "images").rglob("*.png"))
    assert pngs and all(read_png(p).lineage["engine"] == "a1111" for p in pngs)
    lineage = read_png(next(p for p in pngs if "e01-anime" in p.as_posix())).lineage
    assert lineage["remote"]["model"] == "tiny-sdxl-base" and lineage["lineage"]["episode"] == 1 and lineage["lineage"]["style"] == "anime"
    # A rerun finds every image and asks the server for none.
    before = {p: p.stat().st_mtime_ns for p in pngs}
    assert dataprep.main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in sorted((home / "images").rglob("*.png"))} == before
