"""`describe`'s offline words: light, colour and framing read from the pixels, for when no caption or
CLIP model is configured. It names what statistics can see (a dark, cool, muted, wide picture in teal
and grey), never what the picture shows; `describe` labels its prompt as offline when these are all it has."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageStat

# Named colours the dominant ones are called by (sRGB): few enough that a prompt reads naturally.
COLOURS = {
    "black": (15, 15, 15), "charcoal grey": (60, 62, 66), "grey": (128, 128, 128), "white": (240, 240, 240),
    "navy blue": (25, 35, 80), "blue": (40, 90, 200), "sky blue": (120, 180, 230), "teal": (20, 120, 120),
    "green": (50, 140, 60), "olive": (110, 110, 40), "yellow": (235, 205, 40), "gold": (200, 150, 40),
    "orange": (230, 120, 30), "red": (190, 35, 35), "crimson": (130, 20, 40), "pink": (230, 150, 180),
    "purple": (110, 50, 140), "brown": (110, 70, 40), "beige": (215, 195, 160),
}  # fmt: skip
SIZE = 96  # the statistics are read from a thumbnail this wide: the same words at any resolution


def pixel_words(image: Image.Image) -> tuple[list[str], dict[str, Any]]:
    """(prompt words, the measurements behind them) for `image`."""
    rgb = image.convert("RGB")
    rgb.thumbnail((SIZE, SIZE))
    luma = ImageStat.Stat(rgb.convert("L"))
    brightness, contrast = luma.mean[0] / 255, luma.stddev[0] / 255
    r, g, b = (c / 255 for c in ImageStat.Stat(rgb).mean)
    saturation = ImageStat.Stat(rgb.convert("HSV")).mean[1] / 255
    warmth = r - b
    words: list[str] = []
    if brightness < 0.3:
        words.append("dark, low-key lighting")
    elif brightness > 0.65:
        words.append("bright, high-key lighting")
    if warmth > 0.08:
        words.append("warm tones")
    elif warmth < -0.08:
        words.append("cool blue tones")
    if saturation < 0.18:
        words.append("muted desaturated colors")
    elif saturation > 0.5:
        words.append("vivid saturated colors")
    if contrast > 0.28:
        words.append("high contrast")
    elif contrast < 0.1:
        words.append("low contrast, hazy")
    colours = dominant(rgb)
    if colours:
        words.append(" and ".join(colours[:2]) + " palette")
    ratio = image.width / image.height
    if ratio > 1.3:
        words.append("wide shot")
    elif ratio < 0.77:
        words.append("vertical composition")
    measured = {
        "brightness": round(brightness, 3), "contrast": round(contrast, 3), "saturation": round(saturation, 3),
        "warmth": round(warmth, 3), "colours": colours, "aspect": round(ratio, 3),
    }  # fmt: skip
    return words, measured


def dominant(rgb: Image.Image, count: int = 3) -> list[str]:
    """The names of the picture's main colours, most of the picture first (each name once)."""
    quantized = rgb.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    shares = sorted(quantized.getcolors() or [], reverse=True)
    names: list[str] = []
    for _, index in shares:
        colour = tuple(palette[3 * index : 3 * index + 3])
        name = min(COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], colour)))
        if name not in names:
            names.append(name)
    return names


BINS = 4  # per channel: a 64-bin colour histogram


def colour_vector(image: Image.Image) -> list[float]:
    """A unit-length 4x4x4 RGB histogram of `image` (square roots of the shares, so large areas do not
    drown the rest): the offline embedding that "more like this" ranks by without a CLIP model."""
    rgb = image.convert("RGB")
    rgb.thumbnail((SIZE, SIZE))
    counts = [0] * BINS**3
    step = 256 // BINS
    for r, g, b in rgb.getdata():
        counts[(r // step) * BINS * BINS + (g // step) * BINS + b // step] += 1
    total = sum(counts) or 1
    roots = [(c / total) ** 0.5 for c in counts]
    norm = sum(v * v for v in roots) ** 0.5 or 1.0
    return [v / norm for v in roots]
