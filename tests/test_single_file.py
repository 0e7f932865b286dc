"""SDXL from one A1111/Civitai-style .safetensors file (Stability's original key layout), offline."""

import hashlib

import pytest

from imagegen import ModelNotFound, RenderRequest
from imagegen.engines.sdxl import SDXLEngine


@pytest.fixture(scope="module")
def single_file(tmp_path_factory):
    """(tiny-sdxl.safetensors, the diffusers folder with the same weights that serves as its config)."""
    from imagegen.tiny import save_tiny_single_file

    return save_tiny_single_file(tmp_path_factory.mktemp("tiny-single-file"))


@pytest.fixture(scope="module")
def engines(single_file):
    """The engine loaded from the file (configs from the KEYART_SDXL_CONFIG folder) and from the folder."""
    file, config_folder = single_file
    from_file = SDXLEngine.from_pretrained(str(file), config=str(config_folder))
    return from_file, SDXLEngine.from_pretrained(str(config_folder))


def _render(engine):
    request = RenderRequest("a harbour", num_inference_steps=2, width=64, height=64, seed=3, refiner="off")
    [image] = engine.render(request)
    return image


def test_file_is_in_the_original_sdxl_layout(single_file):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from safetensors.torch import load_file

    checkpoint = load_file(single_file[0])
    assert infer_diffusers_model_type(checkpoint) == "xl_base"
    prefixes = ("model.diffusion_model.", "first_stage_model.", "conditioner.embedders.0.transformer.text_model.", "conditioner.embedders.1.model.")
    assert {key.startswith(prefixes) for key in checkpoint} == {True}
    assert checkpoint["conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"].shape == (3 * 48, 48)
    assert checkpoint["conditioner.embedders.1.model.text_projection"].shape == (48, 40)  # (width, projection)
    assert checkpoint["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4  # a 1x1 convolution


def test_every_weight_lands_where_the_folder_has_it(engines):
    import torch

    from_file, from_folder = engines
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        loaded, expected = getattr(from_file.base, name).state_dict(), getattr(from_folder.base, name).state_dict()
        assert loaded.keys() == expected.keys(), name
        different = [key for key in expected if not torch.equal(loaded[key], expected[key])]
        assert not different, f"{name}: {len(different)} tensors differ, e.g. {different[:3]}"


def test_single_file_renders_bit_identical_to_its_diffusers_folder(engines):
    from_file, from_folder = engines
    assert _render(from_file).image.tobytes() == _render(from_folder).image.tobytes()


def test_single_file_is_named_and_hashed_as_a1111_does(engines, single_file):
    from_file, _ = engines
    assert from_file.model_name == "tiny-sdxl"
    assert from_file.model_hash == hashlib.sha256(single_file[0].read_bytes()).hexdigest()[:10]
    infotext = _render(from_file).infotext
    assert "Model: tiny-sdxl" in infotext and f"Model hash: {from_file.model_hash}" in infotext


def _load_without_config(single_file, monkeypatch):
    # Set in the environment, but not passed: the loader reads its config only as a parameter.
    monkeypatch.setenv("KEYART_SDXL_CONFIG", str(single_file[1]))
    with pytest.raises(ModelNotFound) as info:
        SDXLEngine.from_pretrained(str(single_file[0]))
    return str(info.value)


def test_single_file_offline_without_config_is_a_model_not_found(single_file, monkeypatch):
    # diffusers looks up the pipeline configs for "xl_base" on the hub; offline that is an OSError.
    assert "HF_HUB_OFFLINE" in _load_without_config(single_file, monkeypatch)


def test_single_file_offline_without_config_says_to_set_keyart_sdxl_config(single_file, monkeypatch):
    assert "KEYART_SDXL_CONFIG" in _load_without_config(single_file, monkeypatch)
