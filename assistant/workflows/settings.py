"""keyart's settings, read once: every variable in one table, one Settings object built at the entry points.

`VARIABLES` lists each environment variable with its default and meaning (the language side's
here, the image side's from `imagegen.settings`); `--help`, the README's table and the dashboard's
Settings tab are written from it. `Settings.from_env(**flags)` reads the environment once, flags
winning, and the entry points pass the object down: nothing below them reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imagegen.settings import VARIABLES as IMAGE_VARIABLES
from imagegen.settings import ImageSettings, Variable, configure, help_text

from ..errors import LLMNotConfigured
from ..llm import JSON_METHODS
from ..models import LLMS
from ..models.openai_chat import DEFAULT_TIMEOUT
from .plan import BUILD_QUALITIES, CATALOG

# The language side's variables and the catalog's; the image side's follow from imagegen.settings.
LANGUAGE_VARIABLES = (
    Variable("KEYART_HOME", "home", "data/home", "the catalog's home folder: catalog.sqlite, images/, queues/"),
    Variable("KEYART_QUALITY", "quality", CATALOG, "render quality for builds: catalog (keep the catalog's art), draft or final"),
    Variable("KEYART_ENGINE", "engine", "auto", "image engine: auto (sdxl when KEYART_SDXL_MODEL is set, a1111 when KEYART_A1111_URL is, else preview), sdxl, a1111, openai or preview"),
    Variable("KEYART_LLM", "llm", "offline", "language model: offline (rules), openai or transformers"),
    Variable("KEYART_LLM_MODEL", "llm_model", "gpt-4o-mini (openai)", "the model's name (openai) or folder (transformers)"),
    Variable("OPENAI_API_KEY", "openai_api_key", "unset", "OpenAI's key (a local OpenAI-compatible server needs none)"),
    Variable("OPENAI_BASE_URL", "openai_base_url", "OpenAI", "an OpenAI-compatible server's /v1 address (vLLM, Ollama, LM Studio, llama.cpp)"),
    Variable("KEYART_LLM_TIMEOUT", "llm_timeout", f"{DEFAULT_TIMEOUT:g}", "seconds to wait for a language model's reply"),
    Variable("KEYART_LLM_JSON", "llm_json", "auto", "how replies are asked to be JSON: auto, json_schema, json_mode or text"),
    Variable("KEYART_BLOCKLIST", "blocklist", "data/policy/blocklist.txt", "brand-safety blocklist file(s), separated by the path separator"),
)
VARIABLES: tuple[Variable, ...] = LANGUAGE_VARIABLES + tuple(IMAGE_VARIABLES)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, as one value: built once at an entry point, passed down."""

    home: Path | None = None  # None: the store's default (data/home)
    quality: str = CATALOG
    engine: str = "auto"
    llm: str = "offline"
    llm_model: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    llm_timeout: float = DEFAULT_TIMEOUT
    llm_json: str = "auto"
    blocklist: tuple[Path, ...] = ()  # empty: the policy's default file
    image: ImageSettings = field(default_factory=ImageSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """The settings the environment gives, with `flags` (command-line options; None is unset) on top.

        Flags take Settings' field names, and ImageSettings' (device, dtype, memory, ...) for the image side.
        """
        env = os.environ if env is None else env
        given = {k: v for k, v in flags.items() if v is not None}
        image_fields = set(ImageSettings.__dataclass_fields__)
        unknown = set(given) - set(cls.__dataclass_fields__) - image_fields
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        read = {var.field: value.strip() for var in LANGUAGE_VARIABLES if (value := env.get(var.env, "")).strip()}
        values: dict[str, Any] = {**read, **{k: v for k, v in given.items() if k not in image_fields}}
        # 1. Text to typed values, each checked with a message that teaches.
        if "home" in values:
            values["home"] = Path(values["home"]).expanduser()
        if "llm" in values:
            values["llm"] = _choice("KEYART_LLM", "--llm", values["llm"], LLMS)
        if "openai_base_url" in values:
            values["openai_base_url"] = _base_url(values["openai_base_url"])
        if "engine" in values:
            from imagegen.engines import ENGINES

            values["engine"] = _choice("KEYART_ENGINE", "--engine", values["engine"], ENGINES)
        if "quality" in values:
            values["quality"] = _choice("KEYART_QUALITY", "--quality", values["quality"], BUILD_QUALITIES)
        if "llm_json" in values:
            values["llm_json"] = _choice("KEYART_LLM_JSON", "KEYART_LLM_JSON", values["llm_json"], JSON_METHODS)
        if "llm_timeout" in values:
            values["llm_timeout"] = _seconds(values["llm_timeout"])
        if isinstance(values.get("blocklist"), str):
            values["blocklist"] = tuple(Path(p).expanduser() for p in values["blocklist"].split(os.pathsep) if p)
        image = ImageSettings.from_env(env, **{k: v for k, v in given.items() if k in image_fields})
        return cls(**values, image=image)

    def but(self, **changes: Any) -> Settings:
        """A copy with some fields changed (a dashboard session's choices over the process's settings)."""
        return replace(self, **changes)

    def apply(self) -> Settings:
        """Configure the process-wide parts once: the blocklist, the JSON method, styles and caches."""
        from .. import llm, policy

        policy.use_blocklists(self.blocklist)
        llm.use_json_method(self.llm_json)
        configure(self.image)
        return self

    def language_model(self, name: str | None = None) -> Any:
        """The language model these settings name (or `name`), configured from them."""
        from ..models import load_model

        return load_model(
            name or self.llm, model=self.llm_model, base_url=self.openai_base_url, api_key=self.openai_api_key, timeout=self.llm_timeout
        )

    def render_service(
        self, *, front: str, engine: str | None = None, home: Path | None = None, scale: Any = None, max_batch: int | None = None,
        announce: Any = None, **options: Any,
    ):  # fmt: skip
        """The RenderService for these settings' engine (or `engine`) over `home`'s render queue;
        `scale` (imagegen.scale.ScaleOptions) renders on Ray replicas, `announce` told where."""
        from .service import RenderService

        limits = {} if max_batch is None else {"max_batch": max_batch}
        return RenderService(
            name=engine or self.engine, settings=self.image, options=options, home=home or self.home_path, front=front, scale=scale, announce=announce, **limits
        )

    @property
    def home_path(self) -> Path:
        from ..store import resolve_home

        return resolve_home(self.home)


def _choice(variable: str, flag: str, value: Any, allowed: tuple[str, ...]) -> str:
    chosen = str(value).strip().lower()
    if chosen not in allowed:
        raise LLMNotConfigured(f"unknown value {value!r} for {flag} / {variable}; choose one of: {', '.join(allowed)}")
    return chosen


def _base_url(text: str) -> str:
    """OPENAI_BASE_URL as an http(s) address with a host and a numeric port, else a line saying so."""
    from urllib.parse import urlsplit

    example = "for example OPENAI_BASE_URL=http://127.0.0.1:11434/v1"
    try:
        parts = urlsplit(text)
        port = parts.port  # a port that is no number raises here
    except ValueError as exc:
        raise LLMNotConfigured(f"OPENAI_BASE_URL is not a valid URL ({text[:80]!r}: {exc}); {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LLMNotConfigured(f"OPENAI_BASE_URL must be an http:// or https:// address with a host (got {text[:80]!r}); {example}")
    if port == 0:
        raise LLMNotConfigured(f"OPENAI_BASE_URL has port 0 (got {text[:80]!r}); {example}")
    return text


def _seconds(value: Any) -> float:
    """KEYART_LLM_TIMEOUT, read as imagegen reads its durations; said as the language side's error."""
    from imagegen.errors import InvalidRequest
    from imagegen.settings import seconds

    try:
        return seconds("KEYART_LLM_TIMEOUT", value, example=120)
    except InvalidRequest as exc:
        raise LLMNotConfigured(str(exc)) from None


def help_epilog(groups: tuple[str, ...] = ("catalog", "language", "image")) -> str:
    """The `environment:` section of a --help, from VARIABLES."""
    return "environment:\n" + help_text([v for v in VARIABLES if _group(v) in groups])


def _group(variable: Variable) -> str:
    if variable.env in ("KEYART_HOME", "KEYART_QUALITY"):
        return "catalog"
    return "language" if variable in LANGUAGE_VARIABLES and variable.env != "KEYART_ENGINE" else "image"


def variable(name: str) -> Variable:
    """The variable called `name` (KEYART_HOME, KEYART_SDXL_MODEL...)."""
    for known in VARIABLES:
        if known.env == name:
            return known
    raise KeyError(f"{name} is not a keyart setting; known: {', '.join(v.env for v in VARIABLES)}")


def value_of(settings: Settings, name: str) -> str | None:
    """What `settings` holds for variable `name`, as text (None when unset)."""
    known = variable(name)
    if known not in LANGUAGE_VARIABLES:
        return settings.image.value(name)
    value = getattr(settings, known.field)
    if isinstance(value, tuple):
        value = os.pathsep.join(str(v) for v in value)
    return str(value) if value not in (None, "") else None
