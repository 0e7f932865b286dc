"""Engine contract and factory: `create_engine("auto" | "sdxl" | "preview")`, imported lazily.

Every engine has a `name`, a `model_name` (A1111's "Model:" field) and
`render(request, *, lineage=None, progress=None) -> list[RenderedImage]`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InvalidRequest, ModelNotFound
from ..request import RenderedImage, RenderRequest

log = logging.getLogger(__name__)

ENGINES = ("auto", "sdxl", "preview")
SDXL_OPTIONS = ("device", "dtype", "memory")
MODEL_ENV = "KEYART_SDXL_MODEL"
REFINER_ENV = "KEYART_SDXL_REFINER"

Progress = Callable[[int, int], None]  # (steps done, steps in all) across the whole request


class Engine(Protocol):
    name: str
    model_name: str

    def render(
        self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> list[RenderedImage]: ...


@dataclass(frozen=True)
class Choice:
    """Which engine `auto` picked, and why, in words a user can act on."""

    name: str
    reason: str


def choose(name: str = "auto", **options: Any) -> Choice:
    """Resolve an engine name without loading anything: `auto` is sdxl when a model is configured.

    `options` (device, dtype, memory; None or empty means unset) are checked here too: they are sdxl's.
    """
    name = str(name).strip().lower()
    if name not in ENGINES:
        raise InvalidRequest(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    given = sorted(k for k, v in options.items() if v)
    unknown = set(given) - set(SDXL_OPTIONS)
    if unknown:
        raise InvalidRequest(f"unknown sdxl engine options {sorted(unknown)}; known: {', '.join(SDXL_OPTIONS)}")
    choice = _choose(name)
    if given and choice.name != "sdxl":
        raise InvalidRequest(f"--{', --'.join(given)} apply to the sdxl engine, not {choice.name}")
    return choice


def _choose(name: str) -> Choice:
    model = os.environ.get(MODEL_ENV, "").strip()
    if name == "preview":
        return Choice("preview", "the preview engine was asked for: offline cards, not SDXL renders")
    if name == "sdxl" and not model:
        raise ModelNotFound(
            f"the sdxl engine needs a model, and {MODEL_ENV} is not set. Set {MODEL_ENV} to a diffusers "
            "folder, a hub id (stabilityai/stable-diffusion-xl-base-1.0) or a .safetensors file; "
            f"optionally {REFINER_ENV} for the refiner"
        )
    if model:
        return Choice("sdxl", f"{MODEL_ENV} is set ({model})")
    return Choice(
        "preview",
        f"no SDXL model is configured, so these are offline preview cards, not renders; "
        f"set {MODEL_ENV} to a diffusers folder, hub id or .safetensors file to render with SDXL",
    )


def create_engine(name: str = "auto", **options: Any) -> Engine:
    """Create the engine `name` resolves to; options (device, dtype, memory) go to the sdxl engine."""
    choice = choose(name, **options)
    log.info("engine: %s (%s)", choice.name, choice.reason)
    if choice.name == "sdxl":
        from .sdxl import SDXLEngine

        return SDXLEngine.from_env(**options)
    from .preview import PreviewEngine

    return PreviewEngine(**options)
