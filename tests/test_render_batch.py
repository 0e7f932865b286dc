"""SDXLEngine.render_batch: compatible requests in one pipeline call, each image as a single render makes it."""

import numpy as np
import pytest

from imagegen import InvalidRequest, RenderRequest

SMALL = dict(width=64, height=64, num_inference_steps=4, refiner="off")


def pixels(images):
    return [np.asarray(i.image) for i in images]


def last_bits(a, b):
    """Equal but for rounding: a batched call may run other CPU kernels than a single one (AVX-512
    machines do), which move a few pixels by one level; never more."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return a.shape == b.shape and diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_batched_images_equal_single_renders_bit_for_bit(engine):
    requests = [
        RenderRequest("a lighthouse at dusk", seed=1, **SMALL),
        RenderRequest("a [cat:dog:0.5] on a rock", negative_prompt="blurry", seed=2, batch_size=2, **SMALL),
        RenderRequest("(storm:1.3) over the bay, " * 8, seed=3, **SMALL),  # two 75-token chunks: a call of its own
        RenderRequest("a gull", negative_prompt="[fog::2]", style="anime", seed=4, **SMALL),
    ]
    reports = []
    batched = engine.render_batch(requests, lineages=[{"n": i} for i in range(4)], progress=lambda done, total: reports.append((done, total)))
    assert [len(images) for images in batched] == [1, 2, 1, 1]
    for request, images, n in zip(requests, batched, range(4)):
        singles = engine.render(request, lineage={"n": n})
        # The single render's pixels, to the last bits: one prompt length per call, the rows computed independently.
        assert all(last_bits(a, b) for a, b in zip(pixels(images), pixels(singles))), request.prompt
        assert [i.infotext for i in images] == [i.infotext for i in singles]
        assert [i.lineage["lineage"] for i in images] == [{"n": n}] * len(images)
        assert [i.seed for i in images] == [request.seed + k for k in range(request.batch_size)]
    # Two calls (the long prompt apart) of 4 steps each, reported as one run.
    assert reports[-1] == (8, 8)


def test_requests_that_cannot_share_a_call_are_refused(engine):
    a = RenderRequest("a", seed=1, **SMALL)
    with pytest.raises(InvalidRequest, match="width, num_inference_steps"):
        engine.render_batch([a, a.replace(width=128, num_inference_steps=3)])
    with pytest.raises(InvalidRequest, match="same <lora"):
        engine.render_batch([a, a.replace(prompt="b <lora:ink:0.5>")])
    with pytest.raises(InvalidRequest, match="text-to-image requests of one batch"):
        engine.render_batch([a, a.replace(batch_count=2)])
    with pytest.raises(InvalidRequest, match="one lineage each"):
        engine.render_batch([a, a], lineages=[None])
