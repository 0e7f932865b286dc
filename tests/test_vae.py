"""A VAE in place of the model's own (KEYART_SDXL_VAE, A1111's SD VAE): a diffusers folder or an
A1111-style single file, shared by base and refiner, named in the infotext and lineage, kept in
fp16 when its config says it is fp16-safe, and part of the catalog's image keys."""

import json
import re

import pytest
import torch

from imagegen import ModelNotFound, RenderRequest
from imagegen.engines.sdxl import SDXLEngine
from imagegen.engines.sdxl_load import check_settings, locate_vae
from imagegen.metadata import parse_infotext, request_from_infotext
from imagegen.settings import ImageSettings


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    """(folder, file): the replacement VAE, fp16-safe by its config, in both forms."""
    from imagegen.tiny import save_tiny_vae

    return save_tiny_vae(tmp_path_factory.mktemp("tiny-vae"))


@pytest.fixture(scope="module")
def engines(tiny_model_dirs, vae):
    """The tiny SDXL with the replacement from its folder, from its file, and with its own VAE."""
    base, refiner = map(str, tiny_model_dirs)
    folder, file = map(str, vae)
    return (
        SDXLEngine.from_pretrained(base, refiner, vae=folder),
        SDXLEngine.from_pretrained(base, refiner, vae=file),
        SDXLEngine.from_pretrained(base, refiner),
    )


def _render(engine, refiner="off"):
    request = RenderRequest("a lighthouse at dusk", num_inference_steps=2, width=64, height=64, seed=11, refiner=refiner)
    [image] = engine.render(request)
    return image


def _pixels(image):
    import numpy as np

    return np.asarray(image.image, dtype=np.int16)


def test_the_file_and_the_folder_load_the_same_weights_shared_by_base_and_refiner(engines, vae):
    from diffusers import AutoencoderKL

    from_folder, from_file, own = engines
    expected = AutoencoderKL.from_pretrained(vae[0]).state_dict()
    for engine in (from_folder, from_file):
        assert engine.refiner.vae is engine.base.vae  # one VAE decodes both
        loaded = engine.base.vae.state_dict()
        assert loaded.keys() == expected.keys()
        assert [k for k in expected if not torch.equal(loaded[k], expected[k])] == []
    assert not torch.equal(own.base.vae.state_dict()["decoder.conv_out.weight"], expected["decoder.conv_out.weight"])


def test_the_replacement_decodes_the_render(engines):
    from_folder, from_file, own = engines
    # Same UNet, same seed: only the decoder differs, so the file and folder agree and the model's own VAE does not.
    assert _render(from_folder).image.tobytes() == _render(from_file).image.tobytes()
    assert abs(_pixels(_render(from_folder)) - _pixels(_render(own))).mean() > 1.0
    assert _render(from_folder, refiner="on").image.size == (64, 64)  # the refiner hands its latents to the same VAE


def test_infotext_and_lineage_name_the_vae_as_a1111_does(engines, vae):
    from imagegen.hashes import model_hash

    from_folder, from_file, own = engines
    _, _, fields = parse_infotext(_render(from_file).infotext)
    assert fields["VAE"] == "tiny_vae.safetensors"  # A1111 shows the file's whole name
    assert fields["VAE hash"] == model_hash(vae[1]) and re.fullmatch(r"[0-9a-f]{10}", fields["VAE hash"])
    text = _render(from_folder).infotext
    _, _, fields = parse_infotext(text)
    assert fields["VAE"] == "tiny-vae" and "VAE hash" not in fields  # a folder has no file hash
    assert request_from_infotext(text).prompt == "a lighthouse at dusk"  # the fields do not disturb reading it back
    assert _render(from_folder).lineage["vae"] == {"name": "tiny-vae", "hash": None}
    _, _, fields = parse_infotext(_render(own).infotext)
    assert "VAE" not in fields and "vae" not in _render(own).lineage


def test_fp16_keeps_an_fp16_safe_vae_in_fp16_and_upcasts_the_models_own(tiny_model_dirs, vae):
    base = str(tiny_model_dirs[0])
    safe = SDXLEngine.from_pretrained(base, vae=str(vae[0]), device="cpu", dtype="fp16")
    own = SDXLEngine.from_pretrained(base, device="cpu", dtype="fp16")
    assert safe.base.unet.dtype == torch.float16 and safe.base.vae.dtype == torch.float16
    assert own.base.vae.dtype == torch.float32  # force_upcast: the SDXL VAE overflows in fp16


@pytest.mark.parametrize(
    "where, expected",
    [
        ("missing.safetensors", "no such file"),
        ("a folder without config", "not a diffusers VAE folder"),
        ("not a vae", "not a VAE"),
        ("just-a-word", "neither a folder"),
    ],
)
def test_a_bad_vae_setting_is_a_clear_error_before_anything_loads(tmp_path, tiny_model_dirs, where, expected):
    if where == "a folder without config":
        (tmp_path / where).mkdir()
    if where == "not a vae":  # the base's UNet folder: a diffusers model, not an AutoencoderKL
        where = str(tiny_model_dirs[0] / "unet")
    value = where if where.startswith(("/", "just")) else str(tmp_path / where)
    with pytest.raises(ModelNotFound, match=expected) as caught:
        check_settings(ImageSettings(sdxl_model=str(tiny_model_dirs[0]), sdxl_vae=value))
    assert "KEYART_SDXL_VAE" in str(caught.value)


def test_an_sdxl_folder_gives_its_vae_and_a_hub_id_is_taken_as_one(tiny_model_dirs):
    source = locate_vae(str(tiny_model_dirs[0]))
    assert source.kind == "folder" and source.location.endswith("vae")
    assert locate_vae("madebyollin/sdxl-vae-fp16-fix").kind == "hub"


def test_the_variable_reaches_the_settings_and_help():
    from imagegen.settings import help_text

    assert ImageSettings.from_env({"KEYART_SDXL_VAE": " /models/sdxl-vae-fp16-fix "}).sdxl_vae == "/models/sdxl-vae-fp16-fix"
    assert "KEYART_SDXL_VAE" in help_text()


def test_a_new_vae_is_a_new_image_key(tiny_model_dirs, vae):
    from assistant.workflows.service import RenderService

    base = str(tiny_model_dirs[0])
    plain = RenderService(name="sdxl", settings=ImageSettings(sdxl_model=base))
    replaced = RenderService(name="sdxl", settings=ImageSettings(sdxl_model=base, sdxl_vae=str(vae[1])))
    assert plain.identity("off") == "sdxl:tiny-sdxl-base"  # unchanged for catalogs made without one
    assert replaced.identity("off") == "sdxl:tiny-sdxl-base/vae:tiny_vae.safetensors"


def test_the_a1111_api_lists_the_vae_and_its_renders_name_it(engines, vae, tmp_path):
    import httpx

    from imagegen.queue import RenderQueue
    from imagegen.server.app import create_app
    from tests.test_server_a1111 import TINY
    from tests.test_server_openai import serving

    with RenderQueue(engines[1], tmp_path) as queue:
        app = create_app(queue, limits=TINY)
        app.state.vae = locate_vae(str(vae[1]))  # as `python -m imagegen serve` sets it from KEYART_SDXL_VAE
        with serving(app) as url:
            base = f"{url}/sdapi/v1"
            assert httpx.get(f"{base}/sd-vae").json() == [{"model_name": "tiny_vae.safetensors", "filename": str(vae[1])}]
            assert httpx.get(f"{base}/options").json()["sd_vae"] == "tiny_vae.safetensors"
            answer = httpx.post(f"{base}/txt2img", json={"prompt": "a fox", "steps": 2, "seed": 5}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert "VAE: tiny_vae.safetensors" in json.loads(answer.json()["info"])["infotexts"][0]


def test_a_hub_vae_not_in_the_cache_is_a_clear_error_offline(tiny_model_dirs):
    with pytest.raises(ModelNotFound, match="cannot load the VAE 'nobody/no-such-vae'.*HF_HUB_OFFLINE is set"):
        SDXLEngine.from_pretrained(str(tiny_model_dirs[0]), vae="nobody/no-such-vae")
