"""Catalog images as guides: "the same harbour as in S01E03" renders with that episode's still as its reference.

A guide is a catalog image (an episode's still, a season's poster) that dataprep has rendered. It
guides a render as an IP-Adapter reference when the engine has one configured (KEYART_IP_ADAPTER),
else as the img2img start the render redraws (centre-cropped to the render's aspect, as A1111's
"Crop and resize" does, into the home's guides/ folder); either way the request names the file and
the lineage records which image, its hash and how it was used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from imagegen import RenderRequest
from imagegen.errors import InvalidRequest
from imagegen.hashes import file_sha256

from ..catalog import Catalog
from ..references import CatalogIndex, Reference
from ..store import DB_NAME, SEASON_ART, Store
from .prompts import style_specs
from .service import RenderService

REFERENCE_SCALE = 0.6  # the IP-Adapter's hold: the catalog image's look, and room for the prompt
START_STRENGTH = 0.75  # an img2img start redrawn this much: its layout and colours stay, the prompt's scene comes through
GUIDES = "guides"  # under the home: catalog images cropped to a render's aspect, as img2img starts


class Guide(BaseModel):
    """A catalog image a render keeps, and how: as a "reference" (IP-Adapter) or an "init" image (img2img)."""

    code: str  # "S01E03" | "season 1"
    label: str  # 'S01E03 "The Keeper's Lamp"', 'season 1 "Low Water"'
    subject: str = ""  # what it is kept for, in the user's words ("harbour", "Mara")
    style: str  # the catalog style of the image used
    image: str  # the file, absolute
    sha256: str
    mode: Literal["reference", "init"]
    weight: float  # the reference scale, or the img2img strength
    crops: str = ""  # where a start cropped to another aspect is written (the home's guides/ folder)

    def apply(self, request: RenderRequest) -> RenderRequest:
        if self.mode == "reference":
            return request.replace(reference=self.image, reference_scale=self.weight)
        return request.replace(init_image=self.start(request.width, request.height), strength=self.weight)

    def start(self, width: int, height: int) -> str:
        """The image as an img2img start of width x height: the file itself at its own aspect, else a
        centre crop to the render's aspect, written once per size (atomically: a crash leaves no half file)."""
        from PIL import Image, ImageOps

        if not Path(self.image).is_file():
            raise InvalidRequest(f"the catalog image that guides this one ({self.image}) is no longer there; drop the reference, or draw it again")
        with Image.open(self.image) as img:
            if abs(img.width / img.height - width / height) < 0.01:
                return self.image
            out = Path(self.crops) / f"{self.sha256[:16]}-{width}x{height}.png"
            if not out.is_file():
                fitted = ImageOps.fit(img.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
                fitted.save(tmp, format="PNG")
                os.replace(tmp, out)
        return str(out)

    @property
    def art(self) -> str:
        return "poster" if self.code.startswith("season") else "still"

    @property
    def source(self) -> str:
        """'S01E03 "The Keeper's Lamp" (its cinematic still)'."""
        return f"{self.label} (its {self.style} {self.art})"

    def said(self) -> str:
        """"keeping the harbour from S01E03 "The Keeper's Lamp" (its cinematic still) as an IP-Adapter reference at scale 0.6"."""
        what = f"the {self.subject} from" if self.subject[:1].islower() else f"{self.subject} as in" if self.subject else "after"
        how = (
            f"as an IP-Adapter reference at scale {self.weight:g}" if self.mode == "reference"
            else f"as the img2img start at strength {self.weight:g} (no IP-Adapter is configured: KEYART_IP_ADAPTER)"
        )  # fmt: skip
        return f"{'keeping ' if self.subject else ''}{what} {self.source} {how}"

    def lineage(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def mode_for(slot: RenderService) -> tuple[str, float]:
    """("reference", scale) when the engine takes an IP-Adapter reference, else ("init", strength)."""
    if slot.takes("reference"):
        return "reference", REFERENCE_SCALE
    if slot.takes("img2img"):
        return "init", START_STRENGTH
    raise InvalidRequest(f"the {slot.name} engine takes neither a reference image nor an init image, so a catalog image cannot guide its render")


def named_image(index: CatalogIndex, words: str, *, season: int | None = None) -> tuple[Reference, str]:
    """(the episode or season, what of it to keep) that `words` name as a guide: "the same harbour as in
    S01E03", "keep Mara as in the season 1 poster", or just "S01E03" or "season 1"."""
    guides = index.find_guides(words, season=season)
    if guides:
        return guides[0].reference, guides[0].subject
    ref = index.find(words, season=season)
    if ref is None or ref.kind not in ("episode", "season"):
        raise InvalidRequest(
            f"{words.strip()!r} names no catalog image; a guide is an episode's still (S01E03) or a season's poster "
            '(season 1), as in "the same harbour as in S01E03" or "keep Mara as in the season 1 poster"'
        )
    return ref, ""


def catalog_image(home: Path, catalog: Catalog, ref: Reference, *, style: str | None = None) -> tuple[Path, str]:
    """(the file, its style) of `ref`'s rendered catalog art: in `style` when the catalog has it so, else in its first style that is rendered."""
    number = ref.episode if ref.kind == "episode" else SEASON_ART
    if (home / DB_NAME).is_file():
        store = Store(home, create=False)
        try:
            for name in dict.fromkeys([*([style] if style else []), *(s.name for s in style_specs())]):
                art = store.art(catalog.show, ref.season, number, name)
                if art is not None and art.image is not None and (home / art.image["path"]).is_file():
                    return (home / art.image["path"]).resolve(), name
        finally:
            store.close()
    art_word = "poster" if ref.kind == "season" else "still"
    episodes = f" --episodes {ref.episode}" if ref.kind == "episode" else ""
    raise InvalidRequest(
        f"{ref.label} has no rendered {art_word} in the catalog at {home} yet, so it cannot guide this image; "
        f"render it first (python dataprep.py run --season {ref.season}{episodes})"
    )


def catalog_guide(home: Path, catalog: Catalog, ref: Reference, slot: RenderService, *, style: str | None = None, subject: str = "") -> Guide:
    """`ref`'s catalog image (`catalog_image`) as a guide for renders on `slot`."""
    path, found = catalog_image(home, catalog, ref, style=style)
    mode, weight = mode_for(slot)
    code = f"S{ref.season:02d}E{ref.episode:02d}" if ref.kind == "episode" else f"season {ref.season}"
    return Guide(
        code=code, label=ref.label, subject=subject, style=found, image=str(path), sha256=file_sha256(path), mode=mode, weight=weight,
        crops=str(home.resolve() / GUIDES),
    )  # fmt: skip
