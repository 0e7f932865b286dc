"""What each SDXL image carries: its A1111 infotext (the refiner, LoRA and TI hashes, ControlNet units,
IP-Adapter and how the engine ran) and its keyart lineage (device, dtype, memory, speed, prompt
schedule, reference and control records)."""

from __future__ import annotations

from typing import Any

from ..metadata import infotext_for, lineage_for
from ..metadata_modes import control_fields
from ..request import RenderedImage


def rendered(engine, request, image, seed, index, use_refiner, lineage, loras=None, schedule=None, guidance=None) -> RenderedImage:
    """`image` as a RenderedImage of `engine`, with the infotext and lineage for `request`'s image `index`."""
    extra: dict[str, Any] = {}
    if engine.vae_name:  # A1111 writes a chosen VAE's hash, then its name
        extra = {"VAE hash": engine.vae_hash, "VAE": engine.vae_name} if engine.vae_hash else {"VAE": engine.vae_name}
    if use_refiner:
        # A1111 writes the refiner as "name [hash]".
        refiner = f"{engine.refiner_name} [{engine.refiner_hash}]" if engine.refiner_hash else engine.refiner_name
        extra |= {"Refiner": refiner, "Refiner switch at": request.refiner_switch_at}
    extra |= loras or {}  # A1111's "Lora hashes", after the refiner's fields
    ti_hashes, embeddings = engine.embeddings.records([*request.styled, request.styled_blend or ""])  # the embeddings the texts name
    extra |= ti_hashes  # A1111's "TI hashes"
    if guidance is not None:  # A1111's ControlNet fields, with the models' own names
        extra |= control_fields(request, guidance.model_names())
    if request.reference is not None:
        extra["IP-Adapter"] = engine.adapter.name
    extra |= engine.tuning.infotext()  # keyart's own: how the engine ran (Speed, Step cache, FP8), for a reproduction to know
    details = {
        "device": engine.device,
        "dtype": engine.dtype,
        "memory": engine.memory,
        **engine.tuning.lineage(),
        "model_hash": engine.model_hash,
        "refiner": engine.refiner_name if use_refiner else None,
    }
    if engine.vae_name:
        details["vae"] = {"name": engine.vae_name, "hash": engine.vae_hash}
    if embeddings:
        details["embeddings"] = embeddings
    if schedule is not None:  # the prompt changed during the render: which text each step ran with
        details["prompt_schedule"] = schedule
    if request.reference is not None:
        details["reference"] = {"adapter": engine.adapter.name, "scale": request.reference_scale}
    if guidance is not None:  # each unit, its model and the steps it guided; the resizes said
        details["controls"] = guidance.record()
        if guidance.notes:
            details["notes"] = list(guidance.notes)
    return RenderedImage(
        image=image,
        request=request,
        seed=seed,
        index=index,
        infotext=infotext_for(request, seed=seed, model=engine.model_name, index=index, extra=extra, model_hash=engine.model_hash),
        lineage=lineage_for(request, seed=seed, index=index, engine=engine.name, model=engine.model_name, extra=details, lineage=lineage),
    )
