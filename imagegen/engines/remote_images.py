"""Image bytes to and from the remote engines: PNGs to send, answers decoded with their text chunks,
and OpenAI's edit mask (transparent where to edit) from keyart's (white where to repaint)."""

from __future__ import annotations

import io

from PIL import Image

from ..errors import RenderFailed

MAX_PIXELS = 8192 * 8192  # an answer past this is not a render: refused before it is decoded


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def decode_image(data: bytes, *, what: str) -> tuple[Image.Image, dict[str, str]]:
    """(the image in RGB, its text chunks) from an answer's bytes; RenderFailed naming `what` if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise RenderFailed(f"{what} is {im.width}x{im.height}, past {MAX_PIXELS} pixels; refused")
            text = {k: str(v) for k, v in getattr(im, "text", {}).items()}
            image = im.convert("RGB")
    except RenderFailed:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise RenderFailed(f"{what} is not a readable image ({exc})") from exc
    return image, text


def edit_mask(mask: Image.Image) -> Image.Image:
    """OpenAI's edit mask from keyart's: RGBA, fully transparent where keyart's mask is white (repaint)."""
    alpha = mask.convert("L").point(lambda v: 0 if v >= 128 else 255)
    out = Image.new("RGBA", mask.size, (0, 0, 0, 255))
    out.putalpha(alpha)
    return out
