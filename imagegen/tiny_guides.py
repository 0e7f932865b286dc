"""Tiny random-init models for guided generation, built from configs beside the tiny SDXL (imagegen.tiny):
ControlNets shaped after its UNet, for tests and benchmarks. Nothing is downloaded.

A real ControlNet starts from zero convolutions (its output is nothing until trained); these are
given small random weights instead, so a control map changes the image as a trained one would.
"""

from __future__ import annotations

from pathlib import Path


def tiny_controlnet(unet, *, seed: int = 0, scale: float = 0.2):
    """A ControlNet over `unet`'s shape and weights, its zero convolutions drawn at random (`scale` wide)."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    with torch.no_grad():
        outputs = [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]
        for layer in outputs:
            layer.weight.uniform_(-scale, scale)
            layer.bias.uniform_(-scale, scale)
    return net.to(unet.dtype)


def save_tiny_controlnets(directory: str | Path, unet, types: tuple[str, ...] = ("canny", "softedge", "lineart", "depth", "pose")) -> Path:
    """A KEYART_CONTROLNET_DIR: one diffusers folder per type, each net its own (seeded by position)."""
    directory = Path(directory)
    for seed, kind in enumerate(types):
        tiny_controlnet(unet, seed=seed + 1).save_pretrained(directory / kind)
    return directory
