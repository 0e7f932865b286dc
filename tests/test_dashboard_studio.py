"""The Studio tab under Streamlit's AppTest, on the offline defaults (preview engine, KEYART_HOME in tmp).

Every action (render, seed hunt and finalise, A/B, load from PNG) and every control is checked
through what it writes: the PNG's A1111 infotext and keyart lineage. No run may raise. The app and
its helpers are in tests/studio_app.py; guides, animation, describe and uploads in
test_dashboard_studio_tools.py.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png
from tests.studio_app import app, home  # noqa: F401 -- fixtures
from tests.studio_app import fields_of, go, load, png_bytes, pngs, run, set_controls

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
        tiling="on",
        freeu_on=True,
        freeu_s2=0.4,
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
        assert fields["Tiling"] == "True" and fields["FreeU"] == "b1=1.3,b2=1.4,s1=0.9,s2=0.4"
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


def test_load_from_png_fills_the_controls(app, tmp_path):
    data = _rendered_png(
        tmp_path, prompt="a lighthouse keeper", negative_prompt="text", style="anime", sampler="Euler a", schedule_type="Simple",
        num_inference_steps=22, guidance_scale=4.5, width=192, height=128, seed=77, batch_size=2, refiner="off",
        hr_scale=1.5, hr_upscaler="lanczos", denoising_strength=0.45, subseed=5, subseed_strength=0.1, tiling="on", freeu="b1=1.2",
    )  # fmt: skip
    load(app, "keeper.png", data)
    state = app.session_state
    expected = {
        "prompt": "a lighthouse keeper", "negative_prompt": "text", "style": "anime", "sampler": "Euler a", "schedule_type": "Simple",
        "num_inference_steps": 22, "guidance_scale": 4.5, "width": 192, "height": 128, "seed": 78, "batch_size": 1, "batch_count": 1,
        "refiner": "off", "hires": True, "hr_scale": 1.5, "hr_upscaler": "lanczos", "denoising_strength": 0.45, "subseed": 6,
        "subseed_strength": 0.1, "tiling": "on", "freeu_on": True, "freeu_b1": 1.2, "freeu_b2": 1.4, "freeu_s1": 0.9, "freeu_s2": 0.2,
    }  # fmt: skip
    assert {k: state[f"studio_{k}"] for k in expected} == expected
    assert app.slider(key="studio_num_inference_steps").value == 22 and app.text_area(key="studio_prompt").value == "a lighthouse keeper"
    [message] = app.success
    assert message.value.startswith("Loaded keeper.png: 22 steps, Euler a Simple, CFG 4.5, 192x128, seed 78, style anime")
    # What was loaded renders that image again.
    go(app)
    _, _, fields = parse_infotext(app.code[0].value)
    assert fields["Seed"] == "78" and fields["Steps"] == "22" and fields["Hires upscale"] == "1.5"
    assert fields["Tiling"] == "True" and fields["FreeU"] == "b1=1.2,b2=1.4,s1=0.9,s2=0.2"


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
