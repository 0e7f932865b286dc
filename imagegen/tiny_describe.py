"""Tiny random-init models for `describe` and image search, built from configs: a BLIP captioner (with
a word-level BERT vocabulary) and a CLIP model (with the tiny SDXL's byte-level tokenizer). Their
captions are random words and their rankings arbitrary but fixed: enough to run every code path.
Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

from .tiny import write_tokenizer

WORDS = (
    "a", "an", "the", "of", "in", "on", "at", "with", "and", "by", "lighthouse", "harbour", "storm", "sea", "boat",
    "woman", "man", "night", "dusk", "coat", "yellow", "red", "blue", "sky", "cliff", "rain", "lamp", "street",
    "house", "water", "light", "dark", "waves", "gulls", "fog", "rocks", "keeper", "window", "door", "road",
)  # fmt: skip


def save_tiny_blip(directory: str | Path, *, seed: int = 0) -> Path:
    """A KEYART_CAPTION_MODEL: a BLIP image-captioning model and its processor in `directory`."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join([*special, *WORDS]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab), bos_token="[DEC]")
    ids = {t: i for i, t in enumerate([*special, *WORDS])}
    torch.manual_seed(seed)
    config = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8),
        text_config=dict(
            vocab_size=len(ids), hidden_size=32, encoder_hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=64, bos_token_id=ids["[DEC]"], eos_token_id=ids["[SEP]"], sep_token_id=ids["[SEP]"], pad_token_id=ids["[PAD]"],
        ),
        projection_dim=16,
    )  # fmt: skip
    BlipForConditionalGeneration(config).save_pretrained(directory)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    processor.save_pretrained(directory)
    return directory


def save_tiny_clip(directory: str | Path, *, seed: int = 0) -> Path:
    """A KEYART_CLIP_MODEL: a CLIP model (text and vision towers) and its processor in `directory`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    directory = Path(directory)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer"))
    vocab = tokenizer.get_vocab()
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(
            hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, vocab_size=len(vocab), max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8),
        projection_dim=16,
    )  # fmt: skip
    CLIPModel(config).save_pretrained(directory)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
