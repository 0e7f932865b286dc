"""The dashboard's Campaign and Chat tabs through Streamlit's AppTest: offline model, preview cards, a temporary home."""

import io
import json
import zipfile
from pathlib import Path

import pytest
import streamlit as st
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from assistant.conversations import Conversations

DASHBOARD = str(Path(__file__).resolve().parents[1] / "dashboard.py")
TITLES = ["Instagram", "Facebook", "X", "LinkedIn", "TikTok"]
PREVIEW = "preview card, not an SDXL render"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home for each test, and no resource cached by an earlier one (st.cache_resource lives as long as the process)."""
    folder = tmp_path / "home"
    monkeypatch.setenv("KEYART_HOME", str(folder))
    monkeypatch.delenv("KEYART_LLM", raising=False)
    st.cache_resource.clear()
    yield folder
    st.cache_resource.clear()


@pytest.fixture
def downloads(monkeypatch):
    """What the page hands to download buttons, by file name (AppTest keeps media in memory only during a run)."""
    given = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        if filename:
            given[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    deferred = MediaFileManager.add_deferred

    def keep_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            given[file_name] = data_callable()  # what a click would download (the data is read on click)
        return deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", keep_deferred)
    return given


def app():
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    return ran(at)


def ran(at):
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tab(at, name):
    return next(t for t in at.tabs if t.label == name)


def create(at, **fields):
    """Fill the brief (season 1 episode 3 unless told) and press Create campaign."""
    at.selectbox(key="campaign_season").set_value(fields.pop("season", 1))
    at.selectbox(key="campaign_episode").set_value(fields.pop("episode", 3))
    for key, value in fields.items():
        (at.multiselect if key in ("platforms", "motion") else at.text_input)(key=f"campaign_{key}").set_value(value)
    next(b for b in at.button if b.label == "Create campaign").click()
    return ran(at)


def only_campaign(home):
    [folder] = (home / "campaigns").iterdir()
    return folder, json.loads((folder / "campaign.json").read_text(encoding="utf-8"))


# -- campaign --------------------------------------------------------------------------------------


def test_a_campaign_shows_its_steps_the_posts_per_platform_and_the_zip(home, downloads):
    at = create(app())
    folder, state = only_campaign(home)
    cid = state["id"]
    campaign = tab(at, "Campaign")
    # The run's progress: a status that finished, one line per step as it completed.
    [status] = campaign.status
    assert status.label == "Creating the S01E03 campaign: done" and status.state == "complete"
    lines = [m.value for m in status.markdown]
    assert any("**Strategy**" in line for line in lines) and sum("**Image ·" in line for line in lines) == 5 and "**Package** done" in lines[-1]
    # Every step, each in an expander; the text of each step in editable areas, with a rerun button.
    assert [e.label for e in campaign.expander] == ["Strategy · done", "Copy · 5 done", "Image brief · 5 done", "Prompt · 5 done", "Image · 5 done"]
    assert at.text_area(key=f"cmp:{cid}:x:copy:1:text").value == state["posts"]["x"]["steps"]["copy"]["output"]["text"]
    assert at.button(key=f"cmp:{cid}:x:image_brief:1:rerun").label == "Rerun from here"
    # Five cards, each with its platform's name, the copy with hashtags, and the preview image labelled as one.
    cards = [i for i in campaign.get("image") if i.captions == [PREVIEW]]
    assert len(cards) == 5 and all(i.value[0].startswith("/mock/media/") for i in cards)
    pages = " ".join(h.value for h in campaign.get("html"))
    assert all(f">{title}</b>" in pages for title in TITLES) and "#Gullhaven" in pages and "16:9 · 1344x768" in pages
    assert "Images are offline preview cards" in " ".join(c.value for c in campaign.caption)
    # The package: a zip of posts.md, posts.csv, campaign.json and the five images.
    [button] = at.download_button
    assert button.label == "Download the package (5 ready)"
    [(name, data)] = [(n, d) for n, d in downloads.items() if n.endswith(".zip")]
    assert name == f"gullhaven-S01E03-{cid}.zip" and data == (folder / "campaign.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert set(z.namelist()) == {"posts.md", "posts.csv", "campaign.json", *(f"images/{p}.png" for p in ("instagram", "facebook", "x", "linkedin", "tiktok"))}


def test_an_edited_copy_is_kept_when_the_chain_reruns_after_it(home):
    at = create(app())
    folder, before = only_campaign(home)
    cid = before["id"]
    edited = "The storm is here and the lamp is dark. Stream it tonight."
    at.text_area(key=f"cmp:{cid}:x:copy:1:text").set_value(edited)
    at.button(key=f"cmp:{cid}:x:image_brief:1:rerun").click()
    ran(at)
    after = json.loads((folder / "campaign.json").read_text(encoding="utf-8"))
    x = after["posts"]["x"]["steps"]
    # The edit is kept and marked; the X post's later steps ran again from it.
    assert x["copy"]["output"]["text"] == edited and x["copy"]["runs"] == 1 and "edited in the dashboard" in x["copy"]["notes"]
    assert [x[s]["runs"] for s in ("image_brief", "prompt", "image")] == [2, 2, 2]
    assert at.text_area(key=f"cmp:{cid}:x:copy:1:text").value == edited
    assert at.text_area(key=f"cmp:{cid}:x:image_brief:2:composition").value == x["image_brief"]["output"]["composition"]
    # The other posts are untouched.
    for name in ("instagram", "facebook", "linkedin", "tiktok"):
        assert after["posts"][name]["steps"] == before["posts"][name]["steps"]
    assert after["steps"] == before["steps"]
    # The X card shows the edit; the status says what ran.
    campaign = tab(at, "Campaign")
    assert any("The storm is here and the lamp is dark." in h.value for h in campaign.get("html"))
    assert campaign.status[0].label == "Rerunning from the image brief of the X post: done"
    assert "Copy · 4 done, 1 edited" in [e.label for e in campaign.expander]


def test_a_blocked_word_shows_the_refusal_on_the_posts(home):
    at = create(app(), use="gore", platforms=["x", "tiktok"])
    campaign = tab(at, "Campaign")
    refusals = [e.value for e in campaign.error]
    assert len(refusals) == 2 and all(r.startswith("Blocked at the copy step:") and "contains 'gore'" in r for r in refusals)
    assert [r for r in refusals if "the X copy was blocked" in r] and [r for r in refusals if "the TikTok copy was blocked" in r]
    assert not [i for i in campaign.get("image") if i.captions == [PREVIEW]]
    assert at.download_button[0].label == "Download the package (0 ready, 2 blocked)"
    # The X copy fixed by hand and the chain rerun after it: judged again, rendered, in the package; TikTok stays blocked.
    folder, state = only_campaign(home)
    cid = state["id"]
    text = at.text_area(key=f"cmp:{cid}:x:copy:1:text")
    assert "gore" in text.value
    text.set_value(text.value.replace("gore", "storms"))
    at.button(key=f"cmp:{cid}:x:image_brief:0:rerun").click()
    ran(at)
    state = json.loads((folder / "campaign.json").read_text(encoding="utf-8"))
    assert state["posts"]["x"]["blocked"] is None and state["package"]["ready"] == ["X"] and list(state["package"]["blocked"]) == ["TikTok"]
    assert len([e for e in tab(at, "Campaign").error if "TikTok copy" in e.value]) == 1 and not [e for e in tab(at, "Campaign").error if "X copy" in e.value]
    assert at.download_button[0].label == "Download the package (1 ready, 1 blocked)"


def test_a_whole_season_campaign_for_one_platform(home):
    at = create(app(), season=2, episode=0, platforms=["x"])
    _, state = only_campaign(home)
    campaign = tab(at, "Campaign")
    assert state["brief"]["episode"] is None and list(state["posts"]) == ["x"] and state["package"]["ready"] == ["X"]
    assert campaign.status[0].label == "Creating the season 2 campaign: done"
    assert len([i for i in campaign.get("image") if i.captions == [PREVIEW]]) == 1


def test_a_motion_post_shows_its_loop_on_the_card(home, monkeypatch):
    from assistant.workflows import campaign_steps

    monkeypatch.setattr(campaign_steps, "MOTION_FRAMES", 4)  # the card is under test here; test_campaign renders the whole loop
    at = create(app(), platforms=["tiktok"], motion=["tiktok"])
    folder, state = only_campaign(home)
    assert state["brief"]["motion"] == ["tiktok"] and state["posts"]["tiktok"]["steps"]["image"]["output"]["video"] == "motion/tiktok/animation.mp4"
    campaign = tab(at, "Campaign")
    [video] = campaign.get("video")
    assert video.proto.loop and video.proto.autoplay and (folder / "motion" / "tiktok" / "animation.mp4").is_file()
    assert any("Motion post (MP4 loop): preview frames" in c.value for c in campaign.caption)


def test_a_brief_that_does_not_fit_says_why(home):
    at = create(app(), platforms=[])
    assert any("name at least one platform" in e.value for e in tab(at, "Campaign").error)
    assert not (home / "campaigns").exists()


# -- chat ------------------------------------------------------------------------------------------


def say(at, text):
    at.chat_input(key="chat_text").set_value(text)
    return ran(at)


def test_a_chat_draws_refines_and_answers_with_images_inline(home):
    at = app()
    for text in ("draw season 1 episode 3 as a watercolor", "darker", "in anime style", "another one", "who is Mara Quill?"):
        at = say(at, text)
    chat = tab(at, "Chat")
    messages = chat.chat_message
    assert [m.name for m in messages] == ["user", "assistant"] * 5
    assert [m.markdown[0].value for m in messages[::2]][-1] == "who is Mara Quill?"
    replies = messages[1::2]
    images = [r.get("image") for r in replies]
    assert [len(i) for i in images] == [1, 1, 1, 1, 0]
    assert all(i[0].captions[0].startswith("Preview card (offline, not an SDXL render)") for i in images[:4])
    assert "watercolor" in replies[0].markdown[0].value and "changed: darker" in replies[1].caption[0].value
    assert "anime" in replies[2].caption[0].value and "new seed" in replies[3].caption[0].value
    assert "Mara Quill" in replies[4].markdown[0].value and not replies[4].caption
    [conversation] = Conversations(home).listing()
    assert conversation.turns == 5 and conversation.title == "draw season 1 episode 3 as a watercolor"
    assert next(s for s in chat.selectbox if s.label == "Conversation").value == conversation.id


def test_a_past_conversation_resumes_in_a_fresh_session(home):
    first = app()
    say(first, "draw S02E01 in anime style")
    say(first, "darker")
    [conversation] = Conversations(home).listing()
    # A new session starts on "New conversation"; the past one is offered by its first message.
    at = app()
    picker = next(s for s in tab(at, "Chat").selectbox if s.label == "Conversation")
    assert picker.value == "" and picker.options[1].startswith("draw S02E01 in anime style · 2 turns")
    picker.set_value(conversation.id)
    ran(at)
    assert len(tab(at, "Chat").chat_message) == 4
    at = say(at, "undo")
    chat = tab(at, "Chat")
    assert len(chat.chat_message) == 6 and "Undid the last change" in chat.chat_message[-1].markdown[0].value
    assert len(chat.chat_message[-1].get("image")) == 1  # the image before "darker", shown again
    turns = Conversations(home).turns(conversation.id)
    assert [t.user for t in turns] == ["draw S02E01 in anime style", "darker", "undo"] and len(Conversations(home).listing()) == 1


def test_a_refusal_is_said_plainly(home):
    at = say(app(), "draw a gory murder at the lighthouse")
    reply = tab(at, "Chat").chat_message[-1]
    assert reply.warning and reply.warning[0].value.startswith("I did not draw that") and not reply.get("image")
