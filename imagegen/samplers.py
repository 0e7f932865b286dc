"""A1111 sampler and schedule-type names mapped to diffusers schedulers.

The mapping follows the table in diffusers' scheduler overview. Nothing heavy is imported until
`make_scheduler` is called, so validating a request stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest

SCHEDULE_TYPES = ("Automatic", "Uniform", "Karras", "Exponential", "Beta", "SGM Uniform", "Simple")

# The schedule types that switch a sigma flag on; all other types leave every flag off.
_SIGMA_FLAGS = {"Karras": "use_karras_sigmas", "Exponential": "use_exponential_sigmas", "Beta": "use_beta_sigmas"}
# diffusers' overview: A1111's sgm_uniform and simple are both `timestep_spacing="trailing"`.
_TRAILING = ("SGM Uniform", "Simple")
_ALL_SIGMAS = ("Karras", "Exponential", "Beta")


@dataclass(frozen=True)
class SamplerSpec:
    """One A1111 sampler: the diffusers class, its init overrides, and what it supports."""

    name: str
    scheduler: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    automatic: str = "Uniform"  # what A1111's "Automatic" schedule type resolves to
    sigmas: tuple[str, ...] = _ALL_SIGMAS  # schedule types backed by a `use_*_sigmas` flag
    spacing: bool = True  # accepts `timestep_spacing` (SGM Uniform, Simple)

    @property
    def schedule_types(self) -> tuple[str, ...]:
        """The schedule types this sampler can run with, in A1111's order."""
        return tuple(
            t
            for t in SCHEDULE_TYPES
            if t in ("Automatic", "Uniform") or t in self.sigmas or (t in _TRAILING and self.spacing)
        )


SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in (
        SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, "Karras"),
        SamplerSpec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}, "Exponential"),
        SamplerSpec("DPM++ SDE", "DPMSolverSinglestepScheduler", {}, "Karras", spacing=False),
        SamplerSpec("DPM2", "KDPM2DiscreteScheduler"),
        SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
        SamplerSpec("Euler", "EulerDiscreteScheduler"),
        SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler", sigmas=()),
        SamplerSpec("Heun", "HeunDiscreteScheduler"),
        SamplerSpec("LMS", "LMSDiscreteScheduler"),
        SamplerSpec("DDIM", "DDIMScheduler", {"set_alpha_to_one": False}, sigmas=()),
        SamplerSpec("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, sigmas=()),
        SamplerSpec("UniPC", "UniPCMultistepScheduler"),
        SamplerSpec("DEIS", "DEISMultistepScheduler"),
        # Latent consistency models (LCM-LoRA): A1111's LCM sampler; no sigma schedules.
        SamplerSpec("LCM", "LCMScheduler", sigmas=()),
    )
}

_BY_LOWER = {name.lower(): name for name in SAMPLERS}
_SCHEDULE_BY_LOWER = {t.lower(): t for t in SCHEDULE_TYPES} | {"sgm_uniform": "SGM Uniform"}


def legacy_names() -> list[str]:
    """A1111's combined names such as "DPM++ 2M Karras", for every sampler that has them."""
    return [f"{s.name} {t}" for s in SAMPLERS.values() for t in ("Karras", "Exponential") if t in s.sigmas]


def _unknown_sampler(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)} "
        f"(A1111's combined names such as 'DPM++ 2M Karras' work too)"
    )


def normalize(sampler: str, schedule_type: str | None = None) -> tuple[str, str]:
    """The canonical (sampler, schedule type) as chosen, "Automatic" kept; validated.

    A legacy combined name moves its schedule into the schedule type: ("DPM++ 2M Karras", None)
    gives ("DPM++ 2M", "Karras").
    """
    name, chosen = _parse(sampler, schedule_type)
    resolve(name, chosen)
    return name, chosen


def resolve(sampler: str, schedule_type: str | None = None) -> tuple[str, str]:
    """Return the canonical (sampler, schedule type), with "Automatic" resolved as A1111 does.

    Accepts the legacy combined form ("DPM++ 2M Karras") as well as sampler plus schedule type,
    case-insensitively. A combined name and a different explicit schedule type is an error.
    """
    name, chosen = _parse(sampler, schedule_type)
    spec = SAMPLERS[name]
    if chosen == "Automatic":
        chosen = spec.automatic
    if chosen not in spec.schedule_types:
        raise InvalidRequest(
            f"schedule type {chosen!r} is not available for sampler {spec.name!r}; "
            f"choose one of: {', '.join(spec.schedule_types)}"
        )
    return spec.name, chosen


def _parse(sampler: str, schedule_type: str | None) -> tuple[str, str]:
    if not isinstance(sampler, str) or not sampler.strip():
        raise InvalidRequest("sampler must be a name such as 'DPM++ 2M' or 'Euler a'")
    key = " ".join(sampler.split()).lower()
    implied = None
    if key not in _BY_LOWER:
        head, _, tail = key.rpartition(" ")
        if head in _BY_LOWER and tail in ("karras", "exponential"):
            key, implied = head, tail.capitalize()
        else:
            raise _unknown_sampler(sampler)
    spec = SAMPLERS[_BY_LOWER[key]]
    requested = _canonical_schedule(schedule_type) if schedule_type else "Automatic"
    if implied and requested not in ("Automatic", implied):
        raise InvalidRequest(
            f"sampler {sampler!r} already names the schedule type {implied}; "
            f"it conflicts with schedule type {requested!r}"
        )
    return spec.name, implied or requested


def _canonical_schedule(schedule_type: str) -> str:
    canonical = _SCHEDULE_BY_LOWER.get(" ".join(str(schedule_type).split()).lower())
    if canonical is None:
        raise InvalidRequest(f"unknown schedule type {schedule_type!r}; choose one of: {', '.join(SCHEDULE_TYPES)}")
    return canonical


def scheduler_kwargs(sampler: str, schedule_type: str, base_config: dict[str, Any]) -> dict[str, Any]:
    """The init overrides for (sampler, schedule type) on top of a model's pristine scheduler config.

    Every sigma flag the class supports is set explicitly, so nothing carries over from whichever
    scheduler ran before (diffusers' `from_config` would otherwise keep `use_karras_sigmas`).
    """
    sampler, schedule_type = resolve(sampler, schedule_type)
    spec = SAMPLERS[sampler]
    kwargs = dict(spec.kwargs)
    for kind in spec.sigmas:
        kwargs[_SIGMA_FLAGS[kind]] = kind == schedule_type
    if spec.spacing:
        kwargs["timestep_spacing"] = "trailing" if schedule_type in _TRAILING else base_config.get("timestep_spacing", "leading")
    return kwargs


def make_scheduler(sampler: str, schedule_type: str, base_config: dict[str, Any]):
    """Build a fresh diffusers scheduler for (sampler, schedule type) from a pristine config."""
    import diffusers

    sampler, schedule_type = resolve(sampler, schedule_type)
    cls = getattr(diffusers, SAMPLERS[sampler].scheduler)
    return cls.from_config(dict(base_config), **scheduler_kwargs(sampler, schedule_type, base_config))
