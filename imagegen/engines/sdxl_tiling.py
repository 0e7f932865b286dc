"""Seamless tiling (A1111's Tiling): for one render, every 2-D convolution of the UNets and the VAE
pads by wrapping around the opposite edge instead of with zeros, so the image repeats without a
seam both ways.

With nothing else in SDXL that knows where an edge is (attention has no positions; GroupNorm
reads the whole map), the denoiser then treats its canvas as a torus: shifting the starting noise
round by whole latent pixels shifts the render the same way (tests/test_tiling.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

WRAP = "circular"


@contextmanager
def tiled(models: Iterable[Any], on: bool) -> Iterator[None]:
    """While inside, the Conv2d layers of `models` wrap around (when `on`); their padding is put back after."""
    if not on:
        yield
        return
    import torch

    seen: set[int] = set()
    convs = []
    for model in models:
        for module in model.modules() if model is not None else ():
            if isinstance(module, torch.nn.Conv2d) and id(module) not in seen:  # base and refiner share the VAE
                seen.add(id(module))
                convs.append((module, module.padding_mode))
    for conv, _ in convs:
        conv.padding_mode = WRAP
    try:
        yield
    finally:
        for conv, mode in convs:
            conv.padding_mode = mode
