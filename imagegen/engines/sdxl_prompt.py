"""SDXL prompt embeddings for keyart's prompt language: attention weights, BREAK, prompts of any length.

Compatible with the encoding A1111 documents for long and weighted prompts
(https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features#infinite-prompt-length and
#attentionemphasis): tokens go in chunks of 75 (+BOS/EOS = 77), a chunk that fills up ends after
its last comma when that comma is among its last 20 tokens, BREAK starts a chunk, each chunk goes
through every text encoder, and weights scale each token's embedding with the chunk's mean kept
(A1111's "Original" emphasis). A plain short prompt gives exactly what diffusers computes from
`prompt=`. `encode` serves one fixed prompt; `encode_runs` encodes many texts at one length, for
prompts that change during a render (sdxl_schedule). Textual-inversion embeddings named in a text
(see `embeddings`) take their vectors' places in its chunk, each in place of a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ModelNotFound
from ..prompt_schedule import Runs, attention_runs
from .embeddings import Embedding, Embeddings

CHUNK = 75  # CLIP sees 77 positions: BOS + 75 tokens + EOS
COMMA_WINDOW = 20  # a full chunk may end early at a comma this close to its end, as A1111 documents


@dataclass(frozen=True)
class Vector:
    """A chunk place that an embedding's vector `index` takes, in place of a token."""

    embedding: Embedding
    index: int


Chunk = list[tuple["int | Vector", float]]  # (token id or embedding vector, weight), at most CHUNK of them


def encode(
    pipe,
    prompt: str,
    negative: str = "",
    *,
    refiner: bool | None = None,
    device: Any = None,
    num_images_per_prompt: int = 1,
    embeddings: Embeddings | None = None,
) -> dict[str, Any]:
    """The four embedding kwargs of an SDXL pipeline call for one prompt and its negative (no edits).

    `refiner` uses text_encoder_2 alone (None: whatever text encoders `pipe` has). An empty negative
    is all zeros when the pipeline's `force_zeros_for_empty_prompt` says so, as diffusers (and A1111
    for SDXL) do; otherwise "" is encoded. Repeat for a batch either here (`num_images_per_prompt`)
    or in the pipeline call, not both: the pipeline repeats the embeddings it is given once more.
    """
    zero = not negative and zeros_for_empty(pipe)
    hidden, pooled = encode_runs(pipe, [attention_runs(prompt), attention_runs(negative)], refiner=refiner, device=device, embeddings=embeddings)
    if zero:
        hidden[1], pooled[1] = 0, 0
    n = num_images_per_prompt
    return {
        "prompt_embeds": hidden[0:1].repeat(n, 1, 1),
        "negative_prompt_embeds": hidden[1:2].repeat(n, 1, 1),
        "pooled_prompt_embeds": pooled[0:1].repeat(n, 1),
        "negative_pooled_prompt_embeds": pooled[1:2].repeat(n, 1),
    }


def zeros_for_empty(pipe) -> bool:
    """Whether this pipeline conditions on zeros, not on the encoding of "", for an empty negative."""
    return bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))


def encode_runs(pipe, texts: list[Runs], *, refiner: bool | None = None, device: Any = None, embeddings: Embeddings | None = None):
    """Hidden states (len(texts), 77 x chunks, widths summed) and pooled vectors (len(texts), width).

    Every text gets the same number of chunks (the most any needs; the rest are encodings of ""),
    so any of them can stand in for another at any step, and a prompt and its negative line up for
    CFG. The pooled vector is text_encoder_2's for a text's first chunk. On the pipeline's dtype and
    `device` (default: its execution device).
    """
    import torch

    # 1. The (tokenizer, encoder) pairs: CLIP-L then OpenCLIP-G on the base, OpenCLIP-G alone on the refiner.
    encoders = _encoders(pipe, refiner)
    device = device if device is not None else pipe._execution_device
    # 2. Chunk every text with every tokenizer; pad all of them to one chunk count.
    chunked = [[chunk_tokens(tokenizer, runs, embeddings) for runs in texts] for tokenizer, _, _ in encoders]
    count = max(len(chunks) for per_encoder in chunked for chunks in per_encoder)
    # 3. Encode chunk by chunk (the same arithmetic as diffusers' own single-chunk call); identical
    #    chunks, such as the padding, are encoded once.
    with torch.no_grad():
        widths, pooled = [], None
        for (tokenizer, encoder, which), per_text in zip(encoders, chunked):
            seen: dict[tuple, Any] = {}
            hidden_of = lambda chunk: _hidden(tokenizer, encoder, chunk, seen, which, embeddings)  # noqa: E731
            rows = [torch.cat([hidden_of(chunk)[0] for chunk in _padded(chunks, count)], dim=1) for chunks in per_text]
            widths.append(torch.cat(rows, dim=0))
            firsts = [hidden_of(chunks[0] if chunks else [])[1] for chunks in per_text]
            if all(first is not None for first in firsts):
                pooled = torch.cat(firsts, dim=0)
    if pooled is None:
        raise ModelNotFound("text_encoder_2 must be a CLIPTextModelWithProjection: SDXL needs its pooled output")
    # 4. Side by side across encoders, in the last encoder's dtype, on the device.
    dtype = encoders[-1][1].dtype
    hidden = torch.cat([w.to(widths[-1].device) for w in widths], dim=-1)
    return hidden.to(dtype=dtype, device=device), pooled.to(dtype=dtype, device=device)


def chunk_count(pipe, texts: list[Runs], embeddings: Embeddings | None = None) -> int:
    """How many 75-token chunks the longest of `texts` takes on `pipe`'s tokenizers (no encoding)."""
    return max(len(chunk_tokens(tokenizer, runs, embeddings)) for tokenizer, _, _ in _encoders(pipe, None) for runs in texts)


def _encoders(pipe, refiner: bool | None) -> list[tuple[Any, Any, str]]:
    """(tokenizer, text encoder, its key in an SDXL embedding file) for each encoder the prompt goes through."""
    pairs = [(pipe.tokenizer, pipe.text_encoder, "clip_l"), (pipe.tokenizer_2, pipe.text_encoder_2, "clip_g")]
    if refiner:
        pairs = pairs[1:]
    pairs = [(t, e, k) for t, e, k in pairs if t is not None and e is not None]
    if not pairs or pipe.text_encoder_2 is None:
        raise ModelNotFound("an SDXL pipeline needs text_encoder_2 and tokenizer_2 to encode prompts")
    return pairs


def chunk_tokens(tokenizer, runs: Runs, embeddings: Embeddings | None = None) -> list[Chunk]:
    """Weighted token ids in chunks of at most 75: a new chunk at each BREAK and when one fills up.

    A full chunk whose last comma is among its last 20 tokens ends after that comma, and the words
    after it open the next chunk, so a phrase is not cut in two. A trailing BREAK adds no empty chunk.
    An embedding named in a run takes one place per vector, with the run's weight; one that does not
    fit in what is left of a chunk opens the next, as A1111 places them.
    """
    comma = tokenizer.convert_tokens_to_ids(",</w>")  # one lookup, not the whole vocab as a dict
    if comma == tokenizer.unk_token_id:
        comma = None  # a vocabulary without the comma token: no comma breaks
    chunks: list[Chunk] = []
    for part in runs:
        current: Chunk = []
        chunks.append(current)
        # Each run is tokenized apart (verbose=False: the ids may run past 77; the chunks keep CLIP within it),
        # its text in pieces around the embeddings it names.
        pieces = [(piece, weight) for text, weight in part for piece in (embeddings.split(text) if embeddings is not None else [text])]
        words = [piece for piece, _ in pieces if isinstance(piece, str)]
        ids = iter(tokenizer(words, add_special_tokens=False, truncation=False, verbose=False)["input_ids"] if words else [])
        for piece, weight in pieces:
            if not isinstance(piece, str):
                if len(current) + piece.vectors > CHUNK:
                    current = []
                    chunks.append(current)
                current += [(Vector(piece, k), weight) for k in range(piece.vectors)]
                continue
            for token in next(ids):
                if len(current) == CHUNK:
                    current = _overflow(current, token, comma)
                    chunks.append(current)
                current.append((token, weight))
    while len(chunks) > 1 and not chunks[-1]:
        chunks.pop()
    return chunks


def _overflow(full: Chunk, token: int, comma: int | None) -> Chunk:
    """The next chunk after `full`: empty, or the words after `full`'s last comma moved onto it."""
    if token == comma or comma is None:
        return []
    for at in range(len(full) - 1, len(full) - 1 - COMMA_WINDOW, -1):
        if full[at][0] == comma:
            moved = full[at + 1 :]
            del full[at + 1 :]
            return moved
    return []


def _padded(chunks: list[Chunk], count: int) -> list[Chunk]:
    """`count` chunks: empty ones (the encoding of "") after the text's own, so every text lines up."""
    return chunks + [[] for _ in range(count - len(chunks))]


def _hidden(tokenizer, encoder, chunk: Chunk, seen: dict, which: str = "clip_l", embeddings: Embeddings | None = None):
    """One chunk through one encoder: (1, 77, width) weighted penultimate hidden states, and the
    pooled (1, width) vector when the encoder has a projection (text_encoder_2), else None.

    An embedding's vector goes in at the token-embedding layer, in its place (before the position
    embedding is added); the encoder sees an ordinary token id there, so pooling still finds EOS."""
    import torch
    from diffusers.utils.torch_utils import get_module_execution_device

    key = tuple(chunk)
    if key in seen:
        return seen[key]
    # 77 ids as diffusers builds them: BOS, tokens, EOS, then the tokenizer's pad id (CLIP-L pads
    # with EOS; SDXL's OpenCLIP tokenizer pads with "!").
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    fill = CHUNK - len(chunk)
    stand_in = next(i for i in range(3) if i not in (tokenizer.bos_token_id, eos, pad))  # any ordinary id: its embedding is replaced
    ids = [tokenizer.bos_token_id, *(stand_in if isinstance(token, Vector) else token for token, _ in chunk), eos, *[pad] * fill]
    weights = [1.0, *(weight for _, weight in chunk), 1.0, *[1.0] * fill]
    on = get_module_execution_device(encoder)
    places = [(1 + at, token) for at, (token, _) in enumerate(chunk) if isinstance(token, Vector)]
    swap = _vectors_in(encoder, places, which, embeddings) if places else None
    try:
        out = encoder(torch.tensor([ids], device=on), output_hidden_states=True)
    finally:
        if swap is not None:
            swap.remove()
    hidden = weigh(out.hidden_states[-2], weights)  # SDXL reads the penultimate layer
    pooled = out[0] if out[0].ndim == 2 else None  # CLIPTextModelWithProjection's text_embeds
    seen[key] = (hidden, pooled)
    return seen[key]


def weigh(hidden, weights: list[float]):
    """Scale each token's embedding by its weight, then rescale the chunk so its mean is as before.
    The weights stay a list until they are needed: asking a GPU tensor whether they are all 1 would
    make the host wait for the text encoder."""
    import torch

    if all(weight == 1.0 for weight in weights):
        return hidden
    scaled = hidden * torch.tensor([weights], device=hidden.device).to(hidden.dtype).unsqueeze(-1)
    return scaled * (hidden.mean() / scaled.mean())


def _vectors_in(encoder, places: list[tuple[int, Vector]], key: str, embeddings: Embeddings | None):
    """A hook (remove it after the call) that puts each embedding vector at its place in the encoder's token embeddings."""
    import torch

    assert embeddings is not None, "a chunk holds embedding vectors only when embeddings split its text"
    width = encoder.get_input_embeddings().embedding_dim
    rows = torch.stack([embeddings.vectors(v.embedding, key, width)[v.index] for _, v in places])
    at = [position for position, _ in places]

    def put(module, args, output):
        output = output.clone()
        output[:, at] = rows.to(device=output.device, dtype=output.dtype)
        return output

    return encoder.get_input_embeddings().register_forward_hook(put)
