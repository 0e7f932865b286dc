"""RenderRequest: one vocabulary, validated on construction with messages that teach."""

import json

import pytest

from imagegen import InvalidRequest, RenderRequest, UnknownStyle, styles


def test_defaults_are_sdxl_defaults():
    r = RenderRequest("a cat")
    assert (r.width, r.height, r.num_inference_steps, r.guidance_scale) == (1024, 1024, 30, 7.0)
    assert (r.sampler, r.schedule_type, r.schedule, r.seed, r.refiner, r.refiner_switch_at) == ("DPM++ 2M", "Automatic", "Karras", -1, "auto", 0.8)


def test_automatic_follows_the_sampler_and_legacy_names_split():
    r = RenderRequest("x").replace(sampler="Euler a")
    assert (r.schedule_type, r.schedule) == ("Automatic", "Uniform")
    legacy = RenderRequest("x", sampler="DPM++ 2M SDE Karras")
    assert (legacy.sampler, legacy.schedule_type, legacy.schedule) == ("DPM++ 2M SDE", "Karras", "Karras")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"width": 1001}, "width must be a multiple of 8 .* \\(got 1001\\); SDXL works best at 1024x1024, 1152x896"),
        ({"height": 4096}, "height must be a multiple of 8 between 64 and 2048"),
        ({"width": 512.5}, "width must be a whole number"),
        ({"num_inference_steps": -1}, "steps must be between 1 and 150 \\(got -1\\)"),
        ({"num_inference_steps": 0}, "steps must be between 1 and 150"),
        ({"guidance_scale": 31}, "CFG scale must be between 1 and 30 \\(got 31\\)"),
        ({"guidance_scale": 0.5}, "CFG scale must be between 1 and 30"),
        ({"guidance_scale": float("nan")}, "CFG scale must be a number"),
        ({"seed": -2}, "seed must be -1 \\(random\\) or between 0 and 4294967295"),
        ({"seed": 2**32}, "seed must be -1"),
        ({"batch_size": 0}, "batch size must be between 1 and 8"),
        ({"batch_count": 101}, "batch count must be between 1 and 100"),
        ({"sampler": "Euler z"}, "unknown sampler"),
        ({"schedule_type": "Cosine"}, "unknown schedule type"),
        ({"refiner": True}, "refiner must be one of auto, on, off"),
        ({"refiner_switch_at": 1.0}, "refiner switch at must be between 0 and 1"),
        ({"prompt": None}, "prompt must be text"),
        ({"style": 5}, "style must be a style name"),
        ({"num_inference_steps": True}, "steps must be a whole number"),
    ],
)
def test_bad_input_is_a_clear_error(change, message):
    with pytest.raises(InvalidRequest, match=message):
        RenderRequest(**{"prompt": "a cat", **change})


def test_unknown_style_lists_the_styles():
    with pytest.raises(UnknownStyle, match="choose one of: cinematic, graphic-novel, watercolor, anime, retro-poster"):
        RenderRequest("a cat", style="vaporwave")


def test_seeds_number_images_as_a1111():
    r = RenderRequest("x", seed=4294967294, batch_size=2, batch_count=2)
    assert r.seeds() == [4294967294, 4294967295, 0, 1]  # wraps inside the 32-bit range
    resolved = RenderRequest("x").with_seed()
    assert 0 <= resolved.seed <= 2**32 - 1 and resolved.with_seed() is resolved


def test_dict_round_trip_and_unknown_fields():
    r = RenderRequest("a {braced} prompt", style="anime", sampler="Euler a", seed=7)
    assert RenderRequest.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(InvalidRequest, match="unknown request fields \\['cfg'\\]"):
        RenderRequest.from_dict({"prompt": "x", "cfg": 7})


def test_style_names_are_case_insensitive_and_none_means_unstyled():
    assert RenderRequest("x", style="Watercolor").style == "watercolor"
    assert RenderRequest("x", style="none").styled == ("x", "")


def test_five_catalog_styles_are_data():
    catalog = styles.catalog()
    assert list(catalog) == ["cinematic", "graphic-novel", "watercolor", "anime", "retro-poster"]
    for style in catalog.values():
        assert style.description and style.negative_prompt and len(style.palette) == 5
        assert style.prompt.count("{prompt}") == 1


def test_style_applies_like_styleselectorxl():
    prompt, negative = styles.apply("anime", "a {x} lighthouse", "fog")
    assert prompt.startswith("anime key visual of a {x} lighthouse, clean line art")
    assert negative.endswith(", watermark, text, fog")


def test_user_styles_from_the_configured_files(tmp_path):
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps([{"name": "Ukiyo-e", "description": "woodblock", "prompt": "ukiyo-e print of {prompt}"}]))
    styles.use_files([extra])
    assert RenderRequest("a wave", style="ukiyo-e").styled == ("ukiyo-e print of a wave", "")
    extra.write_text(json.dumps([{"name": "broken", "prompt": "no placeholder"}]))
    styles.use_files([str(extra) + "x"])
    with pytest.raises(InvalidRequest, match="the styles file .*mine.jsonx \(KEYART_STYLES\) does not exist"):
        styles.catalog()
    colours = tmp_path / "colours.json"
    colours.write_text(json.dumps([{"name": "pastel", "prompt": "{prompt}", "palette": "pink"}]))
    styles.use_files([colours])
    with pytest.raises(InvalidRequest, match="'palette' must be a list of '#rrggbb' colours"):
        styles.catalog()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "broken", "prompt": "no placeholder"}]))
    styles.use_files([bad])
    with pytest.raises(InvalidRequest, match="must contain \\{prompt\\} exactly once"):
        styles.catalog()
    styles.use_files([])  # configured: no extra files
    assert "ukiyo-e" not in styles.catalog() and "anime" in styles.catalog()


def test_unconfigured_styles_fall_back_to_keyart_styles_for_library_use(tmp_path, monkeypatch):
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps([{"name": "Ukiyo-e", "description": "woodblock", "prompt": "ukiyo-e print of {prompt}"}]))
    monkeypatch.setenv("KEYART_STYLES", str(extra))
    assert RenderRequest("a wave", style="ukiyo-e").styled == ("ukiyo-e print of a wave", "")
    styles.use_files([])  # once configured, the environment no longer counts
    with pytest.raises(InvalidRequest, match="unknown style 'ukiyo-e'"):
        styles.get("ukiyo-e")
    styles.use_files(None)
    assert styles.get("ukiyo-e").description == "woodblock"
