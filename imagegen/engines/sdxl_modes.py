"""The SDXL engine's passes: text to image, img2img/inpaint (outpaint is an inpaint of a grown
canvas), and the hires fix's upscale and second pass; each with the refiner's hand-off.

The img2img and inpaint pipelines are built from the base pipeline's own models: nothing reloads.
`canvas` prepares the pixels; these functions only run diffusers. torch is imported in functions.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from typing import Any

from ..canvas import Prepared, hires_size
from ..request import RenderRequest
from . import Progress
from .sdxl_schedule import TENSOR_INPUTS


def derived_pipe(base, kind: str):
    """An img2img or inpaint pipeline over `base`'s models (same objects, same devices and hooks).

    Built with the constructor rather than `from_pipe`, which casts every shared model to one dtype
    (and so would undo an fp32 VAE kept beside an fp16 UNet). SDXL's base UNet has 4 input channels;
    diffusers' inpaint pipeline then blends the original latents back outside the mask each step.
    """
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline

    cls = {"img2img": StableDiffusionXLImg2ImgPipeline, "inpaint": StableDiffusionXLInpaintPipeline}[kind]
    pipe = cls(
        **base.components,
        force_zeros_for_empty_prompt=base.config.force_zeros_for_empty_prompt,
        add_watermarker=getattr(base, "watermark", None) is not None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pass_steps(request: RenderRequest) -> tuple[int, int]:
    """Denoising steps per batch in the first and the hires pass: img2img runs steps x strength."""
    steps = request.num_inference_steps
    first = steps if request.init_image is None else int(steps * request.strength)
    second = int((request.hr_second_pass_steps or steps) * request.denoising_strength) if request.hr_scale > 1 else 0
    return first, second


def schedule_steps(request: RenderRequest) -> tuple[int, int]:
    """The steps each pass lays the prompt schedule over: those it runs (at least one)."""
    first, second = pass_steps(request)
    return max(first, 1), max(second, 1)


def run_batch(engine, request: RenderRequest, prepared: Prepared | None, common: dict[str, Any], use_refiner: bool, span, prompts, latents=None, *, guidance=None):
    """One batch's latents after every pass (decode them with `decode`), before any paste-back.

    `common` holds the kwargs every pipeline call shares (guidance, generators); `prompts`
    (sdxl_schedule.RenderPrompts) each pass's conditioning. `span(pass_index, start, end)` makes
    the progress callback for a fraction of a pass. `latents` is the first pass's starting noise (a
    variation seed's), else each generator draws its own. `guidance` (sdxl_control.Guidance) is the
    first pass's ControlNet units, when the request has any.
    """
    steps = request.num_inference_steps
    # 1. The first pass: text to image, or img2img/inpaint from the prepared init image.
    if prepared is None:
        latents = text_to_image(engine, request, common, use_refiner, lambda a, b: span(0, a, b), (prompts.first, prompts.first_refiner), latents, guidance)
    else:
        batch = len(common["generator"])
        image: Any = [prepared.image] * batch  # one copy per image: each is encoded with its own generator
        if prepared.enlarge_latents:
            image = enlarge_latents(engine, prepared.image, (request.width, request.height), batch)
        latents = image_to_image(
            engine, request, common, image=image, mask=prepared.mask, strength=request.strength, steps=steps,
            use_refiner=use_refiner, span=lambda a, b: span(0, a, b), prompts=(prompts.first, prompts.first_refiner), guidance=guidance,
        )  # fmt: skip
    if request.hr_scale == 1:
        return latents
    # 2. The hires fix: upscale (the latents, or the decoded pixels by Lanczos), then img2img at the new size.
    size = hires_size(request.width, request.height, request.hr_scale)
    if request.hr_upscaler == "latent":
        import torch

        factor = engine.base.vae_scale_factor
        upscaled: Any = torch.nn.functional.interpolate(latents, size=(size[1] // factor, size[0] // factor), mode="bilinear", antialias=False)
    else:
        from PIL import Image

        upscaled = [im.resize(size, Image.Resampling.LANCZOS) for im in engine.base.image_processor.numpy_to_pil(decode(engine, latents))]
    return image_to_image(
        engine, request, common, image=upscaled, mask=None, strength=request.denoising_strength,
        steps=request.hr_second_pass_steps or steps, use_refiner=use_refiner, span=lambda a, b: span(1, a, b),
        prompts=(prompts.hires, prompts.hires_refiner),
    )  # fmt: skip


def decode(engine, latents):
    """Latents to a numpy batch (batch, height, width, 3) in 0..1, in the VAE's own dtype.

    Done here rather than in the pipelines: diffusers 0.42 decodes fp16 latents with an fp32 VAE
    (keep_vae_safe's) without casting them, which fails ("Input type (Half) and bias type (float)").
    """
    import torch

    base = engine.base
    vae = base.vae
    latents = latents.to(vae.dtype)
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        shape = (1, latents.shape[1], 1, 1)
        latents = latents * torch.tensor(std).view(shape).to(latents) / vae.config.scaling_factor + torch.tensor(mean).view(shape).to(latents)
    else:
        latents = latents / vae.config.scaling_factor
    with torch.no_grad():
        image = vae.decode(latents, return_dict=False)[0]
    if getattr(base, "watermark", None) is not None:
        image = base.watermark.apply_watermark(image)
    return base.image_processor.postprocess(image, output_type="np")


def text_to_image(engine, request: RenderRequest, common: dict[str, Any], use_refiner: bool, span, prompts, latents=None, guidance=None):
    """The base, then the refiner on the base's latents from `refiner_switch_at` on (ensemble of experts).

    `prompts` is the pass's (base, refiner) conditioning; the refiner takes the schedule up from
    the steps the base ran. With `guidance` the base runs as diffusers' ControlNet pipeline.
    """
    base_prompts, refiner_prompts = prompts
    switch = request.refiner_switch_at if use_refiner else 1.0
    pipe = engine.base if guidance is None else engine.pipe("txt2img", request, guidance)
    with guidance.watched(pipe) if guidance is not None else nullcontext():
        latents = pipe(
            **common,
            **base_prompts.kwargs(0),
            **(guidance.kwargs("image") if guidance is not None else {}),
            latents=latents,
            num_inference_steps=request.num_inference_steps,
            width=request.width,
            height=request.height,
            denoising_end=switch if use_refiner else None,
            output_type="latent",
            callback_on_step_end=base_prompts.callback(0, span(0.0, switch)),
            callback_on_step_end_tensor_inputs=TENSOR_INPUTS,
        ).images
    if use_refiner:
        done = base_prompts.steps_run(pipe)
        latents = engine.refiner(
            **common,
            **refiner_prompts.kwargs(done),
            num_inference_steps=request.num_inference_steps,
            image=latents,
            denoising_start=switch,
            output_type="latent",
            callback_on_step_end=refiner_prompts.callback(done, span(switch, 1.0)),
            callback_on_step_end_tensor_inputs=TENSOR_INPUTS,
        ).images
    return latents


def image_to_image(engine, request: RenderRequest, common, *, image, mask, strength: float, steps: int, use_refiner: bool, span, prompts, guidance=None):
    """img2img (or inpaint, with a mask) at `strength`, as latents; the refiner takes the end of the schedule.

    The hand-off point is where `refiner_switch_at` of the steps actually run has passed: img2img
    starts at `strength` of the noise, so the switch is 1 - strength x (1 - refiner_switch_at).
    `prompts` is the pass's (base, refiner) conditioning, laid over the steps this pass runs. With
    `guidance`, diffusers' ControlNet inpaint pipeline runs it; img2img as an inpaint of the whole picture.
    """
    base_prompts, refiner_prompts = prompts
    if guidance is not None:
        if mask is None:  # every pixel repainted: the inpaint pipeline's step is img2img's
            from PIL import Image

            mask = Image.new("L", (request.width, request.height), 255)
        pipe = engine.pipe("inpaint", request, guidance)
    else:
        pipe = engine.pipe("inpaint" if mask is not None else "img2img", request)
    kwargs: dict[str, Any] = dict(common, image=image, strength=strength, num_inference_steps=steps, output_type="latent")
    if mask is not None:
        kwargs |= {"mask_image": [mask] * len(common["generator"]), "width": mask.width, "height": mask.height}
    if guidance is not None:
        kwargs |= guidance.kwargs("control_image")
    switch = 1 - strength * (1 - request.refiner_switch_at) if use_refiner else None
    with vae_kept(pipe.vae), guidance.watched(pipe) if guidance is not None else nullcontext():
        callback = base_prompts.callback(0, span(0.0, request.refiner_switch_at if use_refiner else 1.0))
        latents = pipe(
            **kwargs, **base_prompts.kwargs(0), denoising_end=switch,
            callback_on_step_end=callback, callback_on_step_end_tensor_inputs=TENSOR_INPUTS,
        ).images  # fmt: skip
    if not use_refiner:
        return latents
    done = base_prompts.steps_run(pipe)
    return engine.refiner(
        **common,
        **refiner_prompts.kwargs(done),
        image=latents,
        num_inference_steps=steps,
        denoising_start=switch,
        output_type="latent",
        callback_on_step_end=refiner_prompts.callback(done, span(request.refiner_switch_at, 1.0)),
        callback_on_step_end_tensor_inputs=TENSOR_INPUTS,
    ).images


@contextmanager
def vae_kept(vae):
    """Keep the VAE in its own dtype across an img2img or inpaint call.

    diffusers' SDXL img2img and inpaint upcast a `force_upcast` VAE to encode, then cast it to the
    UNet's dtype (fp16), warning on each cast; keep_vae_safe's fp32 VAE is put back, quietly.
    """
    dtype = vae.dtype
    quiet = logging.getLogger("diffusers.models.modeling_utils")  # "modules ... should be kept in float32"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        yield
    finally:
        if vae.dtype != dtype:
            vae.to(dtype)
        quiet.setLevel(level)


def enlarge_latents(engine, image, size: tuple[int, int], batch: int):
    """The init image encoded at its own size and its latents upscaled to `size` (A1111's "Latent")."""
    import torch

    vae = engine.base.vae
    pixels = engine.base.image_processor.preprocess(image).to(engine.base._execution_device, dtype=vae.dtype)
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor  # the mode: no noise drawn
    factor = engine.base.vae_scale_factor
    latents = torch.nn.functional.interpolate(latents, size=(size[1] // factor, size[0] // factor), mode="bilinear", antialias=False)
    return latents.repeat(batch, 1, 1, 1).to(engine.base.unet.dtype)


def reporter(progress: Progress | None, offset: int, start: float, end: float, steps: int, total: int):
    """A diffusers step callback reporting a pass's fraction [start, end] as steps offset..offset+steps."""
    if progress is None or steps == 0:
        return None

    def on_step_end(pipe, i, t, callback_kwargs):
        fraction = start + (end - start) * (i + 1) / max(pipe.num_timesteps, 1)
        progress(offset + round(fraction * steps), total)
        return callback_kwargs

    return on_step_end
