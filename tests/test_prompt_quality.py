"""The offline writer on the labelled shows (tests/data/shows), measured as bench/prompt_quality.py
measures it: every target of the quality bar holds. Recall of named characters and places at least
90% per episode and 80% per prompt, no prompt over CLIP's budget, no leaked instruction, every pair
of style prompts distinct beyond the styles' own words."""

import importlib.util
from pathlib import Path

import pytest

from assistant.models.offline import OfflineModel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("prompt_quality", ROOT / "bench" / "prompt_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_labels_are_written_as_the_summaries_write_them(bench):
    for show_dir in bench.show_dirs():
        catalog, labels = bench.load_show(show_dir)
        assert bench.label_problems(catalog, labels) == [], show_dir.name


def test_the_offline_writer_meets_every_target_on_every_labelled_show(bench):
    shows = [bench.measure(show_dir, OfflineModel()) for show_dir in bench.show_dirs()]
    assert len(shows) >= 4  # the sample show and three of other genres
    for show in shows:  # each show on its own, so no genre hides behind the others' average
        assert bench.verdict(bench.summarize(show["episodes"])) == [], show.get("show") or show
    assert bench.verdict(bench.summarize([e for show in shows for e in show["episodes"]])) == []


def test_a_language_model_is_measured_the_same_way(bench):
    """`--llm openai`: the same measure over a model's replies (a fake OpenAI server on 127.0.0.1
    whose every prompt names one character only, so its recall is measured low, not failed)."""
    from fake_openai import FakeOpenAI, reply_json

    from assistant.models.openai_chat import build_openai_chat

    def writer(_body):
        who = "Cecily Ashcombe at the window"
        styles = ["cinematic", "graphic-novel", "watercolor", "anime", "retro-poster"]
        return reply_json({
            "brief": {"subject": who, "characters": ["Cecily Ashcombe"], "setting": "", "moment": "", "mood": "", "lighting": "", "framing": "", "camera": ""},
            "prompts": [{"style": s, "prompt": f"{who}, {s} frame {i}", "negative_prompt": ""} for i, s in enumerate(styles)],
        })  # fmt: skip

    show = next(d for d in bench.show_dirs() if d.name == "ashcombe")
    with FakeOpenAI(default=writer) as server:
        measured = bench.measure(show, build_openai_chat("fake-model", base_url=server.base_url, api_key="k"))
    totals = bench.summarize(measured["episodes"])
    assert len(measured["episodes"]) == 8 and server.requests  # every episode asked of the model
    assert 0 < totals["recall_episode"] < 0.9 and any("recall per episode" in f for f in bench.verdict(totals))
