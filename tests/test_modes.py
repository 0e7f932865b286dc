"""img2img, inpaint, outpaint and the hires fix on the tiny SDXL engine and the preview engine:
sizes, kept pixels, the refiner's hand-off, A1111 infotext round trips, and every bad input."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from imagegen import InvalidRequest, MetadataError, RenderRequest, canvas
from imagegen.engines.preview import PreviewEngine
from imagegen.metadata import infotext_for, request_from_infotext
from imagegen.png_files import request_from_png, save_png
from imagegen.request import MODE_DEFAULTS

# -- fixtures -----------------------------------------------------------------------------------


def picture(path, size=(64, 64), colours=((230, 40, 40), (20, 20, 220))):
    """A test picture with shapes: solid areas whose pixels are easy to compare."""
    image = Image.new("RGB", size, colours[0])
    w, h = size
    ImageDraw.Draw(image).ellipse((w // 8, h // 8, w - w // 8, h - h // 8), fill=colours[1])
    image.save(path)
    return str(path)


def square_mask(path, size=(64, 64), box=(24, 24, 40, 40)):
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    mask.save(path)
    return str(path)


@pytest.fixture
def files(tmp_path):
    Image.new("L", (64, 64)).save(tmp_path / "black.png")
    (tmp_path / "text.png").write_text("not an image")
    return {
        "init": picture(tmp_path / "init.png"),
        "other": picture(tmp_path / "other.png", colours=((20, 220, 60), (250, 250, 250))),
        "wide": picture(tmp_path / "wide.png", size=(96, 64)),
        "mask": square_mask(tmp_path / "mask.png"),
        "wide_mask": square_mask(tmp_path / "wide-mask.png", size=(96, 64), box=(60, 20, 76, 36)),
        "small_mask": square_mask(tmp_path / "small-mask.png", size=(32, 32), box=(4, 4, 8, 8)),
        "black": str(tmp_path / "black.png"),
        "text": str(tmp_path / "text.png"),
    }


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def kept(mask_path, blur, size=None):
    """Where the blurred mask is 0: the pixels that inpainting must keep exactly."""
    mask = Image.open(mask_path).convert("L")
    mask = mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask
    mask = mask.resize(size, Image.Resampling.LANCZOS) if size and size != mask.size else mask
    return np.asarray(mask) == 0


# -- the SDXL engine ----------------------------------------------------------------------------


def test_img2img_keeps_the_size_and_strength_sets_how_much_of_the_init_survives(engine, tiny_request, files):
    request = tiny_request.replace(num_inference_steps=10)

    def difference(strength):
        [a] = engine.render(request.replace(init_image=files["init"], strength=strength))
        [b] = engine.render(request.replace(init_image=files["other"], strength=strength))
        assert a.image.size == b.image.size == (64, 64)
        return np.abs(pixels(a.image) - pixels(b.image)).mean()

    # Low strength: two init images give two different pictures; strength 1: the init hardly matters.
    low, full = difference(0.1), difference(1.0)
    assert low > 5 and full < 1 and low > 20 * full


def test_img2img_steps_are_steps_times_strength_and_progress_counts_them(engine, tiny_request, files):
    request = tiny_request.replace(sampler="Euler", num_inference_steps=10, init_image=files["init"], strength=0.5)
    calls = []
    handle = engine.base.unet.register_forward_hook(lambda *_: calls.append(1))
    steps = []
    try:
        [image] = engine.render(request, progress=lambda done, total: steps.append((done, total)))
    finally:
        handle.remove()
    assert len(calls) == 5 and steps[-1] == (5, 5)
    assert "Denoising strength: 0.5," in image.infotext and image.lineage["inputs"]["init_image"]["path"] == files["init"]


def test_img2img_and_inpaint_reuse_the_base_models_and_keep_the_vae_dtype(engine, tiny_request, files):
    import torch

    dtype = engine.base.vae.dtype
    engine.render(tiny_request.replace(init_image=files["init"], mask=files["mask"]))
    for kind in ("img2img", "inpaint"):
        pipe = engine.pipe(kind, tiny_request)
        assert pipe.unet is engine.base.unet and pipe.vae is engine.base.vae and pipe.text_encoder_2 is engine.base.text_encoder_2
    assert engine.base.vae.dtype == dtype == torch.float32


@pytest.mark.parametrize("blur", [0, 4])
def test_inpaint_keeps_unmasked_pixels_exactly(engine, tiny_request, files, blur):
    [image] = engine.render(tiny_request.replace(init_image=files["init"], mask=files["mask"], mask_blur=blur, strength=1.0))
    assert image.image.size == (64, 64)
    out, init, keep = pixels(image.image), pixels(Image.open(files["init"])), kept(files["mask"], blur)
    assert keep.mean() > 0.6  # most of the picture is outside the mask
    assert np.array_equal(out[keep], init[keep])
    assert np.abs(out[~keep] - init[~keep]).mean() > 5  # and the mask was repainted
    assert f"Mask blur: {blur}, Inpaint area: Whole picture," in image.infotext


def test_inpaint_masked_area_renders_the_crop_at_full_size_and_keeps_the_init_size(engine, tiny_request, files):
    shapes = []
    handle = engine.base.unet.register_forward_hook(lambda module, args, output: shapes.append(tuple(args[0].shape[-2:])))
    try:
        [image] = engine.render(tiny_request.replace(init_image=files["wide"], mask=files["wide_mask"], inpaint_area="masked", masked_padding=8))
    finally:
        handle.remove()
    assert image.image.size == (96, 64) and image.request.output_size == (96, 64)
    factor = engine.base.vae_scale_factor
    assert set(shapes) == {(64 // factor, 64 // factor)}  # the crop, rendered at width x height
    out, init, keep = pixels(image.image), pixels(Image.open(files["wide"])), kept(files["wide_mask"], 4)
    assert np.array_equal(out[keep], init[keep]) and not np.array_equal(out, init)
    assert "Inpaint area: Only masked, Masked area padding: 8," in image.infotext


def test_crop_region_takes_the_render_aspect_inside_the_image():
    mask = Image.new("L", (200, 100))
    ImageDraw.Draw(mask).rectangle((90, 40, 109, 59), fill=255)
    assert canvas.crop_region(mask, 10, (64, 64)) == (80, 30, 120, 70)
    assert canvas.crop_region(mask, 10, (128, 64)) == (60, 30, 140, 70)
    assert canvas.crop_region(mask, 10, (64, 128)) == (80, 10, 120, 90)
    # Near an edge: shifted back inside; taller than the image: cut to it.
    top = Image.new("L", (200, 100))
    ImageDraw.Draw(top).rectangle((90, 5, 109, 24), fill=255)
    assert canvas.crop_region(top, 10, (64, 128)) == (80, 0, 120, 80)
    assert canvas.crop_region(top, 10, (64, 256)) == (80, 0, 120, 100)


@pytest.mark.parametrize("area", ["whole", "masked"])
def test_outpaint_grows_the_image_and_keeps_the_original(engine, tiny_request, files, area):
    request = tiny_request.replace(init_image=files["init"], outpaint="down,left", outpaint_pixels=16, width=80, height=80, strength=1.0, inpaint_area=area)
    assert request.outpaint == "left,down"  # A1111's order
    [image] = engine.render(request)
    assert image.image.size == (80, 80)
    grown, mask = canvas.outpaint_canvas(Image.open(files["init"]), (16, 0, 0, 16))
    keep = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0
    assert not keep[:, :16].any() and not keep[64:, :].any() and keep.sum() > 0.4 * 64 * 64  # only inside the original
    out, init = pixels(image.image), pixels(Image.open(files["init"]))
    assert np.array_equal(out[keep], pixels(grown)[keep])
    assert np.array_equal(out[:64, 16:][keep[:64, 16:]], init[keep[:64, 16:]])  # the original, where it is kept
    assert 'Outpaint: "left,down", Outpaint pixels: 16' in image.infotext


@pytest.mark.parametrize("upscaler, scale, size", [("latent", 1.5, (96, 96)), ("lanczos", 2, (128, 128))])
def test_hires_fix_returns_the_scaled_size_and_reports_both_passes(engine, tiny_request, upscaler, scale, size):
    request = tiny_request.replace(num_inference_steps=4, hr_scale=scale, hr_upscaler=upscaler, hr_second_pass_steps=6, denoising_strength=0.5)
    shapes, steps = [], []
    handle = engine.base.unet.register_forward_hook(lambda module, args, output: shapes.append(tuple(args[0].shape[-2:])))
    try:
        [image] = engine.render(request, progress=lambda done, total: steps.append((done, total)))
    finally:
        handle.remove()
    assert image.image.size == size == request.output_size
    factor = engine.base.vae_scale_factor
    assert {(64 // factor, 64 // factor), (size[1] // factor, size[0] // factor)} == set(shapes)
    assert steps[-1] == (7, 7) and [d for d, _ in steps] == sorted(d for d, _ in steps)  # 4 + 6 x 0.5
    name = {"latent": "Latent", "lanczos": "Lanczos"}[upscaler]
    assert f"Size: 64x64, Model: tiny-sdxl-base, Denoising strength: 0.5, Hires upscale: {scale:g}, Hires steps: 6, Hires upscaler: {name}," in image.infotext


def test_refiner_hands_off_inside_the_img2img_schedule(engine, tiny_request, files):
    request = tiny_request.replace(sampler="Euler", num_inference_steps=10, init_image=files["init"], strength=0.5, refiner="on")
    base_calls, refiner_calls = [], []
    h1 = engine.base.unet.register_forward_hook(lambda *_: base_calls.append(1))
    h2 = engine.refiner.unet.register_forward_hook(lambda *_: refiner_calls.append(1))
    try:
        [image] = engine.render(request)
    finally:
        h1.remove(), h2.remove()
    # 5 steps run (10 x 0.5); the refiner takes the last 20% of them.
    assert (len(base_calls), len(refiner_calls)) == (4, 1)
    assert "Refiner: tiny-sdxl-refiner, Refiner switch at: 0.8" in image.infotext


def test_hires_fix_with_the_refiner_in_both_passes(engine, tiny_request):
    [image] = engine.render(tiny_request.replace(hr_scale=1.5, refiner="on"))
    assert image.image.size == (96, 96) and "Hires upscale: 1.5" in image.infotext and "Refiner:" in image.infotext


def test_inpaint_batch_image_i_is_seed_plus_i(engine, tiny_request, files):
    request = tiny_request.replace(init_image=files["init"], mask=files["mask"], seed=100)
    batch = engine.render(request.replace(batch_size=2))
    [alone] = engine.render(request.replace(seed=101))
    assert [i.seed for i in batch] == [100, 101]
    assert np.abs(pixels(alone.image) - pixels(batch[1].image)).max() <= 2


def test_init_image_enlarged_in_latent_space(engine, tiny_request, files):
    [image] = engine.render(tiny_request.replace(init_image=files["init"], width=128, height=128, init_upscaler="latent", strength=0.5))
    assert image.image.size == (128, 128) and "Upscaler for img2img: Latent" in image.infotext


def test_fp16_unet_beside_the_fp32_vae_renders_every_mode(tmp_path, tiny_request, files):
    """keep_vae_safe's fp32 VAE with an fp16 UNet (SDXL on a GPU): latents are cast before decoding."""
    import torch

    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.engines.sdxl_load import keep_vae_safe
    from imagegen.tiny import tiny_sdxl

    base, refiner = tiny_sdxl(tmp_path)
    for pipe in (base, refiner):
        pipe.to(dtype=torch.float16)
    keep_vae_safe([base, refiner], torch.float16)
    engine = SDXLEngine(base, refiner)
    for change, size in (
        ({}, (64, 64)),
        ({"hr_scale": 1.5, "refiner": "on"}, (96, 96)),
        ({"init_image": files["init"], "mask": files["mask"]}, (64, 64)),
        ({"init_image": files["init"], "width": 128, "height": 128, "init_upscaler": "latent"}, (128, 128)),
    ):
        [image] = engine.render(tiny_request.replace(**change))
        assert image.image.size == size and base.vae.dtype == torch.float32 and base.unet.dtype == torch.float16


# -- the preview engine -------------------------------------------------------------------------


def test_preview_cards_come_out_at_every_mode_s_final_size(files, tiny_request):
    engine = PreviewEngine()
    cases = [
        (tiny_request.replace(init_image=files["init"]), (64, 64)),
        (tiny_request.replace(init_image=files["wide"], mask=files["wide_mask"], inpaint_area="masked"), (96, 64)),
        (tiny_request.replace(init_image=files["init"], outpaint="right", outpaint_pixels=32, width=96, height=64), (96, 64)),
        (tiny_request.replace(hr_scale=2), (128, 128)),
    ]
    for request, size in cases:
        [card] = engine.render(request)
        assert card.image.size == size and card.lineage["preview"] is True and "Engine: " in card.infotext
    [plain], [faded] = engine.render(tiny_request), engine.render(tiny_request.replace(init_image=files["init"]))
    assert plain.image.tobytes() != faded.image.tobytes()  # the init image shows through


# -- the request and its infotext ---------------------------------------------------------------


def test_a_text_to_image_request_serialises_as_before(files):
    request = RenderRequest("x", seed=1)
    assert not set(request.to_dict()) & set(MODE_DEFAULTS)
    moded = RenderRequest("x", seed=1, init_image=files["init"], strength=0.3, width=64, height=64)
    data = json.loads(json.dumps(moded.to_dict()))
    assert data["init_image"] == files["init"] and data["strength"] == 0.3 and "mask" not in data
    assert RenderRequest.from_dict(data) == moded


def test_init_image_paths_are_made_absolute(files, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert RenderRequest("x", init_image="init.png", width=64, height=64).init_image == files["init"]


ROUND_TRIPS = [
    {"strength": 0.4},
    {"strength": 0.6, "init_upscaler": "latent", "width": 128, "height": 128},
    {"mask": "mask", "strength": 0.9, "mask_blur": 8},
    {"mask": "mask", "inpaint_area": "masked", "masked_padding": 16, "width": 128, "height": 96},
    {"outpaint": "up,right", "outpaint_pixels": 32, "width": 96, "height": 96, "mask_blur": 2},
    {"outpaint": "left", "outpaint_pixels": 8, "inpaint_area": "masked", "masked_padding": 0},
]


@pytest.mark.parametrize("fields", ROUND_TRIPS)
def test_image_mode_infotext_round_trips(files, fields):
    fields = {k: files[v] if k == "mask" else v for k, v in fields.items()}
    request = RenderRequest("a quay", sampler="Euler", schedule_type="Karras", seed=9, refiner="off", width=64, height=64).replace(init_image=files["init"], **fields)
    text = infotext_for(request, seed=9, model="m")
    assert request_from_infotext(text, init_image=files["init"], mask=request.mask) == request


@pytest.mark.parametrize(
    "fields, text",
    [
        ({"hr_scale": 2.0}, "Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent"),
        (
            {"hr_scale": 1.5, "hr_upscaler": "lanczos", "hr_second_pass_steps": 12, "denoising_strength": 0.35},
            "Denoising strength: 0.35, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: Lanczos",
        ),
    ],
)
def test_hires_infotext_round_trips(fields, text):
    request = RenderRequest("a quay", sampler="Euler", schedule_type="Karras", seed=9, refiner="off", width=512, height=512, **fields)
    written = infotext_for(request, seed=9, model="m")
    assert f"Model: m, {text}, Version:" in written
    assert request_from_infotext(written) == request


def test_a1111_img2img_and_hires_samples(caplog):
    hires = request_from_infotext(
        "a ship\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Denoising strength: 0.45, "
        "Hires upscale: 2, Hires steps: 10, Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1"
    )
    assert (hires.hr_scale, hires.hr_second_pass_steps, hires.denoising_strength, hires.hr_upscaler) == (2.0, 10, 0.45, "lanczos")
    assert "R-ESRGAN 4x+" in caplog.text
    nearest = request_from_infotext("a ship\nSteps: 20, Seed: 5, Size: 512x512, Hires upscale: 1.5, Hires upscaler: Latent (nearest-exact)")
    assert nearest.hr_upscaler == "latent" and nearest.denoising_strength == 0.7
    # An A1111 inpaint: its init image is not in the parameters, so the settings come back without it.
    img2img = request_from_infotext(
        "a ship\nSteps: 20, Seed: 5, Size: 512x512, Denoising strength: 0.55, Mask blur: 6, Inpaint area: Only masked, Masked area padding: 40"
    )
    assert (img2img.init_image, img2img.strength, img2img.mask_blur, img2img.inpaint_area, img2img.masked_padding) == (None, 0.55, 6, "masked", 40)
    assert "pass it (init_image, --init-image) to reproduce it" in caplog.text


def test_lineage_records_the_inputs_and_reproduction_refuses_changed_files(files, tmp_path, engine, tiny_request):
    [image] = engine.render(tiny_request.replace(init_image=files["init"], mask=files["mask"]))
    inputs = image.lineage["inputs"]
    assert inputs["mask"]["path"] == files["mask"] and len(inputs["init_image"]["sha256"]) == 64 and inputs["init_image"]["size"] == [64, 64]
    path = save_png(image, tmp_path / "out")
    again, index = request_from_png(path)
    assert again == image.request and index == 0
    picture(files["init"], colours=((0, 0, 0), (9, 9, 9)))  # the same name, other pixels
    with pytest.raises(MetadataError, match="init image .* has changed since .* --init-image"):
        request_from_png(path)
    assert request_from_png(path, init_image=files["other"])[0].init_image == files["other"]
    Image.open(files["other"]).save(files["init"])
    import os

    os.remove(files["mask"])
    with pytest.raises(MetadataError, match="mask .* which is gone"):
        request_from_png(path, init_image=files["init"])


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"init_image": "init", "strength": 1.5}, r"strength must be between 0 and 1 \(got 1.5\); 0.3 keeps the composition"),
        ({"init_image": "init", "strength": -0.1}, "strength must be between 0 and 1"),
        ({"denoising_strength": 2}, r"denoising strength \(the hires fix's second pass\) must be between 0 and 1"),
        ({"init_image": "init", "mask": "small_mask"}, "the mask is 32x32 but the init image is 64x64; the mask must be the init image's size"),
        ({"init_image": "init", "mask": "black"}, "all black: nothing to repaint"),
        ({"mask": "mask"}, "a mask needs an init image"),
        ({"outpaint": "left"}, "outpaint needs an init image"),
        ({"init_image": "init", "outpaint": "left", "outpaint_pixels": 12}, r"outpaint pixels must be a multiple of 8 .* \(got 12\)"),
        ({"init_image": "init", "outpaint": "top"}, "outpaint directions must be among left, right, up, down"),
        ({"init_image": "init", "outpaint": "left", "mask": "mask"}, "either a mask or outpaint"),
        ({"init_image": "missing"}, "init image '.*missing.png' does not exist"),
        ({"init_image": "text"}, "init image .* is not an image Pillow can read"),
        ({"init_image": "init", "mask": "text"}, "mask .* is not an image"),
        ({"init_image": 5}, "init image must be a path"),
        ({"hr_scale": 2, "width": 1536}, r"the hires fix would render 3072x2048 \(1536x1024 x 2\), past the 2048-pixel limit"),
        ({"hr_scale": 5}, r"hires scale must be between 1 \(off\) and 4"),
        ({"hr_scale": 2, "init_image": "init"}, "the hires fix applies to text-to-image renders"),
        ({"hr_upscaler": "R-ESRGAN"}, "hires upscaler must be 'latent' or 'lanczos'"),
        ({"hr_scale": 2, "hr_second_pass_steps": 1, "denoising_strength": 0.5}, "leaves no step to run"),
        ({"init_image": "init", "strength": 0.02}, r"strength 0.02 with 30 steps leaves no step to run"),
        ({"init_image": "init", "inpaint_area": "partial"}, "inpaint area must be 'whole'"),
        ({"mask_blur": 100}, r"mask blur must be between 0 and 64 \(got 100\)"),
        ({"masked_padding": -1}, "masked padding must be between 0 and 256"),
        ({"hr_second_pass_steps": 200}, "hires steps must be between 0"),
        ({"init_image": "init", "width": 128}, "the init image is 64x64 but the render size is 128x1024: the picture would be stretched"),
    ],
)
def test_bad_input_is_a_clear_error(files, tmp_path, change, message):
    change = {k: (files.get(v, str(tmp_path / f"{v}.png")) if k in ("init_image", "mask") and isinstance(v, str) else v) for k, v in change.items()}
    change.setdefault("height", 1024 if "width" in change else 64)
    change.setdefault("width", 64)
    with pytest.raises(InvalidRequest, match=message):
        RenderRequest("a cat", **change)
