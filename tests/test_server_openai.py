"""The image service's OpenAI Images API, driven by the official `openai` SDK against uvicorn on
127.0.0.1 with the tiny SDXL: generate, edit, models, auth on and off, limits, 429, disconnects."""

import base64
import io
import json
import threading
import time
from contextlib import contextmanager

import httpx
import openai
import pytest
from PIL import Image

from imagegen.queue import RenderQueue
from imagegen.request import RenderRequest
from imagegen.server.app import create_app, running
from imagegen.server.limits import Limits

# A tiny size table (64x64, landscape, portrait) and 2 steps, so renders stay tiny.
TINY = Limits(sizes=((64, 64), (96, 64), (64, 96)), steps=2, max_body_bytes=2**20)
KEY = "sk-test-key"


serving = running  # uvicorn in a thread on 127.0.0.1 (imagegen.server.app.running); the other server tests import it from here


class Gated:
    """The tiny engine behind a gate: render() waits until the test opens it (holds the worker busy)."""

    name, model_name = "gated", "tiny-sdxl-base"

    def __init__(self, engine):
        self.engine, self.gate = engine, threading.Event()

    def render(self, request, *, lineage=None, progress=None):
        assert self.gate.wait(20), "the test never opened the gate"
        return self.engine.render(request, lineage=lineage, progress=progress)


@contextmanager
def opened_at_exit(gated):
    """Open the gate however the test ends, so a failing test never leaves the worker waiting."""
    try:
        yield gated
    finally:
        gated.gate.set()


@pytest.fixture(scope="module")
def queue(engine, tmp_path_factory):
    with RenderQueue(engine, tmp_path_factory.mktemp("serve-home")) as q:
        yield q


@pytest.fixture(scope="module")
def base(queue):
    with serving(create_app(queue, limits=TINY)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base):
    return openai.OpenAI(base_url=f"{base}/v1", api_key="anything", max_retries=0)


def decode(b64):
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def test_generate_gives_pngs_that_carry_their_prompt_and_the_snapped_size(client):
    result = client.images.generate(model="keyart-sdxl", prompt="a lighthouse keeper", n=2, size="1536x1024", extra_body={"seed": 7})
    assert [d.url for d in result.data] == [None, None] and result.output_format == "png" and result.size == "96x64"
    images = [decode(d.b64_json) for d in result.data]
    assert [im.format for im in images] == ["PNG", "PNG"] and images[0].size == (96, 64)
    parameters = [im.text["parameters"] for im in images]
    assert all(p.startswith("a lighthouse keeper") and "Size: 96x64" in p and "Steps: 2" in p for p in parameters)
    assert "Seed: 7" in parameters[0] and "Seed: 8" in parameters[1]  # image i uses seed+i
    assert json.loads(images[0].text["keyart"])["lineage"] == {"api": "openai"}


def test_models_list_the_styles_and_a_style_model_applies_it(client):
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "keyart-sdxl" and "keyart-sdxl-watercolor" in ids and len(ids) >= 3
    result = client.images.generate(model="keyart-sdxl-watercolor", prompt="a harbour", size="auto", response_format="url", quality="low")
    assert result.data[0].url.startswith("data:image/png;base64,") and result.quality == "low" and result.size == "64x64"
    image = decode(result.data[0].url.split(",", 1)[1])
    assert json.loads(image.text["keyart"])["request"]["style"] == "watercolor"
    assert "watercolor" in result.data[0].revised_prompt.lower() and "a harbour" in image.text["parameters"]


def test_edit_inpaints_with_an_openai_mask_and_removes_its_temp_files(client):
    picture = io.BytesIO()
    Image.new("RGB", (64, 96), (200, 40, 40)).save(picture, format="PNG")
    mask = Image.new("RGBA", (64, 96), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))  # transparent: the area to edit
    mask_file = io.BytesIO()
    mask.save(mask_file, format="PNG")
    result = client.images.edit(
        image=("in.png", picture.getvalue(), "image/png"), mask=("mask.png", mask_file.getvalue(), "image/png"), prompt="a red door", size="auto"
    )
    image = decode(result.data[0].b64_json)
    assert image.size == (64, 96) and image.text["parameters"].startswith("a red door")  # auto: the table's size nearest the image's
    lineage = json.loads(image.text["keyart"])
    request = lineage["request"]
    assert request["init_image"] and request["mask"]
    from pathlib import Path

    assert not Path(request["init_image"]).parent.exists()  # the upload's temp folder went with the job


def test_auth_on_needs_the_key_except_for_health(queue):
    with serving(create_app(queue, api_key=KEY, limits=TINY)) as url:
        with pytest.raises(openai.AuthenticationError) as caught:
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        assert caught.value.status_code == 401 and set(caught.value.body) == {"message", "type", "param", "code"}
        assert openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0).models.list().data[0].id == "keyart-sdxl"
        assert httpx.get(f"{url}/health").status_code == 200
        assert status(f"{url}/v1/models", "Bearer ") == 401


def status(url, authorization):
    """The status of GET url with exactly this Authorization header (httpx refuses a trailing blank,
    which Open WebUI sends when no key is set)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path, headers={"Authorization": authorization})
        return connection.getresponse().status
    finally:
        connection.close()


def test_auth_off_ignores_any_authorization_header(base):
    for header in ("Bearer ", "Bearer whatever", "Basic ", "Basic dXNlcjpwYXNz", ""):
        assert status(f"{base}/v1/models", header) == 200, header


@pytest.mark.parametrize(
    ("kwargs", "error", "param", "words"),
    [
        ({"n": 11}, openai.BadRequestError, "n", "between 1 and 10"),
        ({"size": "huge"}, openai.BadRequestError, "size", "'WxH' or 'auto'"),
        ({"size": "9000x9000"}, openai.BadRequestError, "size", "limit of 16777216"),
        ({"output_format": "gif"}, openai.BadRequestError, "output_format", "png, jpeg, webp"),
        ({"background": "transparent"}, openai.BadRequestError, "background", "opaque"),
        ({"extra_body": {"steps": 500}}, openai.BadRequestError, "steps", "between 1 and 60"),
        ({"model": "gpt-image-2"}, openai.NotFoundError, "model", "keyart-sdxl-watercolor"),
    ],
)
def test_bad_fields_are_4xx_in_openais_shape(client, kwargs, error, param, words):
    with pytest.raises(error) as caught:
        client.images.generate(prompt="a cat", **kwargs)
    assert caught.value.param == param and words in caught.value.message


def test_a_body_past_the_limit_is_413_and_unknown_fields_are_ignored(base):
    big = httpx.post(f"{base}/v1/images/generations", json={"prompt": "x" * (2**20 + 10)})
    assert big.status_code == 413 and "limit of 1048576 bytes" in big.json()["error"]["message"]
    chunked = httpx.post(f"{base}/v1/images/generations", content=iter([b'{"prompt": "', b"x" * (2**20 + 10), b'"}']), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "body_too_large"
    ok = httpx.post(f"{base}/v1/images/generations", json={"prompt": "a cat", "moderation": "low", "style": "vivid", "frobnicate": 3}, timeout=30)
    assert ok.status_code == 200 and ok.json()["usage"]["total_tokens"] == 0


def test_a_full_queue_answers_429_with_retry_after_and_the_sdks_retry_then_succeeds(engine, tmp_path):
    gated = Gated(engine)
    with RenderQueue(gated, tmp_path, max_queued=1) as queue, opened_at_exit(gated), serving(create_app(queue, limits=Limits(sizes=TINY.sizes, steps=2, max_retry_after_s=1))) as url:
        hold = RenderRequest("hold", width=64, height=64, num_inference_steps=2, refiner="off")
        held = [queue.submit(hold, on_result=lambda job, images: None)]
        while queue.get(held[0].id).state != "running":  # the worker holds it at the gate...
            time.sleep(0.01)
        held.append(queue.submit(hold, on_result=lambda job, images: None))  # ...and this one fills the queue
        with pytest.raises(openai.RateLimitError) as caught:
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0).images.generate(prompt="a cat")
        assert caught.value.response.headers["Retry-After"] == "1" and caught.value.code == "queue_full"
        threading.Timer(0.3, gated.gate.set).start()
        result = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=2).images.generate(prompt="a cat")
        assert decode(result.data[0].b64_json).text["parameters"].startswith("a cat")
        assert all(queue.wait(j.id, 10).state == "done" for j in held)


def test_a_client_that_disconnects_has_its_job_cancelled(engine, tmp_path):
    gated = Gated(engine)
    with RenderQueue(gated, tmp_path) as queue, opened_at_exit(gated), serving(create_app(queue, limits=TINY)) as url:
        blocker = queue.submit(RenderRequest("hold", width=64, height=64, num_inference_steps=2), on_result=lambda job, images: None)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/images/generations", json={"prompt": "gone", "user": "leaver"}, timeout=0.5)
        deadline = time.monotonic() + 5
        while not (jobs := queue.jobs(owner="leaver")) or jobs[0].state != "cancelled":
            assert time.monotonic() < deadline, f"the job was not cancelled: {jobs}"
            time.sleep(0.05)
        gated.gate.set()
        assert queue.wait(blocker.id, 10).state == "done"


def test_serve_refuses_a_public_address_without_a_key(capsys):
    from imagegen.cli import main
    from imagegen.cli_serve import is_loopback

    assert main(["serve", "--host", "0.0.0.0", "--engine", "preview"]) == 2
    assert "without an API key" in capsys.readouterr().err
    assert main(["serve", "--api-key", " ", "--engine", "preview"]) == 2
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2", "0.0.0.0", "example.org")] == [True, True, True, True, False, False]


def test_serve_batches_up_to_max_batch_for_the_openai_sdk(tmp_path):
    # The real command on a free port: n=8 is one pipeline call of 8 with --max-batch 8 (the default
    # 4 makes it two of 4). The preview engine: SDXL's own sizes would take the tiny model minutes here.
    import os

    from imagegen.metadata import parse_infotext
    from tests.serve_cli import serving_cli

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))} | {"HF_HUB_OFFLINE": "1"}
    with serving_cli(["--engine", "preview", "--home", str(tmp_path), "--max-batch", "8"], env) as served:
        answer = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0).images.generate(
            model="keyart-sdxl", prompt="a quay at dawn", n=8, size="1024x1024", response_format="b64_json", timeout=120
        )
    assert served.returncode == 0, served.err
    fields = [parse_infotext(decode(item.b64_json).text["parameters"])[2] for item in answer.data]
    assert [(f["Batch size"], f["Batch pos"]) for f in fields] == [("8", str(i)) for i in range(8)]
