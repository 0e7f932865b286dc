"""LoRAs named in prompts (`<lora:name:weight>`): found in the LoRA folder, applied for one render, removed.

The folder (KEYART_LORA_DIR, read by imagegen.settings) is a parameter here. Names resolve as A1111
resolves them (a file's stem anywhere in the folder, or its path inside it), never outside the
folder. `applied(pipe, tags, folder=...)` loads them into the base pipeline with diffusers' PEFT
backend and unloads them afterwards, so the next render is bit-identical to one without them;
`patched` merges them into the weights for the render instead (the fast speeds: no recompile).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .. import hashes
from ..errors import InvalidRequest, ModelNotFound
from ..prompt_syntax import LoraTag
from ..settings import variable

log = logging.getLogger(__name__)

LORA_ENV = variable("lora_dir").env  # KEYART_LORA_DIR, named in messages
SUFFIX = ".safetensors"
SHORT = 12  # A1111's LoRA "shorthash" length (checkpoints use 10)
LISTED = 20  # how many available LoRAs an error message names


# -- finding files ----------------------------------------------------------------------------


def lora_dir(folder: str | Path | None) -> Path:
    """The LoRA folder, checked: None or empty (no folder configured) and a path that is not a
    folder are ModelNotFound errors that say to set KEYART_LORA_DIR."""
    value = str(folder).strip() if folder is not None else ""
    if not value:
        raise ModelNotFound(
            f"the prompt names a LoRA, but no LoRA folder is configured: {LORA_ENV} is not set; set it to the "
            f"folder of your LoRA {SUFFIX} files (A1111's models/Lora works as it is)"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ModelNotFound(f"{LORA_ENV} is {value!r}, which is not a folder; point it at the folder of your LoRA {SUFFIX} files")
    return path


def available(folder: str | Path | None) -> list[str]:
    """The LoRA names in `folder`: paths inside it without `.safetensors`, sorted (links leading out are skipped)."""
    root = lora_dir(folder)
    real_root = root.resolve()
    names = []
    for path in root.rglob(f"*{SUFFIX}"):
        if path.is_file() and path.resolve().is_relative_to(real_root):
            names.append(path.relative_to(root).with_suffix("").as_posix())
    return sorted(names, key=str.lower)


def resolve(name: str, folder: str | Path | None) -> Path:
    """The `.safetensors` file a tag's name means: `sub/name` inside `folder`, or A1111's bare file name.

    Absolute paths, `..` and links that lead out of the folder are refused; an unknown name is a
    ModelNotFound that lists the LoRAs there are; no folder at all says to set KEYART_LORA_DIR.
    """
    root = lora_dir(folder)
    # 1. Refuse anything that could leave the folder before touching the file system.
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise InvalidRequest(f"LoRA {name!r}: give a name inside {LORA_ENV}, not an absolute path; {_listing(root)}")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise InvalidRequest(f"LoRA {name!r}: '..' would leave {LORA_ENV}; {_listing(root)}")
    relative = "/".join(p for p in parts if p not in ("", "."))
    relative = relative.removesuffix(SUFFIX)
    # 2. The path inside the folder, else A1111's bare name (the file's stem, in any subfolder).
    candidate = root / f"{relative}{SUFFIX}"
    if not candidate.is_file():
        matches = [n for n in available(root) if "/" not in relative and n.rsplit("/", 1)[-1] == relative]
        if len(matches) > 1:
            raise InvalidRequest(f"LoRA {name!r} is ambiguous: {', '.join(matches)}; write the one you mean, e.g. <lora:{matches[0]}:1>")
        if not matches:
            raise ModelNotFound(f"no LoRA {name!r} in {root}; {_listing(root)}")
        candidate = root / f"{matches[0]}{SUFFIX}"
    # 3. A link inside the folder may not lead out of it.
    if not candidate.resolve().is_relative_to(root.resolve()):
        raise InvalidRequest(f"LoRA {name!r} links outside {LORA_ENV} ({root}); {_listing(root)}")
    return candidate


def _listing(root: Path) -> str:
    names = available(root)
    if not names:
        return f"{root} holds no {SUFFIX} files"
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return f"available: {', '.join(names[:LISTED])}{more}"


# -- hashes and infotext ----------------------------------------------------------------------


def lora_hash(path: str | Path) -> str:
    """A1111's LoRA short hash: SHA-256 of the tensors after the safetensors header, first 12 hex digits.

    (A1111's "addnet" hash, which Civitai calls AutoV3; cached like imagegen.hashes caches checkpoints.)
    """

    def tensors_only(f) -> str:
        header = int.from_bytes(f.read(8), "little")  # safetensors: u64 header length, JSON header, tensors
        f.seek(8 + header)
        return hashes.digest(f)[:SHORT]

    return hashes.cached_hash(path, "lora-hashes.json", tensors_only)


def lora_infotext(tags: Sequence[LoraTag], paths: Sequence[str | Path]) -> dict[str, str]:
    """A1111's `Lora hashes` field: `{"Lora hashes": "name1: hash1, name2: hash2"}` ({} without LoRAs).

    The value is returned unquoted: metadata.format_infotext quotes it (it holds ", " and ": "),
    which gives A1111's `Lora hashes: "name1: hash1, name2: hash2"`.
    """
    if not tags:
        return {}
    # A1111 drops ":" and "," from the name as written in the prompt, so the field parses back.
    entries = [f"{tag.name.translate(str.maketrans('', '', ':,'))}: {lora_hash(path)}" for tag, path in zip(tags, paths, strict=True)]
    return {"Lora hashes": ", ".join(entries)}


# -- applying to a pipeline -------------------------------------------------------------------


@contextmanager
def applied(pipe, tags: Sequence[LoraTag], *, folder: str | Path | None = None) -> Iterator[list[Path]]:
    """Load `tags`' LoRAs from `folder` into `pipe` (UNet and text encoders) at their weights; remove
    them on exit. Tags with no folder (None) are a ModelNotFound that says to set KEYART_LORA_DIR.

    Yields the resolved files (for `lora_infotext`). Give the base pipeline: SDXL LoRAs are trained
    for its UNet, and the refiner's differs. Because the refiner shares text_encoder_2 with the base,
    encode the refiner's prompt outside this block if it should not see the LoRAs (A1111 does not
    apply them to the refiner).
    """
    if not tags:
        yield []
        return
    paths = _resolved(tags, folder)  # a bad name fails before the model is touched
    adapters = [f"keyart_lora_{i}" for i in range(len(tags))]  # peft names may not hold "." or "/"
    pristine = not any(pipe.get_list_adapters().values())
    try:
        _load(pipe, tags, paths, adapters)
        yield paths
    finally:
        # Remove them: unwrapping every PEFT layer restores the original modules exactly.
        if pristine:
            pipe.unload_lora_weights()
        else:
            ours = [a for a in adapters if any(a in names for names in pipe.get_list_adapters().values())]
            if ours:
                pipe.delete_adapters(ours)


@contextmanager
def patched(pipe, tags: Sequence[LoraTag], *, folder: str | Path | None = None, after=None) -> Iterator[list[Path]]:
    """As `applied`, but the LoRAs are merged into the weights for the block, as A1111 applies them,
    and the original weights are copied back exactly on exit.

    The models keep their modules, so a compiled UNet does not recompile for a new LoRA (its
    weights reach the compiled code as inputs) and a render with LoRAs costs what one without does.
    `after()` runs once the weights changed, each way (the engine refreshes fused projections).
    A pipeline that already holds adapters of its own gets `applied` instead.
    """
    if not tags or any(pipe.get_list_adapters().values()):
        with applied(pipe, tags, folder=folder) as paths:
            yield paths
        return
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    paths = _resolved(tags, folder)
    adapters = [f"keyart_lora_{i}" for i in range(len(tags))]
    saved: list[tuple[Any, Any]] = []
    try:
        # 1. Load as adapters (diffusers reads every LoRA format), then keep the weights they touch.
        _load(pipe, tags, paths, adapters)
        components = [name for name in ("unet", "text_encoder", "text_encoder_2") if getattr(pipe, name, None) is not None]
        with torch.no_grad():
            for name in components:
                for module in getattr(pipe, name).modules():
                    if isinstance(module, BaseTunerLayer):
                        base = module.get_base_layer()
                        saved += [(p, p.detach().to("cpu", copy=True)) for p in (base.weight, getattr(base, "bias", None)) if p is not None]
        # 2. Merge them into those weights and drop the adapter layers: the modules are the originals again.
        pipe.fuse_lora(components=components, lora_scale=1.0, adapter_names=adapters)
        pipe.unload_lora_weights()
        if after is not None:
            after()
        yield paths
    finally:
        # 3. The original weights back, bit for bit (a failed load leaves no adapter behind either).
        if any(pipe.get_list_adapters().values()):
            pipe.unload_lora_weights()
        with torch.no_grad():
            for param, original in saved:
                param.copy_(original)
        if saved and after is not None:
            after()


def _resolved(tags: Sequence[LoraTag], folder: str | Path | None) -> list[Path]:
    """Each tag's file; a LoRA named twice is refused."""
    paths = [resolve(tag.name, folder) for tag in tags]
    repeated = sorted({tag.name for tag, path in zip(tags, paths) if paths.count(path) > 1})
    if repeated:
        raise InvalidRequest(f"LoRA {', '.join(repeated)} appears more than once in the prompt; give each LoRA one tag with its weight")
    _require_peft()
    return paths


def _load(pipe, tags: Sequence[LoraTag], paths: Sequence[Path], adapters: Sequence[str]) -> None:
    """Load each LoRA as a named adapter, then set every weight at once (text encoders at te, UNet at unet)."""
    for tag, path, adapter in zip(tags, paths, adapters):
        log.info("loading LoRA %s (%s) at te=%g unet=%g", tag.name, path, tag.te_weight, tag.unet_weight)
        try:
            with warnings.catch_warnings():
                # peft warns on every adapter after the first; several at once is the point here.
                warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
                pipe.load_lora_weights(str(path), adapter_name=adapter)
        except (ValueError, RuntimeError, KeyError, IndexError, OSError) as exc:  # what diffusers raises for a misfit file
            raise InvalidRequest(
                f"LoRA {tag.name!r} ({path}) cannot be loaded into this SDXL model; is it an SDXL LoRA? ({_first_line(exc)})"
            ) from exc
    present = pipe.get_list_adapters()
    weights = [
        {part: (tag.unet_weight if part == "unet" else tag.te_weight) for part, names in present.items() if adapter in names}
        for tag, adapter in zip(tags, adapters)
    ]
    pipe.set_adapters(list(adapters), adapter_weights=weights)


def _require_peft() -> None:
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise ModelNotFound("LoRAs need the peft package: pip install peft==0.21.2")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
