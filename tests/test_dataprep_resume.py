"""Resuming: a run killed with SIGKILL mid-render, language-model failures, and cached replies."""

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dataprep
from fake_openai import FakeOpenAI, reply_json, status

ROOT = Path(__file__).resolve().parents[1]
STYLES = "anime,watercolor"
EXPECTED = (7 + 1) * 2  # season 1: seven stills and the poster, in two styles


def catalog_state(home):
    """Every entry with its image's key and pixels' hash: what two runs must agree on."""
    with sqlite3.connect(home / "catalog.sqlite") as db:
        found = db.execute(
            "SELECT e.season, e.episode, e.style, e.state, e.image_key, i.path FROM entries e LEFT JOIN images i ON i.key = e.image_key ORDER BY 1, 2, 3"
        ).fetchall()
    return [(s, e, style, state, key, pixels(home / path) if path else None) for s, e, style, state, key, path in found]


def pixels(path):
    """A hash of the decoded image (the file also holds a creation time)."""
    from PIL import Image

    with Image.open(path) as im:
        return hashlib.sha256(im.tobytes()).hexdigest()


def dataprep_cmd(home):
    args = ["run", "--home", str(home), "--season", "1", "--styles", STYLES, "--width", "64", "--height", "64", "--steps", "3", "--device", "cpu"]
    return [sys.executable, str(ROOT / "dataprep.py"), *args]


@pytest.fixture(scope="module")
def sdxl_env(tiny_model_dirs):
    base, _ = tiny_model_dirs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    return {**env, "KEYART_SDXL_MODEL": str(base), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_a_run_killed_mid_render_resumes_to_the_same_catalog(tmp_path, sdxl_env):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    # 1. Start a real run with the tiny SDXL engine and SIGKILL it once a few images are in.
    process = subprocess.Popen(dataprep_cmd(killed), env=sdxl_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline, rendered = time.monotonic() + 120, 0
    while time.monotonic() < deadline and process.poll() is None:
        rendered = len(list((killed / "images").rglob("*.png"))) if (killed / "images").exists() else 0
        if rendered >= 4:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    assert 4 <= rendered < EXPECTED, f"the run was not caught mid-render ({rendered} images)"
    # 2. Run again: it finishes what was left, and says what it found.
    done = subprocess.run(dataprep_cmd(killed), env=sdxl_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "already done" in done.stdout
    # 3. Nothing lost, corrupt, duplicated or left half-written...
    state = catalog_state(killed)
    assert len(state) == EXPECTED and {row[3] for row in state} == {"done"}
    files = sorted((killed / "images").rglob("*.png"))
    assert len(files) == EXPECTED and not list((killed / "images").rglob("*.tmp"))
    from PIL import Image

    for f in files:
        with Image.open(f) as im:
            im.verify()
    # ...and the same catalog, bit for bit, as a run that was never interrupted.
    assert subprocess.run(dataprep_cmd(clean), env=sdxl_env, capture_output=True, text=True, timeout=300).returncode == 0
    assert catalog_state(killed) == catalog_state(clean)


def test_ctrl_c_keeps_what_is_done_and_the_rerun_finishes(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    cmd = [sys.executable, str(ROOT / "dataprep.py"), "run", "--home", str(home)]  # offline rules, preview cards
    # Ctrl-C's SIGINT as a terminal delivers it: restored to its default, since a test runner started
    # in the background (CI, `make test &`) hands its children SIGINT ignored.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and len(list(home.rglob("*.png"))) < 5:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted: what was finished is kept" in err and "Traceback" not in err
    kept = len(list(home.rglob("*.png")))
    assert 5 <= kept < (14 + 2) * 5
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # An image whose file landed just before the interrupt, but not its row, is rendered again onto the same name.
    already = int(done.stdout.split("images:")[1].split("rendered, ")[1].split(" already done")[0])
    assert kept - 1 <= already <= kept
    assert len(list(home.rglob("*.png"))) == (14 + 2) * 5


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("KEYART_LLM_MODEL", "fake-writer")
        yield fake


def good(body):
    """Prompts for the styles the system message lists, naming the episode the request carries."""
    system, request = body["messages"][0]["content"], body["messages"][-1]["content"]
    styles = [s for s in ("anime", "watercolor") if f"- {s}:" in system]
    subject = "Mara Quill" if "Mara Quill" in request else "the harbour"
    return reply_json({"brief": {"subject": subject}, "prompts": [{"style": s, "prompt": f"{subject} in a storm", "negative_prompt": "text"} for s in styles]})


def test_a_failed_item_is_recorded_shown_and_redone_next_time(tmp_path, server, capsys):
    home = tmp_path / "home"
    args = ["prompts", "--home", str(home), "--llm", "openai", "--season", "1", "--episodes", "1-3", "--styles", STYLES]
    server.script(status(422, body={"error": {"message": "context too long"}}))  # episode 1 is refused, once
    server.default = good
    assert dataprep.main(args) == 1
    out = capsys.readouterr()
    assert "prompts: 2 written, 0 already done, 1 failed" in out.out and "context too long" in out.err
    assert dataprep.main(["status", "--home", str(home)]) == 0
    shown = capsys.readouterr().out
    assert "S01E01 anime [prompts]: HTTP 422" in shown and "context too long" in shown
    requests = len(server.chat_requests)
    assert dataprep.main(args) == 0
    assert "prompts: 1 written, 2 already done, 0 failed" in capsys.readouterr().out
    assert len(server.chat_requests) == requests + 1  # only the failed episode was asked again


def test_a_server_that_is_down_stops_the_run_after_three_items(tmp_path, server, capsys):
    home = tmp_path / "home"
    server.default = lambda body: status(404, body={"error": {"message": "model not found"}})
    assert dataprep.main(["prompts", "--home", str(home), "--llm", "openai", "--season", "1", "--styles", "anime"]) == 2
    err = capsys.readouterr().err
    assert "stopped after 3 items in a row failed" in err and "KEYART_LLM_MODEL" in err
    assert len(server.chat_requests) == 3
    with sqlite3.connect(home / "catalog.sqlite") as db:
        assert db.execute("SELECT state, count(*) FROM entries GROUP BY state ORDER BY 1").fetchall() == [("failed", 3), ("pending", 5)]


def test_replies_are_cached_so_a_crash_between_calls_asks_nothing_twice(tmp_path, server, capsys):
    """Self-ask makes two calls per season; when the second fails, the rerun asks only the second again."""
    show = tmp_path / "show"
    show.mkdir()
    (show / "episodes.csv").write_text("show,season,episode,title,summary\nHarbour,1,1,Pilot,Mara Quill relights the lamp in a storm.\n", encoding="utf-8")
    (show / "seasons.csv").write_text("season,title,summary\n1,Dark Light,The lighthouse fails and Mara Quill is blamed.\n", encoding="utf-8")
    home = tmp_path / "home"
    args = ["prompts", "--home", str(home), "--llm", "openai", "--input", str(show / "episodes.csv"), "--styles", "anime"]
    transcript = "Follow up: Who?\nIntermediate answer: Mara Quill.\nSo the final answer is: Mara Quill relighting the lamp."
    server.script(
        reply_json({"brief": {"subject": "Mara Quill"}, "prompts": [{"style": "anime", "prompt": "Mara Quill at the lamp", "negative_prompt": ""}]}),
        transcript,  # the season's self-ask...
        status(422, body={"error": {"message": "try again later"}}),  # ...and its prompts call, refused
    )
    server.default = good
    assert dataprep.main(args) == 1
    assert "prompts: 1 written, 0 already done, 1 failed" in capsys.readouterr().out
    assert len(server.chat_requests) == 3
    assert dataprep.main(args) == 0
    assert "prompts: 1 written, 1 already done, 0 failed, 1 cached reply" in capsys.readouterr().out
    assert len(server.chat_requests) == 4  # the self-ask transcript came from the cache
    with sqlite3.connect(home / "catalog.sqlite") as db:
        [(result,)] = db.execute("SELECT result FROM prompts WHERE kind = 'season'").fetchall()
    assert "Mara Quill relighting the lamp" in result


def test_force_asks_the_model_again(tmp_path, server, capsys):
    home = tmp_path / "home"
    server.default = good
    args = ["prompts", "--home", str(home), "--llm", "openai", "--season", "1", "--episodes", "1", "--styles", "anime"]
    assert dataprep.main(args) == 0 and len(server.chat_requests) == 1
    assert dataprep.main(args) == 0 and len(server.chat_requests) == 1
    assert "nothing to do" in capsys.readouterr().out
    assert dataprep.main([*args, "--force"]) == 0 and len(server.chat_requests) == 2


def test_the_cache_goes_on_a_copy_so_a_shared_model_is_untouched(tmp_path):
    from assistant.llm_cache import StoreCache, attach
    from assistant.models.openai_chat import build_openai_chat
    from assistant.store import Store

    shared = build_openai_chat("m", base_url="http://127.0.0.1:9/v1")
    cached = attach(shared, StoreCache(Store(tmp_path / "home")))
    assert cached is not shared and isinstance(cached.cache, StoreCache) and shared.cache is None
