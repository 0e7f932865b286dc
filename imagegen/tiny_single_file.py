"""Diffusers SDXL state dicts -> Stability's original ("SGM") single-file layout, as A1111 and Civitai share it.

The inverse of diffusers' `loaders/single_file_utils.py` (`convert_ldm_unet_checkpoint`,
`convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`, `convert_open_clip_checkpoint`), for
tests that load a `.safetensors` file without downloading one. Covers what SDXL base uses.
"""

from __future__ import annotations

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP_L = "conditioner.embedders.0.transformer."  # transformers' CLIPTextModel layout, under `text_model.`
BIG_G = "conditioner.embedders.1.model."  # open_clip's layout

# ResBlock sublayers: diffusers name -> original name (UNet; the VAE keeps norm1/conv1/... as they are).
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj", "self_attn.out_proj": "attn.out_proj"}


def to_original_sdxl(pipe) -> dict:
    """One flat state dict (contiguous CPU tensors) of an SDXL base pipeline in the original layout."""
    checkpoint = {
        **_prefixed(UNET, _rename(pipe.unet.state_dict(), _unet_blocks(pipe.unet.config))),
        **_prefixed(VAE, _vae(pipe.vae.state_dict(), len(pipe.vae.config.up_block_types))),
        **_prefixed(CLIP_L, _clip_l(pipe.text_encoder.state_dict())),
        **_prefixed(BIG_G, _open_clip(pipe.text_encoder_2.state_dict())),
    }
    return {key: value.detach().cpu().contiguous() for key, value in checkpoint.items()}


def to_original_vae(vae) -> dict:
    """A VAE alone in the original layout with bare keys (encoder..., decoder...), as A1111's models/VAE
    files hold it (sdxl_vae.safetensors)."""
    state = _vae(vae.state_dict(), len(vae.config.up_block_types))
    return {key: value.detach().cpu().contiguous() for key, value in state.items()}


def _prefixed(prefix: str, state: dict) -> dict:
    return {prefix + key: value for key, value in state.items()}


def _rename(state: dict, blocks: dict[str, str], sublayers: dict[str, str] = _UNET_RESNET) -> dict:
    """Rename each key's longest known block prefix; ResBlock sublayers are renamed too."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            block = ".".join(parts[:cut])
            if block in blocks:
                rest = ".".join(parts[cut:])
                if ".resnets." in f".{block}.":
                    head, _, tail = rest.partition(".")
                    rest = f"{sublayers.get(head, head)}.{tail}"
                out[f"{blocks[block]}.{rest}"] = value
                break
        else:
            raise KeyError(f"no original name for {key!r}")
    return out


def _unet_blocks(config) -> dict[str, str]:
    """diffusers block -> original block: input_blocks/middle_block/output_blocks, numbered as in SGM."""
    per_block = config.layers_per_block
    assert isinstance(per_block, int), "per-block layers_per_block tuples are not SDXL's layout"
    blocks = {
        "conv_in": "input_blocks.0.0",
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0",
        "add_embedding.linear_2": "label_emb.0.2",
        "mid_block.resnets.0": "middle_block.0",
        "mid_block.attentions.0": "middle_block.1",
        "mid_block.resnets.1": "middle_block.2",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for b in range(len(config.block_out_channels)):
        first_in, first_out = 1 + b * (per_block + 1), b * (per_block + 1)  # +1: the down/upsampler's slot
        for layer in range(per_block):
            blocks[f"down_blocks.{b}.resnets.{layer}"] = f"input_blocks.{first_in + layer}.0"
            blocks[f"down_blocks.{b}.attentions.{layer}"] = f"input_blocks.{first_in + layer}.1"
        blocks[f"down_blocks.{b}.downsamplers.0.conv"] = f"input_blocks.{first_in + per_block}.0.op"
        for layer in range(per_block + 1):
            blocks[f"up_blocks.{b}.resnets.{layer}"] = f"output_blocks.{first_out + layer}.0"
            blocks[f"up_blocks.{b}.attentions.{layer}"] = f"output_blocks.{first_out + layer}.1"
        upsampler_slot = 2 if "CrossAttn" in config.up_block_types[b] else 1  # after the attention, if any
        blocks[f"up_blocks.{b}.upsamplers.0.conv"] = f"output_blocks.{first_out + per_block}.{upsampler_slot}.conv"
    return blocks


def _vae(state: dict, num_blocks: int) -> dict:
    """The VAE: down.i.block.j, mid.block_1/attn_1/block_2, up numbered bottom-up, 1x1 convs for attention."""
    blocks = {name: name for name in ("quant_conv", "post_quant_conv")}
    for part in ("encoder", "decoder"):
        blocks.update({f"{part}.{name}": f"{part}.{name}" for name in ("conv_in", "conv_out")})
        blocks[f"{part}.conv_norm_out"] = f"{part}.norm_out"
        blocks[f"{part}.mid_block.resnets.0"] = f"{part}.mid.block_1"
        blocks[f"{part}.mid_block.resnets.1"] = f"{part}.mid.block_2"
        for name, original in _VAE_ATTENTION.items():
            blocks[f"{part}.mid_block.attentions.0.{name}"] = f"{part}.mid.attn_1.{original}"
    for i in range(num_blocks):
        up = num_blocks - 1 - i  # the decoder's up blocks count from the lowest resolution in SGM
        blocks[f"encoder.down_blocks.{i}.downsamplers.0.conv"] = f"encoder.down.{i}.downsample.conv"
        blocks[f"decoder.up_blocks.{i}.upsamplers.0.conv"] = f"decoder.up.{up}.upsample.conv"
        for j in range(8):  # more resnets per block than any VAE has
            blocks[f"encoder.down_blocks.{i}.resnets.{j}"] = f"encoder.down.{i}.block.{j}"
            blocks[f"decoder.up_blocks.{i}.resnets.{j}"] = f"decoder.up.{up}.block.{j}"
    out = _rename(state, blocks, sublayers={"conv_shortcut": "nin_shortcut"})
    for key, value in out.items():
        if ".mid.attn_1." in key and key.endswith(".weight") and value.ndim == 2:
            out[key] = value[:, :, None, None]  # SGM's attention projections are 1x1 convolutions
    return out


def _clip_l(state: dict) -> dict:
    """CLIP-L stays in transformers' layout, always under `text_model.` (transformers >= 5.6 flattened it)."""
    return {key if key.startswith("text_model.") else f"text_model.{key}": value for key, value in state.items()}


def _open_clip(state: dict) -> dict:
    """OpenCLIP bigG: q/k/v fused into in_proj, resblocks, ln_final, and a transposed text_projection."""
    state = {key.removeprefix("text_model."): value for key, value in state.items()}
    out = {
        "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
        "positional_embedding": state.pop("embeddings.position_embedding.weight"),
        "ln_final.weight": state.pop("final_layer_norm.weight"),
        "ln_final.bias": state.pop("final_layer_norm.bias"),
        "text_projection": state.pop("text_projection.weight").T,  # open_clip computes x @ text_projection
    }
    state.pop("embeddings.position_ids", None)
    layers = sorted({int(key.split(".")[2]) for key in state if key.startswith("encoder.layers.")})
    for n in layers:
        hf, oc = f"encoder.layers.{n}.", f"transformer.resblocks.{n}."
        for kind in ("weight", "bias"):
            out[f"{oc}attn.in_proj_{kind}"] = _cat([state.pop(f"{hf}self_attn.{p}_proj.{kind}") for p in "qkv"])
            for name, original in _OPEN_CLIP_LAYER.items():
                out[f"{oc}{original}.{kind}"] = state.pop(f"{hf}{name}.{kind}")
    if state:
        raise KeyError(f"no original name for text_encoder_2 keys {sorted(state)}")
    return out


def _cat(tensors: list):
    import torch

    return torch.cat(tensors, dim=0)
