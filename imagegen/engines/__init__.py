"""The engine contract and the engine table: `create_engine("auto" | "sdxl" | "preview", settings)`, imported lazily.

Every engine has a `name`, a `model_name` (A1111's "Model:" field) and
`render(request, *, lineage=None, progress=None) -> list[RenderedImage]`. Adding an engine is one
file here plus one `EngineSpec` in `ENGINE_SPECS`; registry.py reads the table. What is configured
comes from an `ImageSettings` (imagegen.settings) that the entry point built and passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..request import RenderedImage, RenderRequest
from ..settings import ENGINE_OPTIONS, ImageSettings, variable
from . import registry
from .registry import ALL_FEATURES, AUTO, FEATURES, Choice, EngineSpec, Feature

MODEL_ENV = variable("sdxl_model").env  # KEYART_SDXL_MODEL, named in messages
REFINER_ENV = variable("sdxl_refiner").env  # KEYART_SDXL_REFINER

Progress = Callable[[int, int], None]  # (steps done, steps in all) across the whole request


class Engine(Protocol):
    name: str
    model_name: str

    def render(
        self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> list[RenderedImage]: ...


# The table. `auto` is the rule over it: the first engine with auto=True that is configured, in this
# order. What each engine supports was read from its render(): sdxl honours every feature; preview
# accepts every request sdxl does (a stand-in while no model is set: tests pin that it previews each
# mode) and draws only the init image and each mode's final size, recording the rest in the PNG.
ENGINE_SPECS: tuple[EngineSpec, ...] = (
    EngineSpec(
        name="sdxl",
        factory="imagegen.engines.sdxl:SDXLEngine.from_settings",
        description=f"local SDXL with diffusers: every mode, LoRAs, the refiner (needs {MODEL_ENV}; {REFINER_ENV} optional)",
        options=ENGINE_OPTIONS,
        supports=ALL_FEATURES,
        needs=MODEL_ENV,
        takes_settings=True,
        missing=(
            f"the sdxl engine needs a model, and {MODEL_ENV} is not set. Set {MODEL_ENV} to a diffusers "
            "folder, a hub id (stabilityai/stable-diffusion-xl-base-1.0) or a .safetensors file; "
            f"optionally {REFINER_ENV} for the refiner"
        ),
        auto=True,
    ),
    EngineSpec(
        name="preview",
        factory="imagegen.engines.preview:PreviewEngine",
        description="offline labelled cards, no model: each mode's size and init image; other settings recorded, not drawn",
        supports=ALL_FEATURES,
        renders=frozenset({"img2img", "outpaint", "hires"}),
        asked="the preview engine was asked for: offline cards, not SDXL renders",
        auto=True,
        auto_reason=(
            "no SDXL model is configured, so these are offline preview cards, not renders; "
            f"set {MODEL_ENV} to a diffusers folder, hub id or .safetensors file to render with SDXL"
        ),
    ),
)
ENGINES = registry.names(ENGINE_SPECS)  # ("auto", "sdxl", "preview")
SDXL_OPTIONS = registry.lookup(ENGINE_SPECS, "sdxl").options

__all__ = [
    "ALL_FEATURES", "AUTO", "ENGINES", "ENGINE_SPECS", "FEATURES", "MODEL_ENV", "REFINER_ENV", "SDXL_OPTIONS", "Choice", "Engine",
    "EngineSpec", "Feature", "Progress", "check_request", "choose", "create_engine", "describe", "spec",
]  # fmt: skip


def spec(name: str, settings: ImageSettings | None = None) -> EngineSpec:
    """The table's row for `name` (case and spaces ignored); `auto` gives the engine it picks with
    `settings` (None: ImageSettings.from_env())."""
    return registry.lookup(ENGINE_SPECS, name, settings)


def choose(name: str = AUTO, settings: ImageSettings | None = None, **options: Any) -> Choice:
    """Resolve an engine name without loading anything: `auto` is sdxl when `settings` name a model.

    `settings` None means ImageSettings.from_env(): this is an edge for callers without a settings
    object (tests, notebooks). `options` (device, dtype, memory; None or empty means unset) are the
    ones asked for explicitly, checked here too: they are sdxl's, so asking them of preview is an error.
    """
    return registry.resolve(ENGINE_SPECS, name, settings, **options)


def create_engine(name: str = AUTO, settings: ImageSettings | None = None, **options: Any) -> Engine:
    """Create the engine `name` resolves to with `settings` (None: ImageSettings.from_env()); options
    (device, dtype, memory) go to the sdxl engine and win over the settings' own."""
    return registry.create(ENGINE_SPECS, name, settings, **options)


def check_request(engine: str | EngineSpec, *requests: RenderRequest, settings: ImageSettings | None = None) -> None:
    """Refuse a request that uses a feature `engine` cannot honour (InvalidRequest naming the field
    and the engine), before any work: call it before loading an engine, as the engines' render() do.
    `settings` resolve `auto` (None: the environment's)."""
    registry.check(ENGINE_SPECS, engine, *requests, settings=settings)


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) for auto and every engine: for --help and the Settings tab."""
    return registry.describe(ENGINE_SPECS)
