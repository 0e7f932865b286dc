"""dataprep.py end to end: the sample show through the offline model into the preview and tiny SDXL engines."""

import json
import sqlite3

import pytest

import dataprep
from assistant.catalog import load_catalog
from assistant.models.offline import OfflineModel
from assistant.store import Store
from assistant.workflows import stages
from assistant.workflows.plan import RenderSettings, Selection, catalog_seed, plan_prompts
from assistant.workflows.service import RenderService
from imagegen.png_files import read_png

SAMPLE_IMAGES = (14 + 2) * 5  # 14 episodes and 2 seasons, five styles each
TINY = {"width": 64, "height": 64, "num_inference_steps": 2}


def rows(home, sql):
    with sqlite3.connect(home / "catalog.sqlite") as db:
        return db.execute(sql).fetchall()


def pngs(home):
    return sorted((home / "images").rglob("*.png"))


class Recorder:
    """A front end that keeps every event, in order."""

    def __init__(self):
        self.events = []

    def stage(self, name, total):
        self.events.append((name, "start", total))

    def step(self, name, outcome, label, detail=""):
        self.events.append((name, outcome, label, detail))


def test_run_fills_the_catalog_then_a_rerun_does_nothing_and_says_so(tmp_path, capsys):
    home = tmp_path / "home"
    assert dataprep.main(["run", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "prompts: 16 written" in out and f"images:  {SAMPLE_IMAGES} rendered" in out and "images per minute" in out
    assert rows(home, "SELECT state, count(*) FROM entries GROUP BY state") == [("done", SAMPLE_IMAGES)]
    files = pngs(home)
    assert len(files) == SAMPLE_IMAGES == rows(home, "SELECT count(*) FROM images")[0][0]
    # Every image carries its lineage: where it belongs, its style, who wrote the prompt and how.
    lineage = read_png(next(f for f in files if "s01/e03-anime" in f.as_posix())).lineage
    assert lineage["lineage"]["show"] == "Gullhaven" and lineage["lineage"]["episode"] == 3 and lineage["lineage"]["style"] == "anime"
    assert lineage["lineage"]["technique"] == "meta-prompt" and lineage["lineage"]["llm"] == "offline"
    assert lineage["seed"] == catalog_seed("Gullhaven", 1, 3, "anime") and lineage["preview"] is True
    season = read_png(next(f for f in files if "s02/season-watercolor" in f.as_posix())).lineage["lineage"]
    assert season["technique"] == "self-ask" and len(season["trace"]["messages"]) == 0  # offline: no messages sent
    # The second run finds everything and touches nothing.
    before = {f: f.stat().st_mtime_ns for f in files}
    assert dataprep.main(["run", "--home", str(home)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in pngs(home)} == before


def test_episode_stills_are_landscape_and_season_posters_portrait(tmp_path):
    home = tmp_path / "home"
    assert dataprep.main(["run", "--home", str(home), "--season", "2", "--styles", "anime", "--quality", "draft"]) == 0
    sizes = {json.loads(r)["height"] > json.loads(r)["width"] for r in (x[0] for x in rows(home, "SELECT request FROM images"))}
    assert sizes == {True, False}
    steps = {json.loads(x[0])["num_inference_steps"] for x in rows(home, "SELECT request FROM images")}
    assert steps == {16}  # the draft preset


def test_selection_season_episodes_styles_and_limit(tmp_path):
    home = tmp_path / "home"
    assert dataprep.main(["prompts", "--home", str(home), "--season", "1", "--episodes", "2-3,5", "--styles", "cinematic,anime"]) == 0
    assert rows(home, "SELECT DISTINCT episode FROM entries ORDER BY episode") == [(2,), (3,), (5,)]
    assert rows(home, "SELECT DISTINCT style FROM entries ORDER BY style") == [("anime",), ("cinematic",)]
    assert rows(home, "SELECT DISTINCT state FROM entries") == [("prompted",)]
    assert dataprep.main(["prompts", "--home", str(home), "--limit", "2", "--styles", "anime"]) == 0
    assert rows(home, "SELECT count(*) FROM prompts") == [(3 + 2,)]  # episodes 1 and 2 of season 1 (2 was there: new key, new styles)


def test_quality_catalog_keeps_the_art_and_draft_says_what_it_replaces(tmp_path, capsys):
    home = tmp_path / "home"
    small = ["--home", str(home), "--season", "1", "--width", "64", "--height", "64"]
    assert dataprep.main(["run", *small, "--styles", "anime,watercolor", "--quality", "final"]) == 0
    first = rows(home, "SELECT style, episode, image_key FROM entries ORDER BY 1, 2")
    capsys.readouterr()
    # The default (catalog) keeps it all; a narrower style selection (its prompts keyed anew) renders nothing.
    assert dataprep.main(["run", *small, "--styles", "anime"]) == 0
    assert "images:  0 rendered, 8 already done" in capsys.readouterr().out
    assert rows(home, "SELECT style, episode, image_key FROM entries ORDER BY 1, 2") == first
    # Draft, asked for: it says first what it replaces, then redoes exactly those.
    assert dataprep.main(["run", *small, "--styles", "anime", "--quality", "draft"]) == 0
    err = capsys.readouterr().err
    assert "redo: 8 images are final; this build redoes them as drafts (--quality draft)" in err
    after = dict(((s, e), k) for s, e, k in rows(home, "SELECT style, episode, image_key FROM entries"))
    assert all(after[(s, e)] != k for s, e, k in first if s == "anime") and all(after[(s, e)] == k for s, e, k in first if s == "watercolor")


def test_prompts_then_render_as_separate_stages(tmp_path, capsys):
    home = tmp_path / "home"
    assert dataprep.main(["render", "--home", str(home), "--season", "1", "--styles", "anime"]) == 2  # no prompts yet: said, nothing made
    assert "python dataprep.py prompts" in capsys.readouterr().err and not home.exists()
    assert dataprep.main(["prompts", "--home", str(home), "--season", "1", "--styles", "anime"]) == 0
    assert pngs(home) == []
    assert dataprep.main(["render", "--home", str(home), "--season", "1", "--styles", "anime"]) == 0
    assert "images:  8 rendered" in capsys.readouterr().out and len(pngs(home)) == 8


def test_a_changed_summary_redoes_only_that_episode_and_its_season(tmp_path, capsys):
    home, catalog = tmp_path / "home", tmp_path / "show" / "episodes.csv"
    catalog.parent.mkdir()
    frame = load_catalog().episodes
    lines = ["show,season,episode,title,summary"] + [f'Gullhaven,{e.season},{e.episode},"{e.title}","{e.summary.replace(chr(34), chr(39))}"' for e in frame]
    catalog.write_text("\n".join(lines), encoding="utf-8")
    args = ["run", "--home", str(home), "--input", str(catalog), "--styles", "cinematic"]
    assert dataprep.main(args) == 0
    capsys.readouterr()
    edited = catalog.read_text(encoding="utf-8").replace("Mara Quill breaks her own padlock", "Mara Quill cuts the chain with bolt cutters")
    catalog.write_text(edited, encoding="utf-8")
    assert dataprep.main(args) == 0
    out = capsys.readouterr().out
    # Episode 3 and season 1 (self-ask reads every episode) are rewritten; the other 13 episodes and season 2 are not.
    assert "prompts: 2 written, 14 already done" in out
    # Only episode 3's image changes: the season's rewritten prompt is the same text (the offline
    # self-ask pictures the finale), so its image key, and its image, stay.
    assert "images:  1 rendered, 15 already done" in out
    changed = [p for p in pngs(home) if "/s01/e03-cinematic-" in p.as_posix()]
    assert len(changed) == 2  # the old image stays on disk; the catalog points at the new one


def test_a_changed_style_template_rerenders_only_that_style(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    args = ["run", "--home", str(home), "--season", "1", "--episodes", "1-2", "--styles", "anime,watercolor"]
    assert dataprep.main(args) == 0
    capsys.readouterr()
    override = tmp_path / "styles.json"
    # The same description (what the language model reads), a new template (what the engine reads).
    from imagegen import styles

    anime = styles.get("anime")
    override.write_text(json.dumps([{"name": "anime", "description": anime.description, "prompt": "cel-shaded anime still of {prompt}", "negative_prompt": "photo"}]))
    monkeypatch.setenv("KEYART_STYLES", str(override))
    assert dataprep.main(args) == 0
    out = capsys.readouterr().out
    assert "prompts: 0 written, 2 already done" in out and "images:  2 rendered, 2 already done" in out


def test_status_and_export_report_the_catalog(tmp_path, capsys):
    home, out_dir = tmp_path / "home", tmp_path / "out"
    assert dataprep.main(["run", "--home", str(home), "--season", "2", "--styles", "anime,retro-poster"]) == 0
    assert dataprep.main(["prompts", "--home", str(home), "--season", "1", "--styles", "anime"]) == 0
    capsys.readouterr()
    assert dataprep.main(["status", "--home", str(home), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shows"]["Gullhaven"] == {"episode": {"done": 14, "prompted": 7}, "season": {"done": 2, "prompted": 1}}
    assert dataprep.main(["status", "--home", str(home)]) == 0
    assert "episodes" in capsys.readouterr().out
    assert dataprep.main(["export", "--home", str(home), "--output", str(out_dir / "cat.csv")]) == 0
    written = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in written] == ["cat.csv", "cat-gullhaven-s01.png", "cat-gullhaven-s02.png"]
    import pandas as pd

    table = pd.read_csv(out_dir / "cat.csv")
    assert len(table) == 24 and set(table["state"]) == {"done", "prompted"}
    done = table[table["state"] == "done"]
    assert done["image"].map(lambda p: (home / "images").as_posix() in p).all() and done["prompt"].str.len().min() > 20
    assert dataprep.main(["export", "--home", str(home), "--format", "parquet", "--output", str(out_dir / "cat"), "--no-contact-sheets"]) == 0
    parquet = pd.read_parquet(out_dir / "cat.parquet")
    assert list(parquet.columns) == list(table.columns) and len(parquet) == 24
    assert parquet["prompt"].fillna("").tolist() == table["prompt"].fillna("").tolist()


def test_render_failures_are_recorded_with_their_reason(tmp_path, tiny_pipes):
    """A tiny SDXL base without a refiner: asking for one fails each image, and each says why."""
    from imagegen.engines.sdxl import SDXLEngine

    store = Store(tmp_path / "home")
    items = plan_prompts(load_catalog(), OfflineModel(), Selection(season=1, episodes=(1,), styles=("anime", "watercolor")))
    slot = RenderService(SDXLEngine(tiny_pipes[0], model_name="tiny-sdxl-base"))
    report = stages.run_stage(items, store, OfflineModel(), slot, RenderSettings(refiner="on", overrides=TINY))
    assert report.images.failed == 2 and report.prompts.done == 1
    failed = [e for e in store.entries() if e.state == "failed"]
    assert len(failed) == 2 and all(e.stage == "render" and "refiner was asked for" in e.error for e in failed)
    # The same run without the refiner renders both: failures are retried on the next run.
    report = stages.run_stage(items, store, OfflineModel(), slot, RenderSettings(refiner="off", overrides=TINY))
    assert report.images.done == 2 and report.prompts.skipped == 1
    assert {e.state for e in store.entries()} == {"done"}


def test_tiny_sdxl_renders_real_images_with_lineage_and_reproduces(tmp_path, engine):
    from imagegen.png_files import request_from_png

    store = Store(tmp_path / "home")
    items = plan_prompts(load_catalog(), OfflineModel(), Selection(season=2, episodes=(4,), styles=("cinematic",)))
    report = stages.run_stage(items, store, OfflineModel(), RenderService(engine), RenderSettings(refiner="off", overrides=TINY))
    assert report.images.done == 1
    [path] = pngs(store.home)
    meta = read_png(path)
    assert "Steps: 2," in meta.infotext and "Model: tiny-sdxl-base" in meta.infotext and "Ségolène Marchetti" in meta.infotext
    request, index = request_from_png(path)
    [again] = engine.render(request)
    from PIL import Image

    with Image.open(path) as saved:
        assert again.image.tobytes() == saved.convert("RGB").tobytes()


def test_without_batching_the_next_image_waits_in_the_queue_while_one_is_saved(tmp_path, engine):
    """dataprep's catalog (max_batch=1): two jobs in flight, so the engine never waits for a PNG
    write, and never batched: each image is the one a single render makes."""
    from PIL import Image

    from imagegen.png_files import request_from_png

    store, model = Store(tmp_path / "home"), OfflineModel()
    items = plan_prompts(load_catalog(), model, Selection(season=2, episodes=(4,), styles=("cinematic", "anime")))
    slot = RenderService(engine, max_batch=1)
    assert slot.ahead == 2 and RenderService(engine).ahead == 1  # a batching queue keeps one in flight
    stages.prompts_stage(items, store, model)
    submitted = []

    class Watch(Recorder):
        def step(self, name, outcome, label, detail=""):
            if name == "render" and outcome == "done":
                submitted.append(len(slot.jobs()))  # jobs submitted when this image's PNG is written

    report = stages.render_stage(items, store, slot, RenderSettings(refiner="off", overrides=TINY), progress=Watch())
    assert report.images.done == 2 and submitted == [2, 2]  # one in flight would write the first with one submitted
    for path in pngs(store.home):
        [again] = engine.render(request_from_png(path)[0])
        with Image.open(path) as saved:
            assert again.image.tobytes() == saved.convert("RGB").tobytes()


def test_run_renders_while_prompts_are_still_being_written(tmp_path, monkeypatch):
    """A slow language model: the first image is rendered before the last prompt is written."""
    from fake_openai import FakeOpenAI, delay

    from assistant.models.openai_chat import build_openai_chat

    def writer(body):
        styles = [m for m in ("anime",) if m in body["messages"][0]["content"]]
        return json.dumps({"brief": {"subject": "Mara Quill"}, "prompts": [{"style": s, "prompt": "Mara Quill at the lamp", "negative_prompt": ""} for s in styles]})

    with FakeOpenAI(default=lambda body: delay(0.3, writer(body))) as server:
        model = build_openai_chat("fake", base_url=server.base_url)
        items = plan_prompts(load_catalog(), model, Selection(season=1, episodes=(1, 2, 3, 4), styles=("anime",)))
        recorder = Recorder()
        report = stages.run_stage(items, Store(tmp_path / "home"), model, RenderService(name="preview"), RenderSettings(overrides=TINY), progress=recorder)
    assert report.images.done == 4 and report.prompts.done == 4
    kinds = [(e[0], e[1]) for e in recorder.events if e[1] == "done"]
    assert kinds.index(("render", "done")) < len(kinds) - 1 - kinds[::-1].index(("prompts", "done"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--input", "nowhere.csv"], "no such catalog file"),
        (["run", "--episodes", "three"], "--episodes takes numbers"),
        (["run", "--episodes", "5-2"], "runs backwards"),
        (["run", "--episodes", "1-99999999"], "--episodes numbers run from 1 to 100000 (got '1-99999999')"),
        (["run", "--episodes", ""], "--episodes takes numbers"),
        (["run", "--season", "1", "--episodes", "90-3000"], "has no episode 90, 91, 92, 93, 94, 95, 96, 97 and 2903 more"),
        (["run", "--styles", ",,"], "--styles names no style (got ',,')"),
        (["run", "--season", "7"], "no episodes in season 7"),
        (["run", "--styles", "oil"], "oil"),
        (["run", "--steps", "0"], "steps must be between 1 and 150"),
        (["run", "--width", "1001"], "multiple of 8"),
        (["run", "--sampler", "Euler z"], "Euler z"),
        (["run", "--limit", "0"], "--limit must be at least 1"),
        (["run", "--map", "summary"], "FIELD=COLUMN"),
        (["run", "--engine", "sdxl"], "KEYART_SDXL_MODEL"),
        (["prompts", "--llm", "openai"], "OPENAI_API_KEY"),
        (["status"], "no catalog in"),
        (["export"], "no catalog in"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    home = tmp_path / "home"
    assert dataprep.main([*args, "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(err) < 400 and err.count("\n") == 1  # one short line, whatever the input's size
    assert not home.exists()


def test_bad_rows_are_skipped_and_the_exit_code_says_so(tmp_path, capsys):
    catalog = tmp_path / "episodes.csv"
    catalog.write_text(
        "show,season,episode,title,plot\n"
        "Harbour,1,1,Pilot,Mara Quill lights the lamp.\n"
        "Harbour,1,two,Bad,Not a number.\n"
        "Harbour,1,3,Empty,\n"
        "Harbour,1,1,Again,A duplicate of episode one.\n"
        "Harbour,1,4,Storm,Wren Abernethy dives the wreck.\n"
        "Harbour,1,99999999999999999999,Typo,An episode number of twenty digits.\n"
        "Harbour,1,0,Zero,Episode 0 is the season's own art.\n",
        encoding="utf-8",
    )
    home = tmp_path / "home"
    assert dataprep.main(["run", "--home", str(home), "--input", str(catalog), "--map", "summary=plot", "--styles", "anime"]) == 1
    err = capsys.readouterr().err
    assert err.count("skipped: ") == 5 and "row 2, field 'episode'" in err and "row 3, field 'summary'" in err and "row 4" in err
    assert "row 6, field 'episode': is '99999999999999999999', past 100000" in err and "row 7, field 'episode': is 0" in err
    assert rows(home, "SELECT episode, state FROM entries WHERE episode > 0 ORDER BY episode") == [(1, "done"), (4, "done")]


def test_a_second_run_on_the_same_home_is_refused(tmp_path):
    store = Store(tmp_path / "home")
    with store.lock():
        with pytest.raises(Exception, match="another dataprep run"):
            with Store(tmp_path / "home").lock():
                pass


def test_help_explains_stages_options_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        dataprep.main(["run", "--help"])
    out = capsys.readouterr().out
    for expected in ("--map FIELD=COLUMN", "--quality", "--refiner", "--force", "--limit", "--llm", "exit codes", "KEYART_HOME"):
        assert expected in out, expected


def test_a_stop_event_ends_a_run_after_the_item_in_hand_and_the_rerun_finishes(tmp_path):
    """What the dashboard's Stop button does: Ctrl-C's effect, without a signal."""
    import threading

    class StopAfterThree(Recorder):
        def step(self, name, outcome, label, detail=""):
            super().step(name, outcome, label, detail)
            if name == "render" and sum(e[0] == "render" and e[1] == "done" for e in self.events) == 3:
                stop.set()

    stop = threading.Event()
    store, model = Store(tmp_path / "home"), OfflineModel()
    items = plan_prompts(load_catalog(), model, Selection(season=1, styles=("anime",)))
    slot = RenderService(name="preview")
    report = stages.run_stage(items, store, model, slot, RenderSettings(overrides=TINY), progress=StopAfterThree(), stop=stop)
    assert report.interrupted and report.images.done == 3
    again = stages.run_stage(items, store, model, slot, RenderSettings(overrides=TINY))
    assert not again.interrupted and again.images.skipped == 3 and again.images.done == len(items) - 3


def test_seeds_hash_their_parts_as_they_always_have():
    import hashlib

    from assistant.workflows.chat_scenes import chat_seed

    def old(key):
        return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % (2**32)

    assert catalog_seed("Gullhaven", 1, 3, "anime") == old("Gullhaven|1|3|anime")
    assert chat_seed("Gullhaven", "  A Storm  at SEA ") == old("Gullhaven|chat|a storm at sea")
