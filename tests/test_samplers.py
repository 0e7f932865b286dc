"""A1111 sampler and schedule-type names against diffusers' scheduler classes."""

import inspect

import pytest

from imagegen import InvalidRequest, samplers

BASE = {  # SDXL base 1.0's own scheduler config (the keys that matter here)
    "_class_name": "EulerDiscreteScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}


@pytest.mark.parametrize("spec", samplers.SAMPLERS.values(), ids=lambda s: s.name)
def test_table_matches_the_scheduler_classes(spec):
    import diffusers

    params = inspect.signature(getattr(diffusers, spec.scheduler).__init__).parameters
    flags = {"Karras": "use_karras_sigmas", "Exponential": "use_exponential_sigmas", "Beta": "use_beta_sigmas"}
    assert set(spec.sigmas) == {kind for kind, flag in flags.items() if flag in params}
    assert spec.spacing == ("timestep_spacing" in params)
    assert set(spec.kwargs) <= set(params)


@pytest.mark.parametrize(
    "sampler, schedule",
    [(s.name, t) for s in samplers.SAMPLERS.values() for t in s.schedule_types],
)
def test_every_combination_builds_its_scheduler(sampler, schedule):
    scheduler = samplers.make_scheduler(sampler, schedule, BASE)
    spec = samplers.SAMPLERS[sampler]
    assert type(scheduler).__name__ == spec.scheduler
    resolved = samplers.resolve(sampler, schedule)[1]
    for kind in spec.sigmas:
        assert scheduler.config[f"use_{kind.lower()}_sigmas"] is (kind == resolved)
    if spec.spacing:
        assert scheduler.config.timestep_spacing == ("trailing" if resolved in ("SGM Uniform", "Simple") else "leading")
    for key, value in spec.kwargs.items():
        assert scheduler.config[key] == value


def test_nothing_carries_over_between_samplers():
    karras = samplers.make_scheduler("DPM++ 2M", "Karras", BASE)
    assert karras.config.use_karras_sigmas
    # Building from a previous scheduler's config is the classic bug; keyart always starts from BASE.
    plain = samplers.make_scheduler("Euler", "Uniform", dict(karras.config))
    assert plain.config.use_karras_sigmas is False
    assert samplers.make_scheduler("DPM++ 2M", "Uniform", BASE).config.algorithm_type == "dpmsolver++"


@pytest.mark.parametrize(
    "given, expected",
    [
        (("DPM++ 2M", None), ("DPM++ 2M", "Karras")),  # A1111's Automatic for DPM++ 2M
        (("DPM++ 2M SDE", "Automatic"), ("DPM++ 2M SDE", "Exponential")),
        (("Euler a", None), ("Euler a", "Uniform")),
        (("dpm++ 2m karras", None), ("DPM++ 2M", "Karras")),
        (("DPM++ 2M SDE Karras", None), ("DPM++ 2M SDE", "Karras")),
        (("DPM++ 2M Karras", "Karras"), ("DPM++ 2M", "Karras")),
        (("Euler", "sgm_uniform"), ("Euler", "SGM Uniform")),
        (("UniPC", "exponential"), ("UniPC", "Exponential")),
    ],
)
def test_resolve(given, expected):
    assert samplers.resolve(*given) == expected


@pytest.mark.parametrize(
    "sampler, schedule, message",
    [
        ("Euler b", None, "unknown sampler 'Euler b'; choose one of: DPM\\+\\+ 2M"),
        ("", None, "sampler must be a name"),
        ("DDIM", "Karras", "not available for sampler 'DDIM'; choose one of: Automatic, Uniform, SGM Uniform, Simple"),
        ("DPM++ 2M Karras", "Exponential", "conflicts"),
        ("Euler", "Cosine", "unknown schedule type 'Cosine'"),
        ("DPM++ SDE", "SGM Uniform", "not available"),
    ],
)
def test_bad_names_teach(sampler, schedule, message):
    with pytest.raises(InvalidRequest, match=message):
        samplers.resolve(sampler, schedule)


def test_legacy_names_cover_a1111s_list():
    names = samplers.legacy_names()
    for legacy in ("DPM++ 2M Karras", "DPM++ SDE Karras", "DPM++ 2M SDE Karras", "DPM2 Karras", "DPM2 a Karras", "LMS Karras"):
        assert legacy in names
        assert samplers.resolve(legacy) == (legacy.rsplit(" ", 1)[0], "Karras")
