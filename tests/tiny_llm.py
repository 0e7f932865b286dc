"""A tiny random-init GPT-2 saved as a model folder, as KEYART_LLM_MODEL would name one.

Nothing is downloaded: the byte-level BPE tokenizer is written by hand (every byte, a few
English merges, `<|endoftext|>` last) and the model is the real transformers class at about
five hundred parameters per layer. Its text is noise; it is there to test the plumbing.
"""

from __future__ import annotations

import json
from pathlib import Path

from imagegen.tiny import _bytes_to_unicode

# ChatML-style markers, so a test can tell the chat template's rendering from the plain fallback.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
EOS = "<|endoftext|>"
# Room for keyart's meta-prompt, which this near-byte-level tokenizer spells in about 2,500 tokens (a season in about 5,700).
CONTEXT = 8192
# A few GPT-2-style merges ("Ġ" is the byte-level space), so English text is not all single bytes.
MERGES = ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t", "Ġ o", "e n", "Ġ w", "o r"]


def write_tokenizer(directory: str | Path, *, chat_template: bool) -> Path:
    """Write vocab.json, merges.txt and tokenizer_config.json; load them with `from_pretrained(directory)`.

    (In transformers 5, `GPT2Tokenizer(vocab_file=..., merges_file=...)` is not the way in; the
    folder is.)
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = [*_bytes_to_unicode().values(), *(m.replace(" ", "") for m in MERGES), EOS]  # special token last
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": CONTEXT,  # the model's n_positions
        "bos_token": EOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
    }
    if chat_template:
        config["chat_template"] = CHAT_TEMPLATE
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def write_tiny_causal_lm(directory: str | Path, *, chat_template: bool, seed: int = 0) -> Path:
    """Save a tiny GPT-2 (2 layers, 8 wide) and its tokenizer to `directory`; returns the folder.

    The same `seed` gives the same weights, so folders that differ only in `chat_template` hold
    the same model.
    """
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    directory = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(write_tokenizer(directory, chat_template=chat_template))
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=CONTEXT,
        n_embd=8,
        n_layer=2,
        n_head=2,
        n_inner=16,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    # Random weights babble raw bytes (half-characters that decode to U+FFFD) and may end at once on
    # <|endoftext|>. Zeroing those rows of the tied embedding gives them logit 0 while some printable
    # token always scores higher, so greedy output is printable ASCII and runs to max_new_tokens.
    byte_of = {char: byte for byte, char in _bytes_to_unicode().items()}
    with torch.no_grad():
        for token, index in tokenizer.get_vocab().items():
            if token == EOS or not all(32 <= byte_of.get(char, 0) < 127 for char in token):
                model.transformer.wte.weight[index] = 0.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)  # adds tokenizer.json (and chat_template.jinja) next to the hand-written files
    return directory
