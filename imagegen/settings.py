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


@dataclass(frozen=True)
class Variable:
    """One environment variable as users see it (--help, the README, the dashboard's Settings tab)."""

    env: str  # the variable's name: KEYART_SDXL_MODEL
    field: str  # the settings object's field it fills: sdxl_model
    default: str  # what applies when it is unset, in words
    meaning: str  # one line


# Table order is the order --help and the Settings tab list them in.
VARIABLES: tuple[Variable, ...] = (
    Variable("KEYART_SDXL_MODEL", "sdxl_model", "unset: offline preview cards", "SDXL base: a diffusers folder, a .safetensors file or a hub id"),
    Variable("KEYART_SDXL_REFINER", "sdxl_refiner", "no refiner", "optional SDXL refiner: a diffusers folder, a .safetensors file or a hub id"),
    Variable("KEYART_SDXL_CONFIG", "sdxl_config", "configs from the hub", "a diffusers SDXL folder whose configs a single .safetensors file loads with offline"),
    Variable("KEYART_LORA_DIR", "lora_dir", "no LoRAs", "the folder of LoRA .safetensors files that <lora:name:weight> names (A1111's models/Lora works)"),
    Variable("KEYART_STYLES", "styles", "the built-in styles only", f"extra style JSON files ({os.pathsep!r}-separated) that add to or override the built-ins"),
    Variable("KEYART_DEVICE", "device", "the best available", "cuda, cuda:1, mps or cpu; --device wins"),
    Variable("KEYART_DTYPE", "dtype", "auto: fp16 on GPUs, fp32 on the CPU", "auto, fp16, bf16 or fp32; --dtype wins"),
    Variable("KEYART_MEMORY", "memory", "normal", "normal, medvram (model offload) or lowvram (sequential offload); --memory wins"),
    Variable("KEYART_CACHE", "cache", "$XDG_CACHE_HOME/keyart, else ~/.cache/keyart", "where checkpoint and LoRA hashes are cached"),
    Variable("KEYART_API_KEY", "api_key", "unset: no key, loopback only", "the key `python -m imagegen serve` asks clients for (Authorization: Bearer KEY); --api-key wins"),
)  # fmt: skip
ENGINE_OPTIONS = ("device", "dtype", "memory")  # the settings a flag may override per run: the sdxl engine's options


@dataclass(frozen=True)
class ImageSettings:
    """What the image side is configured with. Build it once at an entry point (`from_env`, flags as
    overrides) and pass it down; nothing below reads the environment."""

    sdxl_model: str | None = None
    sdxl_refiner: str | None = None
    sdxl_config: str | None = None
    lora_dir: str | None = None
    styles: tuple[str, ...] = ()  # extra style files, in the order they override
    device: str | None = None  # None: the best available
    dtype: str = "auto"
    memory: str = "normal"
    cache: str | None = None  # None: hashes fall back to the environment's folder (from_env always sets it)
    api_key: str | None = field(default=None, repr=False)  # the image service's key: never printed

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
        # 2. The cache's default follows the XDG base directory spec, as the variable's default says.
        values.setdefault("cache", str(Path((env.get("XDG_CACHE_HOME") or "").strip() or Path.home() / ".cache") / "keyart"))
        return cls(**values).overridden(**overrides)

    def overridden(self, **overrides: Any) -> ImageSettings:
        """A copy with `overrides` applied, ignoring those that are None (a flag not given)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown image settings {unknown}; known: {', '.join(v.field for v in VARIABLES)}")
        given = {name: value for name, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **given) if given else self

    def value(self, env: str) -> str | None:
        """The setting behind variable `env` as text (style files joined by os.pathsep), None when unset."""
        variable = variable_named(env)
        value = getattr(self, variable.field)
        if isinstance(value, tuple):
            value = os.pathsep.join(value)
        return str(value) if value else None

    def engine_options(self) -> dict[str, str]:
        """The sdxl engine's options that differ from their defaults (device, dtype, memory)."""
        defaults = ImageSettings()
        return {name: getattr(self, name) for name in ENGINE_OPTIONS if getattr(self, name) != getattr(defaults, name)}


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

