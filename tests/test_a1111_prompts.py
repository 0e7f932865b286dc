"""Through the engine: A1111 weights, BREAK, long prompts, LoRA tags and variation seeds, honoured and recorded."""

import numpy as np
import pytest

from imagegen import InvalidRequest, RenderRequest
from imagegen.metadata import parse_infotext
from imagegen.png_files import request_from_png, save_png

SMALL = dict(width=64, height=64, num_inference_steps=2, seed=7, refiner="off")
# About 150 CLIP tokens: two chunks of 75, as A1111 counts them.
LONG = ", ".join(f"detail {i} of the harbour wall" for i in range(25))


def pixels(images):
    return [np.asarray(i.image) for i in images]


@pytest.fixture(scope="module")
def lora_dir(tiny_pipes, tmp_path_factory):
    from imagegen.tiny_lora import save_tiny_lora

    folder = tmp_path_factory.mktemp("loras")
    save_tiny_lora(folder / "ink.safetensors", tiny_pipes[0], seed=1)
    save_tiny_lora(folder / "styles" / "neon.safetensors", tiny_pipes[0], seed=2)
    return folder


@pytest.fixture(scope="module")
def lora_engine(tiny_pipes, lora_dir):
    """A second engine over the same tiny pipelines, with the LoRA folder (the shared `engine` has none)."""
    from imagegen.engines.sdxl import SDXLEngine

    base, refiner = tiny_pipes
    return SDXLEngine(base, refiner, model_name="tiny-sdxl-base", refiner_name="tiny-sdxl-refiner", lora_dir=lora_dir)


def test_the_full_a1111_prompt_renders_with_everything_honoured_and_recorded(lora_engine, tmp_path):
    engine = lora_engine
    prompt = f"((lighthouse keeper)), (storm:1.4), [calm sea] BREAK {LONG} <lora:ink:0.8> <lora:neon:0.5>"
    request = RenderRequest(prompt, negative_prompt="(blurry:1.2), text", **SMALL)
    [with_all] = engine.render(request)
    # Recorded: the prompt as written (tags included), and A1111's "Lora hashes".
    text, negative, fields = parse_infotext(with_all.infotext)
    assert text == prompt and negative == "(blurry:1.2), text"
    assert fields["Lora hashes"].startswith("ink: ") and "neon: " in fields["Lora hashes"]
    # Honoured: each part changes the image.
    def render(p):
        return pixels(engine.render(request.replace(prompt=p)))[0]

    base = pixels([with_all])[0]
    assert not np.array_equal(base, render(prompt.replace(" <lora:neon:0.5>", "")))  # the second LoRA
    assert not np.array_equal(base, render(prompt.replace("(storm:1.4)", "storm")))  # a weight
    assert not np.array_equal(base, render(prompt.replace(" BREAK", ",")))  # BREAK
    assert not np.array_equal(base, render(prompt.replace("detail 24 of", "detail 24 beyond")))  # past token 77
    # ...and the LoRAs leave nothing behind: a plain render equals one from before any LoRA.
    plain = request.replace(prompt="a lighthouse keeper")
    assert np.array_equal(pixels(engine.render(plain))[0], render("a lighthouse keeper"))
    # The PNG reproduces itself.
    again, index = request_from_png(save_png(with_all, tmp_path))
    assert np.array_equal(pixels(engine.render(again))[index], base)


def test_an_unknown_lora_is_a_clear_error_naming_what_exists(lora_engine, engine):
    from imagegen import ModelNotFound

    with pytest.raises(ModelNotFound, match="ink") as caught:
        lora_engine.render(RenderRequest("a harbour <lora:missing:1>", **SMALL))
    assert "neon" in str(caught.value)
    with pytest.raises(InvalidRequest):
        lora_engine.render(RenderRequest("a harbour <lora:../ink:1>", **SMALL))
    # An engine without a LoRA folder says which variable to set.
    with pytest.raises(ModelNotFound, match="KEYART_LORA_DIR is not set"):
        engine.render(RenderRequest("a harbour <lora:ink:1>", **SMALL))


def test_variation_seeds_slerp_the_noise_as_a1111(engine, tmp_path):
    r = RenderRequest("a lighthouse", **{**SMALL, "sampler": "Euler a", "batch_size": 2})
    plain = pixels(engine.render(r))
    assert all(np.array_equal(a, b) for a, b in zip(plain, pixels(engine.render(r.replace(subseed=9, subseed_strength=0.0)))))
    one = r.replace(sampler="DPM++ 2M", batch_size=1)
    assert np.array_equal(pixels(engine.render(one.replace(subseed=9, subseed_strength=1.0)))[0], pixels(engine.render(one.replace(seed=9)))[0])
    varied = engine.render(r.replace(subseed=-1, subseed_strength=0.3, refiner="on"))
    assert not np.array_equal(pixels(varied)[0], plain[0])
    assert "Variation seed: " in varied[1].infotext and "Variation seed strength: 0.3" in varied[1].infotext
    assert "Variation seed" not in engine.render(r)[0].infotext
    request, index = request_from_png(save_png(varied[1], tmp_path))
    assert np.array_equal(pixels(engine.render(request))[index], pixels(varied)[1])


@pytest.mark.parametrize("bad", [{"subseed_strength": 2}, {"subseed": -2}, {"subseed_strength": "x"}])
def test_bad_variation_settings_are_clear_errors(bad):
    with pytest.raises(InvalidRequest, match="variation seed"):
        RenderRequest("x", **bad)


def test_a_variation_seed_with_an_init_image_is_refused(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64)).save(tmp_path / "init.png")
    with pytest.raises(InvalidRequest, match="variation seed"):
        RenderRequest("x", init_image=str(tmp_path / "init.png"), subseed=3, subseed_strength=0.5, width=64, height=64)


def test_the_cli_takes_variation_seeds(tmp_path, capsys):
    from imagegen.cli import main

    assert main(["render", "a quay", "--engine", "preview", "--width", "64", "--height", "64", "--seed", "3", "--subseed", "11", "--subseed-strength", "0.2", "--output", str(tmp_path)]) == 0
    [png] = sorted(tmp_path.glob("*.png"))
    assert main(["info", str(png)]) == 0
    assert "Variation seed: 11, Variation seed strength: 0.2" in capsys.readouterr().out
