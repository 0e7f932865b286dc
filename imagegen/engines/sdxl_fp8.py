"""fp8 linear layers for the turbo speed: the UNet's large linear layers quantised by torchao to
float8 weights with float8 activations scaled per row at run time, on GPUs with fp8 tensor cores
(compute capability 8.9 and newer: Ada, Hopper, Blackwell). Elsewhere nothing changes and the
reason is returned, for the log and the lineage; the infotext says `FP8: linear` only where applied.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

log = logging.getLogger(__name__)

MIN_FEATURES = 640  # SDXL's smallest transformer width: below it the quantise/scale overhead outweighs the faster matmul
CAPABILITY = (8, 9)


def unavailable(device: str) -> str | None:
    """Why fp8 linears cannot run on `device`, or None when they can."""
    import torch

    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return f"fp8 linears need a CUDA GPU of compute capability {CAPABILITY[0]}.{CAPABILITY[1]} or newer (this engine runs on {device})"
    capability = torch.cuda.get_device_capability(torch.device(device))
    if capability < CAPABILITY:
        return f"fp8 linears need compute capability {CAPABILITY[0]}.{CAPABILITY[1]} or newer (this GPU has {capability[0]}.{capability[1]})"
    if importlib.util.find_spec("torchao") is None:
        return "fp8 linears need torchao: pip install -e '.[gpu]' (torchao==0.18.0)"
    return None


def wide_linear(module: Any, name: str = "") -> bool:
    """The layers worth quantising: linears at least MIN_FEATURES wide both ways, multiples of 16 (fp8 matmul tiles)."""
    import torch

    return (
        isinstance(module, torch.nn.Linear)
        and min(module.in_features, module.out_features) >= MIN_FEATURES
        and module.in_features % 16 == 0
        and module.out_features % 16 == 0
    )


def apply(unets: list[Any], device: str) -> str | None:
    """Quantise each UNet's wide linears to fp8 where the device can; None when done, else why not."""
    reason = unavailable(device)
    if reason is not None:
        log.warning("turbo without fp8 linears: %s", reason)
        return reason
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    for unet in unets:
        quantize_(unet, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), filter_fn=wide_linear)
    return None
