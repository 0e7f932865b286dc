"""Depth maps for depth control units: a depth-estimation model through transformers (Depth Anything,
DPT, from KEYART_DEPTH_MODEL), loaded on first use and kept. The map is the model's relative inverse
depth (near is bright, as SDXL depth ControlNets were trained on), stretched to the full grey range
at the picture's size."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .errors import ModelNotFound
from .pretrained import load
from .settings import transformers_model, variable

ENV = variable("depth_model").env  # KEYART_DEPTH_MODEL


def locate(model: str | None) -> str:
    """The model as from_pretrained takes it (a folder with config.json, or a hub id), or a ModelNotFound saying what to set."""
    if not model:
        raise ModelNotFound(
            f"a depth unit makes its map with a depth-estimation model: set {ENV} to one (a transformers folder or hub id such as "
            "depth-anything/Depth-Anything-V2-Small-hf), or give a ready depth map: --control depth/none:MAP.png"
        )
    return transformers_model(model, ENV)


class DepthEstimator:
    """One depth-estimation model: `estimate(picture)` is its depth map of the picture, as an RGB image."""

    def __init__(self, model: str | None, *, device: str | None = None):
        self.model = locate(model)
        self.device = device
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    @property
    def name(self) -> str:
        return Path(self.model).name

    def estimate(self, picture):
        import torch
        from PIL import Image

        with self._lock:
            model, processor = self._parts()
            inputs = processor(images=picture.convert("RGB"), return_tensors="pt").to(model.device)
            with torch.inference_mode():
                out = model(**inputs)
            depth = processor.post_process_depth_estimation(out, target_sizes=[(picture.height, picture.width)])[0]["predicted_depth"]
        depth = depth.float().cpu()
        low, high = float(depth.min()), float(depth.max())
        scaled = (depth - low) / (high - low) if high - low > 1e-8 else torch.zeros_like(depth)
        return Image.fromarray((scaled * 255).round().clamp(0, 255).to(torch.uint8).numpy()).convert("RGB")

    def _parts(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation

            self._loaded = load(AutoModelForDepthEstimation, AutoImageProcessor, self.model, env=ENV, what="depth-estimation model", device=self.device)
        return self._loaded
