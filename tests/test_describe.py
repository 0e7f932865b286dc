"""Image to prompt (`describe`), with a tiny random-init BLIP captioner and CLIP model built from
configs: the caption extended with the top medium, style and lighting words, a chain that only adds
words that raise the prompt's CLIP similarity, the trace; the offline description labelled as such;
the CLI, A1111's /sdapi/v1/interrogate with the bodies its clients send, and the Studio workflow."""

import base64
import io
import json

import httpx
import pytest
from PIL import Image

from imagegen.cli import main
from imagegen.describe import Describer
from imagegen.describe_words import FLAVORS, KINDS
from imagegen.engines.preview import PreviewEngine
from imagegen.errors import InvalidRequest, ModelNotFound
from imagegen.queue import RenderQueue
from imagegen.server.app import create_app
from tests.test_server_openai import serving


def picture(colour=(30, 60, 120), size=(120, 80)):
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 12):  # a little structure for the encoders to see
        for y in range(size[1] // 2, size[1]):
            image.putpixel((x, y), (230, 200, 60))
    return image


@pytest.fixture(scope="module")
def describer(tiny_blip, tiny_clip):
    return Describer(str(tiny_blip), str(tiny_clip), device="cpu")


def test_the_caption_is_extended_with_the_best_ranked_words_and_a_chain_that_raises_similarity(describer):
    found = describer.describe(picture())
    assert not found.offline and found.method == "caption (tiny-blip0) + CLIP ranking (tiny-clip0)"
    assert found.caption and found.prompt.startswith(found.caption + ", ")
    ranking = found.trace["ranking"]
    assert list(ranking) == list(KINDS) and all(len(r) == 5 for r in ranking.values())
    for kind, ranked in ranking.items():
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True) and all(phrase in KINDS[kind] for phrase, _ in ranked)
    # The best medium, style and lighting follow the caption, in that order.
    best = [ranking[kind][0][0] for kind in ("medium", "style", "lighting")]
    assert found.prompt.startswith(", ".join([found.caption, *best]))
    assert found.trace["chain"][0][0] == ", ".join([found.caption, *best])
    # The same image, the same prompt.
    assert describer.describe(picture()).prompt == found.prompt
    assert describer.describe(picture((200, 40, 30))).prompt != found.prompt


def test_the_chain_adds_only_flavors_that_raise_the_prompt_s_similarity(tiny_clip):
    # CLIP alone (no caption): the tiny byte-level tokenizer reads 77 characters, so a short start leaves the chain room.
    found = Describer(clip_model=str(tiny_clip)).describe(picture())
    assert found.method == "CLIP ranking (tiny-clip0; no caption model: KEYART_CAPTION_MODEL is not set)" and found.caption == ""
    chain = found.trace["chain"]
    sims = [score for _, score in chain]
    assert len(chain) > 1 and sims == sorted(sims) and len(set(sims)) == len(sims) and found.trace["similarity"] == sims[-1]
    added = [phrase for phrase, _ in chain[1:]]
    assert all(f in FLAVORS for f in added) and found.prompt == ", ".join([chain[0][0], *added])


def test_without_models_the_description_is_offline_and_says_so():
    found = Describer().describe(picture((20, 30, 70), size=(160, 80)))
    assert found.offline and found.method.startswith("offline: pixel statistics") and "KEYART_CAPTION_MODEL" in found.method
    assert "dark, low-key lighting" in found.prompt and "cool blue tones" in found.prompt and "wide shot" in found.prompt
    assert found.trace["pixels"]["brightness"] < 0.3 and found.caption == ""
    bright = Describer().describe(Image.new("RGB", (64, 100), (250, 220, 170)))
    assert "bright, high-key lighting" in bright.prompt and "warm tones" in bright.prompt and "vertical composition" in bright.prompt


def test_a_caption_without_clip_is_kept_with_the_offline_words_labelled(tiny_blip):
    found = Describer(str(tiny_blip)).describe(picture())
    assert found.offline and found.caption and found.prompt.startswith(found.caption)
    assert found.method == "caption (tiny-blip0) + offline pixel words (no CLIP model: KEYART_CLIP_MODEL is not set)"


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidRequest, match="no image at"):
        Describer().describe(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(InvalidRequest, match="is not a PNG, JPEG or WebP"):
        Describer().describe(tmp_path / "notes.png")
    with pytest.raises(ModelNotFound, match="KEYART_CLIP_MODEL=.*no config.json"):
        Describer(clip_model=str(tmp_path))


def test_the_cli_prints_the_prompt_and_with_json_the_trace(tmp_path, tiny_blip, tiny_clip, monkeypatch, capsys):
    path = tmp_path / "still.png"
    picture().save(path)
    monkeypatch.setenv("KEYART_CAPTION_MODEL", str(tiny_blip))
    monkeypatch.setenv("KEYART_CLIP_MODEL", str(tiny_clip))
    assert main(["describe", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and "method: caption (tiny-blip0) + CLIP ranking (tiny-clip0)" in err and "medium: " in err
    assert main(["describe", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prompt"] == out.strip() and data["trace"]["chain"] and data["offline"] is False
    monkeypatch.delenv("KEYART_CLIP_MODEL")
    assert main(["describe", str(path), "--caption-model", str(tmp_path / "nowhere")]) == 2
    assert "KEYART_CAPTION_MODEL=" in capsys.readouterr().err
    assert main(["describe", str(tmp_path / "missing.png")]) == 2


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with RenderQueue(PreviewEngine(), tmp_path_factory.mktemp("describe-queue")) as queue:
        app = create_app(queue)
        with serving(app) as url:
            yield app, f"{url}/sdapi/v1"


def b64(image, *, data_url=False):
    out = io.BytesIO()
    image.save(out, format="PNG")
    text = base64.b64encode(out.getvalue()).decode()
    return f"data:image/png;base64,{text}" if data_url else text


def test_interrogate_answers_a1111_clients(service, describer):
    app, base = service
    # Without models: the offline description, labelled under "keyart".
    offline = httpx.post(f"{base}/interrogate", json={"image": b64(picture()), "model": "clip"}, timeout=30)
    assert offline.status_code == 200, offline.text
    assert offline.json()["caption"] and offline.json()["keyart"]["offline"] is True
    # With the models, as a data URL (what A1111's web UI sends) and with no model named.
    app.state.describer = describer
    try:
        found = httpx.post(f"{base}/interrogate", json={"image": b64(picture(), data_url=True)}, timeout=60).json()
        assert found["caption"] == describer.describe(picture()).prompt and found["keyart"]["method"].startswith("caption (tiny-blip0)")
    finally:
        del app.state.describer
    wrong = httpx.post(f"{base}/interrogate", json={"image": b64(picture()), "model": "deepdanbooru"}, timeout=30)
    assert wrong.status_code == 400 and "use clip" in wrong.json()["error"]["message"] and wrong.json()["error"]["param"] == "model"
    broken = httpx.post(f"{base}/interrogate", json={"image": base64.b64encode(b"not an image").decode()}, timeout=30)
    assert broken.status_code == 400 and broken.json()["error"]["param"] == "image"


def test_the_studio_workflow_describes_through_the_service(tiny_blip, tiny_clip):
    from assistant.workflows import studio
    from assistant.workflows.service import RenderService
    from imagegen.settings import ImageSettings

    service = RenderService(name="preview", settings=ImageSettings(caption_model=str(tiny_blip), clip_model=str(tiny_clip)))
    out = io.BytesIO()
    picture().save(out, format="PNG")
    found = studio.describe(service, out.getvalue())
    assert found["offline"] is False and found["trace"]["ranking"]["medium"] and service.describer() is service.describer()
    assert studio.describe(RenderService(name="preview"), out.getvalue())["offline"] is True
