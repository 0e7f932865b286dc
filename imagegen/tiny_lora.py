"""Tiny random LoRA files for the tiny SDXL pipelines (imagegen.tiny), in diffusers' LoRA format.

The adapters are built with peft on fresh copies of the pipeline's UNet and text encoders (the
pipeline itself is not touched) with non-zero random weights, so loading one visibly changes a render.
"""

from __future__ import annotations

from pathlib import Path

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def save_tiny_lora(
    path: str | Path, pipe, *, seed: int = 0, rank: int = 4, text_encoders: bool = True, strength: float = 4.0
) -> Path:
    """Write `path` (a .safetensors file) with a LoRA for `pipe`'s UNet and, optionally, both text encoders.

    `strength` scales the random up-projections: peft's default init leaves the effect of a
    rank-4 adapter on a 32-wide model small, and tests want it plainly visible.
    """
    import torch
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    path = Path(path)
    torch.manual_seed(seed)

    def lora_weights(model, targets):
        # 1. A fresh model of the same shape, so the caller's pipeline never carries an adapter.
        # (diffusers models take their config through from_config, transformers models directly.)
        cls = type(model)
        fresh = cls.from_config(model.config) if hasattr(cls, "from_config") else cls(model.config)
        # 2. Random A and B (init_lora_weights=False): a LoRA that starts as a no-op would prove nothing.
        fresh.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False))
        with torch.no_grad():
            for name, param in fresh.named_parameters():
                if "lora_B" in name:
                    param.mul_(strength)
        return convert_state_dict_to_diffusers(get_peft_model_state_dict(fresh))

    layers = {"unet_lora_layers": lora_weights(pipe.unet, UNET_TARGETS)}
    if text_encoders:
        layers["text_encoder_lora_layers"] = lora_weights(pipe.text_encoder, TEXT_TARGETS)
        layers["text_encoder_2_lora_layers"] = lora_weights(pipe.text_encoder_2, TEXT_TARGETS)
    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(path.parent, weight_name=path.name, **layers)
    return path
