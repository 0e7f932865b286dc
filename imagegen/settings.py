"""The image side's settings, defined once: each environment variable (`VARIABLES`) and the frozen
`ImageSettings` built from them and from flags at the entry points, then passed down.

`ImageSettings.from_env` is the only place imagegen reads its KEYART_* variables; `configure` hands
the process-wide parts (extra style files, the hash cache) to the modules that use them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidRequest


@dataclass(frozen=True)
class Variable:
    """One environment variable as users see it (--help, the README, the dashboard's Settings tab)."""

    env: str  # the variable's name: KEYART_SDXL_MODEL
    field: str  # the settings object's field it fills: sdxl_model
    default: str  # what applies when it is unset, in words
    meaning: str  # one line


OPENAI_IMAGES_URL = "https://api.openai.com/v1"
OPENAI_IMAGES_MODEL = "gpt-image-1.5"
REMOTE_TIMEOUT = 600.0  # a shared server's queue can hold a render for minutes; the OpenAI SDK waits 600 s too
SECRET_FIELDS = ("api_key", "a1111_api_key", "images_api_key")  # never printed, never in --help's values

# Table order is the order --help and the Settings tab list them in.
VARIABLES: tuple[Variable, ...] = (
    Variable("KEYART_SDXL_MODEL", "sdxl_model", "unset: offline preview cards", "SDXL base: a diffusers folder, a .safetensors file or a hub id"),
    Variable("KEYART_SDXL_REFINER", "sdxl_refiner", "no refiner", "optional SDXL refiner: a diffusers folder, a .safetensors file or a hub id"),
    Variable("KEYART_SDXL_VAE", "sdxl_vae", "the model's own VAE", "a replacement SDXL VAE (A1111's SD VAE): a diffusers folder, a .safetensors file or a hub id; an fp16-safe one (madebyollin/sdxl-vae-fp16-fix) decodes fp16 renders without an fp32 upcast"),
    Variable("KEYART_SDXL_CONFIG", "sdxl_config", "configs from the hub", "a diffusers SDXL folder whose configs a single .safetensors file loads with offline"),
    Variable("KEYART_LORA_DIR", "lora_dir", "no LoRAs", "the folder of LoRA .safetensors files that <lora:name:weight> names (A1111's models/Lora works)"),
    Variable("KEYART_EMBEDDINGS_DIR", "embeddings_dir", "no embeddings", "the folder of SDXL textual-inversion .safetensors files (clip_l and clip_g) that prompts name by file name (A1111's embeddings folder works)"),
    Variable("KEYART_CONTROLNET_DIR", "controlnet_dir", "no ControlNet", "the folder of SDXL ControlNets, one per control type: canny/, softedge/, lineart/, depth/, pose/ (diffusers folders) or canny.safetensors..."),
    Variable("KEYART_IP_ADAPTER", "ip_adapter", "no reference images", "an SDXL IP-Adapter .safetensors file (--reference), its CLIP image encoder in the image_encoder/ folder beside it (h94/IP-Adapter's sdxl_models)"),
    Variable("KEYART_DEPTH_MODEL", "depth_model", "depth units take ready maps", "a depth-estimation model (a transformers folder or hub id: Depth Anything, DPT) that makes the maps of depth control units"),
    Variable("KEYART_CAPTION_MODEL", "caption_model", "offline describe: pixel words", "a BLIP-style captioning model (a transformers folder or hub id) that `describe` and /sdapi/v1/interrogate caption with"),
    Variable("KEYART_CLIP_MODEL", "clip_model", "offline describe, text search only", "a CLIP model (a transformers folder or hub id) that ranks `describe`'s words and finds similar catalog images"),
    Variable("KEYART_STYLES", "styles", "the built-in styles only", f"extra style JSON files ({os.pathsep!r}-separated) that add to or override the built-ins"),
    Variable("KEYART_DEVICE", "device", "the best available", "cuda, cuda:1, mps or cpu; --device wins"),
    Variable("KEYART_DTYPE", "dtype", "auto: fp16 on GPUs, fp32 on the CPU", "auto, fp16, bf16 or fp32; --dtype wins"),
    Variable("KEYART_MEMORY", "memory", "normal", "normal, medvram (model offload) or lowvram (sequential offload); --memory wins"),
    Variable("KEYART_SPEED", "speed", "auto: fast on CUDA GPUs, standard elsewhere and under lowvram", "standard (stock diffusers), fast (exact optimisations: fused QKV projections, channels_last, torch.compile on GPUs) or turbo (fast plus step caching and fp8 linears: changes pixels, labelled); --speed wins"),
    Variable("KEYART_COMPILE", "compile", "auto: on with fast or turbo on CUDA GPUs", "on or off: torch.compile of the UNet's repeated blocks and the VAE decoder, its cache under KEYART_CACHE; --compile wins"),
    Variable("KEYART_CACHE", "cache", "$XDG_CACHE_HOME/keyart, else ~/.cache/keyart", "where checkpoint and LoRA hashes and torch.compile's kernels are cached"),
    Variable("KEYART_API_KEY", "api_key", "unset: no key, loopback only", "the key `python -m imagegen serve` asks clients for (Authorization: Bearer KEY); --api-key wins"),
    Variable("KEYART_A1111_URL", "a1111_url", "unset", "the a1111 engine's server: A1111, Forge, SD.Next or a keyart server (http://host:7860; user:pass@ for --api-auth)"),
    Variable("KEYART_A1111_API_KEY", "a1111_api_key", "unset: none sent", "the a1111 engine's key for a keyart server that has one (sent as Authorization: Bearer KEY)"),
    Variable("KEYART_IMAGES_BASE_URL", "images_base_url", OPENAI_IMAGES_URL, "the openai engine's server: OpenAI's Images API or a compatible /v1 address (a keyart server's too)"),
    Variable("KEYART_IMAGES_MODEL", "images_model", f"keyart-sdxl on a keyart server, else {OPENAI_IMAGES_MODEL}", "the openai engine's model"),
    Variable("KEYART_IMAGES_API_KEY", "images_api_key", "OPENAI_API_KEY", "the openai engine's key (a local compatible server may need none)"),
    Variable("KEYART_REMOTE_TIMEOUT", "remote_timeout", f"{REMOTE_TIMEOUT:g}", "seconds the remote engines (a1111, openai) wait for one render's answer"),
    Variable("RAY_ADDRESS", "ray_address", "unset: --ray starts a cluster on this machine", "the Ray cluster --ray renders on: host:6379 (the head), ray://host:10001, auto or local; --ray-address wins"),
)  # fmt: skip
ENGINE_OPTIONS = ("device", "dtype", "memory", "speed", "compile")  # the settings a flag may override per run: the sdxl engine's options
DTYPES = ("auto", "fp16", "bf16", "fp32")
MEMORY_MODES = ("normal", "medvram", "lowvram")  # A1111's names for the two offload levels
SPEEDS = ("auto", "standard", "fast", "turbo")  # auto: fast where it is safe (a CUDA GPU); turbo only when asked
COMPILES = ("auto", "on", "off")
CHOICES = {"dtype": DTYPES, "memory": MEMORY_MODES, "speed": SPEEDS, "compile": COMPILES}  # settings that take one of a few words


@dataclass(frozen=True)
class ImageSettings:
    """What the image side is configured with. Build it once at an entry point (`from_env`, flags as
    overrides) and pass it down; nothing below reads the environment."""

    sdxl_model: str | None = None
    sdxl_refiner: str | None = None
    sdxl_vae: str | None = None  # a VAE in place of the model's own (KEYART_SDXL_VAE)
    sdxl_config: str | None = None
    lora_dir: str | None = None
    embeddings_dir: str | None = None  # textual inversions named in prompts (KEYART_EMBEDDINGS_DIR)
    controlnet_dir: str | None = None  # ControlNet models by type (KEYART_CONTROLNET_DIR)
    ip_adapter: str | None = None  # the IP-Adapter weights file (KEYART_IP_ADAPTER)
    depth_model: str | None = None  # depth units' map maker (KEYART_DEPTH_MODEL)
    caption_model: str | None = None  # describe's captioner (KEYART_CAPTION_MODEL)
    clip_model: str | None = None  # describe's ranker and image search's embedder (KEYART_CLIP_MODEL)
    styles: tuple[str, ...] = ()  # extra style files, in the order they override
    device: str | None = None  # None: the best available
    dtype: str = "auto"
    memory: str = "normal"
    speed: str = "auto"
    compile: str = "auto"  # torch.compile: auto (with fast or turbo on CUDA), on, off
    cache: str | None = None  # None: hashes fall back to the environment's folder (from_env always sets it)
    api_key: str | None = field(default=None, repr=False)  # the image service's key: never printed
    a1111_url: str | None = None  # the a1111 engine's server
    a1111_api_key: str | None = field(default=None, repr=False)
    images_base_url: str | None = None  # the openai engine's server (None: OpenAI's)
    images_model: str | None = None  # None: keyart-sdxl on a keyart server, else OPENAI_IMAGES_MODEL
    images_api_key: str | None = field(default=None, repr=False)  # None: OPENAI_API_KEY, read by from_env
    remote_timeout: float = REMOTE_TIMEOUT
    ray_address: str | None = None  # where --ray renders (None: a cluster started on this machine)

    def __post_init__(self) -> None:
        styles = (self.styles,) if isinstance(self.styles, (str, Path)) else self.styles
        object.__setattr__(self, "styles", tuple(str(p) for p in styles))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ImageSettings:
        """The settings in `env` (default os.environ), then `overrides` (flags) where they are not None.

        An empty or blank value counts as unset. KEYART_STYLES is split on os.pathsep.
        """
        env = os.environ if env is None else env
        # 1. Each variable that is set, by its field.
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            value = (env.get(variable.env) or "").strip()
            if value:
                values[variable.field] = value
        if "styles" in values:
            values["styles"] = tuple(p for p in values["styles"].split(os.pathsep) if p.strip())
        if "remote_timeout" in values:
            values["remote_timeout"] = seconds("KEYART_REMOTE_TIMEOUT", values["remote_timeout"])
        # The openai engine's key falls back to OpenAI's own variable, as the SDK's does.
        if "images_api_key" not in values and (env.get("OPENAI_API_KEY") or "").strip():
            values["images_api_key"] = env["OPENAI_API_KEY"].strip()
        # 2. The cache's default follows the XDG base directory spec, as the variable's default says.
        values.setdefault("cache", str(Path((env.get("XDG_CACHE_HOME") or "").strip() or Path.home() / ".cache") / "keyart"))
        for name, allowed in CHOICES.items():
            if name in values:
                values[name] = _word(next(v.env for v in VARIABLES if v.field == name), values[name], allowed)
        return cls(**values).overridden(**overrides)

    def overridden(self, **overrides: Any) -> ImageSettings:
        """A copy with `overrides` applied, ignoring those that are None (a flag not given)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown image settings {unknown}; known: {', '.join(v.field for v in VARIABLES)}")
        given = {name: value for name, value in overrides.items() if value is not None}
        for name, allowed in CHOICES.items():
            if name in given:
                given[name] = _word(f"--{name}", given[name], allowed)
        return dataclasses.replace(self, **given) if given else self

    def value(self, env: str) -> str | None:
        """The setting behind variable `env` as text, fit to show: style files joined by os.pathsep,
        a URL's password hidden, a key as "set". None when unset."""
        variable = variable_named(env)
        value = getattr(self, variable.field)
        if isinstance(value, tuple):
            value = os.pathsep.join(value)
        if not value:
            return None
        if variable.field in SECRET_FIELDS:
            return "set"
        return redact_url(str(value)) if variable.field.endswith("_url") else str(value)

    def engine_options(self) -> dict[str, str]:
        """The sdxl engine's options that differ from their defaults (device, dtype, memory, speed)."""
        defaults = ImageSettings()
        return {name: getattr(self, name) for name in ENGINE_OPTIONS if getattr(self, name) != getattr(defaults, name)}


def redact_url(url: str) -> str:
    """`url` with any user:password@ shown as ***@, for messages and lineage."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}://{netloc}{slash}{path}"


def _word(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    word = str(value).strip().lower()
    if word not in allowed:
        raise InvalidRequest(f"{where} must be one of {', '.join(allowed)} (got {value!r})")
    return word


def seconds(env: str, text: Any, example: float = 600) -> float:
    """A duration setting as seconds: a number above 0 and finite (NaN fails too), else an error
    naming `env` with an example. The language side's timeout reads the same way."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{env} must be a number of seconds (got {text!r}); for example {env}={example:g}") from None
    if not 0 < value < float("inf"):
        raise InvalidRequest(f"{env} must be more than 0 seconds (got {text!r})")
    return value


def transformers_model(value: str, env: str) -> str:
    """A configured transformers model as from_pretrained takes it: a local folder (which must hold
    config.json) or a hub id; a path without a model is a ModelNotFound naming `env`."""
    from .errors import ModelNotFound

    path = Path(value).expanduser()
    if path.exists() or value.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{env}={value}: not a transformers model folder (no config.json there)")
        return str(path)
    return value


def variable(field: str) -> Variable:
    """The variable that fills settings field `field`."""
    for v in VARIABLES:
        if v.field == field:
            return v
    raise KeyError(f"no image setting {field!r}; known: {', '.join(v.field for v in VARIABLES)}")


def variable_named(env: str) -> Variable:
    """The variable called `env` (KEYART_SDXL_MODEL...)."""
    for v in VARIABLES:
        if v.env == env:
            return v
    raise KeyError(f"{env} is not an image setting; known: {', '.join(v.env for v in VARIABLES)}")


def help_text(variables: Sequence[Variable] = VARIABLES, indent: str = "  ") -> str:
    """One line per variable, its meaning and its default, for --help."""
    width = max(len(v.env) for v in variables)
    return "\n".join(f"{indent}{v.env:<{width}}  {v.meaning} (default: {v.default})" for v in variables)


def configure(settings: ImageSettings) -> None:
    """Hand the process-wide settings to the modules that use them: the extra style files
    (styles.use_files) and the hash cache (hashes.use_cache). Entry points call it once."""
    from . import hashes, styles

    styles.use_files(settings.styles)
    hashes.use_cache(settings.cache)

