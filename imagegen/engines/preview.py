"""The preview engine: keyart's offline fallback, a deterministic key-art *card* drawn with Pillow.

A card is clearly labelled as a preview (never an SDXL render); the same seed gives the same bytes.
"""

from __future__ import annotations

import colorsys
import logging
import math
import random
from typing import Any

from PIL import Image, ImageColor, ImageDraw

from .. import lettering, styles
from ..errors import InvalidRequest
from ..lettering import INK_DARK, INK_LIGHT
from ..request import RenderedImage, RenderRequest
from . import Progress, check_request

log = logging.getLogger(__name__)

BANNER = ("PREVIEW · NOT AN SDXL RENDER", "PREVIEW · NOT SDXL", "PREVIEW")  # longest that fits wins
LABEL = "offline preview card, not an SDXL render"  # the lineage's "label"
ENGINE_FIELD = "preview (offline card, not an SDXL render)"  # the infotext's "Engine:"
TITLE_WORDS = 6  # a title from the prompt: enough words to name the scene, short enough to be big
HAZARD = (255, 200, 40)  # caution-tape yellow: the banner must not blend into any style's palette
RGB = tuple[int, int, int]
UNDERLAY = 0.55  # how much of the init image shows through a card: enough to recognise, not to mistake for a render


class PreviewEngine:
    """Offline key-art cards: deterministic per seed, and labelled so no one takes them for renders."""

    name = "preview"
    model_name = "keyart-preview"

    def __init__(self, **options: Any):
        if options:
            raise InvalidRequest(f"the preview engine takes no options (got {', '.join(sorted(options))}); device, dtype and memory are sdxl's")

    def render(
        self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> list[RenderedImage]:
        """Draw one card per image of `request`: image i on seed+i, as an SDXL render would be."""
        from ..metadata import infotext_for, lineage_for

        check_request(self.name, request)  # a feature this engine cannot honour fails before any drawing
        # 1. Resolve the seed (a random one is recorded) and what every card shares.
        request = request.with_seed()
        seeds = request.seeds()
        style = styles.get(request.style) if request.style else None
        style_palette = _style_palette(style) if style and style.palette else None
        title = lettering.plain(str((lineage or {}).get("title") or "").strip() or _title_from(request.prompt))
        size = request.output_size  # the hires fix's scaled size, an outpainted canvas...
        underlay = _underlay(request, size)
        results: list[RenderedImage] = []
        for index, seed in enumerate(seeds):
            # 2. Draw the card: the style's palette, or one derived from the seed (over the init image, faded).
            image = _card(request, size, seed, title, style.name if style else "no style", style_palette or _seed_palette(seed), underlay)
            # 3. Record how to reproduce it, labelled as a preview wherever it is read.
            infotext = infotext_for(request, seed=seed, model=self.model_name, index=index, extra={"Engine": ENGINE_FIELD})
            record = lineage_for(
                request, seed=seed, index=index, engine=self.name, model=self.model_name, extra={"preview": True, "label": LABEL}, lineage=lineage
            )
            results.append(RenderedImage(image=image, request=request, seed=seed, index=index, infotext=infotext, lineage=record))
            # 4. One card is one step of progress.
            if progress is not None:
                progress(index + 1, len(seeds))
        log.info("preview: drew %d card(s) at %dx%d from seed %d", len(seeds), *size, request.seed)
        return results


def _luma(c: RGB) -> float:
    return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255  # Rec. 709 weights: perceived lightness


def _style_palette(style: styles.Style) -> list[RGB]:
    return [ImageColor.getrgb(c)[:3] for c in style.palette]  # '#rrggbb', checked when styles load


def _seed_palette(seed: int) -> list[RGB]:
    """Five colours from the seed: a dark, two mid-tones, a complementary accent and a light."""
    rng = random.Random(seed ^ 0x5EED)  # its own stream, so composition draws don't shift the palette
    hue = rng.random()
    tones = [(0.0, 0.6, 0.16), (0.05, 0.5, 0.38), (0.09, 0.45, 0.62), (0.5, 0.65, 0.85), (0.12, 0.12, 0.95)]  # (hue shift, s, v)
    return [tuple(round(255 * x) for x in colorsys.hsv_to_rgb((hue + dh) % 1, s, v)) for dh, s, v in tones]


def _fit(draw: ImageDraw.ImageDraw, candidates: list[str], font, width: int) -> list[str]:
    """The first candidate that fits on one line, else the last one cut short."""
    return next(([c] for c in candidates if draw.textlength(c, font=font) <= width), lettering.wrap(draw, candidates[-1], font, width, 1))


def _title_from(prompt: str) -> str:
    words = prompt.split()
    title = " ".join(words[:TITLE_WORDS]).rstrip(" ,.;:") + ("…" if len(words) > TITLE_WORDS else "")
    return (title[:1].upper() + title[1:]) or "Untitled"


def _underlay(request: RenderRequest, size: tuple[int, int]) -> Image.Image | None:
    """The (outpainted) init image at the card's size, for img2img, inpaint and outpaint previews."""
    if request.init_image is None:
        return None
    from ..canvas import source

    return source(request)[0].resize(size, Image.Resampling.LANCZOS)


def _card(
    request: RenderRequest, size: tuple[int, int], seed: int, title: str, style_name: str, palette: list[RGB], underlay: Image.Image | None = None
) -> Image.Image:
    """The whole card: seeded art (over the init image, if any), a text panel at the bottom and the preview banner on top."""
    w, h = size
    unit = min(w, h)
    colours = sorted(palette, key=_luma)
    colours += [colours[-1]] * (3 - len(colours))  # a one- or two-colour palette still fills every role
    image = _art(w, h, unit, random.Random(seed), colours)
    if underlay is not None:  # the init image shows through: a preview of *this* picture's repaint
        image = Image.blend(image.convert("RGB"), underlay, UNDERLAY).convert("RGBA")
    banner = max(11, round(unit * 0.06))  # 11 px holds a 7 px caption at 64x64
    margin = max(3, round(unit * 0.045))
    gap = max(2, round(unit * 0.022))
    blocks = _blocks(ImageDraw.Draw(image), request, size, seed, title, style_name, palette, colours, unit, w - 2 * margin)
    # Drop blocks from the end (footer, prompt, ...) until the panel leaves 30% of the card to the art.
    budget = h - banner - round(h * 0.3) - 2 * margin
    while blocks and sum(b[0] for b in blocks) + gap * (len(blocks) - 1) > budget:
        blocks.pop()
    if blocks:
        top = h - sum(b[0] for b in blocks) - gap * (len(blocks) - 1) - 2 * margin
        _panel(image, top, round(unit * 0.2), colours[0])
        draw, y = ImageDraw.Draw(image), top + margin
        for height, paint in blocks:
            paint(draw, margin, y)
            y += height + gap
    _banner(image, banner)
    return image.convert("RGB")


def _blocks(draw, request, card_size, seed, title, style_name, palette, colours, unit, width) -> list[tuple[int, Any]]:
    """The panel's blocks, top to bottom, as (height, paint(draw, x, y)): title, style, swatches, prompt, footer."""
    dark, light = colours[0], colours[-1]
    ink = INK_LIGHT if _luma(dark) < 0.5 else INK_DARK
    muted = tuple(round(0.65 * a + 0.35 * b) for a, b in zip(ink, dark))
    accent = light if abs(_luma(light) - _luma(dark)) > 0.4 else ink  # the palette's light, where it reads

    def text(lines: list[str], font, fill, bold: bool = False) -> tuple[int, Any]:
        step = lettering.line_height(font)
        stroke = max(0, round(font.size / 40)) if bold else 0  # Aileron has no bold face: a hairline stroke stands in

        def paint(draw, x, y):
            for i, line in enumerate(lines):
                draw.text((x, y + i * step), line, font=font, fill=fill, stroke_width=stroke, stroke_fill=fill)

        return len(lines) * step, paint

    def swatches(draw, x, y):
        for i, colour in enumerate(palette[: max(1, width // round(size * 1.3))]):  # as many as the row holds
            left = x + i * round(size * 1.3)
            # A hairline just outside the swatch shows a colour close to the panel's; the swatch stays exact.
            draw.rectangle((left - 1, y - 1, left + size, y + size), outline=muted)
            draw.rectangle((left, y, left + size - 1, y + size - 1), fill=colour)

    # The largest title size at which the title takes at most two lines.
    sizes = [lettering.font(unit * f) for f in (0.075, 0.06, 0.048)]
    title_font = next((f for f in sizes if len(lettering.wrap(draw, title, f, width, 3)) <= 2), sizes[-1])
    small, tiny = lettering.font(unit * 0.026), lettering.font(unit * 0.019)
    size = max(4, round(unit * 0.05))
    w, h = card_size
    return [
        text(lettering.wrap(draw, title, title_font, width, 2), title_font, ink, bold=True),
        text(_fit(draw, [f"STYLE  ·  {lettering.plain(style_name).upper()}", lettering.plain(style_name).upper()], small, width), small, accent),
        (size, swatches),
        text(lettering.wrap(draw, lettering.plain(request.prompt), small, width, 5), small, muted),
        text(_fit(draw, [f"keyart-preview  ·  seed {seed}  ·  {w}x{h}", f"seed {seed}"], tiny, width), tiny, muted),
    ]


def _art(w: int, h: int, unit: int, rng: random.Random, colours: list[RGB]) -> Image.Image:
    """A poster composition that moves with the seed: gradient sky, rings, a sun, rolling hills."""
    # Gradient: Pillow's 256x256 ramp, turned by a seeded angle and stretched over the card.
    top, bottom = rng.sample(colours[:-1], 2)  # never the lightest: it is kept for rings and text
    ramp = Image.linear_gradient("L").rotate(rng.uniform(-35, 35), resample=Image.Resampling.BICUBIC, expand=True)
    inset = ramp.width // 4  # rotation leaves black corners; the middle half is all ramp
    mask = ramp.crop((inset, inset, ramp.width - inset, ramp.height - inset)).resize((w, h), Image.Resampling.BICUBIC)
    image = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), mask).convert("RGBA")
    layer = Image.new("RGBA", (w, h))
    draw = ImageDraw.Draw(layer)  # a layer of its own: Pillow blends translucent outlines only when compositing
    # Rings: concentric outlines around a seeded centre, translucent so the sky shows through.
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.2, 0.5) * h
    for k in range(rng.randint(2, 4)):
        r = unit * (0.22 + 0.09 * k)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(*colours[-1], 90), width=max(1, round(unit * 0.008)))
    # Sun: one solid disc.
    sx, sy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.22, 0.45) * h, unit * rng.uniform(0.12, 0.2)
    sky = (_luma(top) + _luma(bottom)) / 2  # the sun is one of the two accents that stand out most from the sky
    sun = rng.choice(sorted(colours[1:], key=lambda c: abs(_luma(c) - sky))[-2:])
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(*sun, 255))
    image.alpha_composite(layer)
    # Hills: two or three sine-sum ridges, back to front, each in a darker palette colour.
    draw = ImageDraw.Draw(image)
    for k in range(rng.randint(2, 3)):
        base = h * (0.5 + 0.12 * k)
        waves = [(rng.uniform(0.02, 0.07) * unit, rng.uniform(1, 4), rng.uniform(0, 2 * math.pi)) for _ in range(2)]
        ridge = [(x * w / 48, base + sum(a * math.sin(f * math.tau * x / 48 + p) for a, f, p in waves)) for x in range(49)]
        draw.polygon([*ridge, (w, h), (0, h)], fill=colours[max(0, len(colours) - 2 - k)])
    return image


def _panel(image: Image.Image, top: int, fade: int, colour: RGB) -> None:
    """Darken the card from `top` down in `colour`, fading in over `fade` pixels above it."""
    w, h = image.size
    top, fade = max(0, top), min(fade, max(0, top))
    shade = Image.new("RGBA", (w, h), (*colour, 0))
    alpha = Image.new("L", (w, h), 0)
    if fade:
        alpha.paste(Image.linear_gradient("L").resize((w, fade)).point(lambda v: v * 235 // 255), (0, top - fade))
    alpha.paste(235, (0, top, w, h))  # 235/255: the art still shows through, the text stays crisp
    shade.putalpha(alpha)
    image.alpha_composite(shade)


def _banner(image: Image.Image, height: int) -> None:
    """The label across the top: caution-tape ends around the longest caption that fits."""
    w = image.width
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, w, height - 1), fill=HAZARD)
    for x in range(-height, w + height, height):  # stripes one banner-height apart, at 45 degrees
        draw.polygon([(x, height), (x + height // 2, height), (x + height // 2 + height, 0), (x + height, 0)], fill=INK_DARK)
    font = lettering.font(height * 0.5)
    pad = max(2, height // 2)
    caption = next((c for c in BANNER if draw.textlength(c, font=font) + 2 * pad <= w - 2 * height), BANNER[-1])
    left = max(0, (w - round(draw.textlength(caption, font=font)) - 2 * pad) // 2)
    draw.rectangle((left, 0, w - left - 1, height - 1), fill=INK_DARK)
    draw.text((w / 2, height / 2), caption, font=font, fill=HAZARD, anchor="mm")
