"""Prompt editing and alternation through the tiny SDXL engine: the conditioning switches at the scheduled steps."""

import numpy as np
import pytest
import torch

from imagegen import InvalidRequest, RenderRequest
from imagegen.engines.sdxl_prompt import encode
from imagegen.metadata import parse_infotext
from imagegen.png_files import request_from_png, save_png

SMALL = dict(width=64, height=64, num_inference_steps=10, seed=11, refiner="off")


def pixels(rendered):
    return np.asarray(rendered.image)


class Conditioning:
    """Records the positive text embedding of every UNet call, to compare with encode()'s."""

    def __init__(self, unet):
        self.unet, self.seen = unet, []

    def __enter__(self):
        def hook(module, args, kwargs):
            hidden = kwargs["encoder_hidden_states"]
            self.seen.append(hidden[hidden.shape[0] // 2 :].clone())  # CFG: the unconditional half first

        self.handle = self.unet.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.handle.remove()

    def which(self, pipe, texts):
        """For each UNet call, the index of the text in `texts` whose embedding it ran with."""
        embeds = [encode(pipe, text, refiner=pipe.text_encoder is None)["prompt_embeds"][0] for text in texts]
        found = []
        for hidden in self.seen:
            matches = [i for i, e in enumerate(embeds) if e.shape == hidden[0].shape and torch.equal(hidden[0], e)]
            found.append(matches[0] if matches else None)
        return found


def test_an_edit_switches_halfway_and_differs_from_both_prompts(engine):
    request = RenderRequest("a [cat:dog:0.5] on a rock", **SMALL)
    with Conditioning(engine.base.unet) as unet:
        [edited] = engine.render(request)
    # The UNet ran steps 1-5 on "a cat on a rock" and 6-10 on "a dog on a rock".
    assert unet.which(engine.base, ["a cat on a rock", "a dog on a rock"]) == [0] * 5 + [1] * 5
    # ...and the image records it.
    assert edited.lineage["prompt_schedule"] == {
        "base": [{"steps": [1, 5], "prompt": "a cat on a rock", "negative": ""}, {"steps": [6, 10], "prompt": "a dog on a rock", "negative": ""}]
    }
    [cat] = engine.render(request.replace(prompt="a cat on a rock"))
    [dog] = engine.render(request.replace(prompt="a dog on a rock"))
    assert not np.array_equal(pixels(edited), pixels(cat)) and not np.array_equal(pixels(edited), pixels(dog))
    # A plain prompt records no schedule.
    assert "prompt_schedule" not in cat.lineage


def test_an_alternation_switches_every_step(engine):
    with Conditioning(engine.base.unet) as unet:
        [image] = engine.render(RenderRequest("a [cat|dog] on a rock", **SMALL))
    assert unet.which(engine.base, ["a cat on a rock", "a dog on a rock"]) == [0, 1] * 5
    assert [span["steps"] for span in image.lineage["prompt_schedule"]["base"]] == [[s, s] for s in range(1, 11)]


def test_the_negative_prompt_follows_its_own_schedule(engine):
    request = RenderRequest("a lighthouse", negative_prompt="[blurry::3]", **SMALL)
    [image] = engine.render(request)
    spans = image.lineage["prompt_schedule"]["base"]
    assert spans == [
        {"steps": [1, 3], "prompt": "a lighthouse", "negative": "blurry"},
        {"steps": [4, 10], "prompt": "a lighthouse", "negative": ""},
    ]


def test_the_refiner_continues_the_schedule_from_the_hand_off(engine):
    request = RenderRequest("a [cat:dog:0.5] on a rock", **(SMALL | dict(refiner="on", refiner_switch_at=0.8)))
    with Conditioning(engine.refiner.unet) as refiner_unet, Conditioning(engine.base.unet) as base_unet:
        [image] = engine.render(request)
    texts = ["a cat on a rock", "a dog on a rock"]
    schedule = image.lineage["prompt_schedule"]
    # The base runs the steps whose noise level is above the hand-off (k of them: Karras sigmas
    # put 6 of 10 there), the refiner the rest, on its own encoding (text_encoder_2 alone).
    k = schedule["base"][-1]["steps"][1]
    assert 5 < k < 10 and [s["steps"] for s in schedule["base"]] == [[1, 5], [6, k]]
    assert schedule["refiner"] == [{"steps": [k + 1, 10], "prompt": "a dog on a rock", "negative": ""}]
    assert base_unet.which(engine.base, texts) == [0] * 5 + [1] * (k - 5)
    assert refiner_unet.which(engine.refiner, texts) == [1] * (10 - k)


def test_the_hires_pass_lays_the_schedule_over_its_own_steps(engine):
    request = RenderRequest("a [cat:dog:0.5] on a rock", **(SMALL | dict(hr_scale=1.5, denoising_strength=0.6, num_inference_steps=8)))
    with Conditioning(engine.base.unet) as unet:
        [image] = engine.render(request)
    schedule = image.lineage["prompt_schedule"]
    # First pass: 8 steps, cat for 4; the second pass runs int(8 x 0.6) = 4 steps: cat for 2.
    assert [s["steps"] for s in schedule["base"]] == [[1, 4], [5, 8]]
    assert [(s["steps"], s["prompt"]) for s in schedule["hires"]] == [([1, 2], "a cat on a rock"), ([3, 4], "a dog on a rock")]
    assert unet.which(engine.base, ["a cat on a rock", "a dog on a rock"]) == [0] * 4 + [1] * 4 + [0] * 2 + [1] * 2


def test_second_order_samplers_keep_a_steps_prompt_for_both_evaluations(engine):
    request = RenderRequest("a [cat:dog:0.5] on a rock", **(SMALL | dict(sampler="Heun", num_inference_steps=4)))
    with Conditioning(engine.base.unet) as unet:
        [image] = engine.render(request)
    # Heun evaluates the model twice a step, but once in the last: 7 calls for 4 steps, 2 x 2 on "cat".
    assert unet.which(engine.base, ["a cat on a rock", "a dog on a rock"]) == [0, 0, 0, 0, 1, 1, 1]
    assert [s["steps"] for s in image.lineage["prompt_schedule"]["base"]] == [[1, 2], [3, 4]]


def test_a_batch_renders_the_schedule_for_every_image_and_the_png_reproduces(engine, tmp_path):
    request = RenderRequest("a [cat:dog:0.5] on a (rock:1.2)", **(SMALL | dict(batch_size=2, num_inference_steps=6)))
    images = engine.render(request)
    text, _, _ = parse_infotext(images[1].infotext)
    assert text == "a [cat:dog:0.5] on a (rock:1.2)"  # the infotext keeps the prompt as written
    again, index = request_from_png(save_png(images[1], tmp_path))
    assert np.array_equal(pixels(engine.render(again)[index]), pixels(images[1]))
    assert images[0].lineage["prompt_schedule"] == images[1].lineage["prompt_schedule"]


def test_a_plain_prompt_renders_as_before(engine, tiny_pipes):
    # No edits: the engine passes the same embeddings as encode() gives, once, and never switches.
    request = RenderRequest("a (lighthouse:1.2) keeper", **SMALL)
    with Conditioning(engine.base.unet) as unet:
        engine.render(request)
    assert unet.which(engine.base, ["a (lighthouse:1.2) keeper"]) == [0] * 10


@pytest.mark.parametrize(
    "prompt, message",
    [("a [cat:dog:0.5", "unclosed prompt edit"), ("[cat:dog:later]", "not a step or fraction"), ("(cat:nan)", "finite number")],
)
def test_bad_syntax_fails_when_the_request_is_made(prompt, message):
    with pytest.raises(InvalidRequest, match=message):
        RenderRequest(prompt, **SMALL)
    with pytest.raises(InvalidRequest, match=message):
        RenderRequest("fine", negative_prompt=prompt, **SMALL)


def test_lora_tags_in_the_negative_are_refused(engine):
    with pytest.raises(InvalidRequest, match="LoRA tags go in the prompt"):
        engine.render(RenderRequest("a cat", negative_prompt="<lora:ink:1>", **SMALL))
