"""Lettering with Pillow's built-in font: sizes, line height, word wrap, and text the font can draw.

Shared by the preview cards and the contact sheets; no font files are needed.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from PIL import ImageDraw, ImageFont

INK_DARK, INK_LIGHT = (17, 17, 17), (248, 247, 242)  # text on light and on dark grounds
MIN_FONT = 7  # px; below this the default font is unreadable, so a tiny card draws less instead
# Pillow's built-in font (Aileron, subset) has ASCII, curly quotes, "·" and "…" but no dashes or accents.
PLAIN = str.maketrans({"—": "-", "–": "-", "×": "x", "•": "·", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE"})


@lru_cache(maxsize=64)
def font(size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(MIN_FONT, round(size)))


def line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return round((ascent + descent) * 1.1)  # a tenth of leading keeps wrapped lines apart


def wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels; the last line ends in an ellipsis when text is left over."""
    fits = lambda s: draw.textlength(s, font=font) <= width  # noqa: E731
    lines: list[str] = []
    for word in text.split():
        if len(lines) > max_lines:  # enough to know there is more; a huge prompt costs no more
            break
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] += f" {word}"
            continue
        while len(word) > 1 and not fits(word) and len(lines) <= max_lines:  # cut a word wider than a line
            cut = max(1, len(word) * width // round(draw.textlength(word, font=font)))  # proportional guess
            while cut > 1 and not fits(word[:cut]):
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        while lines[-1] and not fits(lines[-1] + "…"):
            lines[-1] = lines[-1][:-1]
        lines[-1] = lines[-1].rstrip(" ,.;:") + "…"
    return lines


def plain(text: str) -> str:
    """Text the built-in font can draw: accents folded (é -> e), dashes and "×" spelled in ASCII."""
    folded = unicodedata.normalize("NFKD", text.translate(PLAIN))
    return "".join(c for c in folded if not unicodedata.combining(c))
