"""`python -m imagegen render` with img2img, inpaint, outpaint and the hires fix; `upscale`; and
every bad input exiting 2 with a message that says what to do, having written nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen.cli import main

SMALL = ["--steps", "2", "--seed", "7"]


def pngs(folder):
    return sorted(folder.glob("*.png"))


@pytest.fixture
def files(tmp_path):
    init = Image.new("RGB", (64, 64), (230, 40, 40))
    ImageDraw.Draw(init).ellipse((8, 8, 56, 56), fill=(20, 20, 220))
    init.save(tmp_path / "init.png")
    init.resize((100, 60)).save(tmp_path / "odd.jpg")
    mask = Image.new("L", (64, 64))
    ImageDraw.Draw(mask).rectangle((24, 24, 40, 40), fill=255)
    mask.save(tmp_path / "mask.png")
    mask.resize((32, 32)).save(tmp_path / "small-mask.png")
    return {name: str(tmp_path / f"{name}.png") for name in ("init", "mask", "small-mask")} | {"odd": str(tmp_path / "odd.jpg")}


@pytest.fixture
def sdxl_env(tiny_model_dirs, monkeypatch):
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    monkeypatch.delenv("KEYART_SDXL_REFINER", raising=False)


def info(capsys, path):
    capsys.readouterr()
    assert main(["info", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_explains_every_mode_option():
    render = subprocess.run([sys.executable, "-m", "imagegen", "render", "--help"], capture_output=True, text=True, timeout=60)
    assert render.returncode == 0
    for expected in (
        "--init-image", "--strength", "Denoising strength", "--mask", "--mask-blur", "--inpaint-area", "Only masked",
        "--masked-padding", "--outpaint", "--outpaint-pixels", "--hires-scale", "--hr-scale", "--hires-upscaler",
        "--hires-steps", "--denoising-strength", "--init-upscaler", "image modes (A1111's img2img tab)",
    ):  # fmt: skip
        assert expected in render.stdout, expected
    upscale = subprocess.run([sys.executable, "-m", "imagegen", "upscale", "--help"], capture_output=True, text=True, timeout=60)
    assert upscale.returncode == 0 and "--scale" in upscale.stdout and "KEYART_SDXL_MODEL" in upscale.stdout


# -- sizes, with the preview engine (no model) ----------------------------------------------------


@pytest.mark.parametrize(
    "args, size",
    [
        (["--init-image", "init"], (64, 64)),  # no size given: the init image's own
        (["--init-image", "odd"], (104, 64)),  # ...in multiples of 8
        (["--init-image", "init", "--width", "128"], (128, 128)),  # one side given: the other keeps the aspect
        (["--init-image", "init", "--mask", "mask", "--inpaint-area", "masked", "--width", "128", "--height", "128"], (64, 64)),
        (["--init-image", "init", "--outpaint", "left,up", "--outpaint-pixels", "32"], (96, 96)),
        (["--hires-scale", "1.5", "--width", "64", "--height", "64"], (96, 96)),
        (["--hr-scale", "2", "--hires-upscaler", "lanczos", "--width", "64", "--height", "64"], (128, 128)),
    ],
)
def test_preview_renders_every_mode_at_its_size(tmp_path, files, capsys, args, size):
    args = [files.get(a, a) for a in args]
    assert main(["render", "a harbour", *SMALL, *args, "--output", str(tmp_path / "out")]) == 0
    [path] = pngs(tmp_path / "out")
    assert Image.open(path).size == size
    assert info(capsys, path)["keyart"]["preview"] is True


# -- SDXL (tiny) -----------------------------------------------------------------------------------


def test_img2img_reproduces_with_from_and_refuses_a_changed_init_image(tmp_path, files, sdxl_env, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["render", "a harbour", *SMALL, "--init-image", files["init"], "--mask", files["mask"], "--strength", "0.6", "--output", str(first)]) == 0
    [original] = pngs(first)
    data = info(capsys, original)
    assert "Denoising strength: 0.6, Mask blur: 4, Inpaint area: Whole picture" in data["parameters"]
    assert data["keyart"]["inputs"]["init_image"]["path"] == files["init"]
    # 1. The same files: the same pixels.
    assert main(["render", "--from", str(original), "--output", str(again)]) == 0
    [copy] = pngs(again)
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(original)))
    # 2. The init image changed: a clear refusal, nothing written; --init-image makes it a variation.
    Image.new("RGB", (64, 64), "white").save(files["init"])
    capsys.readouterr()
    assert main(["render", "--from", str(original), "--output", str(tmp_path / "changed")]) == 2
    assert "has changed since" in capsys.readouterr().err and not (tmp_path / "changed").exists()
    assert main(["render", "--from", str(original), "--init-image", files["init"], "--output", str(tmp_path / "variant")]) == 0
    # 3. The init image gone.
    os.remove(files["init"])
    assert main(["render", "--from", str(original), "--output", str(tmp_path / "gone")]) == 2
    assert "which is gone" in capsys.readouterr().err and not (tmp_path / "gone").exists()


def test_hires_fix_through_the_cli(tmp_path, sdxl_env, capsys):
    out = tmp_path / "out"
    args = ["--width", "64", "--height", "64", "--hires-scale", "1.5", "--hires-steps", "3", "--denoising-strength", "0.5"]
    assert main(["render", "a harbour", *SMALL, *args, "--output", str(out)]) == 0
    [path] = pngs(out)
    assert Image.open(path).size == (96, 96)
    assert "Size: 64x64, Model: tiny-sdxl-base, Denoising strength: 0.5, Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Latent" in info(capsys, path)["parameters"]


# -- upscale -----------------------------------------------------------------------------------


@pytest.fixture
def card(tmp_path, capsys):
    """A 64x64 preview render with its parameters, seed 7."""
    assert main(["render", "a harbour", *SMALL, "--width", "64", "--height", "64", "--output", str(tmp_path / "src")]) == 0
    capsys.readouterr()
    return pngs(tmp_path / "src")[0]


@pytest.mark.parametrize("scale, size", [("2", (128, 128)), ("1.5", (96, 96))])
def test_upscale_lanczos_needs_no_model(tmp_path, card, capsys, scale, size):
    assert main(["upscale", str(card), "--scale", scale, "--output", str(tmp_path / "up")]) == 0
    [path] = pngs(tmp_path / "up")
    assert path.name == f"00000-7-x{scale}.png" and Image.open(path).size == size
    data = info(capsys, path)
    assert data["parameters"].endswith(f"Postprocess upscale by: {scale}, Postprocess upscaler: Lanczos")
    assert data["keyart"]["source"]["path"] == str(card) and data["keyart"]["upscale"]["scale"] == float(scale)


def test_upscale_with_a_refinement_pass_is_a_reproducible_img2img(tmp_path, card, sdxl_env, capsys):
    assert main(["upscale", str(card), "--strength", "0.5", "--steps", "4", "--output", str(tmp_path / "up")]) == 0
    [path] = pngs(tmp_path / "up")
    assert path.name == "00000-7-x2.png" and Image.open(path).size == (128, 128)
    data = info(capsys, path)
    assert data["keyart"]["request"]["init_image"] == str(card) and data["keyart"]["lineage"]["upscale"]["scale"] == 2.0
    assert "a harbour" in data["parameters"] and "Denoising strength: 0.5" in data["parameters"]
    assert main(["render", "--from", str(path), "--output", str(tmp_path / "again")]) == 0
    [copy] = pngs(tmp_path / "again")
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(path)))
    assert main(["upscale", str(card), "--upscaler", "latent", "--strength", "0.6", "--steps", "4", "--output", str(tmp_path / "latent")]) == 0
    assert Image.open(pngs(tmp_path / "latent")[0]).size == (128, 128)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "x", "--init-image", "init", "--mask", "small-mask"], "the mask is 32x32 but the init image is 64x64"),
        (["render", "x", "--init-image", "init", "--strength", "1.5"], "strength must be between 0 and 1 (got 1.5)"),
        (["render", "x", "--init-image", "init", "--strength", "-0.5"], "strength must be between 0 and 1"),
        (["render", "x", "--outpaint", "left"], "outpaint needs an init image"),
        (["render", "x", "--mask", "mask"], "a mask needs an init image"),
        (["render", "x", "--init-image", "init", "--outpaint", "left", "--outpaint-pixels", "12"], "outpaint pixels must be a multiple of 8"),
        (["render", "x", "--hires-scale", "2", "--width", "1536", "--height", "1024"], "past the 2048-pixel limit"),
        (["render", "x", "--init-image", "missing.png"], "init image 'missing.png' does not exist"),
        (["render", "x", "--init-image", "init", "--mask", "missing.png"], "mask"),
        (["render", "x", "--strength", "0.5"], "--strength is img2img's (with --init-image)"),
        (["render", "x", "--init-image", "init", "--denoising-strength", "0.3"], "--denoising-strength is the hires fix's second pass"),
        (["render", "x", "--init-image", "init", "--masked-padding", "8"], "--masked-padding applies to --inpaint-area masked"),
        (["render", "x", "--init-image", "init", "--hires-scale", "2"], "the hires fix applies to text-to-image renders"),
        (["render", "x", "--init-image", "init", "--width", "128", "--height", "64"], "would be stretched"),
        (["upscale", "missing.png"], "'missing.png' does not exist"),
        (["upscale", "init", "--scale", "5"], "scale must be above 1 and at most 4"),
        (["upscale", "init", "--strength", "0.3"], "renders with SDXL: set KEYART_SDXL_MODEL"),
        (["upscale", "init", "--upscaler", "latent"], "a latent upscale needs a refinement pass"),
        (["upscale", "init", "--scale", "4", "--strength", "0.3"], "renders at most 2048 pixels"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, files, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    if "renders at most" in message:
        Image.new("RGB", (1024, 1024)).save(files["init"])
    code = main([*[files.get(a, a) for a in args], "--output", str(tmp_path / "out")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
