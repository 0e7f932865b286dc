"""Loading the transformers models keyart runs beside the engine (captioner, CLIP, depth estimator):
a model class and a processor class from one folder or hub id, onto a device, in eval mode; a model
that cannot be loaded is a ModelNotFound naming the setting that points at it."""

from __future__ import annotations

import logging
from typing import Any

from .errors import ModelNotFound

log = logging.getLogger(__name__)


def best_device(device: str | None) -> str:
    """`device` as given, else CUDA when there is one, else the CPU."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model_class: Any, processor_class: Any, source: str, *, env: str, what: str, device: str | None = None) -> tuple[Any, Any]:
    """(model, processor) of `source` (a folder or hub id), the model on `device` in eval mode."""
    try:
        model = model_class.from_pretrained(source)
        processor = processor_class.from_pretrained(source)
    except OSError as exc:
        raise ModelNotFound(f"{env}={source}: the {what} cannot be loaded ({exc})") from None
    log.info("%s loaded: %s", what, source)
    return model.to(best_device(device)).eval(), processor
