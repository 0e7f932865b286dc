"""A1111's variation seed: each image's initial noise is slerp(strength, noise(seed), noise(subseed)).

Strength 0 is the seed's image, 1 the subseed's starting noise; the sampler's own noise (ancestral
samplers) still comes from the seed, as in A1111. torch is imported only when a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidRequest

# A1111 falls back to a straight line when the two noises point almost the same way: acos and
# 1/sin(omega) lose all precision there (the same seed twice gives dot == 1 exactly).
PARALLEL = 0.9995


def slerp(t: float, a, b):
    """Spherical interpolation from `a` (t=0) to `b` (t=1), as A1111's `slerp(val, low, high)`.

    A1111 calls it on one image's noise, shaped (channels, height, width), and normalises along
    dim 1 (height), so each (channel, column) strip is interpolated on its own sphere; keeping that
    makes our starting noise A1111's own (with its CPU random source). t=0 gives `a` exactly, t=1 `b`.
    """
    import torch

    a_norm = a / torch.norm(a, dim=1, keepdim=True)
    b_norm = b / torch.norm(b, dim=1, keepdim=True)
    dot = (a_norm * b_norm).sum(1)
    if dot.mean() > PARALLEL:
        # A1111 writes `low * val + high * (1 - val)` here, backwards; that only matters when the
        # two noises differ, which they then hardly do. This is the line from a to b.
        return a * (1 - t) + b * t
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - t) * omega) / so).unsqueeze(1) * a + (torch.sin(t * omega) / so).unsqueeze(1) * b


def initial_latents(
    pipe: Any,
    seeds: Sequence[int],
    subseeds: Sequence[int],
    strength: float,
    height: int,
    width: int,
    dtype: Any = None,
    device: Any = None,
    *,
    generators: Sequence[Any] | None = None,
):
    """The unscaled starting latents of a batch, shaped (len(seeds), C, height/8, width/8), for `latents=`.

    Image i starts from slerp(strength, noise(seeds[i]), noise(subseeds[i])). Noise is drawn as
    diffusers' `prepare_latents` draws it: float32 on a CPU generator per image (a half-precision
    draw gives the same numbers), then cast to `dtype` and moved to `device`. Do not scale it:
    with `latents=` given, `prepare_latents` multiplies by `scheduler.init_noise_sigma` itself.

    `dtype` must be the pipeline's prompt-embedding dtype (text_encoder_2's, else the UNet's; the
    default), since diffusers only moves given latents to the device. Pass the same `generators`
    (seeded with `seeds`) as the pipeline's `generator=`: the seed noise is drawn from them, leaving
    them where the pipeline's own draw would, so ancestral samplers continue the same random stream.
    """
    import torch

    # 1. Check the batch: one seed, one subseed (and one generator) per image.
    if len(seeds) != len(subseeds) or not seeds:
        raise InvalidRequest(f"one subseed per seed is needed (got {len(seeds)} seeds and {len(subseeds)} subseeds)")
    if generators is not None and len(generators) != len(seeds):
        raise InvalidRequest(f"one generator per seed is needed (got {len(seeds)} seeds and {len(generators)} generators)")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise InvalidRequest(f"variation seed strength must be between 0 and 1 (got {strength!r}); 0.05-0.3 gives close variations")
    # 2. The shape and dtype prepare_latents uses.
    scale = pipe.vae_scale_factor
    shape = (pipe.unet.config.in_channels, int(height) // scale, int(width) // scale)
    if dtype is None:
        encoder = getattr(pipe, "text_encoder_2", None)
        dtype = encoder.dtype if encoder is not None else pipe.unet.dtype
    device = pipe._execution_device if device is None else device
    # 3. Per image: the seed's noise from its generator, the subseed's from a fresh one, slerped in float32.
    generators = generators or [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noises = []
    for generator, subseed in zip(generators, subseeds):
        noise = torch.randn(shape, generator=generator, dtype=torch.float32)
        subnoise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(int(subseed)), dtype=torch.float32)
        noises.append(slerp(float(strength), noise, subnoise))
    return torch.stack(noises).to(device=device, dtype=dtype)
