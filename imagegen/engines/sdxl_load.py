"""Loading SDXL for the engine: where the model is, which device and precision, which memory mode.

A model is a diffusers folder, a single .safetensors/.ckpt file, or a hub id. Anything missing is
a `ModelNotFound` that says what to set. Device, precision and the single-file config folder come
as parameters (imagegen.settings reads KEYART_*). torch and diffusers are imported only inside functions.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, ModelNotFound

log = logging.getLogger(__name__)

from ..settings import DTYPES, MEMORY_MODES  # noqa: E402 -- one list of the words, kept with the settings
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "folder" | "file" | "hub"
    location: str
    name: str  # what A1111's "Model:" field shows

    @property
    def hash(self) -> str | None:
        """A1111's short hash for checkpoint files (folders and hub ids have none)."""
        if self.kind != "file":
            return None
        from ..hashes import model_hash

        return model_hash(self.location)


def locate(model: str, *, variable: str = "KEYART_SDXL_MODEL") -> ModelSource:
    """Classify a model reference, failing early with a message that says what to set."""
    model = model.strip()
    path = Path(model).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise ModelNotFound(f"{path} is not a diffusers model folder (no model_index.json); point {variable} at one, or at a .safetensors file")
        try:
            pipeline = str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
        except (OSError, ValueError, AttributeError) as exc:  # not JSON, not UTF-8, not an object
            raise ModelNotFound(f"{index} cannot be read as a diffusers model index ({type(exc).__name__}); point {variable} at an SDXL folder") from None
        if "StableDiffusionXL" not in pipeline:
            raise ModelNotFound(f"{path} holds a {pipeline or 'unknown'} model, not SDXL; point {variable} at an SDXL folder")
        return ModelSource("folder", str(path), path.name)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        if not path.is_file():
            raise ModelNotFound(f"{variable}={model}: no such file; download an SDXL checkpoint there or fix the path")
        return ModelSource("file", str(path), path.stem)
    if (repo := _hub_name(model)) is not None:
        return ModelSource("hub", model, repo)
    raise ModelNotFound(
        f"{variable}={model!r} is neither a folder, a .safetensors file nor a hub id (owner/name); "
        "set it to e.g. /models/sdxl-base or stabilityai/stable-diffusion-xl-base-1.0"
    )


def locate_vae(vae: str, *, variable: str = "KEYART_SDXL_VAE") -> ModelSource:
    """Classify a VAE reference: a diffusers AutoencoderKL folder (or an SDXL folder, whose vae/ is
    taken), a single file in the original layout (A1111's models/VAE), or a hub id."""
    vae = vae.strip()
    path = Path(vae).expanduser()
    if path.is_dir():
        folder = path if (path / "config.json").is_file() else path / "vae"
        config = folder / "config.json"
        if not config.is_file():
            raise ModelNotFound(f"{variable}={vae}: not a diffusers VAE folder (no config.json there, nor in vae/); point it at one, or at a .safetensors file")
        try:
            kind = str(json.loads(config.read_text(encoding="utf-8")).get("_class_name", ""))
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelNotFound(f"{config} cannot be read as a diffusers config ({type(exc).__name__}); point {variable} at a VAE folder") from None
        if kind != "AutoencoderKL":
            raise ModelNotFound(f"{folder} holds a {kind or 'unknown'} model, not a VAE (AutoencoderKL); point {variable} at a VAE folder")
        return ModelSource("folder", str(folder), path.name)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        if not path.is_file():
            raise ModelNotFound(f"{variable}={vae}: no such file; put an SDXL VAE there (such as sdxl_vae.safetensors) or fix the path")
        return ModelSource("file", str(path), path.name)  # A1111's "VAE:" shows the file's whole name
    if (repo := _hub_name(vae)) is not None:
        return ModelSource("hub", vae, repo)
    raise ModelNotFound(f"{variable}={vae!r} is neither a folder, a .safetensors file nor a hub id (owner/name); set it to e.g. madebyollin/sdxl-vae-fp16-fix")


def _hub_name(value: str) -> str | None:
    """The repository's name when `value` reads as a hub id (owner/name), else None."""
    parts = value.split("/")
    return parts[1] if len(parts) == 2 and all(parts) and not value.startswith((".", "~")) else None


def load_vae(source: ModelSource, dtype, *, configs: str | None = None):
    """The AutoencoderKL `source` names, in `dtype`. A hub id is a VAE repository, or an SDXL one whose
    vae/ is taken; a single file holds weights only: its config is read from `configs` (a diffusers
    SDXL folder's vae/), else fetched from the hub."""
    from diffusers import AutoencoderKL

    try:
        if source.kind == "file":
            where = {"config": configs, "subfolder": "vae"} if configs else {}
            return AutoencoderKL.from_single_file(source.location, dtype=dtype, **where)
        try:
            return AutoencoderKL.from_pretrained(source.location, dtype=dtype)
        except OSError:
            if source.kind != "hub":
                raise
            return AutoencoderKL.from_pretrained(source.location, subfolder="vae", dtype=dtype)
    except (OSError, ValueError) as exc:  # missing files and hub misses; a file whose weights do not fit the config
        hint = _offline_hint()
        if source.kind == "file" and not configs:
            hint += " A single VAE file needs SDXL's configs: offline, set KEYART_SDXL_CONFIG to a diffusers SDXL folder."
        raise ModelNotFound(f"cannot load the VAE {source.location!r}: {exc}.{hint}") from exc


def pick_device(device: str | None = None) -> str:
    """`device` when given, else CUDA when available, else Apple's MPS, else the CPU."""
    import torch

    device = (device or "").strip()
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidRequest(f"device {device!r} was asked for, but torch sees no CUDA GPU (torch {torch.__version__})")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, dtype: str | None = None):
    """fp16 on GPUs (SDXL's own variant), fp32 on the CPU, where half precision is slow or missing."""
    import torch

    dtype = dtype or "auto"
    if dtype not in DTYPES:
        raise InvalidRequest(f"dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")
    if dtype == "auto":
        dtype = "fp32" if device == "cpu" else "fp16"
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]


def _from_source(cls, source: ModelSource, dtype, config: str | None = None, **components: Any):
    """Load one pipeline; `config` is a diffusers folder a single file reads its configs from offline."""
    kwargs: dict[str, Any] = {"dtype": dtype, **components}  # diffusers 0.42 names it dtype (torch_dtype is deprecated)
    try:
        if source.kind == "file":
            return cls.from_single_file(source.location, config=config, **kwargs) if config else cls.from_single_file(source.location, **kwargs)
        if source.kind == "folder" and dtype is not _fp32() and any(Path(source.location).glob("unet/*.fp16.safetensors")):
            kwargs["variant"] = "fp16"  # half-size files, when the folder has them
        return cls.from_pretrained(source.location, **kwargs)
    except OSError as exc:  # what diffusers and huggingface_hub raise for missing files and hub misses
        hint = _offline_hint()
        if source.kind == "file" and not config:
            # A single file holds weights only; diffusers fetches the pipeline's configs from the hub.
            hint += (
                " A single checkpoint file needs the SDXL pipeline configs: offline, set KEYART_SDXL_CONFIG to a "
                "diffusers SDXL folder (stabilityai/stable-diffusion-xl-base-1.0 without its weights is enough)."
            )
            raise ModelNotFound(f"cannot load SDXL checkpoint {source.location!r}: {exc}.{hint}") from exc
        raise ModelNotFound(f"cannot load SDXL model {source.location!r}: {exc}.{hint} Download it first, or point KEYART_SDXL_MODEL at a local folder or file") from exc


def _offline_hint() -> str:
    """A load error's word on HF_HUB_OFFLINE: the hub library's own variable, not a keyart setting,
    so it is read here, where the hub is used."""
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    return " HF_HUB_OFFLINE is set, so only the local cache is searched." if offline else ""


def _fp32():
    import torch

    return torch.float32


def load_pipelines(model: str, refiner: str | None, dtype, *, config: str | None = None, vae: str | None = None):
    """Load the base pipeline and, when asked, a refiner sharing its text_encoder_2 and VAE; `config`
    (KEYART_SDXL_CONFIG) is the folder single checkpoint files read their pipeline configs from;
    `vae` (KEYART_SDXL_VAE) replaces the model's own VAE. Returns (base, refiner, and the three sources)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    base_source = locate(model)
    refiner_source = locate(refiner, variable="KEYART_SDXL_REFINER") if refiner else None
    vae_source = locate_vae(vae) if vae else None
    components: dict[str, Any] = {}
    if vae_source is not None:
        # A single VAE file reads its config from the config folder, else from the model's own folder.
        configs = config or (base_source.location if base_source.kind == "folder" else None)
        components["vae"] = load_vae(vae_source, dtype, configs=configs)
    base = _from_source(StableDiffusionXLPipeline, base_source, dtype, config, **components)
    refiner_pipe = None
    if refiner_source:
        refiner_pipe = _from_source(
            StableDiffusionXLImg2ImgPipeline, refiner_source, dtype, config, text_encoder_2=base.text_encoder_2, vae=base.vae
        )
    return base, refiner_pipe, base_source, refiner_source, vae_source


def place(pipes: list, device: str, memory: str = "normal") -> None:
    """Put the pipelines on `device` in one of A1111's memory modes.

    normal: everything on the device. medvram: each model moves to the GPU only while it runs
    (diffusers' model offload) and the VAE decodes in slices and tiles. lowvram: layer by layer
    (sequential offload): slowest, fits in a few GB.
    """
    if memory not in MEMORY_MODES:
        raise InvalidRequest(f"memory must be one of {', '.join(MEMORY_MODES)} (got {memory!r})")
    if memory != "normal" and not device.startswith("cuda"):
        raise InvalidRequest(f"memory mode {memory!r} offloads from a CUDA GPU to the CPU; on {device} use 'normal'")
    for pipe in pipes:
        if memory == "normal":
            pipe.to(device)
        elif memory == "medvram":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
        if memory != "normal":
            pipe.vae.enable_slicing()
            pipe.vae.enable_tiling()


def keep_vae_safe(pipes: list, dtype) -> None:
    """In fp16 the SDXL VAE overflows and decodes to black: keep it in fp32 unless it is fp16-safe.

    A VAE whose config says `force_upcast: false` (such as sdxl-vae-fp16-fix) stays in fp16;
    bf16 has fp32's range and needs nothing.
    """
    import torch

    if dtype is not torch.float16:
        return
    for pipe in pipes:
        if getattr(pipe.vae.config, "force_upcast", True):
            pipe.vae.to(torch.float32)


def check_request(settings: Any, request: Any) -> None:
    """The sdxl engine's request check (the engine table's `check_request`): the ControlNets and the
    IP-Adapter a request needs are configured and there, loading nothing."""
    from . import sdxl_control, sdxl_reference

    sdxl_control.check_request(settings, request)
    sdxl_reference.check_request(settings, request)


def check_settings(settings: Any) -> None:
    """The sdxl engine's model, refiner and VAE settings point somewhere real and its speed fits its
    memory mode (the engine table's `check`): a missing folder or file, or fast with lowvram, fails
    when the engine is chosen, before torch is imported."""
    from ..settings import variable
    from .sdxl_speed import check_memory

    check_memory(settings.speed, settings.memory)
    locate(settings.sdxl_model, variable=variable("sdxl_model").env)
    if settings.sdxl_refiner:
        locate(settings.sdxl_refiner, variable=variable("sdxl_refiner").env)
    if settings.sdxl_vae:
        locate_vae(settings.sdxl_vae, variable=variable("sdxl_vae").env)
