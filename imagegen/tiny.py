"""Tiny random-init SDXL pipelines (base and refiner) built from configs, for tests and benchmarks.

No weights are downloaded: the CLIP tokenizer is written from a byte-level vocabulary, and every
model is the real diffusers/transformers class at a few thousand parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

# SDXL conditions the UNet on 6 size/crop numbers (base) or 5 with the aesthetic score (refiner),
# each embedded in `_TIME_DIM` channels, next to the pooled text embedding (`_HIDDEN` wide).
_TIME_DIM = 8
_HIDDEN = 32


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable-character table."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def write_tokenizer(directory: str | Path) -> Path:
    """Write a CLIP BPE tokenizer (every byte, a few merges, special tokens last) to `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    merges = ["t h", "th e</w>", "a n", "i n", "o n</w>", "e r", "h o", "s e"]
    tokens = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]  # special tokens at the highest ids, as in CLIP
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,  # without it the tokenizer's default overflows an int
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


# The UNet's two levels: (channels, attention heads, transformer layers) each, and its group norm.
_NARROW = dict(block_out_channels=(32, 64), attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2), norm_num_groups=1)
# SDXL's first two levels as they are (320 and 640 channels, heads of 64): linears 640 wide, as the
# fp8 filter wants, and real kernel sizes for GPU checks; about 150M parameters.
_WIDE = dict(block_out_channels=(320, 640), attention_head_dim=(5, 10), transformer_layers_per_block=(1, 1), norm_num_groups=32)


def _unet(cross_attention_dim: int, time_ids: int, pooled: int, wide: bool = False):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=_TIME_DIM,
        projection_class_embeddings_input_dim=time_ids * _TIME_DIM + pooled,
        cross_attention_dim=cross_attention_dim,
        **(_WIDE if wide else _NARROW),
    )


def _vae(**config):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        sample_size=128,
        **config,
    )


def tiny_sdxl(
    directory: str | Path, *, seed: int = 0, refiner: bool = True, encoder_2: tuple[int, int, int] = (_HIDDEN, 2, _HIDDEN), wide: bool = False
):
    """Build (base, refiner) tiny SDXL pipelines; the refiner shares text_encoder_2 and the VAE.

    `directory` receives the tokenizer files. Returns `(base, None)` when `refiner` is False.
    `encoder_2` is text_encoder_2's (width, layers, projection); by default it is shaped like text_encoder.
    `wide` gives the UNets SDXL's own widths for their two levels (320 and 640 channels).
    """
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(Path(directory) / "tokenizer"))
    vocab = tokenizer.get_vocab()

    def text_config(width: int, layers: int, projection: int):
        return CLIPTextConfig(
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],  # pooling finds this id, so it must be the real one
            pad_token_id=vocab["<|endoftext|>"],
            hidden_size=width,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=layers,
            vocab_size=len(vocab),
            projection_dim=projection,
            max_position_embeddings=77,
        )

    width_2, _, pooled = encoder_2
    torch.manual_seed(seed)
    text_encoder, text_encoder_2 = CLIPTextModel(text_config(_HIDDEN, 2, _HIDDEN)), CLIPTextModelWithProjection(text_config(*encoder_2))
    vae = _vae()
    # SDXL's own scheduler config: Euler, scaled-linear betas, "leading" spacing.
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )
    base = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=_unet(_HIDDEN + width_2, time_ids=6, pooled=pooled, wide=wide),
        scheduler=scheduler,
    )
    if not refiner:
        return base, None
    refiner_pipe = StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=None,
        text_encoder_2=text_encoder_2,
        tokenizer=None,
        tokenizer_2=tokenizer,
        unet=_unet(width_2, time_ids=5, pooled=pooled, wide=wide),
        scheduler=EulerDiscreteScheduler.from_config(scheduler.config),
        requires_aesthetics_score=True,
    )
    return base, refiner_pipe


def save_tiny_sdxl(directory: str | Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write tiny base and refiner model folders, as `from_pretrained` reads them."""
    directory = Path(directory)
    base, refiner = tiny_sdxl(directory, seed=seed)
    base.save_pretrained(directory / "tiny-sdxl-base")
    refiner.save_pretrained(directory / "tiny-sdxl-refiner")
    return directory / "tiny-sdxl-base", directory / "tiny-sdxl-refiner"


def save_tiny_single_file(directory: str | Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny base as one A1111/Civitai-style `tiny-sdxl.safetensors` (Stability's original
    key layout) and as a diffusers folder, the offline `config=` for it (KEYART_SDXL_CONFIG).

    Returns `(file, config_folder)`; both hold the same weights.
    """
    from safetensors.torch import save_file

    from .tiny_single_file import to_original_sdxl

    directory = Path(directory)
    # text_encoder_2 shaped a little more like OpenCLIP bigG: 10 layers, so diffusers' SDXL
    # detection key (`...resblocks.9.mlp.c_proj.bias`) exists, and a width unlike CLIP-L's, which
    # is how diffusers tells the two encoders apart in one file (it compares position-embedding widths).
    base, _ = tiny_sdxl(directory, seed=seed, refiner=False, encoder_2=(48, 10, 40))
    config_folder, file = directory / "tiny-sdxl-config", directory / "tiny-sdxl.safetensors"
    base.save_pretrained(config_folder)
    save_file(to_original_sdxl(base), str(file), metadata={"format": "pt"})
    return file, config_folder


def save_tiny_vae(directory: str | Path, *, seed: int = 1, force_upcast: bool = False) -> tuple[Path, Path]:
    """Write a replacement VAE for the tiny SDXL (its own random weights): a diffusers folder whose
    config says `force_upcast` (false: fp16-safe, as sdxl-vae-fp16-fix says of itself), and the same
    weights as an A1111-style single file in the original layout. Returns `(folder, file)`."""
    import torch
    from safetensors.torch import save_file

    from .tiny_single_file import to_original_vae

    directory = Path(directory)
    torch.manual_seed(seed)
    vae = _vae(force_upcast=force_upcast)
    folder, file = directory / "tiny-vae", directory / "tiny_vae.safetensors"
    vae.save_pretrained(folder)
    save_file(to_original_vae(vae), str(file), metadata={"format": "pt"})
    return folder, file
