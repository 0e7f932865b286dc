"""Loading SDXL from folders, files and hub ids; device, precision and memory options."""

import json

import pytest

from imagegen import InvalidRequest, ModelNotFound, RenderRequest
from imagegen.engines import create_engine
from imagegen.engines.sdxl import SDXLEngine
from imagegen.engines.sdxl_load import locate, pick_dtype, place
from imagegen.settings import ImageSettings


def test_loads_base_and_refiner_from_folders_and_shares_components(tiny_model_dirs):
    base_dir, refiner_dir = tiny_model_dirs
    engine = SDXLEngine.from_pretrained(str(base_dir), str(refiner_dir))
    assert engine.model_name == "tiny-sdxl-base" and engine.refiner_name == "tiny-sdxl-refiner"
    assert engine.refiner.vae is engine.base.vae and engine.refiner.text_encoder_2 is engine.base.text_encoder_2
    assert (engine.device, engine.dtype) == ("cpu", "float32")
    [image] = engine.render(RenderRequest("a harbour", num_inference_steps=3, width=64, height=72, seed=1))
    assert image.image.size == (64, 72) and "Refiner: tiny-sdxl-refiner" in image.infotext


def test_auto_engine_uses_sdxl_when_the_settings_name_a_model(tiny_model_dirs, tmp_path):
    settings = ImageSettings(sdxl_model=str(tiny_model_dirs[0]), lora_dir=str(tmp_path), device="cpu")
    engine = create_engine("auto", settings)
    assert engine.name == "sdxl" and engine.refiner is None
    assert engine.lora_dir == str(tmp_path) and engine.device == "cpu"  # the settings reach the engine


def test_unknown_engine_option_is_an_error(tiny_model_dirs):
    settings = ImageSettings(sdxl_model=str(tiny_model_dirs[0]))
    with pytest.raises(InvalidRequest, match="unknown sdxl engine options"):
        create_engine("sdxl", settings, turbo=True)
    with pytest.raises(InvalidRequest, match="unknown sdxl engine options"):
        SDXLEngine.from_settings(settings, turbo=True)
    with pytest.raises(ModelNotFound, match="set KEYART_SDXL_MODEL"):
        SDXLEngine.from_settings(ImageSettings())


def test_options_win_over_the_settings(tiny_model_dirs):
    settings = ImageSettings(sdxl_model=str(tiny_model_dirs[0]), memory="lowvram")
    with pytest.raises(InvalidRequest, match="memory mode 'lowvram' offloads from a CUDA GPU"):
        SDXLEngine.from_settings(settings, device="cpu")
    assert SDXLEngine.from_settings(settings, device="cpu", memory="normal").memory == "normal"


@pytest.mark.parametrize(
    "model, message",
    [
        ("/nowhere/sdxl.safetensors", "no such file"),
        ("/nowhere/at/all", "neither a folder"),
        ("not a model", "neither a folder"),
    ],
)
def test_missing_models_say_what_to_set(model, message):
    with pytest.raises(ModelNotFound, match=message) as info:
        locate(model)
    assert "KEYART_SDXL_MODEL" in str(info.value)


def test_folder_that_is_not_sdxl(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelNotFound, match="not SDXL"):
        locate(str(tmp_path))
    with pytest.raises(ModelNotFound, match="no model_index.json"):
        locate(str(tmp_path.parent))


def test_hub_id_not_in_the_offline_cache():
    assert locate("stabilityai/stable-diffusion-xl-base-1.0").kind == "hub"
    with pytest.raises(ModelNotFound, match="HF_HUB_OFFLINE"):
        SDXLEngine.from_pretrained("keyart-test/no-such-sdxl-model")


def test_refiner_missing_names_its_variable(tiny_model_dirs):
    with pytest.raises(ModelNotFound, match="KEYART_SDXL_REFINER"):
        SDXLEngine.from_pretrained(str(tiny_model_dirs[0]), "/nowhere/refiner.safetensors")


def test_precision_and_memory_options(tiny_pipes):
    import torch

    assert pick_dtype("cpu") is torch.float32
    assert pick_dtype("cuda") is torch.float16
    assert pick_dtype("cuda", "bf16") is torch.bfloat16
    with pytest.raises(InvalidRequest, match="dtype must be one of"):
        pick_dtype("cpu", "int8")
    with pytest.raises(InvalidRequest, match="on cpu use 'normal'"):
        place([tiny_pipes[0]], "cpu", "medvram")
    with pytest.raises(InvalidRequest, match="memory must be one of"):
        place([tiny_pipes[0]], "cpu", "highvram")
