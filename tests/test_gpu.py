"""The engine's GPU paths on a CUDA GPU, with the tiny SDXL at SDXL's own widths for its two levels
(320 and 640 channels, heads of 64): compiled `fast` against `standard` and LoRA changes without a
recompile, fused weights that cost no GPU memory, `turbo`'s fp8 linears and a LoRA over them, the
memory modes, and no synchronisation from keyart's code in the denoising loop.

Marked `gpu` and skipped without a CUDA GPU, so `make test` passes them by on the CPU. On a GPU
machine: `pytest -m gpu tests/test_gpu.py` (or `bench/gpu.sh check`); `KEYART_TEST_DEVICE=cpu`
runs the parts the CPU can, to check the checks themselves.
"""

import copy
import gc
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from imagegen import RenderRequest
from imagegen.engines.sdxl import SDXLEngine

DEVICE = os.environ.get("KEYART_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
CUDA = bool(DEVICE) and DEVICE.startswith("cuda")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE is None, reason="needs a CUDA GPU (KEYART_TEST_DEVICE=cpu runs what the CPU can)")]
cuda_only = pytest.mark.skipif(not CUDA, reason="a CUDA path")
DTYPE = torch.bfloat16 if CUDA and torch.cuda.is_bf16_supported() else (torch.float16 if CUDA else torch.float32)
# Levels of 255. In bf16 fusing and compiling reorder (and inductor upcasts) sums that round far
# coarser than fp32's; the mean keeps the check tight where the largest difference cannot be.
TOLERANCE, MEAN = (8, 1.0) if CUDA else (2, 0.5)
SMALL = dict(num_inference_steps=4, width=128, height=128, seed=5, refiner="off")
PROMPT = "a lighthouse keeper"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(the wide tiny base on the CPU, its LoRA folder): each engine takes a copy (speeds change models in place)."""
    from imagegen.tiny import tiny_sdxl
    from imagegen.tiny_lora import save_tiny_lora

    folder = tmp_path_factory.mktemp("gpu")
    base, _ = tiny_sdxl(folder, refiner=False, wide=True)
    for name, seed in (("ink", 1), ("pen", 2)):
        save_tiny_lora(folder / "loras" / f"{name}.safetensors", base, seed=seed)
    return base, folder / "loras"


def engine(made, speed: str, *, memory: str = "normal", **options) -> SDXLEngine:
    from imagegen.engines.sdxl_load import place

    base = copy.deepcopy(made[0]).to(dtype=DTYPE)
    place([base], DEVICE, memory)
    return SDXLEngine(base, model_name="wide", memory=memory, speed=speed, lora_dir=made[1], **options)


def pixels(engine: SDXLEngine, prompt: str = PROMPT, **fields) -> np.ndarray:
    return np.asarray(engine.render(RenderRequest(prompt, **(SMALL | fields)))[0].image, dtype=np.int16)


def close(a: np.ndarray, b: np.ndarray) -> bool:
    difference = np.abs(a - b)
    return difference.max() <= TOLERANCE and difference.mean() <= MEAN


def test_compiled_fast_gives_standards_image_and_a_lora_change_does_not_recompile(made, tmp_path):
    standard = engine(made, "standard")
    fast = engine(made, "fast", compile="on", compile_cache=tmp_path / "kernels")
    assert fast.tuning.compiled == "inductor"
    assert close(pixels(standard), pixels(fast))
    with torch.compiler.set_stance("fail_on_recompile"):
        for prompt in (f"{PROMPT} <lora:ink:1>", f"{PROMPT} <lora:pen:0.7>", PROMPT):
            assert close(pixels(standard, prompt), pixels(fast, prompt)), prompt
    assert np.abs(pixels(fast, f"{PROMPT} <lora:ink:1>") - pixels(fast)).mean() > 0.5  # the LoRA took effect


@cuda_only
def test_fused_weights_cost_no_gpu_memory(made):
    gc.collect()  # the last test's compiled engine sits in a reference cycle: gone now, not mid-count
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    standard = engine(made, "standard")
    held_standard = torch.cuda.memory_allocated() - before
    fast = engine(made, "fast", compile="off")
    held_fast = torch.cuda.memory_allocated() - before - held_standard
    assert abs(held_fast - held_standard) < 2**20, (held_standard, held_fast)  # within a MiB: no copy of q, k and v
    del standard, fast


@cuda_only
def test_turbo_runs_fp8_linears_on_fp8_gpus_and_a_lora_takes_effect_over_them(made):
    from imagegen.engines.sdxl_fp8 import unavailable
    from imagegen.metadata import parse_infotext

    if unavailable(DEVICE) is not None:
        pytest.skip(unavailable(DEVICE))
    fast, turbo = engine(made, "fast", compile="off"), engine(made, "turbo", compile="off")
    assert turbo.tuning.fp8 == "linear"
    image = turbo.render(RenderRequest(PROMPT, **SMALL))[0]
    assert parse_infotext(image.infotext)[2]["FP8"] == "linear"
    ours = np.asarray(image.image, dtype=np.int16)
    assert np.abs(ours - pixels(fast)).mean() < 40  # fp8 and the step cache move the image, not wreck it
    assert np.abs(pixels(turbo, f"{PROMPT} <lora:ink:1>") - ours).mean() > 0.5
    assert not any(turbo.base.get_list_adapters().values())


@cuda_only
@pytest.mark.parametrize("speed", ["standard", "fast"])
def test_medvram_gives_the_normal_image(made, speed):
    normal, offloaded = engine(made, speed, compile="off"), engine(made, speed, memory="medvram", compile="off")
    assert close(pixels(normal, f"{PROMPT} <lora:ink:1>"), pixels(offloaded, f"{PROMPT} <lora:ink:1>"))


@cuda_only
def test_lowvram_renders_in_standard(made):
    lowvram = engine(made, "auto", memory="lowvram")
    assert lowvram.speed == "standard"
    assert close(pixels(engine(made, "standard")), pixels(lowvram))


@cuda_only
@pytest.mark.parametrize("speed", ["standard", "fast", "turbo"])
def test_keyarts_code_adds_no_synchronisation_to_the_denoising_loop(made, speed):
    # torch warns at each operation that makes the host wait for the GPU; the first step's progress
    # report turns the warnings on and the last one turns them off, so only the loop is watched.
    quick = engine(made, speed, compile="off")
    steps = SMALL["num_inference_steps"]

    def progress(done: int, total: int) -> None:
        torch.cuda.set_sync_debug_mode("warn" if done < total else "default")

    package = os.path.realpath(Path(__file__).parents[1] / "imagegen")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            quick.render(RenderRequest(f"[{PROMPT}:a storm:0.5] <lora:ink:1>", **(SMALL | dict(num_inference_steps=steps))), progress=progress)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{os.path.realpath(w.filename)}:{w.lineno}" for w in seen if "synchroniz" in str(w.message)]
    print(f"{speed}: {len(syncs)} synchronising call(s) in the loop", *sorted(set(syncs)), sep="\n  ")  # for the log: diffusers' own, if any
    ours = [where for where in syncs if where.startswith(package + os.sep)]
    assert ours == [], ours
