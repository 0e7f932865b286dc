"""Quality and aspect presets: valid requests, explicit CLI options win, and unknown names teach."""

import json

import pytest

from imagegen import InvalidRequest, RenderRequest
from imagegen.cli import main
from imagegen.presets import ASPECTS, QUALITIES, apply_quality, describe_quality, quality_fields
from imagegen.request import SDXL_SIZES

SMALL = ["--width", "64", "--height", "64", "--engine", "preview", "--seed", "11"]


@pytest.mark.parametrize("quality", QUALITIES)
def test_quality_fields_build_valid_requests(quality):
    fields = quality_fields(quality)
    request = RenderRequest("a lighthouse", **fields)
    assert {name: getattr(request, name) for name in fields} == fields


def test_draft_is_faster_than_final():
    draft, final = quality_fields("draft"), quality_fields("final")
    assert draft["num_inference_steps"] < final["num_inference_steps"] == 30
    assert (draft["refiner"], final["refiner"]) == ("off", "auto")
    assert (draft["sampler"], draft["schedule_type"]) == (final["sampler"], final["schedule_type"]) == ("DPM++ 2M", "Karras")
    assert describe_quality("draft") == "16 steps, DPM++ 2M Karras, CFG 6, refiner off"


def test_quality_names_are_forgiving_and_copies_are_independent():
    assert quality_fields(" Final ") == quality_fields("final")
    quality_fields("draft")["num_inference_steps"] = 99
    assert quality_fields("draft")["num_inference_steps"] == 16


def test_unknown_quality_names_the_choices():
    with pytest.raises(InvalidRequest, match=r"unknown quality 'best'; choose one of: draft, final"):
        quality_fields("best")


def test_apply_quality_given_fields_win():
    assert apply_quality(None, {"guidance_scale": 5.0}) == {"guidance_scale": 5.0}
    fields = apply_quality("final", {"num_inference_steps": 3, "refiner": "off"})
    assert fields == quality_fields("final") | {"num_inference_steps": 3, "refiner": "off"}


def test_a_given_sampler_takes_the_presets_schedule_type_with_it():
    fields = apply_quality("draft", {"sampler": "Euler a"})  # Euler a has no Karras schedule
    assert "schedule_type" not in fields and RenderRequest("x", **fields).schedule == "Uniform"
    fields = apply_quality("draft", {"sampler": "DPM++ SDE", "schedule_type": "Exponential"})
    assert RenderRequest("x", **fields).schedule_type == "Exponential"


def test_aspects_are_sdxl_sizes():
    assert set(ASPECTS.values()) <= set(SDXL_SIZES)
    (lw, lh), (pw, ph) = ASPECTS["landscape"], ASPECTS["portrait"]
    assert lw > lh and ph > pw and ASPECTS["square"] == (1024, 1024)


def rendered_request(tmp_path, capsys, *args):
    """Render through the CLI and read back the request recorded in the PNG's lineage."""
    assert main(["render", "a harbour at night", *SMALL, *args, "--output", str(tmp_path)]) == 0
    [png] = sorted(tmp_path.glob("*.png"))
    capsys.readouterr()
    assert main(["info", str(png), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["keyart"]["request"]


def test_cli_quality_fills_the_fields(tmp_path, capsys):
    request = rendered_request(tmp_path, capsys, "--quality", "draft")
    assert {k: request[k] for k in quality_fields("draft")} == quality_fields("draft")
    assert (request["width"], request["seed"]) == (64, 11)


def test_cli_explicit_options_win_over_the_preset(tmp_path, capsys):
    request = rendered_request(tmp_path, capsys, "--quality", "final", "--steps", "3", "--cfg-scale", "4.5", "--sampler", "Euler a", "--no-refiner")
    assert (request["num_inference_steps"], request["guidance_scale"], request["sampler"], request["refiner"]) == (3, 4.5, "Euler a", "off")
    assert request["schedule_type"] == "Automatic"  # the preset's Karras went with its sampler


def test_cli_preset_schedule_type_stays_when_only_steps_are_given(tmp_path, capsys):
    request = rendered_request(tmp_path, capsys, "--quality", "draft", "--steps", "5")
    assert (request["num_inference_steps"], request["schedule_type"], request["guidance_scale"]) == (5, "Karras", 6.0)


def test_cli_quality_on_from_replaces_the_pngs_settings(tmp_path, capsys):
    assert main(["render", "a quay", *SMALL, "--quality", "final", "--output", str(tmp_path / "a")]) == 0
    [source] = sorted((tmp_path / "a").glob("*.png"))
    assert main(["render", "--from", str(source), "--quality", "draft", "--output", str(tmp_path / "b")]) == 0
    [variant] = sorted((tmp_path / "b").glob("*.png"))
    capsys.readouterr()
    main(["info", str(variant), "--json"])
    request = json.loads(capsys.readouterr().out)["keyart"]["request"]
    assert (request["prompt"], request["seed"], request["num_inference_steps"], request["refiner"]) == ("a quay", 11, 16, "off")


def test_cli_unknown_quality_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["render", "x", "--quality", "best", "--output", str(out)]) == 2
    assert "unknown quality 'best'; choose one of: draft, final" in capsys.readouterr().err
    assert not out.exists()


def test_help_mentions_quality(capsys):
    with pytest.raises(SystemExit) as done:
        main(["render", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--quality {draft,final,lcm,lightning,hyper}" in out and "16 steps, DPM++ 2M Karras, CFG 6, refiner off" in out


def test_the_distilled_words_set_the_scheduler_steps_and_cfg_their_loras_were_trained_for():
    from imagegen.samplers import make_scheduler

    sdxl = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading", num_train_timesteps=1000)
    expected = {"lcm": ("LCMScheduler", 4, "leading"), "lightning": ("EulerDiscreteScheduler", 4, "trailing"), "hyper": ("DDIMScheduler", 8, "trailing")}
    for word, (scheduler, steps, spacing) in expected.items():
        fields = quality_fields(word)
        assert fields["num_inference_steps"] == steps and fields["guidance_scale"] == 1.0 and fields["refiner"] == "off", word
        made = make_scheduler(fields["sampler"], fields["schedule_type"], sdxl)
        assert type(made).__name__ == scheduler and made.config.timestep_spacing == spacing, word
        assert "LoRA in the prompt" in describe_quality(word)
    # Lightning's trailing spacing starts at the last training timestep, as its model card asks.
    lightning = make_scheduler("Euler", "SGM Uniform", sdxl)
    lightning.set_timesteps(4)
    assert int(lightning.timesteps[0]) == 999
