"""Uploaded images for the image routes: decoded once, with a 400 that names the field when they are not images."""

from __future__ import annotations

import io
from typing import Any

from .errors import ApiError


def open_image(data: bytes, *, param: str, convert: str | None = None) -> Any:
    """`data` as a loaded PIL image (converted to `convert`, e.g. "RGB"), or a 400 naming `param`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.convert(convert) if convert else im.copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ApiError(400, f"{param} is not a readable PNG, JPEG or WebP image ({exc})", param=param, code="invalid_image") from exc
