"""`python -m assistant` through its real entry point, with each of the three language models."""

import json
import os
import subprocess
import sys

import pytest

from assistant.models.local import LocalChatModel
from assistant.prompting.meta_prompt import episode_prompts
from assistant.prompting.self_ask import season_prompts
from assistant.workflows.prompts import style_specs
from fake_openai import FakeOpenAI, reply_json

STYLE_NAMES = ["cinematic", "graphic-novel", "watercolor", "anime", "retro-poster"]


def run(*args, env=None, timeout=120):
    """The CLI in a fresh interpreter, with KEYART_*/OPENAI_* taken only from `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})})


def writer(body):
    """A well-behaved model: a self-ask transcript when asked for text, the prompts when asked for JSON."""
    if "response_format" not in body:  # the self-ask turn asks for text
        return (
            "Follow up: What is the main arc?\nIntermediate answer: The lighthouse goes dark.\n"
            "Follow up: Who are the main characters?\nIntermediate answer: Mara Quill.\n"
            "So the final answer is: Mara Quill relighting the great lamp in a storm."
        )
    styles = [s for s in STYLE_NAMES if f"- {s}:" in body["messages"][0]["content"]]
    return reply_json(
        {
            "brief": {"subject": "Mara Quill relighting the great lamp", "characters": ["Mara Quill"], "setting": "Gullhaven Lighthouse"},
            "prompts": [{"style": s, "prompt": f"Mara Quill relighting the great lamp, {s} framing", "negative_prompt": "text"} for s in styles],
        }
    )


@pytest.fixture
def server():
    with FakeOpenAI(default=writer) as fake:
        yield fake


@pytest.fixture(scope="module")
def tiny_llm_folder(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    from tiny_llm import write_tiny_causal_lm

    return write_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llm") / "tiny-chat", chat_template=True)


def test_help_names_the_models_and_how_to_configure_them():
    done = run("--help")
    assert done.returncode == 0
    for expected in ("episode", "season", "offline", "openai", "transformers", "OPENAI_BASE_URL", "KEYART_LLM_MODEL"):
        assert expected in done.stdout, expected


def test_offline_episode_prints_prompts_in_five_styles_and_who_wrote_them():
    done = run("episode", "--season", "1", "--episode", "3")
    assert done.returncode == 0, done.stderr
    assert "written by: offline (meta-prompt)" in done.stdout
    assert [line.strip("[]") for line in done.stdout.splitlines() if line.startswith("[")] == STYLE_NAMES
    assert "Mara Quill" in done.stdout


def test_offline_season_json_holds_the_self_ask_trace():
    done = run("season", "2", "--json", "--styles", "anime,watercolor")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["trace"]["model"] == "offline" and result["trace"]["technique"] == "self-ask"
    assert [p["style"] for p in result["prompts"]] == ["anime", "watercolor"]
    assert len(result["follow_ups"]) == 5 and result["final_answer"]


def test_openai_season_goes_over_http_and_prints_the_trace(server):
    env = {"KEYART_LLM": "openai", "OPENAI_BASE_URL": server.base_url, "KEYART_LLM_MODEL": "fake-writer"}
    done = run("season", "1", "--trace", env=env)
    assert done.returncode == 0, done.stderr
    assert "written by: openai:fake-writer (self-ask)" in done.stdout
    assert "So the final answer is: Mara Quill relighting the great lamp in a storm." in done.stdout
    assert "--- request 2 ---" in done.stdout and "fallback:" not in done.stdout
    assert len(server.chat_requests) == 2 and server.chat_requests[1].body["response_format"]["type"] == "json_schema"


def test_openai_episode_with_input_file(server, tmp_path):
    catalog = tmp_path / "episodes.csv"
    catalog.write_text('show,season,episode,title,summary\nHarbour,1,1,Pilot,"Mara Quill lights the lamp {now}."\n', encoding="utf-8")
    env = {"OPENAI_BASE_URL": server.base_url, "KEYART_LLM_MODEL": "fake-writer"}
    done = run("episode", "--season", "1", "--episode", "1", "--llm", "openai", "--input", str(catalog), "--styles", "anime", env=env)
    assert done.returncode == 0, done.stderr
    assert "Harbour, season 1, episode 1: Pilot" in done.stdout
    sent = server.chat_requests[0].body["messages"][1]["content"]
    assert "Mara Quill lights the lamp {now}." in sent  # the summary travels as data, braces intact


def test_transformers_model_falls_back_to_offline_and_says_so(tiny_llm_folder):
    done = run("episode", "--season", "1", "--episode", "1", "--llm", "transformers", "--styles", "cinematic", env={"KEYART_LLM_MODEL": str(tiny_llm_folder)})
    assert done.returncode == 0, done.stderr
    assert "written by: transformers:tiny-chat (fell back to offline) (meta-prompt)" in done.stdout
    assert "fallback: offline rules filled this episode" in done.stdout and "repair rounds: 1" in done.stdout


def test_local_model_noise_is_repaired_once_then_falls_back(tiny_llm_folder):
    """The wiring: the tiny model's noise is not JSON, so one repair round, then the offline rules."""
    from assistant.catalog import load_catalog

    catalog, model = load_catalog(), LocalChatModel.from_pretrained(str(tiny_llm_folder), max_new_tokens=16, device="cpu")
    episode = episode_prompts(catalog.episode(1, 2), style_specs(["anime"]), model)
    assert episode.trace.model == "transformers:tiny-chat" and episode.trace.repairs == 1
    assert len(episode.trace.replies) == 2 and episode.trace.fallback and "Wren Abernethy" in episode.prompts[0].prompt
    assert episode.trace.messages[0][0]["role"] == "system" and "Subject first" in episode.trace.messages[0][0]["content"]
    season = season_prompts(catalog.season(1), catalog.episodes_of(1), style_specs(["anime"]), model)
    assert "never reached 'So the final answer is:'" in season.trace.fallback
    assert season.follow_ups and season.prompts[0].prompt


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["episode", "--season", "9", "--episode", "1"], {}, "has no season 9"),
        (["episode", "--season", "1", "--episode", "42"], {}, "season 1 has episodes 1-7"),
        (["season", "1", "--styles", "oil-painting"], {}, "oil-painting"),
        (["season", "1", "--styles", " , "], {}, "--styles names no style"),
        (["season", "1", "--input", "nowhere/episodes.csv"], {}, "no such catalog file"),
        (["season", "1", "--llm", "openai"], {}, "OPENAI_API_KEY"),
        (["season", "1", "--llm", "transformers"], {}, "KEYART_LLM_MODEL"),
        (["season", "1"], {"KEYART_LLM": "gpt"}, "choose one of: offline, openai, transformers"),
    ],
)
def test_bad_input_exits_2_with_one_line_that_says_how_to_fix_it(args, env, message):
    done = run(*args, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_an_unreachable_server_is_a_clear_error_after_retries():
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "KEYART_LLM_MODEL": "m", "KEYART_LLM_TIMEOUT": "2"}
    done = run("episode", "--season", "1", "--episode", "1", "--llm", "openai", env=env)
    assert done.returncode == 2 and "could not connect" in done.stderr and "Traceback" not in done.stderr
