"""The Studio tab under Streamlit's AppTest, on the offline defaults (preview engine, KEYART_HOME in tmp).

Every action (render, seed hunt and finalise, A/B, load from PNG) and every control is checked
through what it writes: the PNG's A1111 infotext and keyart lineage. No run may raise.
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

from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png

ROOT = Path(__file__).resolve().parents[1]
STUDIO = """
from assistant.ui import common, studio

common.settings()
studio.render()
"""
TIMEOUT = 60  # the first run imports the engine side; AppTest's own default is 3 s


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYART_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEYART_LLM", "offline")
    return tmp_path / "home"


@pytest.fixture
def app(home):
    at = AppTest.from_string(STUDIO, default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go(at: AppTest) -> AppTest:
    """Press the big button: Render, Hunt seeds or Render A and B, whichever the mode shows."""
    at.button(key="studio_go").click()
    return run(at)


def set_controls(at: AppTest, **values) -> AppTest:
    """Set controls by their RenderRequest field name (widget key `studio_<name>`)."""
    for name, value in values.items():
        key = f"studio_{name}"
        widget = next((w for kind in ("text_area", "number_input", "slider", "selectbox", "radio", "toggle", "multiselect") for w in getattr(at, kind) if w.key == key), None)
        assert widget is not None, f"no control {key}"
        widget.set_value(value)
    return run(at)


def png_bytes(size, colour="white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def fields_of(path: Path) -> tuple[str, str, dict[str, str]]:
    return parse_infotext(read_png(path).infotext)


# -- render -------------------------------------------------------------------------------------


def test_render_shows_a_labelled_preview_image_its_infotext_and_a_download(app, home):
    assert any("Preview engine" in i.value for i in app.info)  # the UI says these are previews
    set_controls(app, prompt="a quay at dawn", width=256, height=192)
    go(app)
    assert not app.error
    assert len(app.image) == 1 and app.image[0].value[0]
    assert app.image[0].captions[0].startswith("Preview card · seed ")
    [path] = pngs(home / "studio")
    prompt, _, fields = fields_of(path)
    assert prompt == "a quay at dawn" and fields["Size"] == "256x192"
    assert any("a quay at dawn" in c.value and "Size: 256x192" in c.value for c in app.code)
    assert [b.label for b in app.download_button] == ["Download PNG"]
    assert read_png(path).lineage["lineage"]["source"] == "dashboard"
    assert "studio_cancel" not in [b.key for b in app.button] and not app.get("progress")  # gone once the render is done


def test_every_control_reaches_the_request(app, home):
    set_controls(
        app,
        prompt="a harbour at night",
        negative_prompt="blurry",
        style="watercolor",
        sampler="Euler a",
        schedule_type="SGM Uniform",
        num_inference_steps=12,
        guidance_scale=5.5,
        width=320,
        height=256,
        seed=1234,
        batch_size=2,
        batch_count=2,
        refiner="off",
        refiner_switch_at=0.7,
        hires=True,
        hr_scale=1.5,
        hr_upscaler="lanczos",
        hr_second_pass_steps=6,
        denoising_strength=0.4,
        subseed=99,
        subseed_strength=0.2,
    )
    go(app)
    assert not app.error
    files = pngs(home / "studio")
    assert len(files) == 4 and len(app.image) == 4
    for i, path in enumerate(files):
        prompt, negative, fields = fields_of(path)
        assert "a harbour at night" in prompt and prompt != "a harbour at night"  # the style wrapped it
        assert negative.endswith("blurry")
        assert fields["Steps"] == "12" and fields["Sampler"] == "Euler a" and fields["Schedule type"] == "SGM Uniform"
        assert fields["CFG scale"] == "5.5" and fields["Seed"] == str(1234 + i) and fields["Size"] == "320x256"
        assert fields["Batch size"] == "2" and fields["Batch pos"] == str(i % 2)
        assert fields["Hires upscale"] == "1.5" and fields["Hires steps"] == "6" and fields["Hires upscaler"] == "Lanczos"
        assert fields["Denoising strength"] == "0.4"
        assert fields["Variation seed"] == str(99 + i) and fields["Variation seed strength"] == "0.2"
        request = read_png(path).lineage["request"]
        assert request["style"] == "watercolor" and request["refiner"] == "off" and request["refiner_switch_at"] == 0.7
        assert request["batch_count"] == 2
        assert Image.open(path).size == (480, 384)  # the hires fix's second pass
    # The seed buttons: reuse the last image's seed, then random again.
    app.button(key="studio_reuse_seed").click()
    assert run(app).number_input(key="studio_seed").value == 1234
    app.button(key="studio_random_seed").click()
    assert run(app).number_input(key="studio_seed").value == -1


def test_size_menu_and_swap_set_width_and_height(app):
    app.selectbox(key="studio_size_preset").set_value("1216x832")
    run(app)
    assert (app.number_input(key="studio_width").value, app.number_input(key="studio_height").value) == (1216, 832)
    assert app.selectbox(key="studio_size_preset").value is None  # a menu, not a setting
    app.button(key="studio_swap").click()
    run(app)
    assert (app.number_input(key="studio_width").value, app.number_input(key="studio_height").value) == (832, 1216)


def test_a_sampler_without_the_schedule_type_goes_back_to_automatic(app):
    set_controls(app, schedule_type="Karras")
    set_controls(app, sampler="Euler a")  # Euler a has no Karras
    assert app.selectbox(key="studio_schedule_type").value == "Automatic"


def test_inpaint_with_an_uploaded_image_and_mask(app, home):
    app.file_uploader(key="studio_init_upload").set_value(("photo.png", png_bytes((128, 96), "navy"), "image/png"))
    mask = Image.new("L", (128, 96), 0)
    mask.paste(255, (32, 24, 96, 72))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    app.file_uploader(key="studio_mask_upload").set_value(("mask.png", buf.getvalue(), "image/png"))
    set_controls(app, prompt="a red door", seed=7, strength=0.5, mask_blur=8, inpaint_area="masked", masked_padding=16)
    go(app)
    assert not app.error and len(app.image) == 1
    [path] = pngs(home / "studio")
    _, _, fields = fields_of(path)
    assert fields["Denoising strength"] == "0.5" and fields["Mask blur"] == "8"
    assert fields["Inpaint area"] == "Only masked" and fields["Masked area padding"] == "16"
    lineage = read_png(path).lineage
    assert set(lineage["inputs"]) == {"init_image", "mask"}
    assert Path(lineage["request"]["init_image"]).parent == home / "tmp" / "studio-uploads"
    assert Image.open(path).size == (128, 96)  # the init image's own size


# -- bad input ----------------------------------------------------------------------------------


def test_a_width_off_the_grid_shows_the_engines_message_and_writes_nothing(app, home):
    set_controls(app, prompt="a quay", width=1020)
    go(app)
    assert len(app.error) == 1 and "width must be a multiple of 8" in app.error[0].value and "(got 1020)" in app.error[0].value
    assert not app.image and not pngs(home / "studio")


def test_a_mask_of_another_size_shows_an_error_and_writes_nothing(app, home):
    app.file_uploader(key="studio_init_upload").set_value(("photo.png", png_bytes((128, 128)), "image/png"))
    app.file_uploader(key="studio_mask_upload").set_value(("mask.png", png_bytes((64, 64)), "image/png"))
    set_controls(app, prompt="a red door")
    go(app)
    assert len(app.error) == 1 and "the mask is 64x64 but the init image is 128x128" in app.error[0].value
    assert not app.image and not home.joinpath("studio").exists()
    assert not list((home / "tmp" / "studio-uploads").glob("*"))  # the uploads saved for it are gone again


def test_an_empty_prompt_asks_for_one(app, home):
    go(app)
    assert "write a prompt first" in app.error[0].value and not app.image and not pngs(home / "studio")


def test_a_hires_fix_with_an_init_image_is_refused(app, home):
    app.file_uploader(key="studio_init_upload").set_value(("photo.png", png_bytes((128, 128)), "image/png"))
    set_controls(app, prompt="a red door", hires=True)
    go(app)
    assert "hires fix applies to text-to-image" in app.error[0].value and not home.joinpath("studio").exists()


# -- seed hunt ----------------------------------------------------------------------------------


def test_seed_hunt_shows_a_draft_grid_and_finalise_renders_the_pick_at_final_quality(app, home):
    app.button_group(key="studio_mode").set_value("Seed hunt")
    run(app)
    set_controls(app, prompt="a storm over the quay", seed=500, width=128, height=128, num_inference_steps=40, guidance_scale=12.0, hunt_count=4)
    go(app)
    assert not app.error
    hunts = home / "studio" / "hunts"
    cells = [p for p in pngs(hunts) if not p.name.startswith("grid-")]
    assert len(cells) == 4 and len([p for p in pngs(hunts) if p.name.startswith("grid-")]) == 1
    for i, path in enumerate(cells):
        _, _, fields = fields_of(path)
        assert fields["Seed"] == str(500 + i)
        assert fields["Steps"] == "16" and fields["CFG scale"] == "6" and fields["Size"] == "128x128"  # draft, the size kept
    assert len(app.image) == 1  # the grid
    [picker] = [b for b in app.button_group if b.key.startswith("studio_pick_")]
    assert picker.value == 500  # the first seed is picked to begin with
    picker.set_value(502)
    run(app)
    app.button(key="studio_finalise").click()
    run(app)
    assert not app.error
    [final] = pngs(home / "studio")
    _, _, fields = fields_of(final)
    assert fields["Seed"] == "502" and fields["Steps"] == "30" and fields["CFG scale"] == "7" and fields["Size"] == "128x128"
    assert len(app.image) == 2  # the grid and the final beside it


# -- A/B ----------------------------------------------------------------------------------------


def test_ab_renders_two_prompts_on_one_seed_side_by_side(app, home):
    app.button_group(key="studio_mode").set_value("A/B")
    run(app)
    set_controls(app, prompt="a quay at dawn", ab_prompt="a quay at dusk", width=128, height=128, batch_size=3)
    go(app)
    assert not app.error
    a, b = pngs(home / "studio" / "ab")
    (pa, _, fa), (pb, _, fb) = fields_of(a), fields_of(b)
    assert (pa, pb) == ("a quay at dawn", "a quay at dusk")
    assert fa["Seed"] == fb["Seed"] and fa["Seed"] != "-1"
    assert {k: v for k, v in fa.items() if k != "Seed"} == {k: v for k, v in fb.items() if k != "Seed"}  # only the words differ
    assert len(app.image) == 2 and [i.captions[0].split(" · ")[0] for i in app.image] == ["A", "B"]


def test_ab_without_prompt_b_says_so(app, home):
    app.button_group(key="studio_mode").set_value("A/B")
    run(app)
    set_controls(app, prompt="a quay at dawn")
    go(app)
    assert "write prompt B" in app.error[0].value and not home.joinpath("studio").exists()


# -- load from PNG ------------------------------------------------------------------------------


def _rendered_png(tmp_path: Path, **fields) -> bytes:
    from imagegen import RenderRequest
    from imagegen.engines.preview import PreviewEngine
    from imagegen.png_files import save_png

    images = PreviewEngine().render(RenderRequest(**fields))
    return save_png(images[-1], tmp_path / "made").read_bytes()  # the last of a batch: its own seed, not the batch's


def load(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="studio_png_upload").set_value((name, data, "image/png"))
    run(at)
    at.button(key="studio_load").click()
    return run(at)


def test_load_from_png_fills_the_controls(app, tmp_path):
    data = _rendered_png(
        tmp_path, prompt="a lighthouse keeper", negative_prompt="text", style="anime", sampler="Euler a", schedule_type="Simple",
        num_inference_steps=22, guidance_scale=4.5, width=192, height=128, seed=77, batch_size=2, refiner="off",
        hr_scale=1.5, hr_upscaler="lanczos", denoising_strength=0.45, subseed=5, subseed_strength=0.1,
    )  # fmt: skip
    load(app, "keeper.png", data)
    state = app.session_state
    expected = {
        "prompt": "a lighthouse keeper", "negative_prompt": "text", "style": "anime", "sampler": "Euler a", "schedule_type": "Simple",
        "num_inference_steps": 22, "guidance_scale": 4.5, "width": 192, "height": 128, "seed": 78, "batch_size": 1, "batch_count": 1,
        "refiner": "off", "hires": True, "hr_scale": 1.5, "hr_upscaler": "lanczos", "denoising_strength": 0.45, "subseed": 6,
        "subseed_strength": 0.1,
    }  # fmt: skip
    assert {k: state[f"studio_{k}"] for k in expected} == expected
    assert app.slider(key="studio_num_inference_steps").value == 22 and app.text_area(key="studio_prompt").value == "a lighthouse keeper"
    [message] = app.success
    assert message.value.startswith("Loaded keeper.png: 22 steps, Euler a Simple, CFG 4.5, 192x128, seed 78, style anime")
    # What was loaded renders that image again.
    go(app)
    _, _, fields = parse_infotext(app.code[0].value)
    assert fields["Seed"] == "78" and fields["Steps"] == "22" and fields["Hires upscale"] == "1.5"


def test_load_an_a1111_png(app):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a castle\nNegative prompt: fog\nSteps: 25, Sampler: DPM++ 2M SDE, Schedule type: Exponential, CFG scale: 6, Seed: 4242, Size: 896x1152, Model: sd_xl_base_1.0")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    load(app, "a1111.png", buf.getvalue())
    state = app.session_state
    assert (state["studio_prompt"], state["studio_negative_prompt"], state["studio_style"]) == ("a castle", "fog", "none")
    assert (state["studio_sampler"], state["studio_schedule_type"], state["studio_seed"]) == ("DPM++ 2M SDE", "Exponential", 4242)
    assert (state["studio_width"], state["studio_height"], state["studio_guidance_scale"]) == (896, 1152, 6.0)
    assert app.success and not app.error


def test_load_a_png_without_parameters_shows_why(app):
    load(app, "plain.png", png_bytes((8, 8)))
    assert "carries no generation metadata" in app.error[0].value and not app.success


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
