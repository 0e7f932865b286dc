"""torch.compile for the SDXL engine: the UNet's repeated transformer blocks (diffusers' regional
compile, which compiles one block's code for all of them) and the VAE decoder, with inductor's
kernel cache in keyart's cache folder so a restarted process finds its kernels compiled.

`compile` setting: `auto` compiles with the fast and turbo speeds on a CUDA GPU (on the CPU the
compile costs more than it gains), `on` compiles wherever the engine runs, `off` never. Sequential
offload (lowvram) moves every layer at every call, which compiled code cannot follow: it is never
compiled. LoRAs are merged into the weights in place for their render (lora.patched), so the
compiled blocks keep their structure and a LoRA change does not recompile (torch passes module
weights to compiled code as inputs, so new values need no new code).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest
from ..settings import COMPILES

log = logging.getLogger(__name__)

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"  # inductor's own variable: a user's value is kept
FOLDER = "torch-compile"  # under KEYART_CACHE


def wanted(compile: str | bool | None, speed: str, device: str, memory: str) -> bool:
    """Whether the engine compiles: the setting's word (or a bool) for a resolved speed on `device`."""
    if isinstance(compile, bool):
        word = "on" if compile else "off"
    else:
        word = str(compile or "auto").strip().lower()
    if word not in COMPILES:
        raise InvalidRequest(f"compile is one of {', '.join(COMPILES)} (got {compile!r})")
    if memory == "lowvram":
        if word == "on":
            log.warning("not compiling: lowvram's sequential offload moves every layer at each call, which compiled code cannot follow")
        return False
    if word == "auto":
        return speed != "standard" and str(device).startswith("cuda")
    return word == "on"


def use_cache(folder: str | Path | None) -> Path | None:
    """Point inductor's kernel cache at `folder` (made if need be), unless TORCHINDUCTOR_CACHE_DIR names
    another folder of the user's choosing (torch writes its own default there once it has looked)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get(CACHE_ENV)
    if chosen and os.path.abspath(chosen) != os.path.abspath(default_cache_dir()):
        return Path(chosen)
    if folder is None:
        return Path(chosen) if chosen else None
    path = Path(folder).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_ENV] = str(path)  # inductor reads it at each cache lookup and write
    return path


def apply(pipes: list[Any], *, backend: Any = "inductor", cache: str | Path | None = None) -> str:
    """Compile each pipeline's UNet blocks and VAE decoder in place (lazily: on their first call);
    the words for the lineage ("inductor", or the backend's name)."""
    where = use_cache(cache)
    # Weights frozen first: loading a LoRA freezes them, and a compiled block that guards on
    # requires_grad would compile again for it.
    for pipe in pipes:
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            if getattr(pipe, name, None) is not None:
                getattr(pipe, name).requires_grad_(False)
    # 1. The UNet: every BasicTransformerBlock shares one compiled code object (regional compile).
    # 2. The VAE decoder, shared between base and refiner: compiled once.
    seen: set[int] = set()
    for pipe in pipes:
        if id(pipe.unet) not in seen:
            pipe.unet.compile_repeated_blocks(fullgraph=True, backend=backend)
            seen.add(id(pipe.unet))
        if id(pipe.vae) not in seen:
            pipe.vae.decoder.compile(backend=backend)
            seen.add(id(pipe.vae))
    name = backend if isinstance(backend, str) else getattr(backend, "__name__", type(backend).__name__)
    log.info("compiling the UNet's blocks and the VAE decoder with %s on first use (kernels cached in %s)", name, where or "inductor's default folder")
    return str(name)
