"""The local SDXL engine: diffusers' base pipeline plus an optional refiner (ensemble of experts).

The base denoises the first `refiner_switch_at` of the schedule and hands its latents to the
refiner, which shares text_encoder_2 and the VAE. img2img, inpaint, outpaint and the hires fix
reuse the base's models (sdxl_modes). Components are injected (`SDXLEngine(base, refiner)`);
`from_pretrained` and `from_env` load them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import canvas, samplers
from ..errors import InvalidRequest, ModelNotFound, RenderFailed
from ..metadata import infotext_for, lineage_for
from ..prompt_syntax import extract_loras
from ..request import RenderedImage, RenderRequest
from ..variation import initial_latents
from . import MODEL_ENV, REFINER_ENV, Progress
from . import lora
from . import sdxl_modes as modes
from .sdxl_prompt import encode
from .sdxl_load import keep_vae_safe, load_pipelines, pick_device, pick_dtype, place

log = logging.getLogger(__name__)


class SDXLEngine:
    name = "sdxl"

    def __init__(
        self,
        base,
        refiner=None,
        *,
        model_name: str = "sdxl",
        refiner_name: str | None = None,
        model_hash: str | None = None,
        refiner_hash: str | None = None,
        memory: str = "normal",
    ):
        self.base = base
        self.refiner = refiner
        self.model_name = model_name
        self.refiner_name = refiner_name or ("refiner" if refiner is not None else None)
        self.model_hash = model_hash  # A1111's short SHA-256 of a checkpoint file, when there is one
        self.refiner_hash = refiner_hash
        self.memory = memory
        # Pristine scheduler configs: every sampler is built from these, never from the last one used.
        self._scheduler_config = dict(base.scheduler.config)
        self._refiner_scheduler_config = dict(refiner.scheduler.config) if refiner is not None else None
        self._derived: dict[str, Any] = {}  # img2img and inpaint pipelines over the base's models, built on first use
        for pipe in self._pipes:
            pipe.set_progress_bar_config(disable=True)

    @property
    def _pipes(self) -> list:
        return [p for p in (self.base, self.refiner) if p is not None]

    @property
    def device(self) -> str:
        return str(self.base._execution_device)

    @property
    def dtype(self) -> str:
        return str(self.base.unet.dtype).removeprefix("torch.")

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, model: str, refiner: str | None = None, *, device: str | None = None, dtype: str | None = None, memory: str | None = None
    ) -> SDXLEngine:
        """Load SDXL (and a refiner) from folders, .safetensors files or hub ids onto a device."""
        # 1. Where and in which precision.
        device = pick_device(device)
        torch_dtype = pick_dtype(device, dtype)
        memory = memory or os.environ.get("KEYART_MEMORY") or "normal"
        if device == "cpu":
            log.warning("rendering SDXL on the CPU in fp32: expect minutes per image; a CUDA GPU takes seconds")
        # 2. Load, keep the VAE safe in fp16, then place the models.
        base, refiner_pipe, source, refiner_source = load_pipelines(model, refiner, torch_dtype)
        pipes = [p for p in (base, refiner_pipe) if p is not None]
        keep_vae_safe(pipes, torch_dtype)
        place(pipes, device, memory)
        return cls(
            base,
            refiner_pipe,
            model_name=source.name,
            model_hash=source.hash,
            refiner_name=refiner_source.name if refiner_source else None,
            refiner_hash=refiner_source.hash if refiner_source else None,
            memory=memory,
        )

    @classmethod
    def from_env(cls, **options: Any) -> SDXLEngine:
        """Load the model named by KEYART_SDXL_MODEL (and KEYART_SDXL_REFINER when set)."""
        unknown = set(options) - {"device", "dtype", "memory"}
        if unknown:
            raise InvalidRequest(f"unknown sdxl engine options {sorted(unknown)}; known: device, dtype, memory")
        model = os.environ.get(MODEL_ENV, "").strip()
        if not model:
            raise ModelNotFound(f"set {MODEL_ENV} to an SDXL folder, .safetensors file or hub id")
        return cls.from_pretrained(model, os.environ.get(REFINER_ENV, "").strip() or None, **options)

    # -- rendering ----------------------------------------------------------------------------

    def render(
        self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> list[RenderedImage]:
        """Render every image of `request`: batch_count batches of batch_size, image i on seed+i.

        Text to image, img2img, inpaint or outpaint as the request says, with the hires fix when
        hr_scale > 1; the passes are in sdxl_modes, the pixel work (masks, paste-back) in canvas.
        """
        import torch

        # 1. Resolve the seed and the refiner; build the sampler from the pristine configs; read the inputs.
        request = request.with_seed()
        use_refiner = self._use_refiner(request)
        self.base.scheduler = samplers.make_scheduler(request.sampler, request.schedule_type, self._scheduler_config)
        if use_refiner:
            self.refiner.scheduler = samplers.make_scheduler(request.sampler, request.schedule_type, self._refiner_scheduler_config)
        prepared = canvas.prepare(request) if request.init_image is not None else None
        prompt, negative = request.styled
        # A1111 syntax: <lora:...> tags leave the text (the infotext keeps the prompt as written);
        # weights, BREAK and prompts past 75 tokens are encode()'s work.
        text, tags = extract_loras(prompt)
        seeds = request.seeds()
        subseeds = request.subseeds() if request.subseed_strength > 0 else None
        passes = modes.pass_steps(request)
        per_batch = sum(passes)
        total = request.batch_count * per_batch
        results: list[RenderedImage] = []
        try:
            # 2. The prompts, encoded once. The refiner's come before the LoRAs go in: it shares
            #    text_encoder_2 with the base, and A1111 applies LoRAs to the base model only.
            refiner_embeds = encode(self.refiner, text, negative, refiner=True) if use_refiner else {}
            with lora.applied(self.base, tags) as lora_paths:
                loras = lora.lora_infotext(tags, lora_paths)
                base_embeds = encode(self.base, text, negative)  # inside: a LoRA's text-encoder part counts
                for batch in range(request.batch_count):
                    here = slice(batch * request.batch_size, (batch + 1) * request.batch_size)
                    batch_seeds = seeds[here]
                    # 3. One CPU generator per image: the same seed gives the same image on any device.
                    generators = [torch.Generator("cpu").manual_seed(s) for s in batch_seeds]
                    common = dict(**base_embeds, guidance_scale=request.guidance_scale, num_images_per_prompt=request.batch_size, generator=generators)
                    refiner_common = {k: v for k, v in common.items() if k not in base_embeds} | refiner_embeds
                    # A variation seed's noise: slerp of the seed's and the subseed's, from the same generators.
                    noise = (
                        initial_latents(self.base, batch_seeds, subseeds[here], request.subseed_strength, request.height, request.width, generators=generators)
                        if subseeds
                        else None
                    )

                    def span(index: int, start: float, end: float, offset: int = batch * per_batch):
                        return modes.reporter(progress, offset + sum(passes[:index]), start, end, passes[index], total)

                    # 4. The passes: first (txt2img, img2img or inpaint), then the hires fix's second pass.
                    latents = modes.run_batch(self, request, prepared, common, use_refiner, span, refiner_common or None, noise)
                    images = modes.decode(self, latents)
                    # 5. A NaN decode is a black image: say so rather than save it.
                    if not torch.isfinite(torch.as_tensor(images)).all():
                        raise RenderFailed(
                            "the VAE decoded NaNs (the image would be black); run in bf16 (KEYART_DTYPE=bf16) "
                            "or fp32, or use an fp16-safe VAE such as madebyollin/sdxl-vae-fp16-fix"
                        )
                    # 6. Inpaint and outpaint paste the repaint back over the original, outside the blurred mask.
                    for offset, (image, seed) in enumerate(zip(self.base.image_processor.numpy_to_pil(images), batch_seeds)):
                        image = prepared.finish(image) if prepared is not None else image
                        index = batch * request.batch_size + offset
                        results.append(self._rendered(request, image, seed, index, use_refiner, lineage, loras))
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            w, h = request.output_size
            raise RenderFailed(
                f"out of GPU memory rendering {w}x{h} at batch size {request.batch_size}; "
                "use a smaller size or batch, or KEYART_MEMORY=medvram (model offload) or lowvram"
            ) from exc
        return results

    def pipe(self, kind: str, request: RenderRequest):
        """The img2img or inpaint pipeline over the base's models (built once), on the request's sampler."""
        if kind not in self._derived:
            self._derived[kind] = modes.derived_pipe(self.base, kind)
        pipe = self._derived[kind]
        pipe.scheduler = samplers.make_scheduler(request.sampler, request.schedule_type, self._scheduler_config)
        return pipe

    def _use_refiner(self, request: RenderRequest) -> bool:
        if request.refiner == "on" and self.refiner is None:
            raise ModelNotFound(f"the refiner was asked for, but none is loaded; set {REFINER_ENV} to an SDXL refiner folder, file or hub id")
        return self.refiner is not None and request.refiner != "off"

    def _rendered(self, request, image, seed, index, use_refiner, lineage, loras=None) -> RenderedImage:
        extra: dict[str, Any] = {}
        if use_refiner:
            # A1111 writes the refiner as "name [hash]".
            refiner = f"{self.refiner_name} [{self.refiner_hash}]" if self.refiner_hash else self.refiner_name
            extra = {"Refiner": refiner, "Refiner switch at": request.refiner_switch_at}
        extra |= loras or {}  # A1111's "Lora hashes", after the refiner's fields
        details = {
            "device": self.device,
            "dtype": self.dtype,
            "memory": self.memory,
            "model_hash": self.model_hash,
            "refiner": self.refiner_name if use_refiner else None,
        }
        return RenderedImage(
            image=image,
            request=request,
            seed=seed,
            index=index,
            infotext=infotext_for(request, seed=seed, model=self.model_name, index=index, extra=extra, model_hash=self.model_hash),
            lineage=lineage_for(request, seed=seed, index=index, engine=self.name, model=self.model_name, extra=details, lineage=lineage),
        )

