"""The preview engine: deterministic, exactly sized, labelled cards; and how `auto` falls back to it."""

import json

import pytest
from PIL import ImageChops, ImageColor, ImageStat

from imagegen import InvalidRequest, ModelNotFound, RenderRequest, styles
from imagegen.engines import choose, create_engine
from imagegen.engines.preview import HAZARD, INK_DARK, PreviewEngine


@pytest.fixture(scope="module")
def engine():
    return PreviewEngine()


def card(engine, prompt="a lighthouse keeper in a storm", **fields):
    fields = {"width": 256, "height": 256, "seed": 7, **fields}
    return engine.render(RenderRequest(prompt, **fields))


def colour_counts(image):
    return {colour: n for n, colour in image.getcolors(image.width * image.height)}


@pytest.mark.parametrize("size", [(64, 64), (1024, 1024), (1344, 768), (2048, 64), (64, 2048), (2048, 2048)])
def test_cards_come_out_at_exactly_the_requested_size(engine, size):
    [out] = card(engine, "a very long prompt " * 40, width=size[0], height=size[1], style="cinematic")
    assert out.image.size == size
    assert out.image.mode == "RGB"


def test_a_batch_is_batch_count_times_batch_size_images_on_consecutive_seeds(engine):
    images = card(engine, seed=1000, batch_size=2, batch_count=2)
    assert [i.seed for i in images] == [1000, 1001, 1002, 1003]
    assert [i.index for i in images] == [0, 1, 2, 3]
    assert all(f"Seed: {i.seed}," in i.infotext for i in images)
    assert all(i.request.seed == 1000 for i in images)


def test_a_random_seed_is_resolved_and_recorded(engine):
    [out] = card(engine, seed=-1)
    assert 0 <= out.seed <= 2**32 - 1
    assert out.request.seed == out.seed
    assert f"Seed: {out.seed}," in out.infotext
    assert out.lineage["seed"] == out.seed


def test_the_same_seed_gives_the_same_bytes_and_another_seed_a_visibly_different_card(engine):
    first, again, other = (card(engine, seed=s, style="anime")[0].image for s in (42, 42, 43))
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    # Not just the footer's seed number: the composition itself moves.
    assert sum(ImageStat.Stat(ImageChops.difference(first, other)).mean) / 3 > 10


def test_without_a_style_the_palette_comes_from_the_seed(engine):
    first, again, other = (card(engine, seed=s)[0].image for s in (5, 5, 6))
    assert first.tobytes() == again.tobytes()
    solid = lambda image: {c for c, n in colour_counts(image).items() if n >= 500}  # noqa: E731
    assert solid(first) & solid(other) == {HAZARD, INK_DARK}, "only the banner's colours should be shared"


def test_a_card_is_labelled_a_preview_in_its_metadata(engine):
    [out] = engine.render(RenderRequest("a quay at dawn", width=64, height=64, seed=3), lineage={"title": "Quay", "show": "Harbour"})
    assert "Model: keyart-preview" in out.infotext
    assert "preview (offline card, not an SDXL render)" in out.infotext
    assert out.lineage["preview"] is True
    assert out.lineage["engine"] == "preview"
    assert out.lineage["model"] == "keyart-preview"
    assert "not an SDXL render" in out.lineage["label"]
    assert out.lineage["lineage"] == {"title": "Quay", "show": "Harbour"}


def test_a_styled_card_shows_the_style_palette_as_solid_colour(engine):
    palette = [ImageColor.getrgb(c) for c in styles.get("watercolor").palette]
    counts = colour_counts(card(engine, style="watercolor", width=512, height=512)[0].image)
    assert all(counts.get(c, 0) >= 100 for c in palette), {c: counts.get(c, 0) for c in palette}
    cinematic = colour_counts(card(engine, style="cinematic", width=512, height=512)[0].image)
    assert not any(cinematic.get(c, 0) >= 100 for c in palette)


@pytest.mark.parametrize("size", [(64, 64), (1024, 1024)])
def test_the_preview_banner_runs_across_the_top(engine, size):
    image = card(engine, width=size[0], height=size[1])[0].image
    strip = image.crop((0, 0, image.width, 8))  # the banner is at least 11 px tall
    counts = colour_counts(strip)
    assert counts.get(HAZARD, 0) > 0.1 * strip.width * strip.height, "the caution-yellow banner should be unmistakable"
    assert counts.get(HAZARD, 0) + counts.get(INK_DARK, 0) > 0.7 * strip.width * strip.height


def test_braces_in_a_prompt_are_harmless(engine):
    [out] = card(engine, "{x} and {prompt}", style="watercolor")
    assert "{x} and {prompt}" in out.infotext
    assert out.lineage["request"]["prompt"] == "{x} and {prompt}"


def test_text_outside_the_built_in_font_and_words_wider_than_a_line_still_draw(engine):
    [out] = engine.render(
        RenderRequest("Ærøskøbing — façade × 3 " + "x" * 500, width=64, height=64, seed=1), lineage={"title": "Café — Épisode 1"}
    )
    assert out.image.size == (64, 64)


def test_progress_is_reported_once_per_card(engine):
    calls = []
    engine.render(RenderRequest("x", width=64, height=64, seed=1, batch_size=2, batch_count=2), progress=lambda *a: calls.append(a))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_the_preview_engine_takes_no_options():
    with pytest.raises(InvalidRequest, match="device"):
        PreviewEngine(device="cuda")
    with pytest.raises(InvalidRequest, match="device"):
        create_engine("preview", device="cuda")


def test_custom_styles_with_short_missing_or_bad_palettes(engine, tmp_path, monkeypatch):
    extra = [
        {"name": "mono", "prompt": "{prompt}, ink", "palette": ["#204060"]},
        {"name": "plain", "prompt": "{prompt}, plain"},
    ]
    (tmp_path / "styles.json").write_text(json.dumps(extra), encoding="utf-8")
    monkeypatch.setenv("KEYART_STYLES", str(tmp_path / "styles.json"))
    assert colour_counts(card(engine, style="mono")[0].image).get((0x20, 0x40, 0x60), 0) >= 100
    assert card(engine, style="plain")[0].image.size == (256, 256)
    extra.append({"name": "broken", "prompt": "{prompt}", "palette": ["not-a-colour"]})
    (tmp_path / "styles.json").write_text(json.dumps(extra), encoding="utf-8")
    with pytest.raises(InvalidRequest, match="broken.*palette"):  # caught when the styles load
        card(engine, style="mono")


def test_auto_falls_back_to_preview_and_says_how_to_get_sdxl(monkeypatch):
    monkeypatch.delenv("KEYART_SDXL_MODEL", raising=False)
    choice = choose("auto")
    assert choice.name == "preview"
    assert "KEYART_SDXL_MODEL" in choice.reason
    assert isinstance(create_engine("auto"), PreviewEngine)
    assert isinstance(create_engine("preview"), PreviewEngine)


def test_sdxl_without_a_model_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv("KEYART_SDXL_MODEL", raising=False)
    with pytest.raises(ModelNotFound, match="(?i)set KEYART_SDXL_MODEL"):
        choose("sdxl")
    with pytest.raises(ModelNotFound, match="(?i)set KEYART_SDXL_MODEL"):
        create_engine("sdxl")


def test_auto_picks_sdxl_when_a_model_is_configured(monkeypatch, tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')  # a folder that looks like one
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tmp_path))
    choice = choose("auto")  # choosing loads nothing
    assert choice.name == "sdxl"
    assert str(tmp_path) in choice.reason
    assert choose("preview").name == "preview"


def test_engine_names_ignore_case(monkeypatch):
    monkeypatch.delenv("KEYART_SDXL_MODEL", raising=False)
    assert choose(" Preview ").name == "preview"
    with pytest.raises(ModelNotFound, match="KEYART_SDXL_MODEL"):
        choose("SDXL")


@pytest.mark.parametrize("name", ["dalle", "stable diffusion", ""])
def test_an_unknown_engine_is_a_clear_error(name):
    with pytest.raises(InvalidRequest, match="unknown engine .* choose one of: auto, sdxl, a1111, openai, preview"):
        choose(name)
    with pytest.raises(InvalidRequest, match="unknown engine"):
        create_engine(name)
