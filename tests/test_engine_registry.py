"""The engine table: names and descriptions, `auto`, options, what each engine supports, and adding
an engine as one entry."""

import dataclasses
import subprocess
import sys

import pytest
from PIL import Image

from imagegen import InvalidRequest, ModelNotFound, RenderRequest
from imagegen.engines import (
    ENGINE_SPECS,
    ENGINES,
    FEATURES,
    SDXL_OPTIONS,
    Choice,
    EngineSpec,
    check_request,
    choose,
    create_engine,
    describe,
    registry,
    spec,
)
from imagegen.engines.preview import PreviewEngine
from imagegen.request import MODE_FIELDS
from imagegen.settings import ImageSettings

SMALL = {"width": 64, "height": 64, "seed": 7, "num_inference_steps": 2}


@pytest.fixture
def model_folder(tmp_path):
    """A folder that is a diffusers model as far as choosing an engine looks (model_index.json)."""
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    return tmp_path


@pytest.fixture
def no_model(monkeypatch):
    monkeypatch.delenv("KEYART_SDXL_MODEL", raising=False)
    monkeypatch.delenv("KEYART_A1111_URL", raising=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    Image.new("RGB", (64, 64), "teal").save(folder / "init.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(folder / "mask.png")
    return {"init": str(folder / "init.png"), "mask": str(folder / "mask.png")}


@pytest.fixture(scope="module")
def moded(files):
    """One request per feature, each using it and nothing else."""
    return {
        "img2img": RenderRequest("a quay", init_image=files["init"], **SMALL),
        "inpaint": RenderRequest("a quay", init_image=files["init"], mask=files["mask"], **SMALL),
        "outpaint": RenderRequest("a quay", init_image=files["init"], outpaint="right", outpaint_pixels=32, **{**SMALL, "width": 96}),
        "hires": RenderRequest("a quay", hr_scale=1.5, **SMALL),
        "variation": RenderRequest("a quay", subseed=3, subseed_strength=0.2, **SMALL),
        "refiner": RenderRequest("a quay", refiner="on", **SMALL),
        "lora": RenderRequest("a quay <lora:ink:0.8>", **SMALL),
        "control": RenderRequest("a quay", controls=[f"canny:{files['init']}:0.8"], **SMALL),
        "reference": RenderRequest("a quay", reference=files["init"], **SMALL),
        "tiling": RenderRequest("a quay", tiling="on", **SMALL),
        "freeu": RenderRequest("a quay", freeu="on", **SMALL),
    }


class Recorder:
    """A test engine that records its options and every render call."""

    name = "echo"
    model_name = "echo-1"

    def __init__(self, **options):
        self.options, self.calls = options, []

    def render(self, request, *, lineage=None, progress=None):
        self.calls.append(request)
        return []


ECHO = EngineSpec(name="echo", factory=Recorder, description="records calls, draws nothing", options=("voice",))


# -- the table -----------------------------------------------------------------------------------


def test_the_table_lists_auto_the_engines_and_preview_with_one_line_descriptions():
    assert ENGINES == ("auto", "sdxl", "a1111", "openai", "preview") == registry.names(ENGINE_SPECS)
    rows = dict(describe())
    assert list(rows) == ["auto", "sdxl", "a1111", "openai", "preview"]
    assert rows["auto"] == "sdxl when KEYART_SDXL_MODEL is set, a1111 when KEYART_A1111_URL is set, else preview"
    assert "KEYART_A1111_URL" in rows["a1111"] and "KEYART_IMAGES_BASE_URL" in rows["openai"]
    assert spec("a1111").needs == "KEYART_A1111_URL" and not spec("openai").auto  # auto never picks a paid API
    assert "KEYART_SDXL_MODEL" in rows["sdxl"] and "not drawn" in rows["preview"]
    assert all(line and "\n" not in line and len(line) < 120 for line in rows.values())
    assert SDXL_OPTIONS == spec("sdxl").options == ("device", "dtype", "memory", "speed", "compile")
    assert spec(" Preview ").options == ()  # PreviewEngine(**options) refuses every option
    assert spec("sdxl").needs == "KEYART_SDXL_MODEL" and spec("preview").needs is None


def test_help_lists_the_engines_from_the_table():
    done = subprocess.run([sys.executable, "-m", "imagegen", "render", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name, line in describe():
        assert f"{name}  " in done.stdout and line.split(":")[0] in done.stdout, name


@pytest.mark.parametrize("name", ["dalle", "stable diffusion", ""])
def test_an_unknown_engine_name_lists_the_known_ones(name):
    with pytest.raises(InvalidRequest, match="unknown engine .*; choose one of: auto, sdxl, a1111, openai, preview"):
        spec(name)
    with pytest.raises(InvalidRequest, match="choose one of: auto, sdxl, a1111, openai, preview"):
        check_request(name, RenderRequest("x"))


def test_unknown_and_misplaced_options_are_clear_errors(model_folder, no_model):
    tmp_path = model_folder
    with pytest.raises(InvalidRequest, match=r"unknown engine options \['turbo'\]; known: device, dtype, memory"):
        choose("auto", turbo=True)
    with pytest.raises(InvalidRequest, match=r"unknown preview engine options \['turbo'\]; known: none"):
        create_engine("preview", turbo=True)
    with pytest.raises(InvalidRequest, match="--device, --memory apply to the sdxl engine, not preview"):
        create_engine("auto", device="cuda", memory="lowvram")
    # Settings for the sdxl engine are no options asked of preview: they just do not apply.
    assert isinstance(create_engine("auto", ImageSettings(device="cuda", memory="lowvram")), PreviewEngine)
    settings = ImageSettings(sdxl_model=str(tmp_path))
    with pytest.raises(InvalidRequest, match=r"unknown sdxl engine options \['turbo'\]; known: device, dtype, memory"):
        choose("sdxl", settings, turbo=True)
    assert choose("sdxl", settings, device="cpu", dtype=None, memory="").name == "sdxl"  # None and "" are unset


def test_unset_options_do_not_reach_the_factory(no_model):
    assert isinstance(create_engine("preview", device=None, dtype="", memory=None), PreviewEngine)


# -- auto ----------------------------------------------------------------------------------------


def test_auto_without_a_model_falls_back_to_preview_and_says_how_to_render(no_model):
    choice = choose("auto")
    assert choice == Choice("preview", choice.reason)
    assert choice.reason.startswith("no SDXL model or server is configured") and "set KEYART_SDXL_MODEL" in choice.reason
    assert "or KEYART_A1111_URL to render on a server" in choice.reason
    assert spec("auto") is spec("preview")
    assert choose("preview").reason == "the preview engine was asked for: offline cards, not SDXL renders"
    with pytest.raises(ModelNotFound, match="the sdxl engine needs a model, and KEYART_SDXL_MODEL is not set"):
        choose("sdxl")


def test_auto_with_a_model_picks_sdxl_and_loads_nothing(model_folder, no_model):
    tmp_path = model_folder
    settings = ImageSettings.from_env({"KEYART_SDXL_MODEL": f" {tmp_path} "})
    assert choose("auto", settings) == Choice("sdxl", f"KEYART_SDXL_MODEL is set ({tmp_path})")
    assert choose("SDXL", settings) == choose("auto", settings)
    assert spec("auto", settings) is spec("sdxl")
    assert choose("preview", settings).name == "preview"
    (tmp_path / "images").mkdir()
    with pytest.raises(ModelNotFound, match="no model_index.json"):  # a folder that is no model fails when chosen, loading nothing
        choose("sdxl", ImageSettings(sdxl_model=str(tmp_path / "images")))
    # The settings object is what is read: the environment (no model) is not.
    assert choose("auto").name == "preview" and spec("auto") is spec("preview")


def test_without_settings_the_factory_reads_the_environment(monkeypatch, model_folder):
    tmp_path = model_folder
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tmp_path))
    assert choose("auto") == Choice("sdxl", f"KEYART_SDXL_MODEL is set ({tmp_path})")
    assert choose("auto", ImageSettings()).name == "preview"


# -- what each engine supports -------------------------------------------------------------------


def test_every_image_mode_field_belongs_to_a_feature_that_a_plain_request_does_not_use(files):
    fields = {f for feature in FEATURES for f in feature.fields}
    assert set(MODE_FIELDS) <= fields
    plain = RenderRequest("a quay", **SMALL)
    assert not [f.name for f in FEATURES if f.used(plain)]
    # A setting of a feature that is off (strength without an init image, refiner off) asks for nothing.
    tuned = plain.replace(strength=0.3, mask_blur=8, hr_upscaler="lanczos", denoising_strength=0.4, subseed=5, refiner="off")
    assert not [f.name for f in FEATURES if f.used(tuned)]


def test_each_feature_is_seen_in_its_own_request(moded):
    for name, request in moded.items():
        assert [f.name for f in FEATURES if f.used(request)] == [name], name


def test_sdxl_supports_every_feature_and_preview_accepts_every_request_as_a_labelled_stand_in(moded, no_model):
    for request in moded.values():
        check_request("sdxl", request)
        check_request("preview", request)
        check_request("auto", request)
    assert spec("sdxl").recorded_only == frozenset()
    # What preview.py draws: the init image (faded, on the outpainted canvas) and each mode's final
    # size; the mask, variation seeds, the refiner, LoRAs, control units, references, blends, tiling and FreeU are only written into the PNG.
    assert spec("preview").renders == {"img2img", "outpaint", "hires"}
    assert spec("preview").recorded_only == {"inpaint", "variation", "refiner", "lora", "control", "reference", "blend", "tiling", "freeu"}


def test_an_unsupported_feature_fails_before_the_engine_draws_anything(moded, monkeypatch, no_model):
    import imagegen.engines as engines

    strict = dataclasses.replace(spec("preview"), supports=spec("preview").renders)  # only what it draws
    monkeypatch.setattr(engines, "ENGINE_SPECS", (spec("sdxl"), strict))
    steps = []
    with pytest.raises(InvalidRequest) as caught:
        PreviewEngine().render(moded["inpaint"], progress=lambda *a: steps.append(a))
    assert str(caught.value) == "the preview engine cannot do inpainting (mask); use --engine sdxl with KEYART_SDXL_MODEL set"
    assert steps == []
    for name, field in (("variation", "subseed_strength"), ("refiner", "refiner='on'"), ("lora", "<lora:...> in the prompt")):
        with pytest.raises(InvalidRequest, match=f"the preview engine cannot do .* \\({field}\\); use --engine sdxl"):
            check_request("preview", moded[name])
    check_request(strict, moded["hires"])  # a spec works as well as a name
    assert len(PreviewEngine().render(moded["hires"])) == 1


def test_several_unsupported_features_are_named_together(moded):
    table = (*ENGINE_SPECS, ECHO)
    request = moded["hires"].replace(subseed_strength=0.3, prompt="x <lora:ink:1>")
    with pytest.raises(InvalidRequest) as caught:
        registry.check(table, "echo", request)
    assert str(caught.value) == (
        "the echo engine cannot do the hires fix (hr_scale) or variation seeds (subseed_strength) or LoRAs (<lora:...> in the prompt); "
        "use --engine sdxl with KEYART_SDXL_MODEL set or --engine a1111 with KEYART_A1111_URL set or --engine preview"
    )  # openai can do none of them: it is not offered
    alone = (dataclasses.replace(ECHO, auto=True),)
    with pytest.raises(InvalidRequest, match="cannot do the hires fix .*; no engine here can"):
        registry.check(alone, "echo", moded["hires"])


# -- adding an engine ----------------------------------------------------------------------------


def test_a_new_engine_is_one_entry_in_the_table(moded, no_model):
    table = (*ENGINE_SPECS, ECHO)
    assert registry.names(table) == ("auto", "sdxl", "a1111", "openai", "preview", "echo")
    assert registry.describe(table)[-1] == ("echo", "records calls, draws nothing")
    assert registry.resolve(table, "Echo", voice="low") == Choice("echo", "the echo engine was asked for")
    engine = registry.create(table, "echo", voice="low", device=None)
    assert isinstance(engine, Recorder) and engine.options == {"voice": "low"}
    with pytest.raises(InvalidRequest, match="--voice apply to the echo engine, not preview"):
        registry.resolve(table, "auto", voice="low")
    with pytest.raises(InvalidRequest, match="--device apply to the sdxl engine, not echo"):
        registry.resolve(table, "echo", device="cuda")
    registry.check(table, "echo", RenderRequest("a quay", **SMALL))
    with pytest.raises(InvalidRequest, match=r"the echo engine cannot do inpainting \(mask\)"):
        registry.check(table, "echo", moded["inpaint"])
    assert engine.calls == []
    # auto tries the table's engines in order: one that needs nothing, put first, always wins.
    first = (dataclasses.replace(ECHO, auto=True, auto_reason="echo first"), *ENGINE_SPECS)
    assert registry.resolve(first, "auto") == Choice("echo", "echo first")


class Configured:
    """A settings object as the registry reads it (ImageSettings.value), for a variable it does not have."""

    def __init__(self, **values):
        self.values = values

    def value(self, env):
        return self.values.get(env) or None


def test_an_engine_that_needs_configuration_says_what_is_missing():
    needy = dataclasses.replace(ECHO, needs="KEYART_ECHO_URL", missing="set KEYART_ECHO_URL to the echo server", auto=True)
    unset = Configured()
    with pytest.raises(ModelNotFound, match="set KEYART_ECHO_URL to the echo server"):
        registry.resolve((needy,), "echo", unset)
    with pytest.raises(ModelNotFound, match="no engine that auto may pick is configured; set KEYART_ECHO_URL"):
        registry.resolve((needy,), "auto", unset)
    configured = Configured(KEYART_ECHO_URL="http://127.0.0.1:1")
    assert registry.resolve((needy,), "auto", configured) == Choice("echo", "KEYART_ECHO_URL is set (http://127.0.0.1:1)")
    engine = registry.create((needy,), "auto", configured, voice="low")
    assert isinstance(engine, Recorder) and engine.options == {"voice": "low"}  # no settings to a factory that takes none
    taking = dataclasses.replace(needy, factory=lambda settings, **options: (settings, options), takes_settings=True)
    assert registry.create((taking,), "echo", configured, voice="low") == (configured, {"voice": "low"})
    assert registry.describe((needy,))[0] == ("auto", "echo when KEYART_ECHO_URL is set")
    assert registry.describe((needy, *ENGINE_SPECS))[0] == (
        "auto", "echo when KEYART_ECHO_URL is set, sdxl when KEYART_SDXL_MODEL is set, a1111 when KEYART_A1111_URL is set, else preview"
    )


def test_factories_are_imported_only_when_created_and_table_mistakes_are_caught():
    assert registry.factory_of(dataclasses.replace(ECHO, factory="fractions:Fraction.from_float"))(0.5) == 0.5
    assert registry.factory_of(spec("preview")) is PreviewEngine
    with pytest.raises(ValueError, match="'inpant'"):
        EngineSpec(name="typo", factory=Recorder, description="x", supports=frozenset({"inpant"}))
    with pytest.raises(ValueError, match="'hires'"):
        EngineSpec(name="typo", factory=Recorder, description="x", renders=frozenset({"hires"}))


def test_the_table_and_a_preview_engine_import_no_torch():
    code = (
        "import sys\n"
        "from imagegen.engines import create_engine, describe, spec, check_request, ENGINE_SPECS\n"
        "from imagegen import RenderRequest\n"
        "describe(); spec('sdxl'); check_request('sdxl', RenderRequest('x <lora:ink:1>', hr_scale=1.5))\n"
        "engine = create_engine('preview')\n"
        "engine.render(RenderRequest('x', width=64, height=64, seed=1))\n"
        "print(type(engine).__name__, sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PreviewEngine []"
