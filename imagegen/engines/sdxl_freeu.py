"""FreeU for one render: diffusers' `enable_freeu` on each UNet the render runs (base, refiner), and
`disable_freeu` after it, even after an error, so the next render is the model's own again."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import freeu


@contextmanager
def applied(unets: Iterable[Any], request_freeu: str) -> Iterator[None]:
    """While inside, `unets` reweigh their two deepest up blocks by the request's factors ("off": nothing)."""
    factors = freeu.parse(request_freeu)
    if factors is None:
        yield
        return
    unets = list(dict.fromkeys(unets))  # one UNet object once
    for unet in unets:
        unet.enable_freeu(**factors)
    try:
        yield
    finally:
        for unet in unets:
            unet.disable_freeu()
