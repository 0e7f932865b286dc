"""The pixel side of img2img, inpaint and outpaint: init images, masks, outpaint canvases, paste-back.

Pillow and numpy only (no torch), so a request validates its files and the preview engine draws
without a model. The SDXL engine renders `Prepared.image` and hands the result to `Prepared.finish`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter, UnidentifiedImageError

from .errors import InvalidRequest

if TYPE_CHECKING:
    from .request import RenderRequest

DIRECTIONS = ("left", "right", "up", "down")  # A1111's outpainting directions
OUTPAINT_OVERLAP = 8  # px the outpaint mask reaches into the original: one latent cell, so the seam is redrawn
MAX_SIDE = 2048  # the request's largest width or height
# A whole-picture render may stretch its source by one 8-pixel rounding step, no more.
ASPECT_SLACK = 0.01
Box = tuple[int, int, int, int]  # left, top, right, bottom


# -- files --------------------------------------------------------------------------------------


def open_image(path: str, what: str = "init image") -> Image.Image:
    """The image at `path`, fully read; an `InvalidRequest` that names the file otherwise."""
    file = Path(path)
    if not file.is_file():
        raise InvalidRequest(f"{what} {path!r} does not exist" + ("" if not file.exists() else " as a file"))
    try:
        with Image.open(file) as im:
            _check_pixels(im, what, path)
            im.load()
            return im.copy()
    except Image.DecompressionBombError:
        raise _too_large(what, path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"{what} {path!r} is not an image Pillow can read ({exc}); use a PNG or JPEG") from exc


MAX_INPUT_PIXELS = 8192 * 8192  # an input past this is not a picture to start from (or a decompression bomb)


def _check_pixels(im: Image.Image, what: str, path: str) -> None:
    """Refuse, from the header alone, an image too large to decode: before any pixel is read."""
    if im.width * im.height > MAX_INPUT_PIXELS:
        raise InvalidRequest(f"{what} {path!r} is {im.width}x{im.height}, past the {MAX_INPUT_PIXELS:,}-pixel limit for inputs; resize it first")


def _too_large(what: str, path: str) -> InvalidRequest:
    # Pillow refuses past twice its own limit before the size can be read back: a decompression bomb.
    return InvalidRequest(f"{what} {path!r} claims more pixels than Pillow will decode, past the {MAX_INPUT_PIXELS:,}-pixel limit for inputs; resize it first")


def image_size(path: str, what: str = "init image") -> tuple[int, int]:
    """(width, height) of the image at `path`, reading only its header (once per file version)."""
    return probe(path, what).size


@dataclass(frozen=True)
class ImageFacts:
    """What validation needs to know of an input file, without keeping it open."""

    size: tuple[int, int]
    has_white: bool | None  # anything but black (a mask repaints something); None: only the header was read


def probe(path: str, what: str = "init image", *, pixels: bool = False) -> ImageFacts:
    """The image's size (and, with `pixels`, whether it has any non-black pixel), cached per
    (path, size, modification time) so a request rebuilt by replace() or from_dict() does not reopen it."""
    file = Path(path)
    if not file.is_file():
        raise InvalidRequest(f"{what} {path!r} does not exist" + ("" if not file.exists() else " as a file"))
    stat = file.stat()
    try:
        return _probe(os.path.abspath(file), stat.st_size, stat.st_mtime_ns, pixels, what, str(path))
    except Image.DecompressionBombError:
        raise _too_large(what, path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"{what} {path!r} is not an image Pillow can read ({exc}); use a PNG or JPEG") from exc


@lru_cache(maxsize=128)
def _probe(path: str, size: int, mtime_ns: int, pixels: bool, what: str, shown: str) -> ImageFacts:
    # The whole file is decoded (once per version): a truncated image fails now, not after a model loads.
    with Image.open(path) as im:
        _check_pixels(im, what, shown)
        im.load()
        if not pixels:
            return ImageFacts(im.size, None)
        return ImageFacts(im.size, im.convert("L").getbbox() is not None)


def as_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency over white (how a viewer shows it), never over black."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def check_mask(path: str, init_size: tuple[int, int]) -> None:
    """A mask is the init image's size and repaints something (white = repaint, black = keep)."""
    mask = probe(path, "mask", pixels=True)
    if mask.size != init_size:
        raise InvalidRequest(
            f"the mask is {mask.size[0]}x{mask.size[1]} but the init image is {init_size[0]}x{init_size[1]}; "
            "the mask must be the init image's size (white = repaint, black = keep)"
        )
    if not mask.has_white:
        raise InvalidRequest(f"the mask {path!r} is all black: nothing to repaint (white = repaint, black = keep)")


# -- sizes --------------------------------------------------------------------------------------


def directions(outpaint: str | None) -> tuple[str, ...]:
    """The outpaint directions in A1111's order: "down, left" -> ("left", "down")."""
    if not outpaint:
        return ()
    given = {d.strip().lower() for d in outpaint.replace(" ", ",").split(",") if d.strip()}
    unknown = sorted(given - set(DIRECTIONS))
    if unknown or not given:
        raise InvalidRequest(
            f"outpaint directions must be among {', '.join(DIRECTIONS)}, comma-separated (got {outpaint!r})"
        )
    return tuple(d for d in DIRECTIONS if d in given)


def padding(outpaint: str | None, pixels: int) -> Box:
    """Pixels added on each side (left, top, right, bottom) by outpainting."""
    sides = directions(outpaint)
    return tuple(pixels if d in sides else 0 for d in ("left", "up", "right", "down"))  # type: ignore[return-value]


def canvas_size(init_size: tuple[int, int], outpaint: str | None, pixels: int) -> tuple[int, int]:
    """The init image's size grown by the outpaint padding."""
    left, top, right, bottom = padding(outpaint, pixels)
    return init_size[0] + left + right, init_size[1] + top + bottom


def round8(value: float) -> int:
    """The nearest multiple of 8 (halves up), at least 64: a size SDXL's latents can hold."""
    return max(64, int(value / 8 + 0.5) * 8)


def default_size(init_image: str, outpaint: str | None = None, pixels: int = 128) -> tuple[int, int]:
    """The render size for an init image when none is given: its own (grown) size in multiples of 8,
    scaled down to fit 2048 pixels a side if it is larger."""
    w, h = canvas_size(image_size(init_image), outpaint, pixels)
    shrink = min(1.0, MAX_SIDE / max(w, h))
    return min(MAX_SIDE, round8(w * shrink)), min(MAX_SIDE, round8(h * shrink))


def check_aspect(source: tuple[int, int], width: int, height: int, *, what: str, masked_hint: bool) -> None:
    """A whole-picture render resizes its source to width x height: refuse to stretch it."""
    sx, sy = width / source[0], height / source[1]
    stretch = max(sx, sy) / min(sx, sy)
    if stretch > 1 + 8 / min(width, height) + ASPECT_SLACK:
        hint = ", or inpaint only the masked area (inpaint_area='masked')" if masked_hint else ""
        raise InvalidRequest(
            f"the {what} is {source[0]}x{source[1]} but the render size is {width}x{height}: the picture would be "
            f"stretched. Render at its aspect (without --width/--height the CLI uses its own size){hint}"
        )


def uses_crop(request: RenderRequest) -> bool:
    """Inpaint only the masked area: A1111's "Only masked", when there is a mask to crop around."""
    return request.inpaint_area == "masked" and bool(request.mask or request.outpaint)


def output_size(request: RenderRequest) -> tuple[int, int]:
    """The size of the finished image: "Only masked" keeps the (grown) init image's size, the
    hires fix scales the render, everything else is width x height."""
    if request.init_image and uses_crop(request):
        return canvas_size(image_size(request.init_image), request.outpaint, request.outpaint_pixels)
    if request.hr_scale > 1:
        return hires_size(request.width, request.height, request.hr_scale)
    return request.width, request.height


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The hires fix's second-pass size, in whole latent cells (A1111 floors it the same way)."""
    return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8


# -- preparing a render -------------------------------------------------------------------------


@dataclass
class Prepared:
    """What the model starts from, and how its output becomes the finished image."""

    image: Image.Image  # RGB: at width x height, or the init image at its own size for a latent enlargement
    mask: Image.Image | None  # L at width x height (blurred), white = repaint; None for img2img
    finish: Callable[[Image.Image], Image.Image]  # render (width x height) -> finished image
    enlarge_latents: bool = False  # encode `image` at its own size and upscale the latents to width x height


def source(request: RenderRequest) -> tuple[Image.Image, Image.Image | None]:
    """(the init image in RGB, the mask in L or None), grown into a canvas with a mask over the new
    border when outpainting: what a render starts from, at its own size."""
    image = as_rgb(open_image(request.init_image))
    mask = open_image(request.mask, "mask").convert("L") if request.mask else None
    if request.outpaint:
        image, mask = outpaint_canvas(image, padding(request.outpaint, request.outpaint_pixels))
    return image, mask


def prepare(request: RenderRequest) -> Prepared:
    """Load the init image (and mask), outpaint-pad it, and plan the crop and the paste-back."""
    size = request.width, request.height
    # 1. The source: the init image, grown into a canvas with a mask over the new border when outpainting.
    start, mask = source(request)
    # 2. Plain img2img: the source at width x height, by Lanczos or, when enlarging, in latent space.
    if mask is None:
        own = round8(start.width), round8(start.height)  # the VAE encodes whole latent cells
        if request.init_upscaler == "latent" and own[0] < request.width and own[1] < request.height:
            return Prepared(_resized(start, own), None, lambda out: out, enlarge_latents=True)
        return Prepared(_resized(start, size), None, lambda out: out)
    # 3. The blurred mask is what the pipeline repaints and what pastes the result back (A1111's overlay).
    overlay = mask.filter(ImageFilter.GaussianBlur(request.mask_blur)) if request.mask_blur else mask
    if not uses_crop(request):
        image, overlay = _resized(start, size), _resized(overlay, size)
        return Prepared(image, overlay, lambda out: Image.composite(out, image, overlay))
    # 4. "Only masked": crop around the mask, render the crop at width x height, scale back and paste.
    box = crop_region(overlay, request.masked_padding, size)
    crop_size = (box[2] - box[0], box[3] - box[1])

    def paste(out: Image.Image) -> Image.Image:
        piece = out.resize(crop_size, Image.Resampling.LANCZOS)
        result = start.copy()
        result.paste(Image.composite(piece, start.crop(box), overlay.crop(box)), box[:2])
        return result

    return Prepared(_resized(start.crop(box), size), _resized(overlay.crop(box), size), paste)


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def outpaint_canvas(image: Image.Image, pad: Box) -> tuple[Image.Image, Image.Image]:
    """The image grown by `pad` (left, top, right, bottom): edges stretched outwards and blurred, as
    A1111's "fill"; and the mask over the new border, reaching OUTPAINT_OVERLAP pixels inwards."""
    left, top, right, bottom = pad
    pixels = np.asarray(image)
    grown = Image.fromarray(np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="edge"))
    border = Image.new("L", grown.size, 255)
    border.paste(0, (left, top, left + image.width, top + image.height))
    # Blur the stretched edges into soft colour fields: streaks would steer the repaint.
    fill = grown.filter(ImageFilter.GaussianBlur(max(pad) / 4))
    canvas = Image.composite(fill, grown, border)
    inner = (
        left + (OUTPAINT_OVERLAP if left else 0),
        top + (OUTPAINT_OVERLAP if top else 0),
        left + image.width - (OUTPAINT_OVERLAP if right else 0),
        top + image.height - (OUTPAINT_OVERLAP if bottom else 0),
    )
    mask = Image.new("L", grown.size, 255)
    mask.paste(0, inner)
    return canvas, mask


def crop_region(mask: Image.Image, pad: int, size: tuple[int, int]) -> Box:
    """A1111's "Only masked" crop: the mask's bounding box plus `pad` pixels, widened to the render's
    aspect (width x height) where the image allows, and kept inside the image."""
    w, h = mask.size
    x1, y1, x2, y2 = mask.getbbox() or (0, 0, w, h)
    x1, y1, x2, y2 = max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, w), min(y2 + pad, h)
    aspect = size[0] / size[1]
    if (x2 - x1) / (y2 - y1) > aspect:
        y1, y2 = _widen(y1, y2, round((x2 - x1) / aspect), h)
    else:
        x1, x2 = _widen(x1, x2, round((y2 - y1) * aspect), w)
    return x1, y1, x2, y2


def _widen(lo: int, hi: int, length: int, limit: int) -> tuple[int, int]:
    """[lo, hi) grown evenly to `length`, shifted back inside [0, limit) and cut to it."""
    extra = length - (hi - lo)
    lo, hi = lo - extra // 2, hi + extra - extra // 2
    if hi > limit:
        lo, hi = lo - (hi - limit), limit
    if lo < 0:
        lo, hi = 0, min(hi - lo, limit)
    return lo, hi
