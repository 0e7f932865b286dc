"""Tiny random-init models for guided generation, built from configs beside the tiny SDXL (imagegen.tiny):
ControlNets (one per type, and a union one) shaped after its UNet and an IP-Adapter with its image
encoder, for tests and benchmarks.
Nothing is downloaded.

A real ControlNet starts from zero convolutions (its output is nothing until trained); these are
given small random weights instead, so a control map changes the image as a trained one would.
"""

from __future__ import annotations

from pathlib import Path


def tiny_controlnet(unet, *, seed: int = 0, scale: float = 0.2):
    """A ControlNet over `unet`'s shape and weights, its zero convolutions drawn at random (`scale` wide)."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    with torch.no_grad():
        outputs = [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]
        for layer in outputs:
            layer.weight.uniform_(-scale, scale)
            layer.bias.uniform_(-scale, scale)
    return net.to(unet.dtype)


def tiny_union_controlnet(unet, *, seed: int = 0, scale: float = 0.2):
    """A union ControlNet (diffusers' ControlNetUnionModel: one net for every type) shaped after `unet`,
    its zero convolutions and its type projection drawn at random, as `tiny_controlnet`'s are."""
    import inspect

    import torch
    from diffusers import ControlNetModel, ControlNetUnionModel

    torch.manual_seed(seed)
    shaped = dict(ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16)).config)
    taken = set(inspect.signature(ControlNetUnionModel.__init__).parameters)
    width = unet.config.block_out_channels[0]
    net = ControlNetUnionModel(**{k: v for k, v in shaped.items() if k in taken}, num_trans_channel=width, num_trans_head=2, num_proj_channel=width)
    with torch.no_grad():
        # spatial_ch_projs too: zero in a fresh model, it carries the type's embedding into the features
        for layer in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out, net.spatial_ch_projs]:
            layer.weight.uniform_(-scale, scale)
            layer.bias.uniform_(-scale, scale)
    return net.to(unet.dtype)


def save_tiny_controlnets(directory: str | Path, unet, types: tuple[str, ...] = ("canny", "softedge", "lineart", "depth", "pose")) -> Path:
    """A KEYART_CONTROLNET_DIR: one diffusers folder per type, each net its own (seeded by position)."""
    directory = Path(directory)
    for seed, kind in enumerate(types):
        tiny_controlnet(unet, seed=seed + 1).save_pretrained(directory / kind)
    return directory


def save_tiny_ip_adapter(directory: str | Path, unet, *, seed: int = 0, scale: float = 0.2) -> Path:
    """A KEYART_IP_ADAPTER for `unet`: `ip-adapter_tiny.safetensors` (h94's key layout: image_proj.*
    and ip_adapter.<n>.to_k_ip/to_v_ip for each cross-attention) and a tiny CLIP image encoder in
    `image_encoder/` beside it. Returns the weights file."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    directory = Path(directory)
    torch.manual_seed(seed)
    embed = 16  # the image encoder's projection: the adapter's input
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32, patch_size=8, projection_dim=embed)
    )
    encoder.save_pretrained(directory / "image_encoder")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory / "image_encoder")
    cross, tokens, widths = unet.config.cross_attention_dim, 4, unet.config.block_out_channels
    state = {
        "image_proj.proj.weight": torch.randn(cross * tokens, embed) * scale, "image_proj.proj.bias": torch.zeros(cross * tokens),
        "image_proj.norm.weight": torch.ones(cross), "image_proj.norm.bias": torch.zeros(cross),
    }  # fmt: skip
    key = 1  # h94 numbers the processors of every attention, self (even, none) and cross (odd)
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        block = name.split(".")
        width = widths[-1] if block[0] == "mid_block" else list(reversed(widths))[int(block[1])] if block[0] == "up_blocks" else widths[int(block[1])]
        state[f"ip_adapter.{key}.to_k_ip.weight"] = torch.randn(width, cross) * scale
        state[f"ip_adapter.{key}.to_v_ip.weight"] = torch.randn(width, cross) * scale
        key += 2
    path = directory / "ip-adapter_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def save_tiny_depth(directory: str | Path, *, seed: int = 0) -> Path:
    """A KEYART_DEPTH_MODEL: a tiny DPT depth estimator and its processor; its head's convolutions are
    drawn wide, with a positive bias, so the map it makes varies across the picture."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    directory = Path(directory)
    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=8,
        backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16, reassemble_factors=[4, 2, 1, 0.5],
    )  # fmt: skip
    model = DPTForDepthEstimation(config)
    with torch.no_grad():
        for layer in model.head.head:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.normal_(0, 0.5)
                layer.bias.fill_(0.3)
    model.save_pretrained(directory)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(directory)
    return directory
