"""IP-Adapter for the SDXL engine: a reference image's style or subject, at a scale, from
KEYART_IP_ADAPTER (a weights file, h94/IP-Adapter's layout: its CLIP image encoder in the
`image_encoder` folder beside it).

The weights and the image encoder are read once and kept; for each render with a reference the
adapter goes into the base UNet (diffusers' `load_ip_adapter`, from the kept weights), the
reference is encoded once, and the adapter comes out again after the render, so renders without a
reference run the stock UNet. The embeddings go to every pass's pipeline (text to image, img2img,
inpaint, ControlNet, the hires fix); the refiner has no adapter. torch is imported in functions.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ModelNotFound
from ..settings import variable

ENV = variable("ip_adapter").env  # KEYART_IP_ADAPTER
ENCODER = "image_encoder"


def locate(path: str | Path | None) -> tuple[Path, Path]:
    """(the weights file, its image encoder folder), or a ModelNotFound saying what to set."""
    if not path:
        raise ModelNotFound(f"a reference image needs an IP-Adapter: set {ENV} to an SDXL IP-Adapter file (ip-adapter_sdxl.safetensors) with its image_encoder/ folder beside it")
    weights = Path(path).expanduser()
    if not weights.is_file() or weights.suffix.lower() != ".safetensors":
        raise ModelNotFound(f"{ENV}={path}: not a .safetensors file; point it at an SDXL IP-Adapter such as ip-adapter_sdxl.safetensors")
    encoder = weights.parent / ENCODER
    if not (encoder / "config.json").is_file():
        raise ModelNotFound(f"the IP-Adapter {weights.name} needs its CLIP image encoder in {encoder} (a transformers folder with config.json), as h94/IP-Adapter lays it out")
    return weights, encoder


def check_request(settings: Any, request) -> None:
    """The sdxl engine's check for a reference: the IP-Adapter is configured and there (loading nothing)."""
    if request.reference is not None:
        locate(settings.ip_adapter)


class Adapter:
    """One engine's IP-Adapter: its weights and image encoder, read on first use and kept."""

    def __init__(self, path: str | Path | None):
        self.path = path
        self._loaded: tuple[dict, Any, Any, str] | None = None  # (state dict, encoder, processor, name)

    @property
    def name(self) -> str:
        return Path(str(self.path)).stem

    def _load(self, device, dtype):
        if self._loaded is None:
            from safetensors import safe_open
            from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

            weights, folder = locate(self.path)
            state: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
            try:
                with safe_open(str(weights), framework="pt", device="cpu") as f:
                    for key in f.keys():
                        part, _, rest = key.partition(".")
                        if part in state:
                            state[part][rest] = f.get_tensor(key)
                encoder = CLIPVisionModelWithProjection.from_pretrained(str(folder), dtype=dtype).to(device)
                processor = CLIPImageProcessor.from_pretrained(str(folder)) if (folder / "preprocessor_config.json").is_file() else CLIPImageProcessor()
            except (OSError, ValueError) as exc:
                raise ModelNotFound(f"cannot load the IP-Adapter {weights}: {exc}") from exc
            if not state["image_proj"] or not state["ip_adapter"]:
                raise ModelNotFound(f"{weights} is not an IP-Adapter (no image_proj.* and ip_adapter.* weights)")
            self._loaded = (state, encoder, processor, weights.stem)
        return self._loaded

    @contextmanager
    def applied(self, base, reference: str, scale: float, images: int):
        """The adapter in `base`'s UNet at `scale` for a render of `images` images per call; yields the
        pipelines' `ip_adapter_image_embeds` (negative zeros, then the reference's, one row per image)."""
        import torch

        from ..canvas import open_image

        device, dtype = base._execution_device, base.unet.dtype
        state, encoder, processor, _ = self._load(device, dtype)
        picture = open_image(reference, what="reference image").convert("RGB")
        with torch.no_grad():
            pixels = processor(images=picture, return_tensors="pt").pixel_values.to(device, dtype=encoder.dtype)
            embeds = encoder(pixels).image_embeds.to(dtype)  # (1, dim)
        row = embeds[:, None, :].repeat(images, 1, 1)
        base.load_ip_adapter({k: dict(v) for k, v in state.items()}, subfolder="", weight_name="", image_encoder_folder=None)
        try:
            base.set_ip_adapter_scale(scale)
            yield [torch.cat([torch.zeros_like(row), row])]
        finally:
            base.unload_ip_adapter()
