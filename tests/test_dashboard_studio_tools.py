"""The Studio tab's tools under Streamlit's AppTest, on the offline defaults: ControlNet units and a
reference image, Animate, Describe, the whole dashboard's Studio tab, waiting for the queue, and
bad uploads (one error line, nothing written). The app and its helpers are in tests/studio_app.py.
"""

from __future__ import annotations

import io
import json
import threading
import time
from functools import partial
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from imagegen.png_files import read_png
from tests.studio_app import app, home  # noqa: F401 -- fixtures
from tests.studio_app import ROOT, TIMEOUT, fields_of, go, load, png_bytes, pngs, run, set_controls

# -- the whole dashboard ------------------------------------------------------------------------


def sketch_png(size=(128, 96)) -> bytes:
    from PIL import ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((30, 20, 90, 70), outline="black", width=4)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_control_units_and_a_reference_preview_their_maps_and_reach_the_render(app, home):
    set_controls(app, prompt="a lighthouse at dusk", width=128, height=96)
    images_before = len(app.image)
    app.toggle(key="studio_cn0_on").set_value(True)
    app.file_uploader(key="studio_cn0_upload").set_value(("sketch.png", sketch_png(), "image/png"))
    run(app)
    captions = [c for image in app.image for c in image.captions]
    assert "Control image" in captions and "Map: canny" in captions and len(app.image) == images_before + 2
    app.slider(key="studio_cn0_weight").set_value(0.8)
    app.slider(key="studio_cn0_steps").set_value((0.0, 0.6))
    app.selectbox(key="studio_cn1_type").set_value("depth")
    app.toggle(key="studio_cn1_on").set_value(True)
    app.file_uploader(key="studio_cn1_upload").set_value(("depth.png", png_bytes((64, 48), "gray"), "image/png"))
    run(app)
    assert any("KEYART_DEPTH_MODEL" in i.value for i in app.info)
    app.checkbox(key="studio_cn1_ready").check()
    app.file_uploader(key="studio_ref_upload").set_value(("poster.png", png_bytes((80, 80), "navy"), "image/png"))
    run(app)
    assert any("(resized to 128x96)" in c for image in app.image for c in image.captions)
    go(app)
    assert not app.error, [e.value for e in app.error]
    [path] = pngs(home / "studio")
    _, _, fields = fields_of(path)
    assert fields["ControlNet 0"].startswith("Module: canny, Model: canny, Weight: 0.8") and "Guidance End: 0.6" in fields["ControlNet 0"]
    assert fields["ControlNet 1"].startswith("Module: none, Model: depth") and fields["IP-Adapter scale"] == "0.6"
    request = read_png(path).lineage["request"]
    assert [u["type"] for u in request["controls"]] == ["canny", "depth"] and Path(request["reference"]).parent == home / "tmp" / "studio-uploads"


def test_an_enabled_unit_without_an_image_says_so_and_renders_nothing(app, home):
    set_controls(app, prompt="a lighthouse at dusk")
    app.toggle(key="studio_cn2_on").set_value(True)
    go(app)
    assert any("ControlNet unit 2 is enabled but has no control image" in e.value for e in app.error) and not pngs(home / "studio")


def test_animate_renders_keyframed_prompts_into_a_loop_with_its_downloads(app, home):
    app.segmented_control(key="studio_mode").set_value("Animate")
    run(app)
    set_controls(app, prompt="0: a calm harbour at dusk | 2: the same harbour in a storm", width=128, height=96)
    app.slider(key="studio_anim_frames").set_value(4)
    app.text_input(key="studio_anim_zoom").set_value("0:(1.0), 3:(1.05)")
    go(app)
    assert not app.error, [e.value for e in app.error]
    [folder] = (home / "studio" / "animations").iterdir()
    assert (folder / "animation.mp4").is_file() and len(list((folder / "frames").glob("*.png"))) == 4
    [video] = app.get("video")
    assert video.proto.loop and any("4 frames at 12 fps" in c.value and "preview frames" in c.value for c in app.caption)
    assert [b.label for b in app.download_button] == ["Download MP4", "Download GIF", "Download the request (JSON)"]
    sidecar = json.loads((folder / "animation.json").read_text(encoding="utf-8"))
    assert sidecar["request"]["motion"]["zoom"] == "0:(1.0), 3:(1.05)" and sidecar["prompts"][2] == "the same harbour in a storm"
    app.text_input(key="studio_anim_zoom").set_value("0:(1.0), 9:(1.05)")
    go(app)
    assert any("past the last frame" in e.value for e in app.error)


def test_describe_writes_a_labelled_offline_prompt_and_puts_it_in_the_prompt_box(app, home):
    app.button(key="studio_describe").click()
    run(app)
    assert any("Upload an image to describe first" in w.value for w in app.warning)
    app.file_uploader(key="studio_describe_upload").set_value(("still.png", png_bytes((160, 80), (20, 30, 70)), "image/png"))
    app.button(key="studio_describe").click()
    run(app)
    assert any("Offline description" in i.value and "pixel statistics" in i.value for i in app.info)
    [described] = [c.value for c in app.code if "wide shot" in c.value]
    assert "dark, low-key lighting" in described
    app.button(key="studio_describe_use").click()
    run(app)
    assert app.text_area(key="studio_prompt").value == described
    go(app)
    [path] = pngs(home / "studio")
    assert fields_of(path)[0] == described
    app.file_uploader(key="studio_describe_upload").set_value(("notes.png", b"not a picture", "image/png"))
    app.button(key="studio_describe").click()
    run(app)
    assert any("is not a PNG, JPEG or WebP" in e.value for e in app.error)


def test_the_dashboards_studio_tab_renders(home):
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Studio" in [t.label for t in at.tabs]
    set_controls(at, prompt="a quay at dawn", width=128, height=128)
    go(at)
    assert len(pngs(home / "studio")) == 1
    assert any(im.captions[0].startswith("Preview card") for im in at.image)


# -- waiting for the queue (assistant/ui/jobs.py) -----------------------------------------------


def test_the_wait_line_tells_the_place_in_the_queue_then_the_steps():
    from types import SimpleNamespace as Job

    from assistant.ui.jobs import describe

    assert describe("Rendering", [], (0, 0)) == (0.0, "Rendering: queueing...")
    assert describe("Rendering", [Job(state="queued", position=2)], (0, 30)) == (0.0, "Waiting: 2 renders ahead of yours")
    assert describe("Hunting 4 seeds", [Job(state="queued", position=p) for p in (1, 2)], (0, 64))[1] == "Waiting: 1 render ahead of yours"
    assert describe("Rendering", [Job(state="queued", position=0)], (0, 30))[1] == "Waiting: yours is next"
    assert describe("Rendering", [Job(state="running", position=None)], (0, 0)) == (0.0, "Rendering: starting...")
    assert describe("Hunting 4 seeds", [Job(state="done", position=None), Job(state="queued", position=0)], (24, 64)) == (0.375, "Hunting 4 seeds: step 24 of 64")


def test_a_script_run_stopped_while_its_job_waits_cancels_the_job_and_says_so(tmp_path, monkeypatch):
    """A rerun (the Cancel button, a changed control) raises inside the script thread at its next st
    call; outside a Streamlit server the test raises the same exception from the wait line."""
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    from assistant.ui import common, jobs
    from assistant.workflows import studio as workflow
    from assistant.workflows.service import RenderService
    from imagegen import RenderRequest
    from imagegen.engines.preview import PreviewEngine

    gate, texts, describe = threading.Event(), [], jobs.describe

    class Gated(PreviewEngine):
        def render(self, request, **kwargs):
            gate.wait(30)
            return super().render(request, **kwargs)

    def stopped_at_the_wait_line(label, queued, steps):
        texts.append(describe(label, queued, steps)[1])
        if texts[-1].startswith("Waiting"):
            raise RerunException(RerunData())
        return describe(label, queued, steps)

    monkeypatch.setattr(jobs, "describe", stopped_at_the_wait_line)
    service, small = RenderService(Gated(), home=tmp_path), partial(RenderRequest, width=64, height=64)
    try:
        blocker, deadline = service.submit(small("the blocker"), owner="someone-else"), time.monotonic() + 10
        while blocker.state != "running":
            assert time.monotonic() < deadline, "the blocker never started"
            time.sleep(0.01)
        other = service.submit(small("someone else's"), owner="someone-else")
        with pytest.raises(RerunException):
            jobs.run(service, "Rendering", partial(workflow.render, service, tmp_path, small("mine")), key="studio_cancel")
        assert texts[-1] == "Waiting: 1 render ahead of yours"
        [mine] = service.jobs(common.owner())
        assert mine.state == "cancelled" and other.state == "queued"  # only this session's job
        assert "Rendering stopped before it finished" in st.session_state.pop("jobs:stopped:studio_cancel")
    finally:
        gate.set()
        service.close()


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small PNG whose header claims width x height: what a decompression bomb shows first."""
    import struct
    import zlib

    data = bytearray(png_bytes((8, 8)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


UPLOADS = [  # (what, uploader, file name, bytes, a phrase the one error line says)
    ("init image that is not an image", "studio_init_upload", "photo.png", b"not an image at all", "is not an image Pillow can read"),
    ("init image cut short", "studio_init_upload", "photo.png", png_bytes((128, 128))[:200], "is not an image Pillow can read"),
    ("init image that claims 10^10 pixels", "studio_init_upload", "photo.png", _bomb_png(), "past the 67,108,864-pixel limit"),
    ("mask that is not an image", "studio_mask_upload", "mask.png", b"\x89PNG\r\n\x1a\n garbage", "is not an image Pillow can read"),
]


@pytest.mark.parametrize(("what", "key", "name", "data", "phrase"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_a_bad_upload_is_one_error_line_and_leaves_nothing(app, home, what, key, name, data, phrase):
    if key == "studio_mask_upload":
        app.file_uploader(key="studio_init_upload").set_value(("photo.png", png_bytes((128, 128)), "image/png"))
    app.file_uploader(key=key).set_value((name, data, "image/png"))
    set_controls(app, prompt="a red door")
    go(app)
    assert not app.exception, [e.message for e in app.exception]
    assert len(app.error) == 1 and phrase in app.error[0].value and "\n" not in app.error[0].value, [e.value for e in app.error]
    assert not app.image and not home.joinpath("studio").exists()
    assert not list((home / "tmp" / "studio-uploads").glob("*"))


@pytest.mark.parametrize(("data", "phrase"), [(b"not a png", "is not a readable image"), (_bomb_png(), "is not a readable image")], ids=["garbage", "bomb"])
def test_loading_settings_from_a_bad_png_is_one_error_line(app, data, phrase):
    load(app, "bad.png", data)
    assert not app.exception, [e.message for e in app.exception]
    assert len(app.error) == 1 and phrase in app.error[0].value, [e.value for e in app.error]
