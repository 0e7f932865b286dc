"""Seamless tiling (A1111's Tiling, `tiling="on"`, --tiling) on the tiny SDXL: the render is the
same picture on a torus, recorded as A1111 writes it, read from A1111's API body, and gone again
after the render."""

import json

import numpy as np
import pytest
import torch

from imagegen import InvalidRequest, RenderRequest
from imagegen.engines.a1111 import txt2img_body
from imagegen.engines.sdxl_prompt import encode
from imagegen.engines.sdxl_tiling import tiled
from imagegen.metadata import parse_infotext, request_from_infotext
from imagegen.queue import batch_key

TINY = dict(num_inference_steps=2, width=64, height=64, seed=5, refiner="off")


def _render(pipe, latents):
    embeds = encode(pipe, "a stone wall texture", "blurry")
    return pipe(num_inference_steps=2, guidance_scale=5.0, latents=latents.clone(), output_type="np", **embeds).images[0]


def _convs(pipe):
    return [m for model in (pipe.unet, pipe.vae) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_tiled_the_render_is_a_torus_shifting_the_noise_round_shifts_the_image(tiny_pipes):
    # With every convolution wrapping round, nothing in the model knows where an edge is: noise
    # rolled by whole latent pixels (a multiple of the UNet's downsampling) renders the same image
    # rolled by as many pixels times the VAE's scale. With zero padding the edges differ.
    base = tiny_pipes[0]
    shift = 2 ** (len(base.unet.config.block_out_channels) - 1)
    scale = base.vae_scale_factor
    noise = torch.randn((1, base.unet.config.in_channels, 64 // scale, 64 // scale), generator=torch.Generator().manual_seed(1))
    rolled = torch.roll(noise, shifts=(shift, shift), dims=(2, 3))
    with tiled([base.unet, base.vae], on=True):
        image, moved = _render(base, noise), _render(base, rolled)
    assert np.abs(np.roll(image, (shift * scale, shift * scale), axis=(0, 1)) - moved).max() < 1e-4
    plain, plain_moved = _render(base, noise), _render(base, rolled)
    assert np.abs(np.roll(plain, (shift * scale, shift * scale), axis=(0, 1)) - plain_moved).max() > 1e-2


def test_the_padding_comes_back_after_the_render_and_after_an_error(tiny_pipes, engine):
    base = tiny_pipes[0]
    [before] = engine.render(RenderRequest("a brick wall", **TINY))
    [wrapped] = engine.render(RenderRequest("a brick wall", tiling="on", **TINY))
    assert {c.padding_mode for c in _convs(base)} == {"zeros"}
    [after] = engine.render(RenderRequest("a brick wall", **TINY))
    pixels = lambda r: np.asarray(r.image, dtype=np.int16)  # noqa: E731
    assert (pixels(after) == pixels(before)).all() and np.abs(pixels(wrapped) - pixels(before)).max() > 0
    with pytest.raises(RuntimeError, match="mid-render"), tiled([base.unet, base.vae], on=True):
        assert {c.padding_mode for c in _convs(base)} == {"circular"}
        raise RuntimeError("mid-render")
    assert {c.padding_mode for c in _convs(base)} == {"zeros"}


def test_the_infotext_says_tiling_as_a1111_does_and_reads_back(engine):
    [image] = engine.render(RenderRequest("a brick wall", tiling="on", **TINY))
    assert parse_infotext(image.infotext)[2]["Tiling"] == "True"
    assert request_from_infotext(image.infotext).tiling == "on"
    assert image.lineage["request"]["tiling"] == "on"
    [plain] = engine.render(RenderRequest("a brick wall", **TINY))
    assert "Tiling" not in parse_infotext(plain.infotext)[2] and "tiling" not in plain.lineage["request"]  # older keys unchanged


@pytest.mark.parametrize("bad", ["yes", "True", "", None])
def test_tiling_is_off_or_on(bad):
    with pytest.raises(InvalidRequest, match="tiling must be off or on"):
        RenderRequest("a wall", tiling=bad)
    with pytest.raises(InvalidRequest, match="tiling must be off or on"):
        request_from_infotext("a wall\nSteps: 20, Seed: 1, Size: 64x64, Tiling: maybe")


def test_tiled_and_plain_requests_never_share_a_pipeline_call():
    assert batch_key(RenderRequest("a", **TINY)) != batch_key(RenderRequest("a", tiling="on", **TINY))


def test_the_a1111_engine_asks_its_server_for_tiling():
    assert txt2img_body(RenderRequest("a wall", tiling="on", **TINY).with_seed())["tiling"] is True
    assert "tiling" not in txt2img_body(RenderRequest("a wall", **TINY).with_seed())


def test_the_a1111_apis_tiling_field_reaches_the_render(engine, tmp_path):
    import httpx

    from imagegen.queue import RenderQueue
    from imagegen.server.app import create_app
    from tests.test_server_a1111 import TINY as LIMITS
    from tests.test_server_openai import serving

    with RenderQueue(engine, tmp_path) as queue, serving(create_app(queue, limits=LIMITS)) as url:
        answer = httpx.post(f"{url}/sdapi/v1/txt2img", json={"prompt": "a tiled floor", "steps": 2, "seed": 3, "tiling": True}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert "Tiling: True" in json.loads(answer.json()["info"])["infotexts"][0]
        refused = httpx.post(f"{url}/sdapi/v1/txt2img", json={"prompt": "a floor", "tiling": "sideways"}, timeout=60)
        assert refused.status_code == 400 and "tiling" in refused.text


def test_render_tiling_on_the_command_line(tmp_path, monkeypatch):
    from imagegen.cli import main
    from imagegen.png_files import read_png

    monkeypatch.delenv("KEYART_SDXL_MODEL", raising=False)
    assert main(["render", "a tiled floor", "--tiling", "--engine", "preview", "--width", "256", "--height", "256", "--output", str(tmp_path)]) == 0
    [path] = tmp_path.glob("*.png")
    assert parse_infotext(read_png(path).infotext)[2]["Tiling"] == "True"


def test_a_compiled_vae_decoder_wraps_too_and_compiles_once_more_for_it(tmp_path):
    # --speed fast compiles the VAE decoder: the padding mode is part of what it compiled, so a tiled
    # render gets its own graph once, and switching back and forth compiles nothing more.
    import torch._dynamo as dynamo

    from imagegen.tiny import tiny_sdxl

    base, _ = tiny_sdxl(tmp_path, refiner=False)
    decoder = base.vae.decoder
    latents = torch.randn(1, base.vae.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(2))
    dynamo.reset()
    decoder.compile(backend="eager")  # dynamo's graphs and guards, without inductor's minutes of codegen on the CPU
    graphs = lambda: dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
    with torch.no_grad():
        plain = decoder(latents)
        first = graphs()
        with tiled([base.vae], on=True):
            wrapped = decoder(latents)
        for on in (False, True, False):
            with tiled([base.vae], on=on):
                again = decoder(latents)
            assert torch.equal(again, wrapped if on else plain)
    assert graphs() == first + 1 and not torch.equal(plain, wrapped)
    dynamo.reset()
