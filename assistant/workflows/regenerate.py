"""Regenerating one piece of catalog art: render it again (new seed, edited prompt), list its other
renders, and adopt one as the catalog's image. Rows are those of `export.catalog_rows`.

Imports of the store, the plan and the PNG metadata stay inside the functions, so the dashboard's
first paint does not pay for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from imagegen.errors import KeyartError


def entry_of(row: dict[str, Any]) -> tuple[str, int, int, str]:
    """The row's catalog entry: (show, season, episode, style); season art under episode `SEASON_ART`."""
    from ..store import SEASON_ART

    return (row["show"], row["season"], row["episode"] if row["episode"] is not None else SEASON_ART, row["style"])


def image_file(row: dict[str, Any]) -> Path | None:
    """The row's image, if it is on disk."""
    path = Path(row["image"]) if row.get("image") else None
    return path if path is not None and path.is_file() else None


def regenerate(store, slot, row: dict[str, Any], *, prompt: str, negative_prompt: str, seed: int, quality: str, progress=None) -> Path:
    """Render an entry again with `seed` (-1: a new random one) and perhaps an edited prompt.

    The PNG is written beside the catalog's images, under its own key, with the lineage saying
    what it was regenerated from. The catalog keeps its image: this is an alternative until `adopt`.
    """
    from imagegen.png_files import write_png

    from ..store import IMAGES
    from .plan import RenderSettings, image_key, image_path
    from .stages import lineage as catalog_lineage

    # 1. A concrete seed before the key: the key names the file, so two random renders never collide.
    request = RenderSettings(quality=quality).request(row["kind"], prompt=prompt, negative_prompt=negative_prompt, style=row["style"], seed=max(seed, -1)).with_seed()
    key = image_key(request, slot.identity(request.refiner))
    # 2. The lineage the catalog writes, plus where this render came from.
    result = store.prompt(row["prompt_key"]) if row.get("prompt_key") else None
    lineage = catalog_lineage(
        show=row["show"], season=row["season"], episode=row["episode"], title=row["title"], kind=row["kind"], style=row["style"],
        trace=(result or {}).get("trace", {}), prompt_key=row.get("prompt_key"), image_key=key,
    )  # fmt: skip
    lineage["regenerated"] = {"from_image": row.get("image_key"), "from_seed": row.get("seed"), "edited_prompt": (prompt, negative_prompt) != (row.get("prompt"), row.get("negative_prompt")), "by": "dashboard"}
    # 3. Render, and write the PNG atomically next to the catalog's.
    [image] = slot.render(request, lineage=lineage, progress=progress)
    return write_png(image, store.home / IMAGES / image_path(*entry_of(row), key))


def adopt(store, row: dict[str, Any], path: Path) -> None:
    """Make the PNG at `path` (keyart-rendered, with its lineage) the entry's image in the catalog."""
    from imagegen.png_files import read_png

    from ..errors import CatalogError

    meta = read_png(path).lineage or {}
    key = (meta.get("lineage") or {}).get("image_key")
    if not key or "request" not in meta:
        raise CatalogError(f"{path} carries no keyart lineage with an image key; only images keyart rendered can join the catalog")
    prompt_key = row.get("prompt_key") or meta["lineage"].get("prompt_key")
    # seconds=0: the render was timed when it ran, not recorded in the PNG; nothing is rendered now.
    store.save_image(key, entry=entry_of(row), prompt_key=prompt_key, path=Path(path), seed=meta["seed"], engine=meta["engine"], model=meta["model"], request=meta["request"], seconds=0.0)


def alternatives(store, row: dict[str, Any]) -> list[Path]:
    """Other renders of the entry beside its image (regenerated, or earlier catalog versions), newest first."""
    from ..store import IMAGES
    from .plan import image_path

    sample = Path(image_path(*entry_of(row), "0" * 12))
    folder = store.home / IMAGES / sample.parent
    pattern = re.compile(re.escape(sample.name[: -len("000000000000.png")]) + r"[0-9a-f]{12}\.png")
    current = image_file(row)
    found = [p for p in folder.glob("*.png") if pattern.fullmatch(p.name) and p != current] if folder.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def rendered_request(store, row: dict[str, Any]) -> dict[str, Any]:
    """The request the entry's image was rendered from ({} when it has none)."""
    image = store.image(row["image_key"]) if row.get("image_key") else None
    return json.loads(image["request"]) if image else {}


def lineage_of(path: Path) -> dict[str, Any]:
    """The keyart lineage JSON of the PNG at `path` ({} when it has none or cannot be read)."""
    from imagegen.png_files import read_png

    try:
        return read_png(path).lineage or {}
    except KeyartError:
        return {}
