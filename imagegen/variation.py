"""Variation seeds: each image starts from noise between its seed's noise and its subseed's.

Compatible with A1111's "Variation seed" and "Variation strength" (the wiki's Features page,
"Variations": https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features): strength 0
is the seed's image, 1 starts from the variation seed's noise, and values between turn the noise
along the sphere from one to the other. The sampler's own noise (ancestral samplers) still comes
from the seed, so only a deterministic sampler at strength 1 gives exactly the variation seed's
image. torch is imported only when a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidRequest

# Noises whose strips point this nearly the same way (mean cosine) are interpolated on a straight
# line: sin(angle) is then too small to divide by (the same seed twice gives a cosine of 1).
PARALLEL = 0.9995


def slerp(t: float, a, b):
    """The noise a fraction `t` of the way from `a` (t=0) to `b` (t=1) along the sphere.

    `a` and `b` are one image's noise, shaped (channels, height, width). Each (channel, column)
    strip, a vector along dim 1 (height), turns on its own great circle from a's strip to b's, so
    the noise keeps about the length of a Gaussian draw where a straight line would shrink it.
    t=0 gives `a` exactly and t=1 `b`; noises closer than PARALLEL give the straight line from `a`
    to `b`.
    """
    import torch

    # 1. The ends are the noises themselves, bit for bit.
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    # 2. Per strip, the cosine of the angle between a and b: the dot product of their unit vectors.
    unit_a = a / a.norm(dim=1, keepdim=True)
    unit_b = b / b.norm(dim=1, keepdim=True)
    cos = (unit_a * unit_b).sum(dim=1, keepdim=True)
    if cos.mean() > PARALLEL:
        return torch.lerp(a, b, t)
    # 3. The angle from its sine and cosine; the sine is the length of b's unit strip at right
    # angles to a's. atan2 stays accurate near 0 and pi, where acos(cos) does not.
    sin = (unit_b - cos * unit_a).norm(dim=1, keepdim=True)
    angle = torch.atan2(sin, cos)
    # 4. The standard spherical weights: sin((1-t)*angle) on a, sin(t*angle) on b, over sin(angle).
    return (torch.sin((1 - t) * angle) * a + torch.sin(t * angle) * b) / torch.sin(angle)


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
