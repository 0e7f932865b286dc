"""keyart's SDXL engine in each speed setting against stock diffusers on the same model, side by side.

Rows: `stock` (a bare diffusers pipeline in --dtype, default fp16), keyart `standard` (the same
pipeline through the engine), `fast` (exact optimisations; bf16 and torch.compile on a GPU) and
`turbo` (fast plus step caching and fp8 linears where the GPU has them), each at every batch size:
seconds per image, images/s, TFLOP/s (of the exact model's work), peak GPU memory, the first
call's time apart (torch.compile's warm-up is in it), the ratio to stock, and how far the image is
from the exact one at the same seed (fast against standard, turbo against fast: largest and mean
difference in levels of 255). Then, on a GPU, one UNet step's attention under each of PyTorch's
attention kernels (SDXL's UNet runs diffusers' SDPA processors, whose kernel PyTorch picks), and
the peak memory of base + refiner in each memory mode (normal, medvram, lowvram).

Default: the tiny random-init model on the CPU, batches 1 and 2 (the engine's own overhead as
ratios; compile stays off on the CPU unless --compile on). `--full`: the SDXL architecture at
random weights (the compute of trained weights) on a CUDA GPU, 1024x1024, 30 steps, CFG 7,
batches 1 and 8; one command, sized to finish in under ten minutes on an H100/H200.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

# bench/ itself off the path: its queue.py would shadow the standard library's (torch.fx imports it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# FLOPs of one SDXL image at 1024x1024: a UNet step at batch 2 (CFG) is 13.52 TFLOP, the VAE
# decode 10.47 TFLOP; both scale with the pixel count.
UNET_STEP_TFLOP = 13.52
VAE_DECODE_TFLOP = 10.47
SAMPLER = "DPM++ 2M"  # keyart's default (Karras schedule)
WORDS: dict = {}  # torch dtype -> its word, filled once torch is imported


def timed(fn, device: str) -> float:
    """Seconds for one call, the GPU's queued work included."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def versions() -> str:
    """The libraries the figures depend on, for the results file: python, torch (and its CUDA), diffusers, transformers, torchao."""
    import importlib.metadata as md
    import platform

    import torch

    found = [f"python {platform.python_version()}", f"torch {torch.__version__}" + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else "")]
    for name in ("diffusers", "transformers", "torchao"):
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            found.append(f"no {name}")
    return ", ".join(found)


def apart(a, b) -> str:
    """The largest and mean difference of two images, in levels of 255."""
    import numpy as np

    d = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    return f"{int(d.max())}/{d.mean():.2f}"


def describe(tuning) -> str:
    """What a speed did, in a few words: "compiled (inductor), step cache 3, fp8 linears"."""
    parts = [f"compiled ({tuning.compiled})" if tuning.compiled else "not compiled"]
    if tuning.step_cache:
        parts.append(f"step cache {tuning.step_cache}")
    if tuning.fp8 is not None:
        parts.append("fp8 linears" if tuning.fp8 == "linear" else "no fp8 (see the note)")
    return ", ".join(parts)


def release(gpu: bool) -> None:
    """Free what the last models held, and start the peak count afresh."""
    import torch

    gc.collect()
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> str:
    import torch

    return f"{torch.cuda.max_memory_allocated() / 2**30:.1f}" if device.startswith("cuda") else "-"


# SDXL's transformer blocks at 1024x1024: (blocks, heads, tokens); heads of 64 channels, text of 77 tokens.
ATTENTION_LEVELS = ((10, 10, 4096), (60, 20, 1024))


def attention_kernels(device: str, dtype, size: int, batch: int, repeats: int = 10) -> None:
    """Milliseconds of one UNet step's attention (self and cross, at CFG's doubled batch) under each of
    PyTorch's scaled-dot-product kernels; "default" is PyTorch's own choice, which the engine uses."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    scale = (size * size) / (1024 * 1024)
    shapes = [(blocks, heads, max(1, int(tokens * scale))) for blocks, heads, tokens in ATTENTION_LEVELS]
    made = torch.Generator(device="cpu").manual_seed(0)

    def tensors(heads, tokens, kv_tokens):
        q = torch.randn(2 * batch, heads, tokens, 64, generator=made).to(device, dtype)
        k, v = (torch.randn(2 * batch, heads, kv_tokens, 64, generator=made).to(device, dtype) for _ in range(2))
        return q, k, v

    inputs = [(blocks, tensors(heads, tokens, tokens), tensors(heads, tokens, 77)) for blocks, heads, tokens in shapes]

    def step():
        for blocks, self_attention, cross_attention in inputs:
            for _ in range(blocks):
                torch.nn.functional.scaled_dot_product_attention(*self_attention)
                torch.nn.functional.scaled_dot_product_attention(*cross_attention)

    print(f"\n# attention of one UNet step at {size}x{size}, batch {batch} (x2 for CFG), {WORDS.get(dtype, dtype)}: each kernel of torch's SDPA")
    print(f"{'kernel':<10} {'ms/step':>8} {'vs default':>11}")
    kernels = {"default": None, "flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    base = None
    for word, kernel in kernels.items():
        try:
            with sdpa_kernel(kernel) if kernel is not None else nullcontext():
                step()  # warm-up, and the first call finds out whether the kernel takes these shapes
                ms = 1000 * statistics.median(timed(step, device) for _ in range(repeats))
        except RuntimeError as exc:  # "No available kernel": this kernel does not run these inputs here
            print(f"{word:<10} {'-':>8} {'-':>11}  not available: {str(exc).splitlines()[0][:80]}")
            continue
        base = base or ms
        print(f"{word:<10} {ms:>8.2f} {ms / base:>10.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="real SDXL architecture, random weights (needs a CUDA GPU unless --device cpu)")
    parser.add_argument("--device", help="default: cuda with --full, else cpu")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"], help="stock's and standard's dtype on a GPU (default fp16)")
    parser.add_argument("--size", type=int, help="square image size (default 1024 with --full, 64 otherwise)")
    parser.add_argument("--steps", type=int, help="sampling steps (default 30 with --full, 4 otherwise)")
    parser.add_argument("--batches", help="batch sizes to measure (default 1,8 with --full, 1,2 otherwise)")
    parser.add_argument("--speeds", default="standard,fast,turbo", help="keyart speeds beside stock (default standard,fast,turbo)")
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"], help="for fast and turbo (default auto: on a GPU)")
    parser.add_argument("--runs", type=int, help="timed runs per row after the first call; the median is reported (default 2 with --full, 3 otherwise)")
    parser.add_argument("--save", action="store_true", help="also write what is printed to bench/results-<device>.md (the results file to commit)")
    parser.add_argument("--memory-modes", default=None, help="memory modes to measure base + refiner in (default normal,medvram,lowvram on a GPU; none on the CPU)")
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, default=None, help="time each of PyTorch's attention kernels on the UNet's attention shapes (default: on a GPU)")
    args = parser.parse_args(argv)

    import torch
    from diffusers.utils import logging as diffusers_logging

    from imagegen import RenderRequest
    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.engines.sdxl_load import keep_vae_safe, place
    from imagegen.samplers import make_scheduler
    from bench.results import results_path, start
    from bench.sdxl_full import full_refiner, full_sdxl
    from imagegen.tiny import tiny_sdxl

    diffusers_logging.set_verbosity_error()
    device = args.device or ("cuda" if args.full else "cpu")
    gpu = device.startswith("cuda")
    size, steps = args.size or (1024 if args.full else 64), args.steps or (30 if args.full else 4)
    batches = [int(b) for b in (args.batches or ("1,8" if args.full else "1,2")).split(",")]
    runs = args.runs or (2 if args.full else 3)
    speeds = [s.strip() for s in args.speeds.split(",") if s.strip()]
    if gpu and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible to torch; run --full on a GPU machine, or add --device cpu with a small --size")
    words = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    WORDS.update({value: key for key, value in words.items()})
    dtype = words[args.dtype] if gpu else torch.float32
    # fast and turbo take bf16 where the GPU has it, as `--dtype auto` does in the engine.
    quick_dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else dtype

    def build(dtype):
        with tempfile.TemporaryDirectory() as tmp:
            made = full_sdxl(Path(tmp), device, dtype) if args.full else tiny_sdxl(tmp, refiner=False)[0]
        keep_vae_safe([made], dtype)
        made.to(device)
        made.set_progress_bar_config(disable=True)
        return made

    # 1. Stock diffusers and keyart standard share one model; fast and turbo get a copy each (they change it in place).
    name = "sdxl-random-init" if args.full else "tiny-sdxl"
    pipe = build(dtype)
    config = dict(pipe.scheduler.config)
    engines = {"standard": SDXLEngine(pipe, model_name=name, speed="standard")}
    for speed in speeds:
        if speed != "standard":
            engines[speed] = SDXLEngine(build(quick_dtype), model_name=name, speed=speed, compile=args.compile)
    prompt = "the lighthouse keeper of Gullhaven watches a storm roll over the harbour at dusk"
    where = f"{torch.cuda.get_device_name()} " if gpu else ""
    if args.save:
        start(results_path(torch.cuda.get_device_name() if gpu else "cpu"))
    print(f"# {'SDXL architecture, random weights' if args.full else 'tiny SDXL'} on {where}{device}, {size}x{size}, {steps} steps, CFG 7, {SAMPLER} Karras")
    print(f"# {versions()}; stock and standard in {args.dtype if gpu else 'fp32'}, {', '.join(s for s in speeds if s != 'standard') or 'no other speed'} in {WORDS[quick_dtype]}; median of {runs} after the first call")
    print(f"{'row':<9} {'batch':>5} {'first s':>8} {'s/img':>8} {'img/s':>7} {'TFLOP/s':>8} {'peak GiB':>9} {'vs stock':>9} {'apart':>10}  how")
    scale = (size * size) / (1024 * 1024)
    tflop = (steps * UNET_STEP_TFLOP + VAE_DECODE_TFLOP) * scale  # the exact model's work per image

    for batch in batches:
        request = RenderRequest(prompt, sampler=SAMPLER, num_inference_steps=steps, guidance_scale=7.0, width=size, height=size, seed=1, batch_size=batch, refiner="off")

        def stock():
            pipe.scheduler = make_scheduler(SAMPLER, "Karras", config)
            generators = [torch.Generator("cpu").manual_seed(1 + i) for i in range(batch)]
            pipe(prompt, num_inference_steps=steps, guidance_scale=7.0, width=size, height=size, num_images_per_prompt=batch, generator=generators, output_type="np")

        calls = {"stock": stock} | {speed: (lambda e=engine: e.render(request)) for speed, engine in engines.items()}
        # 2. The first call apart (compile happens there), then the runs interleaved so drift hits every row alike.
        first, times, peaks = {}, {row: [] for row in calls}, {}
        for row, fn in calls.items():
            first[row] = timed(fn, device)
        for _ in range(runs):
            for row, fn in calls.items():
                if gpu:
                    torch.cuda.reset_peak_memory_stats()
                times[row].append(timed(fn, device))
                peaks[row] = peak_gib(device)
        # 3. How exact each row is: fast against standard, turbo against fast (same seed, first image).
        images = {speed: engine.render(request)[0].image for speed, engine in engines.items()}
        against = {"fast": "standard", "turbo": "fast" if "fast" in images else "standard"}
        stock_s = statistics.median(times["stock"]) / batch
        for row in calls:
            per = statistics.median(times[row]) / batch
            tuning = engines[row].tuning if row in engines else None
            how = "diffusers as it comes" if tuning is None else describe(tuning)
            diff = apart(images[against[row]], images[row]) if row in against and against[row] in images else "-"
            achieved = f"{tflop / per:>8.1f}" if args.full else f"{'-':>8}"  # the count holds for SDXL only
            print(f"{row:<9} {batch:>5} {first[row]:>8.2f} {per:>8.4f} {1 / per:>7.3f} {achieved} {peaks[row]:>9} {per / stock_s:>8.3f}x {diff:>10}  {how}")

    turbo = engines.get("turbo")
    if turbo is not None and turbo.tuning.fp8 not in (None, "linear"):
        print(f"# note: turbo ran without fp8 linears: {turbo.tuning.fp8}")

    # 4. Attention kernels on the UNet's own shapes: which one PyTorch's choice is, and how the others compare.
    if args.attention if args.attention is not None else gpu:
        attention_kernels(device, quick_dtype, size, batch=1)

    # 5. Memory modes: base + refiner at this size, one image, a few steps (the peak does not grow with steps).
    modes = args.memory_modes if args.memory_modes is not None else ("normal,medvram,lowvram" if gpu else "")
    modes = [m.strip() for m in modes.split(",") if m.strip()]
    if modes:
        engines.clear()
        del pipe
        release(gpu)
        print(f"\n# base + refiner, {size}x{size}, 4 steps, one image: peak GPU memory per memory mode")
        print(f"{'memory':<9} {'peak GiB':>9} {'s/img':>8}")
        for mode in modes:
            if args.full:
                base = build(dtype)
                refiner = full_refiner(base, device, dtype)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    base, refiner = tiny_sdxl(tmp)
                base.set_progress_bar_config(disable=True)
            pipes = [p for p in (base, refiner) if p is not None]
            place(pipes, device, mode)
            engine = SDXLEngine(base, refiner, model_name=name, memory=mode, speed="standard")
            release(gpu)
            seconds = timed(lambda: engine.render(RenderRequest(prompt, num_inference_steps=4, width=size, height=size, seed=1, refiner="on" if refiner else "off")), device)
            print(f"{mode:<9} {peak_gib(device):>9} {seconds:>8.2f}")
            del engine, base, refiner, pipes
            release(gpu)
    return 0


if __name__ == "__main__":
    from bench.results import finish

    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C, or bench/gpu.sh's time limit: keep what was measured
        finish("interrupted")
        sys.exit(130)
    finally:
        finish()
    sys.exit(code)
