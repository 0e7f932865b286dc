"""SDXL base and refiner 1.0's architectures at random init: the compute of trained weights, no download.

The benchmarks' models on a GPU (bench/engine.py --full, bench/dataprep.py --full): random weights
cost the same FLOPs as trained ones, and they are made in seconds straight on the device.
"""

from __future__ import annotations

from pathlib import Path


def full_sdxl(directory: Path, device: str, dtype):
    """SDXL base 1.0's architecture (UNet 2.6B, CLIP-L + bigG, VAE) at random init, on `device`."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from imagegen.tiny import write_tokenizer

    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(directory / "tokenizer"))
    eos = tokenizer.get_vocab()["<|endoftext|>"]
    common = dict(vocab_size=49408, max_position_embeddings=77, bos_token_id=eos - 1, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(0)
    with torch.device(device):  # random init straight on the GPU: seconds, not minutes
        text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768, **common))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, hidden_act="gelu", projection_dim=1280, **common))
        unet = UNet2DConditionModel(
            sample_size=128,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(320, 640, 1280),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )
        vae = AutoencoderKL(
            block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=1024,
            scaling_factor=0.13025,
        )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.to(dtype=dtype)
    params = sum(p.numel() for p in unet.parameters())
    assert params > 2.5e9, f"the UNet should be SDXL-sized (2.57B parameters), got {params / 1e9:.2f}B"
    return pipe


def full_refiner(base, device: str, dtype):
    """SDXL refiner 1.0's architecture (UNet 2.3B) at random init, sharing the base's text_encoder_2 and VAE."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel

    torch.manual_seed(1)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=128,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(384, 768, 1536, 1536),
            layers_per_block=2,
            transformer_layers_per_block=4,
            attention_head_dim=(6, 12, 24, 24),
            cross_attention_dim=1280,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2560,
        )
    refiner = StableDiffusionXLImg2ImgPipeline(
        vae=base.vae, text_encoder=None, text_encoder_2=base.text_encoder_2, tokenizer=None, tokenizer_2=base.tokenizer_2, unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(base.scheduler.config), requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
    )  # fmt: skip
    refiner.unet.to(dtype=dtype)
    return refiner
