"""SDXL prompt embeddings the A1111 way: attention weights, BREAK, and prompts of any length.

`encode(pipe, prompt, negative)` returns the `prompt_embeds`/`pooled_prompt_embeds` kwargs that
diffusers' SDXL base and refiner pipelines accept. Tokens go in chunks of 75 (+BOS/EOS = 77), each
chunk through every text encoder, weights applied with A1111's "Original" emphasis, chunks
concatenated; a plain short prompt gives what diffusers computes from `prompt=` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelNotFound
from ..prompt_syntax import is_break, parse_attention

CHUNK = 75  # CLIP sees 77 positions: BOS + 75 tokens + EOS
COMMA_BACKTRACK = 20  # A1111's `comma_padding_backtrack`: end a full chunk at a comma this close


@dataclass
class Chunk:
    """75 token ids and their weights, before BOS/EOS and padding."""

    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


def encode(
    pipe,
    prompt: str,
    negative: str = "",
    *,
    refiner: bool | None = None,
    device: Any = None,
    num_images_per_prompt: int = 1,
) -> dict[str, Any]:
    """The four embedding kwargs of an SDXL pipeline call for one prompt and its negative.

    `refiner` uses text_encoder_2 alone (None: whatever text encoders `pipe` has). An empty negative
    is all zeros when the pipeline's `force_zeros_for_empty_prompt` says so, as diffusers (and A1111
    for SDXL) do; otherwise "" is encoded. Repeat for a batch either here (`num_images_per_prompt`)
    or in the pipeline call, not both: the pipeline repeats the embeddings it is given once more.
    """
    import torch

    # 1. The (tokenizer, encoder) pairs: CLIP-L then OpenCLIP-G on the base, OpenCLIP-G alone on the refiner.
    encoders = _encoders(pipe, refiner)
    device = device if device is not None else pipe._execution_device
    with torch.no_grad():
        # 2. Chunk both prompts with each tokenizer; every encoder and both prompts get the same chunk count.
        positive = [_chunks(tokenizer, prompt) for tokenizer, _ in encoders]
        zero_negative = not negative and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
        negatives = [_chunks(tokenizer, negative) for tokenizer, _ in encoders]
        count = max(len(c) for c in positive + negatives)
        # 3. Encode: hidden states side by side across encoders, pooled from text_encoder_2's first chunk.
        embeds, pooled = _encode(encoders, [_pad(c, count) for c in positive])
        if zero_negative:
            negative_embeds, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        else:
            negative_embeds, negative_pooled = _encode(encoders, [_pad(c, count) for c in negatives])
    # 4. The pipeline's dtype and device, one copy per image.
    dtype = encoders[-1][1].dtype

    def place(tensor, dims: int):
        tensor = tensor.to(dtype=dtype, device=device)
        return tensor.repeat(num_images_per_prompt, *([1] * (dims - 1)))

    return {
        "prompt_embeds": place(embeds, 3),
        "negative_prompt_embeds": place(negative_embeds, 3),
        "pooled_prompt_embeds": place(pooled, 2),
        "negative_pooled_prompt_embeds": place(negative_pooled, 2),
    }


def _encoders(pipe, refiner: bool | None) -> list[tuple[Any, Any]]:
    pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
    if refiner:
        pairs = pairs[1:]
    pairs = [(t, e) for t, e in pairs if t is not None and e is not None]
    if not pairs or pipe.text_encoder_2 is None:
        raise ModelNotFound("an SDXL pipeline needs text_encoder_2 and tokenizer_2 to encode prompts")
    return pairs


def _chunks(tokenizer, text: str) -> list[Chunk]:
    """A1111's `tokenize_line`: weighted tokens in chunks of 75, broken at BREAK or a late comma."""
    runs = parse_attention(text)
    texts = ["" if is_break(run) else run[0] for run in runs]
    # verbose=False: the ids are meant to run past 77; the chunks below keep CLIP within it.
    ids = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    comma = tokenizer.convert_tokens_to_ids(",</w>")  # one lookup, not the whole vocab as a dict
    if comma is None or comma == tokenizer.unk_token_id:
        comma = None  # a vocabulary without the comma token: no comma breaks
    chunks: list[Chunk] = []
    chunk = Chunk()
    last_comma = -1

    def next_chunk() -> None:
        nonlocal chunk, last_comma
        chunks.append(chunk)
        chunk, last_comma = Chunk(), -1

    for run, tokens in zip(runs, ids):
        if is_break(run):
            next_chunk()
            continue
        weight = run[1]
        for token in tokens:
            if token == comma:
                last_comma = len(chunk.tokens)
            elif len(chunk.tokens) == CHUNK and last_comma != -1 and len(chunk.tokens) - last_comma <= COMMA_BACKTRACK:
                # A full chunk with a comma among its last 20 tokens: move the words after it on.
                cut = last_comma + 1
                moved = Chunk(chunk.tokens[cut:], chunk.weights[cut:])
                del chunk.tokens[cut:], chunk.weights[cut:]
                next_chunk()
                chunk = moved
            if len(chunk.tokens) == CHUNK:
                next_chunk()
            chunk.tokens.append(token)
            chunk.weights.append(weight)
    if chunk.tokens or not chunks:
        next_chunk()
    return chunks


def _pad(chunks: list[Chunk], count: int) -> list[Chunk]:
    """Empty chunks (the encoding of "") at the end, so cond and uncond line up for CFG."""
    return chunks + [Chunk() for _ in range(count - len(chunks))]


def _ids(tokenizer, chunk: Chunk) -> tuple[list[int], list[float]]:
    """77 ids as diffusers and A1111 build them: BOS, tokens, EOS, then the tokenizer's pad id.

    (CLIP-L pads with EOS; SDXL's OpenCLIP tokenizer pads with "!", which is A1111's id_pad 0.)
    """
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rest = CHUNK - len(chunk.tokens)
    ids = [bos, *chunk.tokens, eos] + [pad] * rest
    weights = [1.0, *chunk.weights, 1.0] + [1.0] * rest
    return ids, weights


def _encode(encoders, chunks_per_encoder: list[list[Chunk]]):
    """(1, 77 * chunks, sum of widths) hidden states and (1, pooled width) from the last encoder."""
    import torch
    from diffusers.utils.torch_utils import get_module_execution_device

    hidden, pooled = [], None
    for (tokenizer, encoder), chunks in zip(encoders, chunks_per_encoder):
        rows = [_ids(tokenizer, chunk) for chunk in chunks]
        on = get_module_execution_device(encoder)
        ids = torch.tensor([r[0] for r in rows], device=on)
        weights = torch.tensor([r[1] for r in rows], device=on)
        per_chunk, chunk_pooled = [], None
        for i in range(len(rows)):
            # One chunk at a time, as A1111: the same arithmetic as diffusers' own single-chunk call.
            out = encoder(ids[i : i + 1], output_hidden_states=True)
            z = _emphasis(out.hidden_states[-2], weights[i : i + 1])  # SDXL reads the penultimate layer
            per_chunk.append(z)
            if i == 0 and out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds, the pooled vector
                chunk_pooled = out[0]
        hidden.append(torch.cat(per_chunk, dim=1))  # chunks follow each other along the sequence
        pooled = chunk_pooled if chunk_pooled is not None else pooled
    if pooled is None:
        raise ModelNotFound("text_encoder_2 must be a CLIPTextModelWithProjection: SDXL needs its pooled output")
    return torch.cat([h.to(hidden[-1].device) for h in hidden], dim=-1), pooled


def _emphasis(z, weights):
    """A1111's "Original" emphasis: scale each token by its weight, then restore the chunk's mean."""
    if bool((weights == 1.0).all()):
        return z
    original_mean = z.mean()
    z = z * weights.to(z.dtype).unsqueeze(-1)
    return z * (original_mean / z.mean())
