"""FreeU's four factors as a request names them: `b1=1.3,b2=1.4,s1=0.9,s2=0.2`, the word `on` for the
FreeU authors' SDXL values, or `off`.

FreeU (https://github.com/ChenyangSi/FreeU, arXiv 2309.11497) reweighs the UNet's two deepest up
blocks at sampling time, with no training: b1 and b2 amplify half of the backbone's channels (more
structure and colour), s1 and s2 damp the skip connections' low frequencies (less over-smoothing).
ComfyUI and Forge offer it built in; here it is one request field, parsed once in RenderRequest.
"""

from __future__ import annotations

import math

from .errors import InvalidRequest

FACTORS = ("b1", "b2", "s1", "s2")
SDXL = {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}  # the FreeU authors' values for SDXL
MAX_FACTOR = 3.0  # past it the image is noise; the authors' ranges stay within 0.2 to 1.6
EXAMPLE = "b1=1.3,b2=1.4,s1=0.9,s2=0.2"


def parse(text: str) -> dict[str, float] | None:
    """The factors `text` names (None for off): any of b1, b2, s1, s2 as `name=value`, the others
    the SDXL values; each above 0 and at most MAX_FACTOR."""
    if not isinstance(text, str):
        raise InvalidRequest(f"freeu must be off, on or factors such as {EXAMPLE} (got {text!r})")
    word = text.strip().lower()
    if word in ("", "off"):
        return None
    if word == "on":
        return dict(SDXL)
    factors = dict(SDXL)
    for part in word.replace(" ", "").split(","):
        name, equals, value = part.partition("=")
        if name not in FACTORS or not equals:
            raise InvalidRequest(f"freeu takes b1, b2, s1 and s2 as name=value, such as {EXAMPLE} (got {text!r})")
        try:
            number = float(value)
        except ValueError:
            raise InvalidRequest(f"freeu's {name} must be a number (got {value!r}); for example {EXAMPLE}") from None
        if not (math.isfinite(number) and 0 < number <= MAX_FACTOR):
            raise InvalidRequest(f"freeu's {name} must be above 0 and at most {MAX_FACTOR:g} (got {value}); the SDXL values are {EXAMPLE}")
        factors[name] = number
    return factors


def text(factors: dict[str, float] | None) -> str:
    """The canonical text of `factors`: every factor, in order, shortest form ("off" for None)."""
    if factors is None:
        return "off"
    return ",".join(f"{name}={factors[name]:g}" for name in FACTORS)
