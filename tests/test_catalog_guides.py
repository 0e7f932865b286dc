"""Catalog images as guides: "the same harbour as in S01E03" in a chat turn or a campaign brief renders
with that catalog image as the IP-Adapter reference (tiny random-init adapter) or, without one, as the
img2img start cropped to the render's aspect; the lineage records which image and how; an image the
catalog does not have yet is said before any work."""

import json
from collections import deque

import numpy as np
import pytest
from PIL import Image

import dataprep
from assistant.catalog import load_catalog
from assistant.models.offline import OfflineModel
from assistant.models.openai_chat import build_openai_chat
from assistant.policy import POLICY
from assistant.prompting.intents import parse
from assistant.references import CatalogIndex
from assistant.store import Store
from assistant.workflows.campaign import CampaignError, Tools, brief_from, new_campaign, run
from assistant.workflows.illustrator import Illustrator
from assistant.workflows.plan import RenderSettings
from assistant.workflows.service import RenderService
from fake_openai import FakeOpenAI, reply_json, tool_call
from imagegen import styles
from imagegen.engines.preview import UNDERLAY
from imagegen.hashes import file_sha256
from imagegen.png_files import read_png
from imagegen.settings import ImageSettings

CATALOG = load_catalog()
TINY = RenderSettings(quality="draft", refiner="off", overrides={"width": 64, "height": 64, "num_inference_steps": 3})


@pytest.fixture(scope="module")
def index():
    return CatalogIndex(CATALOG)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A catalog home with season 1's cinematic art (preview cards: each a different picture of its own)."""
    home = tmp_path_factory.mktemp("guided-home")
    assert dataprep.main(["run", "--home", str(home), "--season", "1", "--styles", "cinematic", "--engine", "preview"]) == 0
    return home


def catalog_file(home, season, episode):
    store = Store(home, create=False)
    try:
        art = store.art(CATALOG.show, season, episode, "cinematic")
        return (home / art.image["path"]).resolve()
    finally:
        store.close()


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


# -- reading the words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "subject", "span"),
    [
        ("draw the same harbour as in S01E03 at night", "S01E03", "harbour", "the same harbour as in S01E03"),
        ("keep Mara as in the season 1 poster", "season 1", "Mara", "keep Mara as in the season 1 poster"),
        ("a storm like the S01E03 image", "S01E03", "", "like the S01E03 image"),
        ("draw a gull like in season 1 episode 2's still", "S01E02", "", "like in season 1 episode 2's still"),
        ("the lighthouse based on the poster of season 1", "season 1", "", "based on the poster of season 1"),
    ],
)
def test_guide_words_name_the_catalog_image_and_what_to_keep(index, text, code, subject, span):
    [found] = index.find_guides(text)
    assert (found.code, found.subject, text[found.start : found.end]) == (code, subject, span)


@pytest.mark.parametrize("text", ["draw S01E03", "what happens in S01E03?", "draw the harbour from S01E03", "draw Mara Quill"])
def test_a_scene_named_is_not_a_guide(index, text):
    assert index.find_guides(text) == []


@pytest.mark.parametrize(
    ("text", "has_scene", "labels"),
    [
        ("draw the same harbour as in S01E03 at night", False, ["draw('the harbour at night', guide=the same harbour as in S01E03)"]),
        ("keep Mara as in the season 1 poster", False, ["draw(Mara Quill, guide=keep Mara as in the season 1 poster)"]),
        ("keep Mara as in the season 1 poster", True, ["refine(guide=keep Mara as in the season 1 poster)"]),
        ("darker, and like the S01E03 image", True, ["refine(guide=like the S01E03 image)", "refine(darker)"]),
        ("draw S01E04 as a watercolor, like the season 1 poster", True, ["draw(S01E04, style=watercolor, guide=like the season 1 poster)"]),
        ("drop the reference", True, ["refine(guide=none)"]),
    ],
)
def test_the_offline_rules_read_a_guide_as_part_of_a_drawing_or_as_a_refinement(index, text, has_scene, labels):
    assert [i.label() for i in parse(text, index, styles.names(), has_scene=has_scene)] == labels


# -- chat ------------------------------------------------------------------------------------------


def test_without_an_adapter_a_chat_turn_starts_from_the_catalog_image_cropped_to_its_size(home):
    chat = Illustrator(CATALOG, home=home, slot=RenderService(name="preview"))
    cid = chat.start()
    still = catalog_file(home, 1, 3)
    guided = chat.turn(cid, "draw the same harbour as in S01E03 at night")
    guide = guided.state.guide
    assert guided.rendered and (guide.code, guide.mode, guide.weight, guide.image, guide.sha256) == ("S01E03", "init", 0.75, str(still), file_sha256(still))
    assert "keeping the harbour from S01E03" in guided.text and "img2img start at strength 0.75" in guided.text and "KEYART_IP_ADAPTER" in guided.text
    # The still is 1216x832, the chat image square: the start is its centre crop at 1024x1024, written once into the home.
    start = guided.request.init_image
    assert start.startswith(str(home / "guides")) and Image.open(start).size == (1024, 1024) and guided.request.strength == 0.75
    assert guided.request.prompt.startswith("the harbour at night") or "harbour" in guided.request.prompt
    found = read_png(guided.image).lineage
    assert found["lineage"]["guide"]["image"] == str(still) and found["lineage"]["state"]["guide"]["code"] == "S01E03"
    assert found["inputs"]["init_image"]["sha256"] == file_sha256(start)
    # The preview draws its card over the start: in the art, the guided card is the plain card blended with the crop.
    plain = chat.turn(chat.start(), "draw the harbour at night")
    assert plain.request.init_image is None and plain.state.seed == guided.state.seed
    art = slice(70, 190)  # rows below the banner, above every line of the card's text
    blend = (1 - UNDERLAY) * pixels(plain.image)[art] + UNDERLAY * pixels(start)[art]
    assert np.abs(pixels(guided.image)[art] - blend).mean() < 2 < np.abs(pixels(guided.image)[art] - pixels(plain.image)[art]).mean()
    # Refinements keep the guide; another catalog image replaces it; "drop the reference" removes it; undo brings it back.
    darker = chat.turn(cid, "darker")
    assert darker.state.guide == guide and darker.request.init_image == start
    poster = chat.turn(cid, "keep it as in the season 1 poster")
    assert poster.state.guide.code == "season 1" and poster.state.guide.image == str(catalog_file(home, 1, 0)) and poster.changes == ["guide: season 1"]
    dropped = chat.turn(cid, "drop the reference")
    assert dropped.state.guide is None and dropped.request.init_image is None and "No longer after season 1" in dropped.text
    undone = chat.turn(cid, "undo")
    assert undone.state.guide.code == "season 1" and undone.image == poster.image


def test_with_an_ip_adapter_a_chat_turn_takes_the_catalog_image_as_its_reference(home, tiny_pipes, tiny_ip_adapter, tmp_path):
    from imagegen.engines.sdxl import SDXLEngine

    base, refiner = tiny_pipes
    engine = SDXLEngine(base, refiner, model_name="tiny-sdxl-base", ip_adapter=tiny_ip_adapter)
    chat = Illustrator(CATALOG, home=home, slot=RenderService(engine), settings=TINY)
    guided = chat.turn(chat.start(), "draw the same harbour as in S01E03 at night")
    still = catalog_file(home, 1, 3)
    assert guided.state.guide.mode == "reference" and "IP-Adapter reference at scale 0.6" in guided.text
    assert (guided.request.reference, guided.request.reference_scale, guided.request.init_image) == (str(still), 0.6, None)
    found = read_png(guided.image).lineage
    assert found["reference"] == {"adapter": "ip-adapter_tiny", "scale": 0.6}
    assert found["inputs"]["reference"]["sha256"] == file_sha256(still) == found["lineage"]["guide"]["sha256"]
    # The same words and seed without the guide: another image.
    plain = chat.turn(chat.start(), "draw the harbour at night")
    assert plain.state.seed == guided.state.seed and plain.request.reference is None
    assert np.abs(pixels(guided.image) - pixels(plain.image)).mean() > 0.3


def test_a_model_names_the_guide_in_its_tool_call(home):
    script = deque([
        tool_call("draw", {"description": "the harbour at night", "guide": "S01E03"}),
        tool_call("refine", {"change": "guide", "value": "Mara Quill"}),  # a character, not a catalog image
    ])  # fmt: skip

    def answer(body):
        if "tools" in body:
            return script.popleft()
        if body["messages"][0]["content"] == POLICY:
            return reply_json({"allowed": True, "reason": "fine"})
        return reply_json({"brief": {"subject": "a harbour at night"}, "prompts": [{"style": s, "prompt": f"a harbour at night, {s}"} for s in styles.names()]})

    with FakeOpenAI(default=answer) as fake:
        model = build_openai_chat(base_url=fake.base_url, api_key="k", model="fake-model")
        chat = Illustrator(CATALOG, model, home=home, slot=RenderService(name="preview"))
        cid = chat.start()
        drawn = chat.turn(cid, "paint the harbour at night, the same harbour as in the third episode")
        assert drawn.intents[0].guide == "S01E03" and drawn.state.guide.image == str(catalog_file(home, 1, 3))
        sent = fake.chat_requests[0].body
        draw_tool = next(t for t in sent["tools"] if t["function"]["name"] == "draw")
        assert "guide" in draw_tool["function"]["parameters"]["properties"] and "the same harbour as in S01E03" in sent["messages"][0]["content"]
        wrong = chat.turn(cid, "keep Mara like before")
        assert not wrong.rendered and "names no catalog image" in wrong.text and wrong.state.guide.code == "S01E03"


def test_a_catalog_image_not_rendered_yet_is_said_and_nothing_is_drawn(home):
    chat = Illustrator(CATALOG, home=home, slot=RenderService(name="preview"))
    cid = chat.start()
    missing = chat.turn(cid, "draw the harbour as in S02E01")
    assert not missing.rendered and not missing.state.drawn
    assert 'S02E01 "The Bell in the Fog" has no rendered still' in missing.text and "dataprep.py run --season 2 --episodes 1" in missing.text


# -- campaigns -------------------------------------------------------------------------------------


def campaign(folder, home, slot, **brief):
    data = {"season": 1, "episode": 3, "platforms": ["tiktok", "x"]} | brief
    tools = Tools(folder=folder, model=OfflineModel(), slot=slot, catalog=CATALOG, home=home)
    return run(new_campaign(brief_from(data)), tools)


def test_a_campaign_post_keeps_the_brief_s_catalog_image(home, tmp_path):
    poster = catalog_file(home, 1, 0)
    # Without an adapter: the poster is each post's img2img start, cropped to the platform's aspect.
    made = campaign(tmp_path / "init", home, RenderService(name="preview"), reference="keep Mara as in the season 1 poster")
    for platform, size in (("tiktok", (768, 1344)), ("x", (1344, 768))):
        record = made.record("image", platform)
        assert record.input["guide"]["image"] == str(poster) and any("keeping Mara as in season 1" in n for n in record.notes)
        found = read_png(tmp_path / "init" / made.output("image", platform).path).lineage
        assert found["lineage"]["guide"]["mode"] == "init" and found["lineage"]["guide"]["code"] == "season 1"
        start = found["request"]["init_image"]
        assert start.startswith(str(home / "guides")) and Image.open(start).size == size
    # With an adapter configured: the poster is the reference, recorded in the image's lineage.
    adapter = tmp_path / "ip-adapter.safetensors"
    adapter.write_bytes(b"")  # the preview records a reference; it loads no adapter
    slot = RenderService(name="preview", settings=ImageSettings(ip_adapter=str(adapter)))
    referenced = campaign(tmp_path / "ref", home, slot, platforms=["x"], reference="the same harbour as in S01E03")
    found = read_png(tmp_path / "ref" / referenced.output("image", "x").path).lineage
    assert found["request"]["reference"] == str(catalog_file(home, 1, 3)) and "init_image" not in found["request"]
    assert found["lineage"]["guide"]["mode"] == "reference" and found["lineage"]["guide"]["subject"] == "harbour"
    assert json.loads((tmp_path / "ref" / "campaign.json").read_text(encoding="utf-8"))["brief"]["reference"] == "the same harbour as in S01E03"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("the same harbour as in S02E01", 'the brief\'s reference: S02E01 "The Bell in the Fog" has no rendered still'),
        ("keep Mara Quill", "the brief's reference: 'keep Mara Quill' names no catalog image"),
        ("like S01E42", "the brief's reference: Gullhaven has no episode 42 in season 1"),
    ],
)
def test_a_brief_reference_that_cannot_be_had_fails_before_any_work(home, tmp_path, reference, message):
    with pytest.raises(CampaignError, match=message):
        campaign(tmp_path / "out", home, RenderService(name="preview"), reference=reference)
    assert not (tmp_path / "out" / "campaign.json").exists()
