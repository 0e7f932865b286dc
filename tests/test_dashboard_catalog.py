"""The dashboard's catalog tabs (Episodes, Seasons, Settings) on the offline defaults, through AppTest.

Each test points KEYART_HOME at its own folder: Streamlit's resource cache lives as long as the
process, so a shared home would carry one test's store into the next.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard.py"
TIMEOUT = 60  # AppTest's default is 3 s; a cold import of the tabs can take longer on a busy box
STYLES = ("anime", "cinematic", "graphic-novel", "retro-poster", "watercolor")
SMALL = {"width": 320, "height": 224}  # preview cards at a tenth of the pixels: the tests judge the page, not the art


@pytest.fixture(autouse=True)
def _offline_defaults(monkeypatch):
    for name in ("KEYART_LLM", "KEYART_LLM_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "KEYART_SDXL_MODEL", "KEYART_SDXL_REFINER", "KEYART_DEVICE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> Path:
    """Season 1 in all five styles and season 2's first two episodes in two, as the Build button makes them."""
    from assistant.catalog import load_catalog
    from assistant.models import load_model
    from assistant.store import Store
    from assistant.workflows.plan import RenderSettings, Selection, plan_prompts
    from assistant.workflows.service import RenderService
    from assistant.workflows.stages import run_stage

    home = tmp_path_factory.mktemp("built")
    catalog, model, store = load_catalog(), load_model("offline"), Store(home)
    settings = RenderSettings(quality="draft", overrides=SMALL)
    for selection in (Selection(season=1), Selection(season=2, episodes=(1, 2), styles=("anime", "watercolor"))):
        report = run_stage(plan_prompts(catalog, model, selection), store, model, RenderService(name="preview"), settings)
        assert report.failed == 0
    store.close()
    return home


@pytest.fixture
def home(built_home, tmp_path) -> Path:
    """A copy of the built home for one test (regenerating writes to it)."""
    copy = tmp_path / "home"
    shutil.copytree(built_home, copy)
    return copy


def open_app(home: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("KEYART_HOME", str(home))
    at = AppTest.from_file(str(DASHBOARD), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything the page says in markdown, captions, code and headers, as one string."""
    parts = [e.value for kind in ("markdown", "caption", "code", "subheader", "info", "error", "warning") for e in getattr(at, kind)]
    return re.sub(r"\\([\\`*_{}\[\]<>()#+\-.!|~$])", r"\1", "\n".join(str(p) for p in parts))  # catalog text is shown escaped


def shown(at: AppTest) -> tuple[int, int]:
    """(pieces shown, pieces in the catalog) from the gallery's caption."""
    caption = next(c.value for c in at.caption if re.match(r"\d+ of \d+ pieces", c.value))
    a, b = re.match(r"(\d+) of (\d+) pieces", caption).groups()
    return int(a), int(b)


def cards(at: AppTest) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith("ep-open-")]


def rows(home: Path) -> list[dict]:
    from assistant.store import Store
    from assistant.workflows.export import catalog_rows

    return catalog_rows(Store(home))


# -- Episodes ---------------------------------------------------------------------------------------


def test_an_empty_home_offers_the_build_and_the_button_fills_the_catalog(tmp_path, monkeypatch):
    from assistant.ui import build

    home = tmp_path / "fresh"
    at = open_app(home, monkeypatch)
    assert "Build your first catalog" in texts(at)
    assert "python dataprep.py run" in texts(at)
    # A small selection keeps the test quick: season 1 in one style (seven stills and a poster).
    at.selectbox(key="ep-build-season").set_value(1)
    at.multiselect(key="ep-build-styles").set_value(["anime"])
    at.run()
    assert "**8 images**" in texts(at)
    at.button(key="ep-build").click().run()
    assert not at.exception
    job = build.build_job(home)
    assert job is not None
    job.join(TIMEOUT)
    assert not job.running and job.error is None and job.report.images.done == 8
    at.run()
    assert not at.exception
    made = rows(home)
    assert len(made) == 8 and {r["state"] for r in made} == {"done"} and {r["style"] for r in made} == {"anime"}
    assert "Catalog built" in "\n".join(s.label for s in at.status)
    assert shown(at) == (7, 7) and len(at.image) >= 7  # the gallery, and the open piece beside it


def test_a_running_build_shows_progress_and_stops_like_ctrl_c(tmp_path, monkeypatch):
    from assistant.ui import build

    home = tmp_path / "fresh"
    at = open_app(home, monkeypatch)
    at.button(key="ep-build").click().run()  # everything: 80 full-size cards, several seconds
    job = build.build_job(home)
    assert job is not None and job.running
    assert any(s.label.startswith("Building the catalog (all seasons, 5 styles)") for s in at.status)
    assert "The gallery opens when the build is done" in texts(at)
    deadline = time.monotonic() + TIMEOUT
    while job.snapshot()["counts"].get("render", {}).get("done", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # stop mid-way, with some images finished
    at.button(key=f"stop-build-{job.id}").click().run()
    job.join(TIMEOUT)
    assert job.stopped and not job.running
    at.run()
    assert any(s.label.startswith("Build stopped after") for s in at.status)
    made = rows(home)
    done = [r for r in made if r["state"] == "done"]
    assert 1 <= len(done) < 80 and all(Path(r["image"]).is_file() for r in done)
    assert not list((home / "images").rglob("*.tmp"))  # nothing half-written
    assert not at.exception


def test_a_build_keeps_final_art_and_asks_before_redoing_it_as_drafts(tmp_path, monkeypatch):
    import dataprep
    from assistant.store import Store
    from assistant.ui import build
    from assistant.workflows.plan import quality_of

    # 1. The shell's run at final quality: three pieces (two stills and the season poster) in one style.
    home = tmp_path / "home"
    flags = ["--home", str(home), "--season", "1", "--limit", "2", "--styles", "anime", "--width", "320", "--height", "224"]
    assert dataprep.main(["run", *flags, "--quality", "final"]) == 0
    before = {r["image_key"]: Path(r["image"]).read_bytes() for r in rows(home)}
    assert len(before) == 2

    def images():
        store = Store(home)
        found = [(e.image_key, json.loads(store.image(e.image_key)["request"])) for e in store.entries() if e.image_key]
        store.close()
        return found

    assert {quality_of(request) for _, request in images()} == {"final"}
    # 2. The dashboard's Build on its default settings: nothing is redone, nothing asked.
    at = open_app(home, monkeypatch)
    at.selectbox(key="ep-build-season").set_value(1)
    at.multiselect(key="ep-build-styles").set_value(["anime"]).run()
    at.button(key="ep-build").click().run()
    job = build.build_job(home)
    job.join(TIMEOUT)
    assert job.error is None and job.report.images.skipped == 2
    kept = {r["image_key"]: Path(r["image"]).read_bytes() for r in rows(home) if r["image_key"] in before}
    assert kept == before  # the same keys, the same bytes
    # 3. Draft, chosen explicitly: the page says what it would redo and asks; only "Redo them" redoes.
    at.run()
    at.radio(key="quality").set_value("draft").run()
    at.button(key="ep-build").click().run()
    assert build.build_job(home) is job  # nothing started yet
    warning = "\n".join(w.value for w in at.warning)
    assert "images are final; this build redoes them as drafts. Redo them?" in warning, warning
    at.button(key="build-redo").click().run()
    redone = build.build_job(home)
    assert redone is not job
    redone.join(TIMEOUT)
    assert redone.error is None
    qualities = [quality_of(request) for key, request in images()]
    assert qualities and set(qualities) == {"draft"} and not set(before) & {key for key, _ in images()}
    assert not at.exception


def test_the_streamlit_config_leaves_the_data_alone():
    import tomllib

    config = tomllib.loads((DASHBOARD.parent / ".streamlit" / "config.toml").read_text())
    assert "data" in config["server"]["folderWatchBlacklist"] and config["browser"]["gatherUsageStats"] is False


def test_filters_narrow_the_gallery(home, monkeypatch):
    from assistant.store import Store

    Store(home).fail([("Gullhaven", 1, 3, "cinematic")], stage="render", error="CUDA out of memory")
    at = open_app(home, monkeypatch)
    assert shown(at) == (39, 39)  # 7 episodes x 5 styles + 2 x 2
    assert len(cards(at)) == 12 and at.pagination  # a page at a time
    at.selectbox(key="ep-season").set_value(2).run()
    assert shown(at) == (4, 39)
    at.multiselect(key="ep-styles").set_value(["anime"]).run()
    assert shown(at) == (2, 39) and len(cards(at)) == 2
    at.selectbox(key="ep-season").set_value("all")
    at.multiselect(key="ep-styles").set_value([])
    at.text_input(key="ep-text").input("kittiwake crates").run()  # words from the summary, in any case
    assert 0 < shown(at)[0] < 39
    assert cards(at)[0].startswith("ep-open-gullhaven-s01-e02-")  # ranked: the episode about the Kittiwake's crates first
    at.text_input(key="ep-text").input("***").run()  # no words: no filter, and no error
    assert shown(at) == (39, 39)
    at.text_input(key="ep-text").input("").run()
    at.multiselect(key="ep-states").set_value(["failed"]).run()
    assert shown(at) == (1, 39)
    assert "CUDA out of memory" in texts(at)
    assert not at.exception


def test_the_detail_view_shows_summary_prompt_negative_parameters_and_trace(home, monkeypatch):
    at = open_app(home, monkeypatch)
    at.button(key="ep-open-gullhaven-s01-e02-watercolor").click().run()
    row = next(r for r in rows(home) if (r["season"], r["episode"], r["style"]) == (1, 2, "watercolor"))
    page = texts(at)
    assert "S01E02 · What the Kittiwake Carried" in page
    assert "Wren Abernethy dives the wreck of the Kittiwake" in page  # the summary
    assert row["prompt"] in page and row["negative_prompt"] in page
    assert f"| Seed | {row['seed']} |" in page
    assert "Written by **offline** by **meta-prompt**" in page
    assert "Steps: 16" in page and f"Seed: {row['seed']}" in page  # the A1111 parameters from the PNG
    assert "preview" in page.lower() and "not an SDXL render" in page
    assert not at.exception


def test_more_like_this_shows_the_catalog_images_that_look_alike_and_says_how(home, monkeypatch):
    at = open_app(home, monkeypatch)
    rid = "gullhaven-s01-e02-watercolor"
    at.button(key=f"ep-open-{rid}").click().run()
    images_before = len(at.image)
    at.button(key=f"ep-like-{rid}").click().run()
    assert not at.exception
    page = texts(at)
    assert "Offline likeness" in page and "colour histograms" in page
    likeness = [c for c in re.findall(r"likeness (\d\.\d{3})", page)]
    assert len(likeness) == 6 and likeness == sorted(likeness, reverse=True) and len(at.image) == images_before + 6
    assert "S01E02 · watercolor" not in page  # the piece itself is left out


def test_regenerate_with_a_new_seed_keeps_the_catalog_image_until_adopted(home, monkeypatch):
    from imagegen.png_files import read_png

    at = open_app(home, monkeypatch)
    rid = "gullhaven-s01-e01-anime"
    at.button(key=f"ep-open-{rid}").click().run()
    before = next(r for r in rows(home) if (r["season"], r["episode"], r["style"]) == (1, 1, "anime"))
    images_before = len(at.image)
    at.number_input(key=f"ep-seed-{rid}").set_value(12345)
    at.form_submit_button[0].click().run()  # the open piece's Regenerate
    assert not at.exception
    made = [p for p in Path(before["image"]).parent.glob("e01-anime-*.png") if p != Path(before["image"])]
    assert len(made) == 1
    meta = read_png(made[0]).lineage
    assert meta["seed"] == 12345 and meta["preview"] is True
    assert meta["lineage"]["regenerated"]["from_image"] == before["image_key"] and meta["lineage"]["regenerated"]["edited_prompt"] is False
    assert "**New render** · seed 12345" in texts(at) and len(at.image) == images_before + 1
    # Kept as an alternative: the catalog still holds its own image...
    assert next(r for r in rows(home) if (r["season"], r["episode"], r["style"]) == (1, 1, "anime"))["image"] == before["image"]
    # ...until "Use in catalog" records the new one for the entry.
    at.button(key=f"ep-adopt-new-{rid}").click().run()
    after = next(r for r in rows(home) if (r["season"], r["episode"], r["style"]) == (1, 1, "anime"))
    assert after["image"] == str(made[0]) and after["seed"] == 12345 and after["state"] == "done"
    assert not at.exception


def test_regenerate_with_an_edited_prompt_records_it(home, monkeypatch):
    from imagegen.png_files import read_png

    at = open_app(home, monkeypatch)
    rid = "gullhaven-s01-e01-anime"
    at.text_area(key=f"ep-prompt-{rid}").input("a lighthouse keeper alone on the gallery at dusk")
    at.form_submit_button[0].click().run()
    assert not at.exception
    folder = Path(rows(home)[0]["image"]).parent
    [made] = [p for p in folder.glob("e01-anime-*.png") if read_png(p).lineage["lineage"].get("regenerated")]
    meta = read_png(made).lineage
    assert meta["request"]["prompt"] == "a lighthouse keeper alone on the gallery at dusk"
    assert meta["lineage"]["regenerated"]["edited_prompt"] is True
    # Adopted, the piece shows the prompt its image used, and the language model's beside it.
    at.button(key=f"ep-adopt-new-{rid}").click().run()
    page = texts(at)
    assert "**Prompt** (edited in the dashboard)" in page and "a lighthouse keeper alone on the gallery at dusk" in page
    assert rows(home)[0]["prompt"] in page
    assert not at.exception


def test_the_download_button_carries_the_png_with_its_metadata(home, monkeypatch, tmp_path):
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from imagegen.png_files import read_png

    saved: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if filename:
            saved[filename] = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    deferred = MediaFileManager.add_deferred

    def record_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            saved[file_name] = data_callable()  # what a click would download (the PNG is read on click)
        return deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    at = open_app(home, monkeypatch)
    row = next(r for r in rows(home) if (r["season"], r["episode"], r["style"]) == (1, 1, "anime"))
    assert at.download_button(key="ep-dl-gullhaven-s01-e01-anime").label == "Download PNG"
    data = saved[Path(row["image"]).name]
    assert data == Path(row["image"]).read_bytes() and data.startswith(b"\x89PNG")
    copy = tmp_path / "downloaded.png"
    copy.write_bytes(data)
    meta = read_png(copy)
    assert meta.lineage["lineage"]["style"] == "anime" and f"Seed: {row['seed']}" in meta.infotext


# -- Seasons ----------------------------------------------------------------------------------------


def test_seasons_show_every_style_side_by_side_and_the_self_ask(home, monkeypatch):
    from assistant.store import Store

    at = open_app(home, monkeypatch)
    page = texts(at)
    assert "Season 1 · The Dark Light" in page
    posters = [b.key for b in at.download_button if b.key.startswith("se-dl-gullhaven-s01-e00-")]
    assert sorted(k.rsplit("-e00-", 1)[1] for k in posters) == sorted(STYLES)
    store = Store(home)
    result = store.prompt(store.entry("Gullhaven", 1, 0, "anime").prompt_key)
    for i, follow_up in enumerate(result["follow_ups"], 1):
        assert f"**Follow-up {i}: {follow_up['question']}**" in page and follow_up["answer"] in page
    assert result["final_answer"] in page
    assert "Written by **offline** by **self-ask**" in page
    assert not at.exception


def test_regenerate_one_season_style(home, monkeypatch):
    from imagegen.png_files import read_png

    at = open_app(home, monkeypatch)
    at.selectbox(key="se-style-1").set_value("watercolor").run()
    rid = "gullhaven-s01-e00-watercolor"
    at.number_input(key=f"se-seed-{rid}").set_value(777)
    next(b for b in at.form_submit_button if b.form_id.endswith(f"se-regen-{rid}")).click().run()
    assert not at.exception
    folder = Path(rows(home)[0]["image"]).parent
    made = [p for p in folder.glob("season-watercolor-*.png") if read_png(p).lineage["seed"] == 777]
    assert len(made) == 1 and read_png(made[0]).lineage["request"]["height"] > read_png(made[0]).lineage["request"]["width"]  # a poster
    assert "**New render** · seed 777" in texts(at)


# -- Settings ---------------------------------------------------------------------------------------


def test_settings_show_the_active_pieces_and_explain_the_missing_ones(home, monkeypatch):
    at = open_app(home, monkeypatch)
    page = texts(at)
    assert "Language model: `offline`" in page and "Ready." in page
    assert "Resolves to **preview**" in page and "KEYART_SDXL_MODEL" in page
    assert "SDXL model: not set" in page and "VAE: not set: the model's own VAE" in page
    assert f"Home `{home}`" in page and "done" in page
    assert "Gullhaven" in page and "the sample show" in page
    assert any(b.label == "Check GPU" for b in at.button)
    # Every variable of the one table, as --help and the README list them.
    from assistant.workflows.settings import VARIABLES

    assert [v.env for v in VARIABLES if f"| `{v.env}` |" not in page] == []
    at.selectbox(key="llm").set_value("openai")
    at.selectbox(key="engine").set_value("sdxl")
    at.run()
    page = texts(at)
    assert "set `OPENAI_API_KEY`" in page and "`OPENAI_BASE_URL`" in page
    assert "the sdxl engine needs a model, and KEYART_SDXL_MODEL is not set" in page
    assert not at.exception


def test_settings_say_what_is_wrong_with_a_vae_setting(home, monkeypatch, tmp_path):
    monkeypatch.setenv("KEYART_SDXL_VAE", str(tmp_path / "sdxl_vae.safetensors"))
    page = texts(open_app(home, monkeypatch))
    assert "VAE: KEYART_SDXL_VAE=" in page and "no such file" in page
    monkeypatch.setenv("KEYART_SDXL_VAE", "madebyollin/sdxl-vae-fp16-fix")
    page = texts(open_app(home, monkeypatch))
    assert "VAE: `sdxl-vae-fp16-fix`, a hub id" in page


def test_check_gpu_reports_what_torch_sees(home, monkeypatch):
    from assistant.ui import settings

    seen = {"torch": "2.13.0", "cuda": True, "devices": ["NVIDIA H100 80GB HBM3 (79 GiB)"], "mps": False}
    monkeypatch.setattr(settings, "_probe_gpu", lambda: seen)  # importing torch for real takes seconds
    at = open_app(home, monkeypatch)
    assert "Not checked yet" in texts(at) or "torch" in sys.modules
    next(b for b in at.button if b.label == "Check GPU").click().run()
    assert "CUDA: NVIDIA H100 80GB HBM3 (79 GiB)" in texts(at)
    seen.update(cuda=False, devices=[])
    next(b for b in at.button if b.label == "Check GPU").click().run()
    assert "No GPU visible to torch 2.13.0" in texts(at)
    assert not at.exception


def test_settings_change_the_session_home_and_check_the_file_first(home, tmp_path, monkeypatch):
    at = open_app(tmp_path / "empty", monkeypatch)
    fields = {t.label: t for t in at.text_input}
    fields["Episodes file"].input(str(tmp_path / "missing.csv"))
    next(b for b in at.form_submit_button if b.label == "Use these").click().run()
    assert "missing.csv" in "\n".join(e.value for e in at.error)
    fields = {t.label: t for t in at.text_input}
    fields["Catalog home"].input(str(home))
    fields["Episodes file"].input("")
    next(b for b in at.form_submit_button if b.label == "Use these").click().run()
    assert at.session_state["home"] == str(home)
    assert shown(at) == (39, 39)
    assert not at.exception


def test_the_first_paint_stays_light(home):
    """No torch, diffusers or transformers until something needs them (a render, Check GPU)."""
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(DASHBOARD)!r}, default_timeout={TIMEOUT}).run()\n"
        "assert not at.exception, at.exception\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env={**os.environ, "KEYART_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_damaged_catalog_is_one_line_on_the_page_and_the_other_tabs_render(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "catalog.sqlite").write_bytes(b"not a database at all, " * 10)
    at = open_app(home, monkeypatch)  # no exception reaches Streamlit
    errors = [e.value for e in at.error]
    assert any("is not a keyart database or is damaged" in e and "\n" not in e for e in errors), errors
    assert not any("internal error" in e for e in errors), errors
    assert "Check GPU" in [b.label for b in at.button]  # Settings rendered on
    assert sorted(p.name for p in home.iterdir()) == ["catalog.sqlite"]  # nothing created beside it
