"""The SDXL engine's speed setting: `standard` is stock diffusers; `fast` applies exact optimisations,
which change the arithmetic's order but not what is computed: the UNet's and VAE's attention
projections fused into one matrix (diffusers' fuse_qkv_projections) and channels_last memory for
their convolutions, and, with dtype auto on a GPU that has it, bf16 (so the VAE needs no fp32
upcast). `auto` is fast on a CUDA GPU, standard elsewhere (on the CPU the gain is small).

LoRAs and the IP-Adapter hook the attention's separate q, k and v projections, so a render with
either runs unfused (`unfused`) and the projections are fused again after it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import InvalidRequest
from ..settings import SPEEDS


def resolve(speed: str, device: str) -> str:
    """"standard" or "fast" for a speed setting on `device`."""
    speed = str(speed or "auto").strip().lower()
    if speed not in SPEEDS:
        raise InvalidRequest(f"speed is one of {', '.join(SPEEDS)} (got {speed!r})")
    if speed == "auto":
        return "fast" if str(device).startswith("cuda") else "standard"
    return speed


def dtype_word(dtype: str | None, speed: str, device: str, bf16_supported: bool) -> str:
    """The dtype setting a speed asks for: fast with `auto` on a GPU that has bf16 takes bf16 (the VAE then
    needs no fp32 upcast, as bf16 has fp32's range); every other case keeps the setting as given."""
    dtype = dtype or "auto"
    if speed == "fast" and dtype == "auto" and str(device).startswith("cuda") and bf16_supported:
        return "bf16"
    return dtype


def apply_fast(pipes: list[Any]) -> None:
    """Fuse each pipeline's attention projections and lay out its UNet and VAE channels_last."""
    import torch

    for pipe in pipes:
        pipe.fuse_qkv_projections()
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)


@contextmanager
def unfused(pipe: Any) -> Iterator[None]:
    """`pipe`'s UNet with its separate q, k and v projections for the block, fused again after it."""
    pipe.unfuse_qkv_projections(unet=True, vae=False)
    try:
        yield
    finally:
        pipe.fuse_qkv_projections(unet=True, vae=False)
