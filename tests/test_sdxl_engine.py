"""The SDXL engine on tiny random-init pipelines: samplers, seeds, batches, refiner, safety."""

import numpy as np
import pytest

from imagegen import ModelNotFound, RenderFailed, RenderRequest, samplers


def pixels(rendered):
    return np.asarray(rendered.image, dtype=np.int16)


@pytest.mark.parametrize("sampler", list(samplers.SAMPLERS))
def test_every_sampler_renders(engine, tiny_request, sampler):
    request = tiny_request.replace(sampler=sampler)
    [image] = engine.render(request)
    assert image.image.size == (64, 64)
    assert f"Sampler: {sampler}, Schedule type: {request.schedule}," in image.infotext
    assert type(engine.base.scheduler).__name__ == samplers.SAMPLERS[sampler].scheduler


@pytest.mark.parametrize("legacy", ["DPM++ 2M Karras", "DPM++ 2M SDE Exponential", "LMS Karras", "DPM2 a Karras"])
def test_legacy_sampler_names_set_the_schedule(engine, tiny_request, legacy):
    [image] = engine.render(tiny_request.replace(sampler=legacy))
    sampler, schedule = legacy.rsplit(" ", 1)
    assert f"Sampler: {sampler}, Schedule type: {schedule}," in image.infotext
    assert engine.base.scheduler.config[f"use_{schedule.lower()}_sigmas"] is True


def test_same_seed_same_image_other_seed_other_image(engine, tiny_request):
    [a], [b], [c] = engine.render(tiny_request), engine.render(tiny_request), engine.render(tiny_request.replace(seed=43))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.image.tobytes() != c.image.tobytes()


def test_batches_number_seeds_as_a1111(engine, tiny_request):
    images = engine.render(tiny_request.replace(seed=100, batch_size=2, batch_count=2))
    assert [i.seed for i in images] == [100, 101, 102, 103]
    assert [i.index for i in images] == [0, 1, 2, 3]
    assert "Seed: 101," in images[1].infotext and "Batch size: 2, Batch pos: 1" in images[1].infotext
    # The second batch is exactly what a batch started at seed 102 gives.
    again = engine.render(tiny_request.replace(seed=102, batch_size=2))
    assert [i.image.tobytes() for i in again] == [i.image.tobytes() for i in images[2:]]
    # Image i of a batch is seed+i's image, up to batched arithmetic.
    [alone] = engine.render(tiny_request.replace(seed=101))
    assert np.abs(pixels(alone) - pixels(images[1])).max() <= 2


def test_random_seed_is_resolved_and_recorded(engine, tiny_request):
    [image] = engine.render(tiny_request.replace(seed=-1))
    assert 0 <= image.seed < 2**32 and image.request.seed == image.seed
    assert f"Seed: {image.seed}," in image.infotext
    [again] = engine.render(tiny_request.replace(seed=image.seed))
    assert again.image.tobytes() == image.image.tobytes()


def test_style_reaches_the_model_and_the_infotext(engine, tiny_request):
    [plain], [styled] = engine.render(tiny_request), engine.render(tiny_request.replace(style="watercolor"))
    assert styled.infotext.startswith("watercolor painting of a lighthouse keeper in a storm, loose brushwork")
    assert "Negative prompt: photo, photorealistic" in styled.infotext
    assert plain.image.tobytes() != styled.image.tobytes()


def count_unet_calls(pipe):
    calls = []
    handle = pipe.unet.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_refiner_takes_over_at_the_switch(engine, tiny_request):
    assert engine.refiner.vae is engine.base.vae
    assert engine.refiner.text_encoder_2 is engine.base.text_encoder_2
    request = tiny_request.replace(sampler="Euler", num_inference_steps=10, refiner="on", refiner_switch_at=0.8)
    base_calls, h1 = count_unet_calls(engine.base)
    refiner_calls, h2 = count_unet_calls(engine.refiner)
    steps = []
    try:
        [refined] = engine.render(request, progress=lambda done, total: steps.append((done, total)))
    finally:
        h1.remove(), h2.remove()
    # Euler takes one UNet call (CFG batched) per step: 8 base steps, then 2 on the refiner.
    assert (len(base_calls), len(refiner_calls)) == (8, 2)
    assert steps[-1] == (10, 10) and [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert "Refiner: tiny-sdxl-refiner, Refiner switch at: 0.8" in refined.infotext
    assert refined.lineage["refiner"] == "tiny-sdxl-refiner"
    [unrefined] = engine.render(request.replace(refiner="off"))
    assert unrefined.image.tobytes() != refined.image.tobytes()
    assert "Refiner" not in unrefined.infotext


def test_refiner_on_without_one_says_what_to_set(tiny_pipes, tiny_request):
    from imagegen.engines.sdxl import SDXLEngine

    with pytest.raises(ModelNotFound, match="KEYART_SDXL_REFINER"):
        SDXLEngine(tiny_pipes[0]).render(tiny_request.replace(refiner="on"))


def test_attention_is_sdpa(engine):
    from diffusers.models.attention_processor import AttnProcessor2_0

    assert {type(p) for p in engine.base.unet.attn_processors.values()} == {AttnProcessor2_0}


def test_nan_decode_is_an_error_not_a_black_image(tmp_path, tiny_request):
    import torch

    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.tiny import tiny_sdxl

    base, _ = tiny_sdxl(tmp_path, refiner=False)
    with torch.no_grad():
        base.vae.decoder.conv_out.bias.fill_(float("nan"))
    with pytest.raises(RenderFailed, match="bf16"):
        SDXLEngine(base).render(tiny_request)


def test_fp16_keeps_the_vae_in_fp32(tmp_path):
    import torch

    from imagegen.engines.sdxl_load import keep_vae_safe
    from imagegen.tiny import tiny_sdxl

    base, refiner = tiny_sdxl(tmp_path)
    for pipe in (base, refiner):
        pipe.to(dtype=torch.float16)
    keep_vae_safe([base, refiner], torch.float16)
    assert base.vae.dtype == torch.float32 and base.unet.dtype == torch.float16
    base.vae.config.force_upcast = False  # an fp16-safe VAE (sdxl-vae-fp16-fix) is left alone
    base.vae.to(torch.float16)
    keep_vae_safe([base], torch.float16)
    assert base.vae.dtype == torch.float16


def test_request_objects_are_validated_before_the_engine(engine):
    from imagegen import InvalidRequest

    with pytest.raises(InvalidRequest):
        engine.render(RenderRequest("x", num_inference_steps=0))
