"""The offline copy of the sample brief: each platform's own text, within its limits, the brief's words in sentences."""

from __future__ import annotations

import itertools
import re

import pytest

from assistant.catalog import load_catalog
from assistant.models import offline_campaign
from assistant.models.offline import OfflineModel
from assistant.models.offline_reading import Reading
from assistant.platforms import PLATFORMS, hashtag, post_text
from assistant.workflows.campaign import Tools, load_brief, new_campaign, run
from assistant.workflows.campaign_steps import BRIEF_FIELDS, source_of
from assistant.workflows.service import RenderService
from test_campaign import ALL, SAMPLE_BRIEF, TINY


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("copy")
    slot, catalog = RenderService(name="preview"), load_catalog()
    tools = Tools(folder=folder / "out", model=OfflineModel(), slot=slot, catalog=catalog, home=folder / "no-catalog", overrides=TINY)
    return run(new_campaign(load_brief(SAMPLE_BRIEF)), tools)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?…])\s+|\n+", text) if s.strip()]


def _names(campaign) -> dict[str, str]:
    """Hashtag (lower case) -> the name it comes from: the show, and the episode's characters and places."""
    source = source_of(campaign, load_catalog())
    reading = Reading([source["summary"]])
    names = [source["show"], *(e.display for kind in ("character", "place") for e in reading.ranked(source["summary"], kind))]
    return {hashtag(n).lower(): n for n in names}


def test_every_platform_has_its_own_copy_within_its_limits(campaign):
    texts = {name: campaign.output("copy", name).text for name in ALL}
    for a, b in itertools.combinations(ALL, 2):
        assert texts[a] != texts[b], f"{a} and {b} have the same copy"
        assert _sentences(texts[a])[0] != _sentences(texts[b])[0], f"{a} and {b} open alike"
    for name in ALL:
        where, copy = PLATFORMS[name], campaign.output("copy", name)
        assert campaign.posts[name].blocked is None
        assert where.length(post_text(copy.text, copy.hashtags)) <= where.limit
        assert copy.text.endswith("Stream it tonight.")
    # Longer captions where the platform allows them: TikTok talks, X stays short.
    assert len(texts["tiktok"]) >= 500 and "?" in texts["tiktok"]
    assert len(texts["linkedin"]) > len(texts["facebook"]) and PLATFORMS["x"].length(texts["x"]) <= 280
    assert "\n" in texts["instagram"] and "\n" not in texts["x"]


def test_use_words_are_said_in_sentences_and_avoid_words_never(campaign):
    brief = campaign.brief
    for name in ALL:
        copy = campaign.output("copy", name)
        for word in brief.use_words:
            found = [s for s in _sentences(copy.text) if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", s, re.IGNORECASE)]
            assert found and any(len(s.split()) >= 6 for s in found), f"{name}: {word!r} is not in a sentence"
        for a, b in itertools.permutations(brief.use_words, 2):  # not listed side by side ("of storm and lighthouse")
            assert not re.search(rf"\b{a}\b(,| and| &) \b{b}\b", copy.text, re.IGNORECASE), f"{name} lists {a} and {b}"
        published = post_text(copy.text, copy.hashtags).lower()
        for word in brief.avoid_words:
            assert not re.search(rf"(?<!\w){word.lower()}(?!\w)", published) and word.lower() not in " ".join(copy.hashtags).lower()


def test_hashtags_come_from_the_show_characters_and_places(campaign):
    names = _names(campaign)
    for name in ALL:
        tags, where = campaign.output("copy", name).hashtags, PLATFORMS[name]
        assert 1 <= len(tags) <= where.hashtags and tags[0] == "#Gullhaven"
        assert len({t.lower() for t in tags}) == len(tags)
        for tag in tags:
            assert re.fullmatch(r"#[^\W_]+", tag) and tag[1].isupper(), f"{name}: {tag!r} is not a CamelCase hashtag"
            assert tag.lower() in names, f"{name}: {tag!r} is none of {sorted(names.values())}"
    assert "#MaraQuill" in campaign.output("copy", "x").hashtags  # the key moment's lead


def test_copy_reads_as_prose(campaign):
    for name in ALL:
        text = campaign.output("copy", name).text
        assert "{" not in text and "}" not in text and "#" not in text
        assert not re.search(r"\s[,.]|\.\.|,,|\.[\"”]\.", text)
        for sentence in _sentences(text):
            chunks = [c for c in re.split(r",| and ", sentence) if c.strip()]
            assert len(chunks) < 3 or any(len(c.split()) > 2 for c in chunks), f"{name}: a list, not a sentence: {sentence!r}"
            assert sentence[0].isupper() or sentence[0] in "“\"", f"{name}: {sentence!r}"
    # The episode's own names and moment: who, where, what happens.
    for name in ALL:
        text = campaign.output("copy", name).text
        assert "Mara Quill" in text and "Gullhaven Lighthouse" in text


def test_the_copy_is_the_same_for_the_same_input(campaign):
    catalog, brief = load_catalog(), campaign.brief
    source = {k: v for k, v in source_of(campaign, catalog).items() if k != "episodes"}
    for name in ALL:
        data = {"brief": brief.model_dump(include=BRIEF_FIELDS), "strategy": campaign.output("strategy").model_dump(), "source": source,
                "platform": PLATFORMS[name].describe()}  # fmt: skip
        first, again = offline_campaign.copy(data), offline_campaign.copy(data)
        assert first == again and first.text == campaign.output("copy", name).text
