"""The engine registry's machinery: `EngineSpec` (one row of the engine table), the request features
an engine may lack, and the functions that read a table: look a name up, resolve `auto`, create an
engine, check a request against what an engine supports. The table itself is in engines/__init__.py.
Whether an engine is configured is read from the settings object (imagegen.settings), never the
environment; functions given no settings build them from it, as an edge would.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import prompt_syntax
from ..errors import InvalidRequest, ModelNotFound
from ..request import DEFAULTS, RenderRequest
from ..settings import ImageSettings

log = logging.getLogger(__name__)

AUTO = "auto"  # a rule, not an engine: the first configured engine of the table that allows it


@dataclass(frozen=True)
class Feature:
    """Something a request may ask for beyond plain text to image, which an engine may lack."""

    name: str  # the word engine specs list in `supports`
    label: str  # for messages: "the preview engine cannot do {label} ({trigger})"
    trigger: str  # what in the request asks for it: a field, or where to look
    fields: tuple[str, ...]  # the RenderRequest fields that set it up
    used: Callable[[RenderRequest], bool]


# Every image-mode field of RenderRequest (request.MODE_FIELDS) belongs to one of these; a field that
# only tunes a feature (strength, mask blur...) changes nothing while the feature is off, so a feature
# counts as used when what asks for it differs from its default (refiner "off" asks for nothing).
FEATURES: tuple[Feature, ...] = (
    Feature("img2img", "img2img", "init_image", ("init_image", "init_upscaler", "strength"), lambda r: r.mode == "img2img"),
    Feature("inpaint", "inpainting", "mask", ("mask", "mask_blur", "inpaint_area", "masked_padding"), lambda r: r.mode == "inpaint"),
    Feature("outpaint", "outpainting", "outpaint", ("outpaint", "outpaint_pixels"), lambda r: r.mode == "outpaint"),
    Feature(
        "hires", "the hires fix", "hr_scale", ("hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength"),
        lambda r: r.hr_scale != DEFAULTS["hr_scale"],
    ),
    Feature("variation", "variation seeds", "subseed_strength", ("subseed", "subseed_strength"), lambda r: r.subseed_strength != DEFAULTS["subseed_strength"]),
    Feature("refiner", "the refiner", "refiner='on'", ("refiner", "refiner_switch_at"), lambda r: r.refiner == "on"),
    Feature("control", "ControlNet", "controls (--control)", ("controls",), lambda r: bool(r.controls)),
    Feature("reference", "reference images (IP-Adapter)", "reference (--reference)", ("reference", "reference_scale"), lambda r: r.reference is not None),
    Feature("blend", "blended prompts (interpolated conditioning)", "blend_prompt", ("blend_prompt", "blend"), lambda r: r.styled_blend is not None),
    Feature("tiling", "seamless tiling", "tiling='on' (--tiling)", ("tiling",), lambda r: r.tiling == "on"),
    Feature("freeu", "FreeU", "freeu (--freeu)", ("freeu",), lambda r: r.freeu != "off"),
    Feature("lora", "LoRAs", "<lora:...> in the prompt", ("prompt", "negative_prompt"), lambda r: any(prompt_syntax.extract_loras(t)[1] for t in r.styled)),
)  # fmt: skip
ALL_FEATURES = frozenset(f.name for f in FEATURES)


class Settings(Protocol):
    """What the registry reads of a settings object: ImageSettings, or a test's stand-in."""

    def value(self, env: str) -> str | None: ...


@dataclass(frozen=True)
class EngineSpec:
    """One engine as the registry knows it, without importing it."""

    name: str
    # "package.module:Attribute.attribute", imported only when the engine is created, or a callable.
    factory: str | Callable[..., Any]
    description: str  # one line, for --help and the dashboard's Settings tab
    options: tuple[str, ...] = ()  # the keyword options the factory takes
    supports: frozenset[str] = frozenset()  # FEATURES it accepts; plain text to image always
    renders: frozenset[str] | None = None  # of those, what it draws (None: all); the rest it only records
    needs: str | None = None  # the variable (its setting) that must be set before it can be created
    missing: str = ""  # what to say when `needs` is not set
    takes_settings: bool = False  # the factory's first argument is the settings object
    asked: str = ""  # why it was chosen, when asked for by name (engines that need nothing)
    auto: bool = False  # whether `auto` may pick it: the first in table order that is configured
    auto_reason: str = ""  # why `auto` fell back to it (engines that need nothing)
    # "module:function" checking the engine's settings (a path exists, a URL is one) without loading
    # or connecting, called when the engine is chosen: bad configuration fails before any work.
    check: str | None = None
    # "module:function" checking a request against the settings (a model a request names is there),
    # called by check() when it is given the settings: (settings, request) -> None or an error.
    check_request: str | None = None

    def __post_init__(self) -> None:
        unknown = (set(self.supports) - ALL_FEATURES) | (set(self.renders or ()) - set(self.supports))
        if unknown:  # a mistake in the table, caught when it is built
            raise ValueError(f"engine {self.name!r}: {sorted(unknown)} are not features it supports; features: {', '.join(sorted(ALL_FEATURES))}")

    @property
    def recorded_only(self) -> frozenset[str]:
        """Features it accepts and writes into the image's metadata without drawing them."""
        return self.supports - self.renders if self.renders is not None else frozenset()

    def configured(self, settings: Settings) -> str | None:
        """The setting `needs` names, from `settings` ("" when it needs nothing), or None when it is unset."""
        if self.needs is None:
            return ""
        return settings.value(self.needs)


@dataclass(frozen=True)
class Choice:
    """Which engine `auto` picked, and why, in words a user can act on."""

    name: str
    reason: str


def names(specs: Sequence[EngineSpec]) -> tuple[str, ...]:
    """Every name a user may give: `auto`, then the table's engines in order."""
    return (AUTO, *(s.name for s in specs))


def lookup(specs: Sequence[EngineSpec], name: str, settings: Settings | None = None) -> EngineSpec:
    """The spec called `name` (case and spaces ignored); `auto` gives the one it resolves to with `settings`."""
    key = _key(specs, name)
    if key == AUTO:
        return lookup(specs, resolve(specs, AUTO, settings).name)
    return next(s for s in specs if s.name == key)


def _or_env(settings: Settings | None) -> Settings:
    # A caller without a settings object (a test, a notebook) is an edge: the environment's.
    return settings if settings is not None else ImageSettings.from_env()


def _key(specs: Sequence[EngineSpec], name: str) -> str:
    key = str(name).strip().lower()
    if key not in names(specs):
        raise InvalidRequest(f"unknown engine {key!r}; choose one of: {', '.join(names(specs))}")
    return key


def resolve(specs: Sequence[EngineSpec], name: str = AUTO, settings: Settings | None = None, **options: Any) -> Choice:
    """Resolve an engine name against `settings` (None: the environment's) and check the options
    given, loading nothing. Options that are None or empty are unset."""
    # 1. The name: auto or one of the table's; the settings it is resolved against.
    key = _key(specs, name)
    settings = _or_env(settings)
    # 2. Options no engine takes.
    given = sorted(k for k, v in options.items() if v)
    known = list(dict.fromkeys(o for s in specs for o in s.options))
    strangers = [k for k in given if k not in known]
    if strangers:
        here = known if key == AUTO else lookup(specs, key).options
        what = "engine" if key == AUTO else f"{key} engine"
        raise InvalidRequest(f"unknown {what} options {strangers}; known: {', '.join(here) or 'none'}")
    # 3. Which engine, and why; its settings checked, loading nothing.
    choice = _pick(specs, key, settings)
    chosen = lookup(specs, choice.name)
    if chosen.check is not None and isinstance(settings, ImageSettings):
        referenced(chosen.check)(settings)
    # 4. Options that belong to another engine than the one chosen.
    misplaced = [k for k in given if k not in lookup(specs, choice.name).options]
    if misplaced:
        owners = [s.name for s in specs if set(misplaced) & set(s.options)]
        plural = "s" if len(owners) > 1 else ""
        raise InvalidRequest(f"--{', --'.join(misplaced)} apply to the {' and '.join(owners)} engine{plural}, not {choice.name}")
    return choice


def _pick(specs: Sequence[EngineSpec], key: str, settings: Settings) -> Choice:
    if key != AUTO:
        spec = lookup(specs, key)
        value = spec.configured(settings)
        if value is None:
            raise ModelNotFound(spec.missing or f"the {spec.name} engine needs {spec.needs} to be set")
        return Choice(spec.name, f"{spec.needs} is set ({value})" if spec.needs else spec.asked or f"the {spec.name} engine was asked for")
    for spec in specs:
        if spec.auto and (value := spec.configured(settings)) is not None:
            return Choice(spec.name, f"{spec.needs} is set ({value})" if spec.needs else spec.auto_reason or f"{spec.name} is the fallback")
    raise ModelNotFound(f"no engine that auto may pick is configured; {' '.join(s.missing for s in specs if s.auto and s.missing)}".strip())


def create(specs: Sequence[EngineSpec], name: str = AUTO, settings: Settings | None = None, **options: Any) -> Any:
    """Create the engine `name` resolves to with `settings` (None: the environment's), importing its
    module only now; the settings (to a factory that takes them) and the options go to its factory."""
    settings = _or_env(settings)
    choice = resolve(specs, name, settings, **options)
    log.info("engine: %s (%s)", choice.name, choice.reason)
    spec = lookup(specs, choice.name)
    given = {k: v for k, v in options.items() if v}
    return factory_of(spec)(settings, **given) if spec.takes_settings else factory_of(spec)(**given)


def factory_of(spec: EngineSpec) -> Callable[..., Any]:
    """The spec's factory: a callable as given, or "module:Attr.attr" imported and looked up."""
    return referenced(spec.factory)


def referenced(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable as given, or the one "package.module:Attr.attr" names, its module imported now."""
    if callable(ref):
        return ref
    module, _, path = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in path.split("."):
        target = getattr(target, part)
    return target


def unsupported(spec: EngineSpec, request: RenderRequest) -> list[Feature]:
    """The features `request` uses that `spec` does not support (only those are looked at)."""
    return [f for f in FEATURES if f.name not in spec.supports and f.used(request)]


def check(specs: Sequence[EngineSpec], engine: str | EngineSpec, *requests: RenderRequest, settings: Settings | None = None) -> None:
    """Refuse, before any work, a request that uses a feature the engine cannot honour; the message
    names the field, the engine and the engines that can. `settings` resolve `auto`; given, the
    engine's own request check runs too (the models a request names are there)."""
    spec = engine if isinstance(engine, EngineSpec) else lookup(specs, engine, settings)
    for request in requests:
        missing = unsupported(spec, request)
        if not missing:
            if spec.check_request is not None and isinstance(settings, ImageSettings):
                referenced(spec.check_request)(settings, request)
            continue
        what = " or ".join(f"{f.label} ({f.trigger})" for f in missing)
        able = [s for s in specs if s.name != spec.name and not unsupported(s, request)]
        hint = " or ".join(f"--engine {s.name}" + (f" with {s.needs} set" if s.needs else "") for s in able)
        raise InvalidRequest(f"the {spec.name} engine cannot do {what}; " + (f"use {hint}" if hint else "no engine here can"))


def describe(specs: Sequence[EngineSpec]) -> list[tuple[str, str]]:
    """(name, one line) for `auto` and every engine, in table order: for --help and Settings."""
    rule, fallback = [], None
    for spec in (s for s in specs if s.auto):
        if spec.needs is None:
            fallback = spec.name
            break
        rule.append(f"{spec.name} when {spec.needs} is set")
    auto = ", ".join(rule) + (f", else {fallback}" if fallback else "")
    return [(AUTO, auto), *((s.name, s.description) for s in specs)]
