"""Step caching for the turbo speed (after DeepCache, Ma et al. 2023): the UNet's deep features
change little from one denoising step to the next, so every `interval`-th UNet call runs the whole
UNet and keeps what its deep modules returned, and the calls between run only the outer ring
(conv_in, the first down block, the last up block, conv_out) on those kept features.

The deep modules are every down block but the first, the mid block and every up block but the
last; their `forward` is replaced on the instance, so the UNet keeps its modules and weights (a
LoRA still finds its layers; compiled blocks stay compiled). A denoising pass starts afresh when
its scheduler sets its timesteps (`watch`), and whenever the latents' shape changes. On SDXL at
interval 3, two calls in three skip about 85% of the UNet's work; the image changes, and the
infotext says `Step cache: 3`.
"""

from __future__ import annotations

from typing import Any

INTERVAL = 3  # DeepCache's SDXL setting: a full UNet call, then two on kept features


class StepCache:
    """Kept deep features for one UNet; `install` it once, `watch` each scheduler it runs under."""

    def __init__(self, unet: Any, interval: int = INTERVAL):
        if interval < 2:
            raise ValueError(f"a step cache interval is 2 or more (got {interval}): 1 would be no cache")
        self.unet, self.interval = unet, interval
        self.deep = [*unet.down_blocks[1:], unet.mid_block, *unet.up_blocks[:-1]]
        self.calls = 0  # UNet calls since the pass began
        self.reused = 0  # calls that ran on kept features, since install (for tests and the bench)
        self._kept: dict[int, Any] = {}
        self._shape: tuple | None = None
        self._reuse = False
        self._hook = None

    def install(self) -> StepCache:
        self._hook = self.unet.register_forward_pre_hook(self._before, with_kwargs=True)
        for index, module in enumerate(self.deep):
            module.forward = self._deep_forward(index, module.forward)
        return self

    def uninstall(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        for module in self.deep:
            module.__dict__.pop("forward", None)
        self.reset()

    def reset(self) -> None:
        """Forget the kept features: the next call runs the whole UNet."""
        self.calls, self._kept, self._shape = 0, {}, None

    def watch(self, scheduler: Any) -> Any:
        """`scheduler`, made to reset this cache when a pass sets its timesteps."""
        set_timesteps = scheduler.set_timesteps

        def starting(*args: Any, **kwargs: Any) -> Any:
            self.reset()
            return set_timesteps(*args, **kwargs)

        scheduler.set_timesteps = starting
        return scheduler

    def _before(self, module: Any, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else kwargs["sample"]
        shape = (tuple(sample.shape), sample.dtype, sample.device)
        if shape != self._shape:  # a new size or batch: nothing kept fits it
            self.reset()
            self._shape = shape
        self._reuse = self.calls % self.interval != 0 and len(self._kept) == len(self.deep)
        self.reused += self._reuse
        self.calls += 1

    def _deep_forward(self, index: int, forward: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            if self._reuse:
                return self._kept[index]
            self._kept[index] = out = forward(*args, **kwargs)
            return out

        return run
