"""The campaign chain: brief -> strategy -> per-platform copy -> image brief -> prompt -> render -> package.

Offline rules and preview cards by default; the language-model path through the real ChatOpenAI
against the fake server, which shows the parallel branches and counts what a rerun asks again.
"""

import csv
import json
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from assistant.catalog import load_catalog
from assistant.models.offline import OfflineModel
from assistant.models.openai_chat import build_openai_chat
from assistant.platforms import ASPECTS, PLATFORMS, fit, post_text, weighted_length
from assistant.store import Store
from assistant.workflows.service import RenderService
from assistant.workflows import stages
from assistant.workflows.campaign import CampaignError, Tools, brief_from, load, load_brief, new_campaign, run
from assistant.workflows.plan import RenderSettings, Selection, catalog_seed, plan_prompts
from fake_openai import FakeOpenAI, delay, reply_json
from imagegen.png_files import read_png

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_BRIEF = ROOT / "data" / "briefs" / "gullhaven-s01e03.yaml"
ALL = ["instagram", "facebook", "x", "linkedin", "tiktok"]
TINY = {"width": 64, "height": 64, "num_inference_steps": 2}


def tools(folder, model=None, *, home=None, **options):
    home = home or folder.parent / "no-catalog"
    return Tools(folder=folder, model=model or OfflineModel(), slot=RenderService(name="preview"), catalog=load_catalog(), home=home, **options)


def campaign_for(folder, model=None, *, home=None, **brief):
    data = {"season": 1, "episode": 3, "use_words": ["storm", "lighthouse"], "avoid_words": ["murder"]} | brief
    return run(new_campaign(brief_from(data)), tools(folder, model, home=home))


# -- the fake language model ---------------------------------------------------------------------


def kind_of(body):
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if "social media strategist" in system:
        return "strategy"
    if "You write social media posts" in system:
        return "copy:" + re.search(r"Write one (\w+) post", system).group(1).lower()
    if "art director of a TV network's social campaign" in system:
        return "image_brief"
    if "brand safety" in system:
        return "policy"
    return "prompt" if "one social post's image" in user else "meta-prompt"


class Writer:
    """A well-behaved model for every step; records the kind of each request; `bad_copy` poisons one platform's post."""

    def __init__(self, *, bad_copy=None, long_copy=None, wait=0.0):
        self.kinds, self.bad_copy, self.long_copy, self.wait, self.lock = [], bad_copy, long_copy, wait, threading.Lock()

    def __call__(self, body):
        kind = kind_of(body)
        with self.lock:
            self.kinds.append(kind)
        answer = reply_json(self.answer(kind, body))
        return delay(self.wait, answer) if self.wait else answer

    def answer(self, kind, body):
        if kind == "strategy":
            return {"angle": "Mara Quill relights the lamp in the storm", "key_message": "The keeper defies the harbourmaster.", "pillars": ["defiance"],
                    "characters": ["Mara Quill"], "places": ["the Gullhaven Lighthouse"], "hashtags": ["#Gullhaven", "Mara Quill", "#StormNight"]}
        if kind.startswith("copy:"):
            platform = kind.split(":")[1]
            text = f"A storm hits the lighthouse on {platform}. Stream it tonight."
            if platform == self.long_copy:
                text = "The keeper climbs the tower in the storm. " * 8 + "Murder most foul at the lighthouse. Stream it tonight."
            return {"text": ("Gore on the rocks. " + text) if platform == self.bad_copy else text, "hashtags": ["#Gullhaven", "#MaraQuill"]}
        if kind == "image_brief":
            return {"scene": {"subject": "Mara Quill at the great lamp", "characters": ["Mara Quill"], "setting": "the lantern room"}, "composition": "as asked"}
        if kind == "policy":
            return {"allowed": True, "reason": "family friendly"}
        styles = re.findall(r"^- ([\w-]+)", body["messages"][0]["content"], re.MULTILINE)
        subject = "Mara Quill relighting the great lamp, social frame" if kind == "prompt" else "Mara Quill in the lantern room"
        return {"brief": {"subject": "Mara Quill"}, "prompts": [{"style": s, "prompt": subject, "negative_prompt": "text"} for s in styles]}


@pytest.fixture
def writer():
    w = Writer()
    with FakeOpenAI(default=w) as server:
        yield w, build_openai_chat("fake-model", base_url=server.base_url, api_key="k"), server


# -- offline defaults ----------------------------------------------------------------------------


def test_offline_sample_brief_makes_a_zip_of_posts_and_images_for_every_platform(tmp_path):
    campaign = run(new_campaign(load_brief(SAMPLE_BRIEF)), tools(tmp_path / "out"))
    out = tmp_path / "out"
    with zipfile.ZipFile(out / "campaign.zip") as z:
        names = set(z.namelist())
    assert names == {"posts.md", "posts.csv", "campaign.json", *(f"images/{p}.png" for p in ALL)}
    rows = list(csv.DictReader((out / "posts.csv").read_text(encoding="utf-8").splitlines()))
    assert [r["platform"] for r in rows] == ["Instagram", "Facebook", "X", "LinkedIn", "TikTok"] and {r["status"] for r in rows} == {"ready"}
    page = (out / "posts.md").read_text(encoding="utf-8")
    assert "Gullhaven S01E03: “The Keeper's Lamp”" in page and "offline rules (no language model)" in page and "not SDXL renders" in page
    assert campaign.llm == "offline" and campaign.steps["strategy"].trace.model == "offline"
    # The angle names the episode's characters and places.
    strategy = campaign.output("strategy")
    assert "Mara Quill" in strategy.angle and "Gullhaven Lighthouse" in strategy.angle
    assert strategy.hashtags[:2] == ["#Gullhaven", "#MaraQuill"] and "#CorranIsland" in strategy.hashtags
    # Each PNG carries its lineage: the campaign, the platform, the brief.
    lineage = read_png(out / "images" / "tiktok.png").lineage
    assert lineage["lineage"]["campaign"] == campaign.id and lineage["lineage"]["platform"] == "tiktok"
    assert lineage["lineage"]["brief"]["call_to_action"] == "Stream it tonight" and lineage["preview"] is True
    assert json.loads((out / "campaign.json").read_text())["package"]["ready"] == ["Instagram", "Facebook", "X", "LinkedIn", "TikTok"]


def test_every_post_keeps_to_its_platform_and_renders_at_its_aspect(tmp_path):
    campaign = campaign_for(tmp_path / "out")
    from PIL import Image

    for name in ALL:
        where, copy = PLATFORMS[name], campaign.output("copy", name)
        assert where.length(post_text(copy.text, copy.hashtags)) <= where.limit and 1 <= len(copy.hashtags) <= where.hashtags
        assert copy.text.endswith("Stream it tonight.") or copy.text.endswith("Watch now.")
        image = campaign.output("image", name)
        with Image.open(tmp_path / "out" / image.path) as im:
            assert im.size == (where.aspect.width, where.aspect.height) == (image.width, image.height)
        assert where.aspect.composition.split(",")[0] in campaign.output("prompt", name).prompt
    assert {(a.ratio, a.width, a.height) for a in ASPECTS.values()} == {("1:1", 1024, 1024), ("4:5", 896, 1152), ("9:16", 768, 1344), ("16:9", 1344, 768)}
    assert [(p.limit, p.aspect.ratio) for p in PLATFORMS.values()] == [(2200, "4:5"), (500, "1:1"), (280, "16:9"), (3000, "1:1"), (2200, "9:16")]


def test_the_refiner_setting_reaches_the_render_and_overrides_keep_the_platform_size(tmp_path):
    data = {"season": 1, "episode": 3, "platforms": ["x"]}
    campaign = run(new_campaign(brief_from(data)), tools(tmp_path / "out", refiner="off", overrides=TINY))
    made = read_png(tmp_path / "out" / campaign.output("image", "x").path).lineage["request"]
    assert made["refiner"] == "off" and made["num_inference_steps"] == 2
    assert (made["width"], made["height"]) == (PLATFORMS["x"].aspect.width, PLATFORMS["x"].aspect.height)


def test_fit_trims_at_a_word_boundary_and_says_so():
    x = PLATFORMS["x"]
    text, tags, note = fit("the keeper climbs " * 30, ["#A", "#B", "#C"], x)
    assert x.length(post_text(text, tags)) <= 280 and text.endswith("climbs…") and tags == ["#A", "#B"]
    assert "dropped 1 hashtag" in note and "trimmed the copy at a word boundary" in note
    assert fit("short", ["#A"], x) == ("short", ["#A"], None)
    text, tags, _ = fit("the keeper climbs " * 30 + "Watch now!", ["#A"], x, keep="Watch now!")
    assert text.endswith("… Watch now!") and x.length(post_text(text, tags)) <= 280
    assert weighted_length("ab日本") == 6  # X weighs CJK characters as two


def test_use_words_are_in_every_post_and_avoid_words_in_none(tmp_path):
    campaign = campaign_for(tmp_path / "out", use_words=["storm", "secrets"], avoid_words=["padlock", "Renn"])
    for name in ALL:
        copy = campaign.output("copy", name)
        published = post_text(copy.text, copy.hashtags).lower()
        assert "storm" in published and "secrets" in published
        assert "padlock" not in published and "renn" not in published  # #TobiasRenn is left out too
    assert "Renn" not in " ".join(campaign.output("strategy").hashtags)


# -- the brief -----------------------------------------------------------------------------------


def test_a_missing_key_takes_its_default(tmp_path):
    path = tmp_path / "brief.yaml"
    path.write_text("# only comments\n", encoding="utf-8")
    brief = load_brief(path)
    assert brief.platforms == ALL and brief.season == 1 and brief.episode is None and brief.style == "cinematic"
    assert brief.call_to_action and brief.use_words == [] and brief.avoid_words == []
    path.write_text("episode: 2\nplatforms: x, TikTok\nuse_words: storm, lantern\ngoal:\n", encoding="utf-8")
    brief = load_brief(path)
    assert brief.platforms == ["x", "tiktok"] and brief.use_words == ["storm", "lantern"] and brief.goal == brief_from({}).goal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("show: Gullhaven\nhashtags: [a]\n", "unknown key(s) hashtags; a brief takes show, season, episode"),
        ("platforms: [instagram, myspace]\n", "unknown platform 'myspace'; choose from instagram, facebook, x, linkedin, tiktok"),
        ("platforms: []\n", "name at least one platform"),
        ("style: oil-painting\n", "oil-painting"),
        ("use_words: [storm]\navoid_words: [Storm]\n", "storm cannot be both in use_words and in avoid_words"),
        ("season: [1\n", "is not valid YAML at line"),
        ("- a list\n", "a brief is a YAML mapping"),
    ],
)
def test_a_bad_brief_says_what_to_fix(tmp_path, text, message):
    path = tmp_path / "brief.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CampaignError, match=re.escape(message)):
        load_brief(path)


# -- edit and rerun ------------------------------------------------------------------------------


def test_an_edited_x_post_reruns_from_image_brief_and_nothing_before_it(tmp_path, writer):
    w, model, server = writer
    folder = tmp_path / "out"
    run(new_campaign(brief_from({"season": 1, "episode": 3})), tools(folder, model))
    first = list(w.kinds)
    assert first.count("strategy") == 1 and sorted(k for k in first if k.startswith("copy:")) == sorted(f"copy:{PLATFORMS[p].title.lower()}" for p in ALL)
    assert first.count("image_brief") == 5 and first.count("prompt") == 5 and first.count("meta-prompt") == 1
    # 1. Edit the X post in campaign.json.
    state = json.loads((folder / "campaign.json").read_text())
    state["posts"]["x"]["steps"]["copy"]["output"]["text"] = "Edited by hand: the lamp burns in the storm. Stream it tonight."
    (folder / "campaign.json").write_text(json.dumps(state), encoding="utf-8")
    # 2. Rerun from the image brief for X: only X's image brief and prompt go to the model.
    w.kinds.clear()
    campaign = run(load(folder), tools(folder, model), from_step="image_brief", platform="x")
    asked = [k for k in w.kinds if k != "policy"]
    assert asked == ["image_brief", "prompt"] and w.kinds.count("policy") == 1  # the edited copy is judged before the render
    sent = next(r.body for r in server.chat_requests[::-1] if kind_of(r.body) == "image_brief")
    assert "Edited by hand" in sent["messages"][-1]["content"]
    assert campaign.output("copy", "x").text.startswith("Edited by hand") and campaign.posts["x"].steps["copy"].runs == 1
    assert campaign.steps["strategy"].runs == campaign.steps["grounding"].runs == 1
    assert {p: campaign.posts[p].steps["image_brief"].runs for p in ALL} == {"instagram": 1, "facebook": 1, "x": 2, "linkedin": 1, "tiktok": 1}
    assert campaign.posts["x"].steps["image"].runs == 2 and "Edited by hand" in (folder / "posts.md").read_text(encoding="utf-8")


def test_a_rerun_without_a_step_makes_only_what_is_missing_and_an_edited_input_is_used(tmp_path):
    folder = tmp_path / "out"
    campaign_for(folder)
    state = json.loads((folder / "campaign.json").read_text())
    state["posts"]["tiktok"]["steps"]["image"]["output"] = None  # as if the run had stopped before this render
    state["posts"]["instagram"]["steps"]["prompt"]["input"]["grounding"]["prompt"] = "Wren Abernethy on the harbour wall, gulls, dawn"
    (folder / "campaign.json").write_text(json.dumps(state), encoding="utf-8")
    campaign = run(load(folder), tools(folder))
    assert campaign.posts["tiktok"].steps["image"].runs == 2 and campaign.posts["instagram"].steps["prompt"].runs == 1
    campaign = run(load(folder), tools(folder), from_step="prompt", platform="instagram")
    record = campaign.posts["instagram"].steps["prompt"]
    assert record.edited_input and record.output["prompt"].startswith("Wren Abernethy on the harbour wall")
    assert campaign.posts["facebook"].steps["prompt"].runs == 1 and campaign.posts["instagram"].steps["image"].runs == 2


@pytest.mark.parametrize(
    ("from_step", "platform", "message"),
    [("strategy", "x", "strategy is shared by every platform"), ("layout", None, "unknown step 'layout'"), ("copy", "myspace", "unknown platform")],
)
def test_a_rerun_that_cannot_be_done_says_why(tmp_path, from_step, platform, message):
    folder = tmp_path / "out"
    campaign = campaign_for(folder, platforms=["x", "tiktok"])
    with pytest.raises(CampaignError, match=message):
        run(campaign, tools(folder), from_step=from_step, platform=platform)
    with pytest.raises(CampaignError, match="the brief has no linkedin post"):
        run(campaign, tools(folder), from_step="copy", platform="linkedin")


def test_model_copy_over_the_limit_is_repaired_once_then_trimmed_and_avoided_words_dropped(tmp_path):
    w = Writer(long_copy="x")
    with FakeOpenAI(default=w) as server:
        model = build_openai_chat("fake-model", base_url=server.base_url, api_key="k")
        brief = {"season": 1, "episode": 3, "platforms": ["x", "tiktok"], "avoid_words": ["murder"], "goal": "tune in {shape} {0}", "call_to_action": "Stream it tonight"}
        campaign = run(new_campaign(brief_from(brief)), tools(tmp_path / "out", model))
        strategy_request = next(r.body["messages"] for r in server.chat_requests if kind_of(r.body) == "strategy")
    trace = campaign.posts["x"].steps["copy"].trace
    assert w.kinds.count("copy:x") == 2 and trace.repairs == 1 and "X allows 280" in trace.messages[1][-1]["content"]
    copy = campaign.output("copy", "x")
    assert PLATFORMS["x"].length(post_text(copy.text, copy.hashtags)) <= 280 and "murder" not in copy.text.lower()
    assert copy.text.endswith("… Stream it tonight.")  # the call to action survives the cut
    assert any("avoided word(s) murder" in n for n in trace.warnings) and any("trimmed the copy at a word boundary" in n for n in trace.warnings)
    assert campaign.posts["tiktok"].steps["copy"].trace.repairs == 0 and campaign.posts["x"].blocked is None
    # The brief travels as JSON data: its braces are harmless and it never enters the system message.
    assert "tune in {shape} {0}" in strategy_request[1]["content"] and "tune in" not in strategy_request[0]["content"]


# -- parallel branches ---------------------------------------------------------------------------


def test_platforms_and_the_grounding_run_side_by_side(tmp_path):
    wait = 0.6  # each answer's delay: long enough that threads slow to start on a loaded machine still arrive first
    w = Writer(wait=wait)
    with FakeOpenAI(default=w) as server:
        model = build_openai_chat("fake-model", base_url=server.base_url, api_key="k")
        start = time.monotonic()
        run(new_campaign(brief_from({"season": 1, "episode": 3})), tools(tmp_path / "out", model))
        took = time.monotonic() - start
        arrivals = {}
        for r in server.chat_requests:
            arrivals.setdefault(kind_of(r.body).split(":")[0], []).append(r.time)
    # The five copy requests all arrive before the first of them is answered, and the
    # catalog's meta-prompting goes out beside the strategy.
    assert len(arrivals["copy"]) == 5 and max(arrivals["copy"]) - min(arrivals["copy"]) < wait - 0.1
    assert abs(arrivals["meta-prompt"][0] - arrivals["strategy"][0]) < wait - 0.1
    sequential = wait * len(server.chat_requests)
    assert len(server.chat_requests) >= 22 and took < sequential / 2, (took, sequential)


# -- brand safety --------------------------------------------------------------------------------


def test_a_blocked_post_is_marked_with_its_reason_and_the_rest_completes(tmp_path):
    w = Writer(bad_copy="linkedin")
    with FakeOpenAI(default=w) as server:
        model = build_openai_chat("fake-model", base_url=server.base_url, api_key="k")
        campaign = run(new_campaign(brief_from({"season": 1, "episode": 3})), tools(tmp_path / "out", model))
    blocked = campaign.posts["linkedin"].blocked
    assert blocked.step == "copy" and blocked.what == "LinkedIn copy" and "contains 'gore'" in blocked.reason and "blocklist" in blocked.reason
    assert campaign.posts["linkedin"].steps["image_brief"].runs == 0 and w.kinds.count("image_brief") == 4
    assert campaign.package["blocked"] == {"LinkedIn": blocked.reason} and len(campaign.package["ready"]) == 4
    with zipfile.ZipFile(tmp_path / "out" / "campaign.zip") as z:
        assert "images/linkedin.png" not in z.namelist() and "images/x.png" in z.namelist()
    page = (tmp_path / "out" / "posts.md").read_text(encoding="utf-8")
    assert "## LinkedIn (1:1, 1024x1024): blocked" in page and "Gore on the rocks" not in page  # blocked text is not exported


def test_a_hand_edit_is_checked_again_before_export(tmp_path):
    folder = tmp_path / "out"
    campaign_for(folder)
    state = json.loads((folder / "campaign.json").read_text())
    state["posts"]["facebook"]["steps"]["copy"]["output"]["text"] = "Nothing but gore tonight. Stream it tonight."
    (folder / "campaign.json").write_text(json.dumps(state), encoding="utf-8")
    campaign = run(load(folder), tools(folder))
    assert campaign.posts["facebook"].blocked.step == "export" and not (folder / "images" / "facebook.png").exists()
    assert set(campaign.package["ready"]) == {"Instagram", "X", "LinkedIn", "TikTok"}
    # Fixed and rerun from the image: judged again, rendered, back in the package.
    state = json.loads((folder / "campaign.json").read_text())
    state["posts"]["facebook"]["steps"]["copy"]["output"]["text"] = "A storm at the lighthouse. Stream it tonight."
    (folder / "campaign.json").write_text(json.dumps(state), encoding="utf-8")
    campaign = run(load(folder), tools(folder), from_step="image", platform="facebook")
    assert campaign.posts["facebook"].blocked is None and "Facebook" in campaign.package["ready"]


# -- grounding -----------------------------------------------------------------------------------


def test_images_start_from_the_catalog_prompt_and_seed_when_dataprep_made_them(tmp_path):
    home = tmp_path / "home"
    items = plan_prompts(load_catalog(), OfflineModel(), Selection(season=1, episodes=(3,), styles=("watercolor",)))
    stages.run_stage(items, Store(home), OfflineModel(), RenderService(name="preview"), RenderSettings(overrides=TINY))
    store = Store(home)
    entry = store.entry("Gullhaven", 1, 3, "watercolor")
    catalog_prompt = store.prompt(entry.prompt_key)["prompts"][0]["prompt"]
    campaign = campaign_for(tmp_path / "out", home=home, style="watercolor")
    grounding = campaign.output("grounding")
    assert grounding.source == "catalog" and grounding.prompt_key == entry.prompt_key and grounding.prompt == catalog_prompt
    assert grounding.seed == store.image(entry.image_key)["seed"] and grounding.image and campaign.steps["grounding"].trace is None
    subject = catalog_prompt.split(",")[0]
    for name in ALL:
        assert campaign.output("prompt", name).prompt.startswith(subject) and campaign.output("image", name).seed == grounding.seed
    assert "the catalog's art (prompt" in (tmp_path / "out" / "posts.md").read_text(encoding="utf-8")


def test_without_catalog_art_the_episode_is_meta_prompted_and_a_season_self_asked(tmp_path):
    campaign = campaign_for(tmp_path / "ep")
    grounding = campaign.output("grounding")
    assert grounding.source == "meta-prompt" and grounding.seed == catalog_seed("Gullhaven", 1, 3, "cinematic") and grounding.prompt_key is None
    season = run(new_campaign(brief_from({"season": 2, "platforms": ["x"]})), tools(tmp_path / "season"))
    assert season.output("grounding").source == "self-ask" and season.output("grounding").seed == catalog_seed("Gullhaven", 2, 0, "cinematic")
    assert "Gullhaven season 2: “The Drowned Chapel”" in (tmp_path / "season" / "posts.md").read_text(encoding="utf-8")


# -- the command line ----------------------------------------------------------------------------


def test_cli_makes_the_package_then_reruns_one_platform(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.delenv("KEYART_LLM", raising=False)
    out, home = tmp_path / "out", tmp_path / "home"
    assert main(["campaign", "--brief", str(SAMPLE_BRIEF), "--output", str(out), "--engine", "preview", "--home", str(home)]) == 0
    printed = capsys.readouterr().out
    assert "written by offline" in printed and "X          ready       images/x.png (1344x768)" in printed and "campaign.zip" in printed
    assert main(["campaign", "--output", str(out), "--from-step", "copy", "--platform", "tiktok", "--home", str(home)]) == 0
    campaign = load(out)
    assert campaign.posts["tiktok"].steps["copy"].runs == 2 and campaign.posts["x"].steps["copy"].runs == 1


def test_cli_exits_1_and_says_so_when_a_post_is_held_back(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    out, home = tmp_path / "out", tmp_path / "home"
    with FakeOpenAI(default=Writer(bad_copy="linkedin")) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("KEYART_LLM_MODEL", "fake-model")
        code = main(["campaign", "--brief", str(SAMPLE_BRIEF), "--output", str(out), "--engine", "preview", "--home", str(home), "--llm", "openai"])
    captured = capsys.readouterr()
    assert code == 1 and "LinkedIn   blocked" in captured.out
    assert captured.err.strip().endswith("the others are listed above with why") and "partial: " in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("brief", "args", "message"),
    [
        ("show: Gullhaven\ncolour: red\n", [], "unknown key(s) colour"),
        ("platforms: [friendster]\n", [], "unknown platform 'friendster'"),
        ("episode: 42\n", [], "season 1 has episodes 1-7"),
        ("show: Harbour Lights\n", [], "the brief is for 'Harbour Lights'"),
        ("episode: 3\n", ["--platform", "x"], "give --from-step too"),
    ],
)
def test_cli_bad_brief_exits_2_with_one_line(tmp_path, brief, args, message):
    path = tmp_path / "brief.yaml"
    path.write_text(brief, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "campaign", "--brief", str(path), "--output", str(tmp_path / "out"), "--home", str(tmp_path / "home"), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and done.stdout == ""


def test_a_motion_tiktok_post_packages_its_video(tmp_path, monkeypatch):
    import av

    from assistant.workflows import campaign_steps

    assert (campaign_steps.MOTION_FRAMES, campaign_steps.MOTION_FPS) == (24, 12)  # a two-second loop; rendered here at 6 frames
    monkeypatch.setattr(campaign_steps, "MOTION_FRAMES", 6)
    home = tmp_path / "home"
    items = plan_prompts(load_catalog(), OfflineModel(), Selection(season=1, episodes=(3,), styles=("cinematic",)))
    stages.run_stage(items, Store(home), OfflineModel(), RenderService(name="preview"), RenderSettings(overrides=TINY))
    out = tmp_path / "out"
    campaign = campaign_for(out, home=home, platforms=["tiktok", "x"], motion=["tiktok"])
    image = campaign.output("image", "tiktok")
    assert image.video == "motion/tiktok/animation.mp4" and image.gif == "motion/tiktok/animation.gif" and campaign.output("image", "x").video is None
    with av.open(str(out / image.video)) as video:
        stream = video.streams.video[0]
        assert (stream.width, stream.height) == (768, 1344) and float(stream.average_rate) == 12 and len(list(video.decode(video=0))) == 6
    sidecar = json.loads((out / "motion" / "tiktok" / "animation.json").read_text(encoding="utf-8"))
    first = Store(home).art("Gullhaven", 1, 3, "cinematic").image["path"]
    assert sidecar["request"]["init_image"] == str((home / first).absolute()) and sidecar["request"]["prompts"] == campaign.output("prompt", "tiktok").prompt
    assert any("a motion post: 6 frames at 12 fps from the catalog art" in n for n in campaign.record("image", "tiktok").notes)
    with zipfile.ZipFile(out / "campaign.zip") as z:
        assert {"motion/tiktok/animation.mp4", "motion/tiktok/animation.gif", "images/tiktok.png"} <= set(z.namelist())
    rows = {r["platform"]: r for r in csv.DictReader((out / "posts.csv").read_text(encoding="utf-8").splitlines())}
    assert rows["TikTok"]["video"] == "motion/tiktok/animation.mp4" and rows["X"]["video"] == ""
    assert "Motion post: [motion/tiktok/animation.mp4]" in (out / "posts.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("brief", "message"),
    [({"motion": ["x"]}, "motion posts are for tiktok and instagram"), ({"platforms": ["x"], "motion": ["tiktok"]}, "which the brief's platforms leave out")],
)
def test_a_motion_post_the_brief_cannot_have_is_refused(brief, message):
    with pytest.raises(CampaignError, match=message):
        brief_from(brief)
