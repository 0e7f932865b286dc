"""What travels between the driver and a render replica: requests with the bytes of the files they
name (a replica on another node cannot read the driver's disk), and images back as PNG bytes with
their seed, infotext and lineage. Plain dicts of bytes and JSON values, so nothing of a process
(a path, an open image) crosses the wire.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..request import FILE_FIELDS, RenderedImage, RenderRequest  # FILE_FIELDS: files on the submitter's disk

PNG_LEVEL = 1  # zlib level: a 1024x1024 image compresses about as small at 1 as at 6, in a fifth of the time


def pack_request(request: RenderRequest) -> dict[str, Any]:
    """The request's fields, and the contents of each file it names."""
    files: dict[str, Any] = {name: Path(path).read_bytes() for name in FILE_FIELDS if (path := getattr(request, name))}
    if request.controls:
        files["controls"] = [Path(unit.image).read_bytes() for unit in request.controls]
    return {"request": request.to_dict(), "files": files}


def unpack_request(packed: dict[str, Any], folder: Path) -> RenderRequest:
    """The request again, its files written into `folder` (the replica's scratch space)."""
    data = dict(packed["request"])
    files = dict(packed["files"])
    if "controls" in files:
        data["controls"] = [dict(unit) for unit in data["controls"]]
        for i, (unit, content) in enumerate(zip(data["controls"], files.pop("controls"))):
            path = folder / f"control-{i}{Path(unit['image']).suffix or '.png'}"
            path.write_bytes(content)
            unit["image"] = str(path)
    for name, content in files.items():
        path = folder / f"{name}{Path(data[name]).suffix or '.png'}"
        path.write_bytes(content)
        data[name] = str(path)
    return RenderRequest.from_dict(data)


def pack_images(images: list[RenderedImage]) -> list[dict[str, Any]]:
    """Each image as PNG bytes (pixels only: the metadata travels beside them) and its record."""
    packed = []
    for image in images:
        buffer = io.BytesIO()
        image.image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
        packed.append({
            "png": buffer.getvalue(), "request": image.request.to_dict(), "seed": image.seed, "index": image.index,
            "infotext": image.infotext, "lineage": image.lineage,
        })  # fmt: skip
    return packed


def unpack_images(packed: list[dict[str, Any]], sent: RenderRequest) -> list[RenderedImage]:
    """The images as the driver's RenderedImages; the files the request names are the driver's own again."""
    from PIL import Image

    images = []
    for item in packed:
        ours: dict[str, Any] = {name: getattr(sent, name) for name in FILE_FIELDS if name in item["request"]}
        data = {**item["request"], **ours}
        lineage = dict(item["lineage"])
        if sent.controls:  # the units as sent: the driver's own control images
            data["controls"] = [unit.to_dict() for unit in sent.controls]
            lineage = _our_controls(lineage, sent)
        for name, path in ours.items():
            if isinstance(lineage.get("request"), dict):
                lineage["request"] = {**lineage["request"], name: path}
            if isinstance((lineage.get("inputs") or {}).get(name), dict):  # the file's hash and size hold; its path is ours
                lineage["inputs"] = {**lineage["inputs"], name: {**lineage["inputs"][name], "path": path}}
        with Image.open(io.BytesIO(item["png"])) as png:
            png.load()
            picture = png.copy()
        images.append(RenderedImage(picture, RenderRequest.from_dict(data), item["seed"], item["index"], item["infotext"], lineage))
    return images


def _our_controls(lineage: dict[str, Any], sent: RenderRequest) -> dict[str, Any]:
    """The lineage with the driver's control image paths where the replica's scratch copies stood."""
    paths = [unit.image for unit in sent.controls]
    if isinstance(lineage.get("request"), dict) and isinstance(lineage["request"].get("controls"), (list, tuple)):
        lineage["request"] = {**lineage["request"], "controls": [{**u, "image": p} for u, p in zip(lineage["request"]["controls"], paths)]}
    if isinstance(lineage.get("controls"), (list, tuple)):
        lineage["controls"] = [{**u, "image": p} for u, p in zip(lineage["controls"], paths)]
    inputs = lineage.get("inputs") or {}
    if isinstance(inputs.get("controls"), (list, tuple)):
        lineage["inputs"] = {**inputs, "controls": [{**r, "path": p} for r, p in zip(inputs["controls"], paths)]}
    return lineage
