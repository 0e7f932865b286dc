"""The local SDXL engine: diffusers' base pipeline plus an optional refiner (ensemble of experts).

The base denoises the first `refiner_switch_at` of the schedule and hands its latents to the
refiner, which shares text_encoder_2 and the VAE. img2img, inpaint, outpaint and the hires fix
reuse the base's models (sdxl_modes). Components are injected (`SDXLEngine(base, refiner)`);
`from_pretrained` loads them, and `from_settings` loads what an `ImageSettings` names.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .. import canvas, samplers
from ..depth import DepthEstimator
from ..errors import InvalidRequest, ModelNotFound, OutOfMemory, RenderFailed
from ..prompt_schedule import loras, schedule
from ..prompt_syntax import parse
from ..request import RenderedImage, RenderRequest
from ..settings import ENGINE_OPTIONS, ImageSettings
from ..variation import initial_latents
from . import MODEL_ENV, REFINER_ENV, Progress, check_request
from . import lora
from . import sdxl_control as control
from . import sdxl_modes as modes
from . import sdxl_reference as reference
from . import sdxl_record as record
from . import sdxl_freeu, sdxl_tiling
from . import sdxl_speed as speedups
from .embeddings import Embeddings
from .sdxl_prompt import chunk_count
from .sdxl_schedule import BlendedPrompts, PassPrompts, RenderPrompts
from .sdxl_load import keep_vae_safe, load_pipelines, pick_device, pick_dtype, place

log = logging.getLogger(__name__)


# What requests must share to go through one pipeline call together (render_batch); prompts,
# negatives, styles and seeds are per image.
BATCHED_BY = (
    "width", "height", "num_inference_steps", "sampler", "schedule", "guidance_scale", "refiner", "refiner_switch_at",
    "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength", "tiling", "freeu",
)  # fmt: skip


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
        vae_name: str | None = None,
        vae_hash: str | None = None,
        memory: str = "normal",
        lora_dir: str | Path | None = None,
        embeddings_dir: str | Path | None = None,
        controlnet_dir: str | Path | None = None,
        ip_adapter: str | Path | None = None,
        depth_model: str | None = None,
        speed: str = "standard",
        compile: str | bool = "auto",
        compile_backend: Any = "inductor",
        compile_cache: str | Path | None = None,
    ):
        self.base = base
        self.refiner = refiner
        self.model_name = model_name
        self.refiner_name = refiner_name or ("refiner" if refiner is not None else None)
        self.model_hash = model_hash  # A1111's short SHA-256 of a checkpoint file, when there is one
        self.refiner_hash = refiner_hash
        self.vae_name = vae_name  # a VAE in place of the model's own (A1111's "VAE:"), else None
        self.vae_hash = vae_hash  # its short SHA-256, when it is a file
        self.memory = memory
        self.lora_dir = lora_dir  # where <lora:...> tags are looked up (KEYART_LORA_DIR); None: LoRA tags are an error
        self.embeddings = Embeddings(embeddings_dir)  # textual inversions named in prompts (KEYART_EMBEDDINGS_DIR); None: none
        self.controlnets = control.ControlNets(controlnet_dir)  # by type, from KEYART_CONTROLNET_DIR, loaded on first use
        self.adapter = reference.Adapter(ip_adapter)  # KEYART_IP_ADAPTER, read on the first reference render
        self.depth = DepthEstimator(depth_model, device=self.device) if depth_model else None  # KEYART_DEPTH_MODEL: depth units' maps
        self.speed = speedups.resolve(speed, self.device, memory)  # "standard" | "fast" | "turbo"
        # Fused projections, fp8 linears, step caches, torch.compile: as the speed and compile settings say.
        self.tuning = speedups.Tuning(self._pipes, self.speed, self.device, memory=memory, compile=compile, backend=compile_backend, cache=compile_cache)
        # Pristine scheduler configs: every sampler is built from these, never from the last one used.
        self._scheduler_config = dict(base.scheduler.config)
        self._refiner_scheduler_config = dict(refiner.scheduler.config) if refiner is not None else None
        self._derived: dict[Any, Any] = {}  # img2img, inpaint and ControlNet pipelines over the base's models, built on first use
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
        cls,
        model: str,
        refiner: str | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        memory: str | None = None,
        config: str | None = None,
        vae: str | None = None,
        lora_dir: str | Path | None = None,
        embeddings_dir: str | Path | None = None,
        controlnet_dir: str | Path | None = None,
        ip_adapter: str | Path | None = None,
        depth_model: str | None = None,
        speed: str | None = None,
        compile: str | None = None,
        compile_cache: str | Path | None = None,
    ) -> SDXLEngine:
        """Load SDXL (and a refiner) from folders, .safetensors files or hub ids onto a device.

        device None: the best available; dtype None: auto (fp16 on GPUs, fp32 on the CPU); memory
        None: normal. `config` is the diffusers folder a single file reads its configs from offline; `vae`
        a VAE (folder, file or hub id) in place of the model's own;
        `lora_dir` is where the prompts' LoRA tags are found, `embeddings_dir` their textual inversions, `controlnet_dir` the control units' models, `ip_adapter` the reference images' adapter, `depth_model` the depth units' estimator;
        `speed` and `compile` as KEYART_SPEED and KEYART_COMPILE say, compiled kernels kept in `compile_cache`.
        """
        # 1. Where and in which precision (fast takes bf16 on GPUs that have it, when the dtype is auto).
        device = pick_device(device)
        memory = memory or "normal"
        speed = speedups.resolve(speed or "auto", device, memory)
        torch_dtype = pick_dtype(device, speedups.dtype_word(dtype, speed, device, _bf16_supported(device)))
        if device == "cpu":
            log.warning("rendering SDXL on the CPU in fp32: expect minutes per image; a CUDA GPU takes seconds")
        # 2. Load, keep the VAE safe in fp16, then place the models.
        base, refiner_pipe, source, refiner_source, vae_source = load_pipelines(model, refiner, torch_dtype, config=config, vae=vae)
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
            vae_name=vae_source.name if vae_source else None,
            vae_hash=vae_source.hash if vae_source else None,
            memory=memory,
            lora_dir=lora_dir,
            embeddings_dir=embeddings_dir,
            controlnet_dir=controlnet_dir,
            ip_adapter=ip_adapter,
            depth_model=depth_model,
            speed=speed,
            compile=compile or "auto",
            compile_cache=compile_cache,
        )

    @classmethod
    def from_settings(cls, settings: ImageSettings, **options: Any) -> SDXLEngine:
        """Load the model `settings` name (sdxl_model, and sdxl_refiner and sdxl_vae when set) with its device,
        dtype, memory mode, single-file config and LoRA folder; `options` (device, dtype, memory)
        win over the settings' own."""
        unknown = set(options) - set(ENGINE_OPTIONS)
        if unknown:
            raise InvalidRequest(f"unknown sdxl engine options {sorted(unknown)}; known: {', '.join(ENGINE_OPTIONS)}")
        settings = settings.overridden(**{name: value for name, value in options.items() if value})
        if not settings.sdxl_model:
            raise ModelNotFound(f"set {MODEL_ENV} to an SDXL folder, .safetensors file or hub id")
        return cls.from_pretrained(
            settings.sdxl_model,
            settings.sdxl_refiner,
            device=settings.device,
            dtype=settings.dtype,
            memory=settings.memory,
            config=settings.sdxl_config,
            vae=settings.sdxl_vae,
            lora_dir=settings.lora_dir,
            embeddings_dir=settings.embeddings_dir,
            controlnet_dir=settings.controlnet_dir,
            ip_adapter=settings.ip_adapter,
            depth_model=settings.depth_model,
            speed=settings.speed,
            compile=settings.compile,
            compile_cache=Path(settings.cache).expanduser() / "torch-compile" if settings.cache else None,
        )

    # -- rendering ----------------------------------------------------------------------------

    def render(
        self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> list[RenderedImage]:
        """Render every image of `request`: batch_count batches of batch_size, image i on seed+i.

        Text to image, img2img, inpaint or outpaint as the request says, with the hires fix when
        hr_scale > 1; the passes are in sdxl_modes, the pixel work (masks, paste-back) in canvas.
        """
        return self._render([request], [lineage], progress)[0]

    def render_batch(
        self, requests: list[RenderRequest], *, lineages: list[dict[str, Any] | None] | None = None, progress: Progress | None = None
    ) -> list[list[RenderedImage]]:
        """Render several text-to-image requests in one pipeline call per pass: each image its own
        prompt, negative and seed; the call's settings (BATCHED_BY) the same for all.

        Each request's images are what `render` gives within the last bits of the arithmetic (a
        batch computes in other blocks), and carry their own request's infotext and lineage.
        """
        lineages = list(lineages) if lineages is not None else [None] * len(requests)
        if not requests or len(lineages) != len(requests):
            raise InvalidRequest(f"render_batch takes one or more requests and one lineage each (got {len(requests)} and {len(lineages)})")
        first = requests[0]
        for other in requests:
            if other.mode != "txt2img" or other.batch_count != 1 or other.subseed_strength > 0 or other.controls or other.reference or other.styled_blend:
                raise InvalidRequest(
                    "render_batch takes text-to-image requests of one batch each, without a variation seed, control units, a reference image or a blend; render() takes the rest"
                )
            differ = [name for name in BATCHED_BY if getattr(other, name) != getattr(first, name)]
            if differ:
                raise InvalidRequest(f"requests in one batch must share {', '.join(differ)}; render them apart")
        return self._render(requests, lineages, progress)

    def _render(self, requests: list[RenderRequest], lineages: list, progress: Progress | None) -> list[list[RenderedImage]]:
        """One request (in batch_count batches), or compatible requests in one batch; images per request."""
        import torch

        check_request(self.name, *requests)  # a feature this engine cannot honour fails before any work
        # 1. Resolve the seeds and the refiner; build the sampler from the pristine configs; read the inputs.
        requests = [r.with_seed() for r in requests]
        request = requests[0]  # the call's settings: the same for every request here
        use_refiner = self._use_refiner(request)
        self.embeddings.refresh()  # a file added to the embeddings folder since the last render counts
        self.tuning.start()
        self.base.scheduler = self._scheduler(self.base, request, self._scheduler_config)
        if use_refiner:
            self.refiner.scheduler = self._scheduler(self.refiner, request, self._refiner_scheduler_config)
        prepared = canvas.prepare(request) if request.init_image is not None else None
        guidance = (
            control.Guidance.prepare(
                self.controlnets, request.controls, (request.width, request.height), self.base._execution_device, self.base.unet.dtype, depth=self.depth,
            )
            if request.controls
            else None
        )  # the maps made and the ControlNets loaded before any step: a missing model fails first
        # 2. keyart's prompt language, per request: <lora:...> tags apply to the whole render; edits and
        #    alternations switch the conditioning at their steps (sdxl_schedule); the infotext keeps
        #    the prompt as written. Image rows: (request, its index, seed, prompt trees).
        rows, tags = [], None
        for k, r in enumerate(requests):
            positive, negative = (parse(text) for text in r.styled)
            if loras(negative):
                raise InvalidRequest("LoRA tags go in the prompt, not the negative prompt; move <lora:...> to the prompt")
            if tags is None:
                tags = loras(positive)
            elif loras(positive) != tags:
                raise InvalidRequest("requests in one batch must carry the same <lora:...> tags; render them apart")
            rows += [(k, i, seed, (positive, negative)) for i, seed in enumerate(r.seeds())]
        first_steps, hires_steps = modes.schedule_steps(request)
        hires = request.hr_scale > 1
        calls = self._calls(requests, rows, first_steps, hires_steps if hires else None)
        subseeds = request.subseeds() if request.subseed_strength > 0 else None
        passes = modes.pass_steps(request)
        per_batch = sum(passes)
        total = len(calls) * per_batch
        results: list[list[RenderedImage]] = [[] for _ in requests]
        try:
            # 3. The prompts, each distinct text encoded once; the calls of one request share them. The
            #    refiner's come before the LoRAs go in: it shares text_encoder_2 with the base, and
            #    A1111 applies LoRAs to the base only.
            calls_of = {tuple(row[0] for row in call): [row[3] for row in call] for call in calls}

            blended = requests[0].styled_blend  # one blend for the call: blended requests are never batched

            def prompts_of(pipe, trees, refiner=False):
                if blended is not None:  # each image's blend prompt beside its prompt, encoded at one length
                    both = [*trees, *((parse(blended), negative) for _, negative in trees)]
                    make = lambda steps: BlendedPrompts(PassPrompts(pipe, both, steps, refiner=refiner, embeddings=self.embeddings), len(trees), request.blend)  # noqa: E731
                else:
                    make = lambda steps: PassPrompts(pipe, trees, steps, refiner=refiner, embeddings=self.embeddings)  # noqa: E731
                return make(first_steps), make(hires_steps) if hires else None

            refiner_prompts = {key: prompts_of(self.refiner, trees, True) if use_refiner else (None, None) for key, trees in calls_of.items()}
            referenced = self.adapter.applied(self.base, request.reference, request.reference_scale, request.batch_size) if request.reference else nullcontext()
            # The IP-Adapter uses the attention's own q/k/v: fused projections step aside while it is in.
            lora_block = self.tuning.loras(self.base, tags or [], self.lora_dir)
            unets = [self.base.unet, *([self.refiner.unet] if use_refiner else [])]
            tiling = sdxl_tiling.tiled([*unets, self.base.vae], request.tiling == "on")
            reweighed = sdxl_freeu.applied(unets, request.freeu)
            with self.tuning.referenced(self.base, request.reference is not None), lora_block as lora_paths, referenced as embeds, tiling, reweighed:
                loras_used = lora.lora_infotext(tags or [], lora_paths)
                # Inside: a LoRA's text-encoder part counts.
                call_prompts = {}
                for key, trees in calls_of.items():
                    (first, hires_pass), (refiner_first, refiner_hires) = prompts_of(self.base, trees), refiner_prompts[key]
                    call_prompts[key] = RenderPrompts(first, refiner_first, hires_pass, refiner_hires)
                for batch, call in enumerate(calls):
                    prompts = call_prompts[tuple(row[0] for row in call)]
                    call_seeds = [row[2] for row in call]
                    # 4. One CPU generator per image: the same seed gives the same image on any device.
                    generators = [torch.Generator("cpu").manual_seed(s) for s in call_seeds]
                    common = dict(guidance_scale=request.guidance_scale, num_images_per_prompt=1, generator=generators)
                    if embeds is not None:  # the reference's IP-Adapter embeddings, for every pass of the base
                        common["ip_adapter_image_embeds"] = embeds
                    # A variation seed's noise: slerp of the seed's and the subseed's, from the same generators.
                    here = slice(batch * request.batch_size, (batch + 1) * request.batch_size)  # subseeds: one request only
                    noise = (
                        initial_latents(self.base, call_seeds, subseeds[here], request.subseed_strength, request.height, request.width, generators=generators)
                        if subseeds
                        else None
                    )

                    def span(index: int, start: float, end: float, offset: int = batch * per_batch):
                        return modes.reporter(progress, offset + sum(passes[:index]), start, end, passes[index], total)

                    # 5. The passes: first (txt2img, img2img or inpaint), then the hires fix's second pass.
                    latents = modes.run_batch(self, request, prepared, common, use_refiner, span, prompts, noise, guidance=guidance)
                    images = modes.decode(self, latents)
                    # 6. A NaN decode is a black image: say so rather than save it.
                    if not torch.isfinite(torch.as_tensor(images)).all():
                        raise RenderFailed(
                            "the VAE decoded NaNs (the image would be black); run in bf16 (KEYART_DTYPE=bf16) "
                            "or fp32, or use an fp16-safe VAE such as madebyollin/sdxl-vae-fp16-fix"
                        )
                    # 7. Inpaint and outpaint paste the repaint back over the original, outside the blurred mask.
                    for row, (image, (k, i, seed, _)) in enumerate(zip(self.base.image_processor.numpy_to_pil(images), call)):
                        image = prepared.finish(image) if prepared is not None else image
                        results[k].append(self._rendered(requests[k], image, seed, i, use_refiner, lineages[k], loras_used, prompts.record(row), guidance))
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            w, h = request.output_size
            raise OutOfMemory(
                f"out of GPU memory rendering {w}x{h} at batch size {len(calls[0])}; "
                "use a smaller size or batch, or KEYART_MEMORY=medvram (model offload) or lowvram"
            ) from exc
        return results

    def _calls(self, requests, rows, first_steps: int, hires_steps: int | None) -> list[list]:
        """The pipeline calls: a request's batch_count batches, or, for several requests, one call per
        prompt length (75-token chunks): padding a shorter prompt with empty chunks would change its
        image, while rows of one length batch to the same bits as single renders (on the CPU)."""
        if len(requests) == 1:
            size = requests[0].batch_size
            return [rows[at : at + size] for at in range(0, len(rows), size)]
        by_length: dict[int, list] = {}
        for row in rows:
            texts = [segment.runs for tree in row[3] for steps in (first_steps, hires_steps) if steps for segment in schedule(tree, steps)]
            by_length.setdefault(chunk_count(self.base, texts, self.embeddings), []).append(row)
        return list(by_length.values())

    def pipe(self, kind: str, request: RenderRequest, guidance: control.Guidance | None = None):
        """The img2img or inpaint pipeline over the base's models (built once), on the request's
        sampler; with `guidance`, the ControlNet pipeline for `kind` ("txt2img" or "inpaint") over its models."""
        key = kind if guidance is None else (kind, tuple(id(model) for model, _, _ in guidance.models))
        if key not in self._derived:
            self._derived[key] = modes.derived_pipe(self.base, kind) if guidance is None else control.control_pipe(self.base, kind, guidance)
        pipe = self._derived[key]
        pipe.scheduler = self._scheduler(pipe, request, self._scheduler_config)
        return pipe

    def _scheduler(self, pipe, request: RenderRequest, config: dict):
        """The request's sampler, built from a pristine config; a step cache starts afresh under it."""
        return self.tuning.watch(pipe, samplers.make_scheduler(request.sampler, request.schedule_type, config))

    def _use_refiner(self, request: RenderRequest) -> bool:
        if request.refiner == "on" and self.refiner is None:
            raise ModelNotFound(f"the refiner was asked for, but none is loaded; set {REFINER_ENV} to an SDXL refiner folder, file or hub id")
        return self.refiner is not None and request.refiner != "off"

    def _rendered(self, request, image, seed, index, use_refiner, lineage, loras=None, schedule=None, guidance=None) -> RenderedImage:
        return record.rendered(self, request, image, seed, index, use_refiner, lineage, loras, schedule, guidance)

def _bf16_supported(device: str) -> bool:
    import torch

    return str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
