"""A1111-style SDXL prompt encoding on the tiny pipelines: weights, chunks, BREAK, CFG shapes, refiner."""

import pytest
import torch

from imagegen.engines.sdxl_prompt import chunk_tokens, encode
from imagegen.prompt_schedule import attention_runs

KEYS = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
PROMPT = "a lighthouse keeper in a storm"


def diffusers_encoding(pipe, prompt, negative=None, n=1):
    """What the pipeline computes itself from `prompt=` / `negative_prompt=`."""
    out = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=n, do_classifier_free_guidance=True, negative_prompt=negative)
    return dict(zip(KEYS, out))


def count_tokens(pipe, text):
    return len(pipe.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


@pytest.mark.parametrize("which", ["base", "refiner"])
@pytest.mark.parametrize("negative", ["", "blurry, low quality"])
def test_plain_short_prompts_equal_what_diffusers_computes(tiny_pipes, which, negative):
    pipe = tiny_pipes[0] if which == "base" else tiny_pipes[1]
    mine = encode(pipe, PROMPT, negative, num_images_per_prompt=2)
    # The engine passes `negative_prompt=negative or None`: None is what lets SDXL zero an empty negative.
    theirs = diffusers_encoding(pipe, PROMPT, negative or None, n=2)
    for key in KEYS:
        assert torch.equal(mine[key], theirs[key]), key
    if not negative and pipe.config.force_zeros_for_empty_prompt:
        assert not mine["negative_prompt_embeds"].any() and not mine["negative_pooled_prompt_embeds"].any()


def test_an_empty_negative_is_encoded_when_the_config_says_so(tiny_pipes):
    base = tiny_pipes[0]
    base.register_to_config(force_zeros_for_empty_prompt=False)  # as the SDXL refiner's hub config has it
    try:
        mine, theirs = encode(base, PROMPT, ""), diffusers_encoding(base, PROMPT, None)
    finally:
        base.register_to_config(force_zeros_for_empty_prompt=True)
    assert mine["negative_prompt_embeds"].abs().sum() > 0
    for key in KEYS:
        assert torch.equal(mine[key], theirs[key]), key


def emphasised(plain, weights):
    """A1111's "Original" emphasis by hand, per text encoder (each has its own mean): scale, restore the mean."""
    out = []
    for z in plain.split(32, dim=-1):  # the tiny text encoders are 32 wide each
        scaled = z * weights[:, None]
        out.append(scaled * (z.mean() / scaled.mean()))
    return torch.cat(out, dim=-1)


@pytest.mark.parametrize(
    "weighted, weight",
    [("(storm)", 1.1), ("((storm))", 1.1 * 1.1), ("[storm]", 1 / 1.1), ("(storm:1.5)", 1.5), ("(storm:0.25)", 0.25)],
)
def test_weights_scale_the_embeddings_as_a1111(tiny_pipes, weighted, weight):
    base = tiny_pipes[0]
    plain = encode(base, PROMPT)["prompt_embeds"][0]
    weighed = encode(base, PROMPT.replace("storm", weighted))["prompt_embeds"][0]
    # "storm" is the last word: its tokens sit right before EOS, after BOS and the rest of the prompt.
    start, end = 1 + count_tokens(base, "a lighthouse keeper in a "), 1 + count_tokens(base, PROMPT)
    weights = torch.ones(77)
    weights[start:end] = weight
    torch.testing.assert_close(weighed, emphasised(plain, weights))
    # Relative to the other tokens, the weighted ones are scaled by exactly `weight`.
    ratio = weighed[..., :32] / plain[..., :32]
    torch.testing.assert_close(ratio[start:end] / ratio[0], torch.full_like(ratio[start:end], weight))


def test_weights_reach_the_refiner_too(tiny_pipes):
    refiner = tiny_pipes[1]
    plain, weighed = encode(refiner, PROMPT)["prompt_embeds"], encode(refiner, PROMPT.replace("storm", "(storm:1.4)"))["prompt_embeds"]
    assert plain.shape == weighed.shape == (1, 77, 32)
    assert not torch.allclose(plain, weighed)


def test_a_150_token_prompt_is_two_chunks_and_its_tail_counts(tiny_pipes):
    base = tiny_pipes[0]
    long = " ".join(["cat"] * 49 + ["dog"])
    assert count_tokens(base, long) == 150
    embeds = encode(base, long)
    assert embeds["prompt_embeds"].shape == (1, 154, 64)
    assert embeds["negative_prompt_embeds"].shape == (1, 154, 64)
    # The first chunk is the first 75 tokens: what diffusers gives after truncating the prompt.
    assert torch.equal(embeds["prompt_embeds"][:, :77], diffusers_encoding(base, long)["prompt_embeds"])
    # Not truncated: changing the last word changes the second chunk only.
    other = encode(base, long.removesuffix("dog") + "owl")["prompt_embeds"]
    assert torch.equal(other[:, :77], embeds["prompt_embeds"][:, :77])
    assert not torch.allclose(other[:, 77:], embeds["prompt_embeds"][:, 77:])


def test_break_starts_a_new_chunk(tiny_pipes):
    base = tiny_pipes[0]
    embeds = encode(base, "a red cat BREAK a blue dog")["prompt_embeds"]
    assert embeds.shape == (1, 154, 64)
    assert torch.equal(embeds[:, :77], encode(base, "a red cat")["prompt_embeds"])
    assert torch.equal(embeds[:, 77:], encode(base, "a blue dog")["prompt_embeds"])
    # The pooled vector comes from the first chunk, as in A1111.
    assert torch.equal(encode(base, "a red cat BREAK a blue dog")["pooled_prompt_embeds"], encode(base, "a red cat")["pooled_prompt_embeds"])


def test_a_full_chunk_breaks_at_its_last_comma(tiny_pipes):
    tokenizer = tiny_pipes[0].tokenizer
    head = " ".join(["cat"] * 22)  # 66 tokens
    chunks = chunk_tokens(tokenizer, attention_runs(f"{head}, a hot dog on a bun"))
    comma_at = count_tokens(tiny_pipes[0], head)
    # 75 tokens would cut mid-word; A1111 moves everything after the comma (within 20 tokens) on.
    assert [len(c) for c in chunks] == [comma_at + 1, count_tokens(tiny_pipes[0], f"{head}, a hot dog on a bun") - comma_at - 1]
    assert chunks[0][-1][0] == tokenizer.get_vocab()[",</w>"]


def test_negative_and_positive_get_the_same_chunk_count(tiny_pipes):
    base = tiny_pipes[0]
    long = " ".join(["cat"] * 60)  # 180 tokens: 3 chunks
    embeds = encode(base, PROMPT, long)
    assert embeds["prompt_embeds"].shape == embeds["negative_prompt_embeds"].shape == (1, 231, 64)
    # The short side is padded with encodings of "" (A1111's empty chunk), not zeros or repeats.
    empty = encode(base, "")["prompt_embeds"]
    assert torch.equal(embeds["prompt_embeds"][:, 77:154], empty[:, :77])
    assert torch.equal(embeds["prompt_embeds"][:, 154:], empty[:, :77])
    assert encode(base, long, "")["negative_prompt_embeds"].shape == (1, 231, 64)
    assert encode(base, long, "blurry")["negative_prompt_embeds"].shape == (1, 231, 64)


def test_refiner_encodes_long_prompts_with_text_encoder_2_alone(tiny_pipes):
    base, refiner = tiny_pipes
    long = " ".join(["cat"] * 49 + ["dog"])
    embeds = encode(refiner, long, "blurry", num_images_per_prompt=2)
    assert embeds["prompt_embeds"].shape == embeds["negative_prompt_embeds"].shape == (2, 154, 32)
    assert embeds["pooled_prompt_embeds"].shape == (2, 32)
    # refiner=True on the base uses the same shared text_encoder_2: the same numbers.
    assert torch.equal(encode(base, long, "blurry", refiner=True)["prompt_embeds"], embeds["prompt_embeds"][:1])


def render(pipe, seed=0, **kwargs):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(num_inference_steps=2, guidance_scale=5.0, generator=generator, output_type="np", **kwargs).images


def test_end_to_end_base_and_refiner_render_from_the_embeddings(tiny_pipes):
    base, refiner = tiny_pipes
    size = {"width": 64, "height": 64}
    # Short and plain: the same image as the pipeline's own `prompt=`.
    mine = render(base, **encode(base, PROMPT, "blurry"), **size)
    theirs = render(base, prompt=PROMPT, negative_prompt="blurry", **size)
    assert (mine == theirs).all()
    # Long, weighted, BREAK: base to latents, then the refiner, both on encode().
    prompt = " ".join(["cat"] * 40) + " BREAK a (stormy:1.3) [sea]"
    generator = torch.Generator("cpu").manual_seed(0)
    latents = base(
        num_inference_steps=2, denoising_end=0.5, output_type="latent", generator=generator, **encode(base, prompt, num_images_per_prompt=2), **size
    ).images
    images = refiner(
        image=latents,
        num_inference_steps=2,
        denoising_start=0.5,
        output_type="np",
        generator=torch.Generator("cpu").manual_seed(0),
        **encode(refiner, prompt, num_images_per_prompt=2),
    ).images
    assert images.shape == (2, 64, 64, 3) and bool(torch.isfinite(torch.as_tensor(images)).all())
