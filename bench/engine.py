"""keyart's SDXL engine against a bare diffusers pipeline on the same model, measured side by side.

Default: the tiny random-init model on the CPU (the engine's own overhead as a ratio).
`--full`: the real SDXL architecture at random weights (the compute of trained weights) on a CUDA
GPU, 1024x1024, 30 steps, CFG on, batch 1 and 4: seconds per image, images/s and TFLOP/s.
Each row also runs keyart at `--speed fast` (a second copy of the model: fusing changes it in place)
and prints its time, its ratio to the bare pipeline and how far its image is from standard's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/ itself off the path: its queue.py would shadow the standard library's (torch.fx imports it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# FLOPs of one SDXL image at 1024x1024: a UNet step at batch 2 (CFG) is 13.52 TFLOP, the VAE
# decode 10.47 TFLOP; both scale with the pixel count.
UNET_STEP_TFLOP = 13.52
VAE_DECODE_TFLOP = 10.47
SAMPLER = "DPM++ 2M"  # keyart's default (Karras schedule)


def full_sdxl(directory: Path, device: str, dtype):
    """SDXL base 1.0's architecture (UNet 2.6B, CLIP-L + bigG, VAE) at random init, on `device`."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from imagegen.tiny import write_tokenizer

    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer"))
    eos = tokenizer.get_vocab()["<|endoftext|>"]
    common = dict(vocab_size=49408, max_position_embeddings=77, bos_token_id=eos - 1, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(0)
    with torch.device(device):  # random init straight on the GPU: seconds, not minutes
        text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768, **common))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, hidden_act="gelu", projection_dim=1280, **common))
        unet = UNet2DConditionModel(
            sample_size=128,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(320, 640, 1280),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )
        vae = AutoencoderKL(
            block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=1024,
            scaling_factor=0.13025,
        )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.to(dtype=dtype)
    params = sum(p.numel() for p in unet.parameters())
    assert params > 2.5e9, f"the UNet should be SDXL-sized (2.57B parameters), got {params / 1e9:.2f}B"
    return pipe


def timed(fn, device: str, warmup: int, runs: int) -> list[float]:
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="real SDXL architecture, random weights (needs a CUDA GPU unless --device cpu)")
    parser.add_argument("--device", help="default: cuda with --full, else cpu")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"], help="with --full on a GPU (default fp16)")
    parser.add_argument("--size", type=int, help="square image size (default 1024 with --full, 64 otherwise)")
    parser.add_argument("--steps", type=int, help="sampling steps (default 30 with --full, 4 otherwise)")
    parser.add_argument("--batches", default="1,4", help="batch sizes to measure (default 1,4)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row; the median is reported (default 5)")
    args = parser.parse_args(argv)

    import torch

    from imagegen import RenderRequest
    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.engines.sdxl_load import keep_vae_safe
    from imagegen.samplers import make_scheduler
    from imagegen.tiny import tiny_sdxl

    device = args.device or ("cuda" if args.full else "cpu")
    size = args.size or (1024 if args.full else 64)
    steps = args.steps or (30 if args.full else 4)
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible to torch; run --full on a GPU machine, or add --device cpu with a small --size")
    if device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype if device != "cpu" else "fp32"]

    # 1. One model, shared by the bare pipeline and keyart's standard engine; a second, identical one for fast.
    def build():
        with tempfile.TemporaryDirectory() as tmp:
            made = full_sdxl(Path(tmp), device, dtype) if args.full else tiny_sdxl(tmp, refiner=False)[0]
        keep_vae_safe([made], dtype)
        made.to(device)
        made.set_progress_bar_config(disable=True)
        return made

    pipe = build()
    name = "sdxl-random-init" if args.full else "tiny-sdxl"
    engine, fast = SDXLEngine(pipe, model_name=name), SDXLEngine(build(), model_name=name, speed="fast")
    config = dict(pipe.scheduler.config)
    prompt = "the lighthouse keeper of Gullhaven watches a storm roll over the harbour at dusk"
    label = f"{'SDXL architecture, random weights' if args.full else 'tiny SDXL'}, {device} {str(dtype).removeprefix('torch.')}, {size}x{size}, {steps} steps, CFG 7, {SAMPLER} Karras"
    print(f"# {label}; median of {args.runs} after {args.warmup} warm-ups")
    print(f"{'batch':>5} {'bare s/img':>11} {'keyart s/img':>13} {'keyart/bare':>12} {'keyart img/s':>13} {'TFLOP/s':>9} {'fast s/img':>11} {'fast/bare':>10} {'fast vs std':>12}")

    for batch in (int(b) for b in args.batches.split(",")):
        request = RenderRequest(prompt, sampler=SAMPLER, num_inference_steps=steps, guidance_scale=7.0, width=size, height=size, seed=1, batch_size=batch, refiner="off")

        def bare():
            pipe.scheduler = make_scheduler(SAMPLER, "Karras", config)
            generators = [torch.Generator("cpu").manual_seed(1 + i) for i in range(batch)]
            pipe(prompt, num_inference_steps=steps, guidance_scale=7.0, width=size, height=size, num_images_per_prompt=batch, generator=generators, output_type="np")

        def keyart():
            engine.render(request)

        def keyart_fast():
            fast.render(request)

        # 2. Interleave the sides so drift (clocks, heat, other load) hits them alike.
        bare_times, keyart_times, fast_times = [], [], []
        for _ in range(args.runs):
            bare_times += timed(bare, device, args.warmup if not bare_times else 0, 1)
            keyart_times += timed(keyart, device, args.warmup if not keyart_times else 0, 1)
            fast_times += timed(keyart_fast, device, args.warmup if not fast_times else 0, 1)
        bare_s, keyart_s, fast_s = (statistics.median(t) / batch for t in (bare_times, keyart_times, fast_times))
        # How exact fast is: the largest pixel difference (of 255) from standard's image, same seed.
        import numpy as np

        ours, quick = (np.asarray(e.render(request)[0].image, dtype=np.int16) for e in (engine, fast))
        apart = int(np.abs(ours - quick).max())
        # 3. Achieved TFLOP/s from the published per-image count, scaled to this size and step count.
        scale = (size * size) / (1024 * 1024)
        tflop = (steps * UNET_STEP_TFLOP + VAE_DECODE_TFLOP) * scale
        achieved = f"{tflop / keyart_s:>9.1f}" if args.full else f"{'-':>9}"  # the count holds for SDXL only
        print(f"{batch:>5} {bare_s:>11.4f} {keyart_s:>13.4f} {keyart_s / bare_s:>12.3f} {1 / keyart_s:>13.3f} {achieved} {fast_s:>11.4f} {fast_s / bare_s:>10.3f} {apart:>9}/255")
    if device.startswith("cuda"):
        print(f"# peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB on {torch.cuda.get_device_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
