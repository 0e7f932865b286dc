"""The engine's speed setting on the CPU with the tiny SDXL: `fast` (fused QKV projections,
channels_last) gives the standard image within 2 levels in every mode, with a LoRA and with an
IP-Adapter reference (both run unfused and leave the projections fused again), and says so in the
infotext; `auto` is standard on the CPU; a bad word, or a speed asked of the preview engine, is refused."""

import numpy as np
import pytest
from PIL import Image

from imagegen import RenderRequest
from imagegen.cli import main
from imagegen.engines.sdxl import SDXLEngine
from imagegen.engines.sdxl_speed import resolve
from imagegen.errors import InvalidRequest
from imagegen.metadata import parse_infotext

SMALL = dict(num_inference_steps=4, width=64, height=64, seed=3)
TOLERANCE = 2  # levels of 255: fusing reorders the sums, it computes the same thing


@pytest.fixture(scope="module")
def engines(tmp_path_factory, tiny_ip_adapter):
    """(standard, fast) over two copies of the tiny SDXL (fusing changes a pipeline in place), with a LoRA folder."""
    from imagegen.tiny import tiny_sdxl
    from imagegen.tiny_lora import save_tiny_lora

    folder = tmp_path_factory.mktemp("speed")
    (b1, r1), (b2, r2) = tiny_sdxl(folder / "a"), tiny_sdxl(folder / "b")
    save_tiny_lora(folder / "loras" / "ink.safetensors", b1, seed=1)
    common = dict(model_name="tiny", lora_dir=folder / "loras", ip_adapter=tiny_ip_adapter)
    return SDXLEngine(b1, r1, **common), SDXLEngine(b2, r2, speed="fast", **common)


def pixels(engine, prompt="a lighthouse keeper", **fields):
    return np.asarray(engine.render(RenderRequest(prompt, **(SMALL | fields)))[0].image, dtype=np.int16)


def test_fast_gives_the_standard_image_in_every_mode(engines, tmp_path):
    standard, fast = engines
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (90, 120, 60)).save(init)
    for fields in (dict(refiner="off"), dict(refiner="on"), dict(hr_scale=1.5, denoising_strength=0.5, refiner="off"), dict(init_image=str(init), strength=0.6, refiner="off")):
        assert np.abs(pixels(standard, **fields) - pixels(fast, **fields)).max() <= TOLERANCE, fields
    assert fast.base.unet.attn_processors and all(type(p).__name__.startswith("Fused") for p in fast.base.unet.attn_processors.values())


def test_a_lora_and_a_reference_run_unfused_and_leave_it_fused(engines, tmp_path):
    standard, fast = engines
    poster = tmp_path / "poster.png"
    Image.new("RGB", (80, 80), (200, 40, 30)).save(poster)
    for prompt, fields in (("a lighthouse keeper <lora:ink:1>", {}), ("a lighthouse keeper", dict(reference=str(poster), reference_scale=0.8))):
        assert np.abs(pixels(standard, prompt, refiner="off", **fields) - pixels(fast, prompt, refiner="off", **fields)).max() <= TOLERANCE, prompt
    # The LoRA took effect on the fast engine too, and the projections are fused again after it.
    assert np.abs(pixels(fast, "a lighthouse keeper <lora:ink:1>", refiner="off") - pixels(fast, refiner="off")).mean() > 0.5
    assert all(type(p).__name__.startswith("Fused") for p in fast.base.unet.attn_processors.values())


def test_the_infotext_and_lineage_say_how_it_ran(engines):
    standard, fast = engines
    quick = fast.render(RenderRequest("a quay", **SMALL))[0]
    assert parse_infotext(quick.infotext)[2]["Speed"] == "fast" and quick.lineage["speed"] == "fast"
    plain = standard.render(RenderRequest("a quay", **SMALL))[0]
    assert "Speed" not in parse_infotext(plain.infotext)[2] and plain.lineage["speed"] == "standard"


def test_fast_takes_bf16_on_gpus_that_have_it_when_the_dtype_is_auto():
    from imagegen.engines.sdxl_speed import dtype_word

    assert dtype_word("auto", "fast", "cuda:0", True) == "bf16" and dtype_word(None, "fast", "cuda", True) == "bf16"
    assert dtype_word("auto", "fast", "cuda", False) == "auto" and dtype_word("auto", "standard", "cuda", True) == "auto"
    assert dtype_word("fp16", "fast", "cuda", True) == "fp16" and dtype_word("auto", "fast", "cpu", True) == "auto"


def test_auto_is_standard_on_the_cpu_and_bad_speeds_are_refused(tmp_path, capsys):
    assert resolve("auto", "cpu") == "standard" and resolve("auto", "cuda:0") == "fast" and resolve("FAST", "cpu") == "fast"
    with pytest.raises(InvalidRequest, match="speed is one of auto, standard, fast"):
        resolve("warp", "cpu")
    assert main(["render", "x", "--engine", "preview", "--speed", "fast", "--output", str(tmp_path / "o")]) == 2
    assert "sdxl" in capsys.readouterr().err and not (tmp_path / "o").exists()
