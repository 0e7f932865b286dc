"""The image service's A1111 API (/sdapi/v1) against uvicorn on 127.0.0.1 with the tiny SDXL:
LibreChat's and Open WebUI's flows, img2img with a mask, png-info, the lists, progress and interrupt."""

import base64
import http.client
import io
import json
import threading
import time

import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from imagegen.queue import RenderQueue
from imagegen.server.app import create_app
from imagegen.server.limits import Limits
from tests.test_server_openai import Gated, opened_at_exit, serving

# 1024x1024 (LibreChat's) snaps to 64x64; steps are honoured up to the limit.
TINY = Limits(sizes=((64, 64), (96, 64), (64, 96)), max_body_bytes=2**20)


@pytest.fixture(scope="module")
def queue(engine, tmp_path_factory):
    with RenderQueue(engine, tmp_path_factory.mktemp("a1111-home")) as q:
        yield q


@pytest.fixture(scope="module")
def base(queue):
    with serving(create_app(queue, limits=TINY)) as url:
        yield f"{url}/sdapi/v1"


def png(b64):
    assert not b64.startswith("data:")
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    assert image.format == "PNG"
    return image


def b64_png(image, **text):
    info = PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return base64.b64encode(out.getvalue()).decode()


def test_librechats_body_gets_raw_png_and_info_as_a_json_string(base):
    body = {"prompt": "a lighthouse keeper", "negative_prompt": "blurry", "cfg_scale": 4.5, "steps": 22, "width": 1024, "height": 1024}
    answer = httpx.post(f"{base}/txt2img", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    image = png(data["images"][0])
    assert image.size == (64, 64) and image.text["parameters"].startswith("a lighthouse keeper")
    assert "CFG scale: 4.5" in image.text["parameters"] and "Steps: 22" in image.text["parameters"]
    info = json.loads(data["info"])
    assert info["width"] == 64 and info["height"] == 64 and isinstance(info["seed"], int)
    assert info["infotexts"][0] == image.text["parameters"] and data["parameters"] == body


def test_open_webui_flow_with_an_empty_basic_header(base):
    options = httpx.get(f"{base}/options").json()
    models = httpx.get(f"{base}/sd-models").json()
    assert options["sd_model_checkpoint"] == models[0]["title"] == models[0]["model_name"] == "tiny-sdxl-base"
    assert httpx.post(f"{base}/options", json=options).json() == {}
    assert [m["title"] for m in models[1:]] == [f"keyart-sdxl-{s}" for s in ("cinematic", "graphic-novel", "watercolor", "anime", "retro-poster")]
    other = httpx.post(f"{base}/options", json=options | {"sd_model_checkpoint": "sd15.safetensors"})
    assert other.status_code == 400 and "no checkpoint 'sd15.safetensors'" in other.json()["error"]["message"]
    assert "keyart-sdxl-watercolor" in other.json()["error"]["message"]
    # httpx refuses a trailing blank in a header; Open WebUI sends exactly "Basic ".
    host, port = base.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = {"prompt": "a harbour", "batch_size": 2, "width": 512, "height": 512, "steps": 3, "negative_prompt": "", "seed": 11, "frobnicate": 1}
    connection.request("POST", "/sdapi/v1/txt2img", body=json.dumps(body), headers={"authorization": "Basic ", "content-type": "application/json"})
    reply = connection.getresponse()
    data = json.loads(reply.read())
    connection.close()
    assert reply.status == 200, data
    assert len(data["images"]) == 2
    info = json.loads(data["info"])
    assert info["all_seeds"] == [11, 12] and info["batch_size"] == 2
    assert "Seed: 12" in png(data["images"][1]).text["parameters"]


def test_a_checkpoint_chosen_in_options_is_a_style_until_switched_back(base):
    """Open WebUI's model picker: POST options switches the checkpoint, later renders use its style;
    override_settings does it for one request; the served model's own name switches back."""
    body = {"prompt": "a harbour", "width": 64, "height": 64, "steps": 2, "seed": 3}
    try:
        assert httpx.post(f"{base}/options", json={"sd_model_checkpoint": "keyart-sdxl-watercolor"}).json() == {}
        assert httpx.get(f"{base}/options").json()["sd_model_checkpoint"] == "keyart-sdxl-watercolor"
        info = json.loads(httpx.post(f"{base}/txt2img", json=body, timeout=30).json()["info"])
        assert info["styles"] == ["watercolor"] and "watercolor" in info["prompt"].lower()
        once = body | {"override_settings": {"sd_model_checkpoint": "keyart-sdxl-anime"}}
        assert json.loads(httpx.post(f"{base}/txt2img", json=once, timeout=30).json()["info"])["styles"] == ["anime"]
    finally:
        assert httpx.post(f"{base}/options", json={"sd_model_checkpoint": "tiny-sdxl-base"}).json() == {}
    assert json.loads(httpx.post(f"{base}/txt2img", json=body, timeout=30).json()["info"])["styles"] == []
    assert httpx.get(f"{base}/options").json()["sd_model_checkpoint"] == "tiny-sdxl-base"


def test_steps_past_the_limit_are_400_naming_it(base):
    answer = httpx.post(f"{base}/txt2img", json={"prompt": "x", "steps": 500})
    assert answer.status_code == 400 and "between 1 and 60" in answer.json()["error"]["message"]


def test_img2img_with_a_data_prefixed_image_and_a_mask(base):
    picture = b64_png(Image.new("RGB", (64, 96), (200, 40, 40)))
    mask = Image.new("L", (64, 96), 0)
    mask.paste(255, (16, 16, 48, 48))
    body = {"init_images": [f"data:image/png;base64,{picture}"], "mask": b64_png(mask), "prompt": "a red door", "steps": 3,
            "denoising_strength": 0.5, "mask_blur": 2, "inpaint_full_res": 0}  # fmt: skip
    answer = httpx.post(f"{base}/img2img", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    image = png(answer.json()["images"][0])
    assert image.size == (64, 96)
    request = json.loads(image.text["keyart"])["request"]
    assert request["strength"] == 0.5 and request["mask"] and request["mask_blur"] == 2
    from pathlib import Path

    assert not Path(request["init_image"]).parent.exists()


def test_png_info_reads_ours_and_an_a1111_png(base):
    ours = httpx.post(f"{base}/txt2img", json={"prompt": "a fox", "steps": 2, "seed": 5}, timeout=30).json()["images"][0]
    info = httpx.post(f"{base}/png-info", json={"image": ours}).json()
    assert info["info"].startswith("a fox") and info["parameters"]["Prompt"] == "a fox" and info["parameters"]["Seed"] == "5"
    assert "keyart" in info["items"]
    text = "a castle\nNegative prompt: fog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 99, Size: 512x768, Model: sdxl"
    theirs = b64_png(Image.new("RGB", (8, 8)), parameters=text)
    info = httpx.post(f"{base}/png-info", json={"image": f"data:image/png;base64,{theirs}"}).json()
    parameters = info["parameters"]
    assert info["info"] == text and parameters["Negative prompt"] == "fog" and parameters["Sampler"] == "Euler a"
    assert parameters["Size-1"] == 512 and parameters["Size-2"] == 768 and info["items"] == {}


def test_the_lists_are_filled(base):
    names = [s["name"] for s in httpx.get(f"{base}/samplers").json()]
    assert "DPM++ 2M" in names and "Euler a" in names
    assert any(s["label"] == "Karras" for s in httpx.get(f"{base}/schedulers").json())
    assert [u["name"] for u in httpx.get(f"{base}/upscalers").json()] == ["Latent", "Lanczos"]
    assert httpx.get(f"{base}/latent-upscale-modes").json() == [{"name": "Latent"}]
    assert httpx.get(f"{base}/loras").json() == [] and httpx.get(f"{base}/sd-vae").json() == []
    idle = httpx.get(f"{base}/progress").json()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0 and idle["current_image"] is None


def test_progress_while_a_job_runs_and_interrupt_cancels_it(engine, tmp_path):
    gated = Gated(engine)
    with RenderQueue(gated, tmp_path) as queue, opened_at_exit(gated), serving(create_app(queue, limits=TINY)) as url:
        result = {}

        def call():
            result["answer"] = httpx.post(f"{url}/sdapi/v1/txt2img", json={"prompt": "held", "steps": 3}, timeout=30)

        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 10
        while not any(j.state == "running" for j in queue.jobs()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        busy = httpx.get(f"{url}/sdapi/v1/progress").json()
        assert busy["state"]["job_count"] == 1 and 0 <= busy["progress"] <= 1 and busy["textinfo"]
        assert httpx.post(f"{url}/sdapi/v1/interrupt").json() == {}
        assert httpx.get(f"{url}/sdapi/v1/progress").json()["state"]["interrupted"] is True
        gated.gate.set()
        thread.join(20)
        answer = result["answer"]
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "job_cancelled"
