"""The engine contract and the engine table: `create_engine("auto" | "sdxl" | "a1111" | "openai" | "preview", settings)`,
imported lazily.

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
VAE_ENV = variable("sdxl_vae").env  # KEYART_SDXL_VAE
A1111_ENV = variable("a1111_url").env  # KEYART_A1111_URL
IMAGES_URL_ENV = variable("images_base_url").env  # KEYART_IMAGES_BASE_URL

Progress = Callable[[int, int], None]  # (steps done, steps in all) across the whole request


class Engine(Protocol):
    name: str
    model_name: str

    def render(
        self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> list[RenderedImage]: ...


# The table. `auto` is the rule over it: the first engine with auto=True that is configured, in this
# order. What each engine supports was read from its render(): sdxl honours every feature; a1111
# every one but the refiner (it needs a checkpoint name on the remote), ControlNet, IP-Adapter, blends and FreeU (A1111 has none); openai edits (img2img,
# inpaint, outpaint) but has no hires fix, variation seed, refiner or LoRA; preview accepts every
# request sdxl does (a stand-in while no model is set: tests pin that it previews each mode) and
# draws only the init image and each mode's final size, recording the rest in the PNG. openai is
# never picked by auto: it may cost money.
ENGINE_SPECS: tuple[EngineSpec, ...] = (
    EngineSpec(
        name="sdxl",
        factory="imagegen.engines.sdxl:SDXLEngine.from_settings",
        description=f"local SDXL with diffusers: every mode, LoRAs, the refiner (needs {MODEL_ENV}; {REFINER_ENV} optional)",
        options=ENGINE_OPTIONS,
        supports=ALL_FEATURES,
        needs=MODEL_ENV,
        takes_settings=True,
        check="imagegen.engines.sdxl_load:check_settings",
        check_request="imagegen.engines.sdxl_load:check_request",
        missing=(
            f"the sdxl engine needs a model, and {MODEL_ENV} is not set. Set {MODEL_ENV} to a diffusers "
            "folder, a hub id (stabilityai/stable-diffusion-xl-base-1.0) or a .safetensors file; "
            f"optionally {REFINER_ENV} for the refiner"
        ),
        auto=True,
    ),
    EngineSpec(
        name="a1111",
        factory="imagegen.engines.a1111:A1111Engine.from_settings",
        description=f"a server with A1111's API (A1111, Forge, SD.Next, keyart) at {A1111_ENV}: all but the refiner",
        supports=ALL_FEATURES - {"refiner", "control", "reference", "blend", "freeu"},
        needs=A1111_ENV,
        takes_settings=True,
        check="imagegen.engines.remote_http:check_a1111",
        missing=f"the a1111 engine needs a server: set {A1111_ENV} to its address, such as http://gpu-box:7860",
        auto=True,
    ),
    EngineSpec(
        name="openai",
        factory="imagegen.engines.openai_images:OpenAIImagesEngine.from_settings",
        description=f"the OpenAI Images API, or a compatible server at {IMAGES_URL_ENV}: text to image and edits",
        supports=frozenset({"img2img", "inpaint", "outpaint"}),
        takes_settings=True,
        check="imagegen.engines.remote_http:check_openai",
        asked=f"the openai engine was asked for ({IMAGES_URL_ENV}, else OpenAI's API)",
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
            "no SDXL model or server is configured, so these are offline preview cards, not renders; "
            f"set {MODEL_ENV} to a diffusers folder, hub id or .safetensors file to render with SDXL, "
            f"or {A1111_ENV} to render on a server"
        ),
    ),
)
ENGINES = registry.names(ENGINE_SPECS)  # ("auto", "sdxl", "a1111", "openai", "preview")
SDXL_OPTIONS = registry.lookup(ENGINE_SPECS, "sdxl").options

__all__ = [
    "A1111_ENV", "ALL_FEATURES", "AUTO", "ENGINES", "IMAGES_URL_ENV", "ENGINE_SPECS", "FEATURES", "MODEL_ENV", "REFINER_ENV", "SDXL_OPTIONS", "VAE_ENV", "Choice", "Engine",
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
