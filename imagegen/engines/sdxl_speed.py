"""The SDXL engine's speed setting: `standard` is stock diffusers; `fast` applies exact optimisations,
which change the arithmetic's order but not what is computed: the UNet's and VAE's attention
projections fused into one matrix (diffusers' fuse_qkv_projections) and channels_last memory for
their convolutions, and, with dtype auto on a GPU that has it, bf16 (so the VAE needs no fp32
upcast); torch.compile comes with it on a GPU (sdxl_compile). `turbo` is fast plus techniques that
change pixels, each labelled in the infotext: step caching (sdxl_stepcache) and fp8 linear layers
(sdxl_fp8). `auto` is fast on a CUDA GPU, standard elsewhere (on the CPU the gain is small) and
under lowvram, where fast and turbo are refused (`check_memory`).

The separate q, k and v weights are views of the fused matrices' rows (`share_fused`), so fusing
costs no memory. A LoRA is merged into them in place for its render (lora.patched), which the fused
matrices see at once, so no module changes. The IP-Adapter swaps the attention processors for its
own, which use the separate projections: its renders run with the unfused processors (`unfused`)
and the same fused ones are put back after.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import InvalidRequest
from ..settings import SPEEDS


def resolve(speed: str, device: str, memory: str = "normal") -> str:
    """"standard", "fast" or "turbo" for a speed setting on `device` in memory mode `memory`."""
    speed = str(speed or "auto").strip().lower()
    if speed not in SPEEDS:
        raise InvalidRequest(f"speed is one of {', '.join(SPEEDS)} (got {speed!r})")
    check_memory(speed, memory)
    if speed == "auto":
        return "fast" if str(device).startswith("cuda") and memory != "lowvram" else "standard"
    return speed


def check_memory(speed: str | None, memory: str | None) -> None:
    """fast and turbo change the models' weights and modules (fused projections, channels_last, fp8),
    which lowvram's sequential offload keeps off the GPU, layer by layer, between calls: the new
    modules would have no weights to bring. `auto` is standard there; asking for more is refused."""
    speed = str(speed or "auto").strip().lower()
    if memory == "lowvram" and speed in ("fast", "turbo"):
        raise InvalidRequest(
            f"speed {speed} cannot run with memory lowvram: its sequential offload keeps each layer's weights off the GPU "
            f"between calls, and {speed} rebuilds layers it cannot follow; use memory medvram with {speed}, or speed standard with lowvram"
        )


def dtype_word(dtype: str | None, speed: str, device: str, bf16_supported: bool) -> str:
    """The dtype setting a speed asks for: fast with `auto` on a GPU that has bf16 takes bf16 (the VAE then
    needs no fp32 upcast, as bf16 has fp32's range); every other case keeps the setting as given."""
    dtype = dtype or "auto"
    if speed in ("fast", "turbo") and dtype == "auto" and str(device).startswith("cuda") and bf16_supported:
        return "bf16"
    return dtype


def apply_fast(pipes: list[Any]) -> None:
    """Fuse each pipeline's attention projections, lay out its UNet and VAE channels_last, and keep
    the separate projections' weights inside the fused matrices (`share_fused`)."""
    import torch

    for pipe in pipes:
        pipe.fuse_qkv_projections()
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        share_fused(pipe)


def _fused(module: Any) -> tuple[Any, tuple[Any, ...]]:
    """A fused attention module's fused projection and the separate ones whose rows it holds, in order."""
    if module.is_cross_attention:  # the query reads the image, key and value the text: only they are fused
        return module.to_kv, (module.to_k, module.to_v)
    return module.to_qkv, (module.to_q, module.to_k, module.to_v)


def share_fused(pipe: Any) -> None:
    """Make the separate q, k and v weights (and biases) of the UNet's and VAE's fused attention
    modules views of the fused matrices' rows.

    diffusers keeps both as copies: 648M more parameters in SDXL's UNet, 1.2 GiB in bf16. As views,
    fusing costs no memory, and a LoRA merged into the separate weights in place (lora.patched)
    reaches the fused ones too. A separate weight that is no view any more (merged into a new
    tensor; moved between devices by medvram's offload, which moves each weight on its own, so the
    copies return there) is copied into its rows first: the separate weights are the truth. Only each
    Parameter's data changes, never the object, so whoever holds it writes through; the fused modules
    stay the same objects, so compiled code does not recompile.
    """
    import torch

    with torch.no_grad():
        for model in (pipe.unet, pipe.vae):
            for module in model.modules():
                if not getattr(module, "fused_projections", False):
                    continue
                fused, parts = _fused(module)
                for kind in ("weight", "bias"):
                    whole = getattr(fused, kind)
                    if whole is None:
                        continue
                    start = 0
                    for part in parts:
                        own = getattr(part, kind)
                        rows = whole.data[start : start + own.shape[0]]
                        start += own.shape[0]
                        if own.data_ptr() != rows.data_ptr():
                            rows.copy_(own.data)
                            own.data = rows


@contextmanager
def unfused(pipe: Any) -> Iterator[None]:
    """`pipe`'s UNet with its separate q, k and v projections for the block (their weights are the
    fused matrices' rows), then the very same fused processors again: no module is rebuilt."""
    unet = pipe.unet
    fused = unet.attn_processors
    unet.set_attn_processor(dict(unet.original_attn_processors))  # a copy: diffusers pops what it sets
    try:
        yield
    finally:
        unet.set_attn_processor(fused)


@contextmanager
def _adapters_unfused(pipe: Any, tags: list, folder: Any) -> Iterator[list]:
    """LoRAs as PEFT adapters on a fused engine: the adapters wrap the separate q, k and v projections,
    which the fused processors never call, so the render runs unfused."""
    from . import lora

    with unfused(pipe), lora.applied(pipe, tags, folder=folder) as paths:
        yield paths


class Tuning:
    """What the speed setting did to an engine's pipelines, and what each render needs from it:
    the LoRA and reference blocks, the step caches' schedulers, and the words for infotext and lineage."""

    def __init__(self, pipes: list[Any], speed: str, device: str, *, memory: str = "normal", compile: Any = "auto", backend: Any = "inductor", cache: Any = None):
        from . import sdxl_compile, sdxl_fp8
        from .sdxl_stepcache import StepCache

        self.speed = speed
        self.compiled: str | None = None
        self.fp8: str | None = None  # None: not asked (below turbo); "linear": applied; else why not
        self.caches: dict[int, StepCache] = {}
        compiling = sdxl_compile.wanted(compile, speed, device, memory)
        # 1. Exact: fused projections and channels_last (fast and turbo).
        if speed != "standard":
            apply_fast(pipes)
        # 2. Turbo: fp8 linears where the GPU has them, then a step cache per UNet.
        if speed == "turbo":
            unets = list({id(p.unet): p.unet for p in pipes}.values())
            reason = sdxl_fp8.apply(unets, device)
            self.fp8 = "linear" if reason is None else reason
            self.caches = {id(unet): StepCache(unet).install() for unet in unets}
        # 3. Compile last: it sees the modules as they will run.
        if compiling:
            self.compiled = sdxl_compile.apply(pipes, backend=backend, cache=cache)

    @property
    def step_cache(self) -> int | None:
        """The step cache's interval (turbo), else None."""
        return next(iter(self.caches.values())).interval if self.caches else None

    def watch(self, pipe: Any, scheduler: Any) -> Any:
        """`scheduler` for `pipe`: a pass under it starts its UNet's step cache afresh."""
        cache = self.caches.get(id(pipe.unet))
        return cache.watch(scheduler) if cache is not None else scheduler

    def start(self) -> None:
        """A render begins: nothing kept from the last one is reused."""
        for cache in self.caches.values():
            cache.reset()

    def loras(self, pipe: Any, tags: list, folder: Any):
        """The block a render's LoRAs apply in: merged into the weights on the fast speeds and when
        compiled (no module changes, so nothing recompiles), PEFT adapters on standard and over fp8
        weights; adapters wrap the separate projections, so a fused engine runs them unfused."""
        from . import lora

        if (self.speed == "standard" and not self.compiled) or self.fp8 == "linear":
            if tags and self.speed != "standard":
                return _adapters_unfused(pipe, tags, folder)
            return lora.applied(pipe, tags, folder=folder)
        return lora.patched(pipe, tags, folder=folder, after=lambda: share_fused(pipe))

    def referenced(self, pipe: Any, reference: bool):
        """The IP-Adapter's processors use the separate projections: unfused for its render."""
        from contextlib import nullcontext

        return unfused(pipe) if reference and self.speed != "standard" else nullcontext()

    def infotext(self) -> dict[str, Any]:
        """keyart's own fields: how the engine ran, where it changes pixels or their arithmetic."""
        fields: dict[str, Any] = {}
        if self.speed != "standard":
            fields["Speed"] = self.speed
        if self.step_cache:
            fields["Step cache"] = self.step_cache
        if self.fp8 == "linear":
            fields["FP8"] = "linear"
        return fields

    def lineage(self) -> dict[str, Any]:
        record: dict[str, Any] = {"speed": self.speed, "compiled": self.compiled}
        if self.speed == "turbo":
            record["turbo"] = {"step_cache": self.step_cache, "fp8": self.fp8}
        return record
