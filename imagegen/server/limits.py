"""What the image service accepts: body size, images per request, pixels, steps, and the size table.

Every bound here is checked before a job is queued, and a request past one gets a 400 (413 for the
body) that names the field and the limit. Light: no fastapi, so the CLI can build one for --help.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..request import SDXL_SIZES

MAX_BODY_BYTES = 32 * 2**20  # 32 MiB: a few full-size PNG uploads for an edit, far past any JSON body
MAX_N = 10  # OpenAI's own bound on `n`
MAX_PIXELS = 4096 * 4096  # a requested size is only snapped to the table, but an absurd one is an error
MAX_STEPS = 60  # past ~40 steps SDXL changes little; a bound keeps one request from holding the GPU
MAX_RETRY_AFTER_S = 120  # the OpenAI SDK honours Retry-After only up to 120 s
WAIT_S = 590.0  # the OpenAI SDK gives up at 600 s; the job is cancelled just before that
RE_SIZE = re.compile(r"^\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*$")  # more digits are past any pixel limit


@dataclass(frozen=True)
class Limits:
    """The service's bounds and its size table (SDXL's buckets; tests pass a tiny table).

    `steps`: a fixed number of sampling steps for every request that names none (None: the quality
    preset's, 16 for low/medium and 30 otherwise).
    """

    max_body_bytes: int = MAX_BODY_BYTES
    max_n: int = MAX_N
    max_pixels: int = MAX_PIXELS
    max_steps: int = MAX_STEPS
    sizes: tuple[tuple[int, int], ...] = SDXL_SIZES
    steps: int | None = None
    wait_s: float = WAIT_S
    max_retry_after_s: int = MAX_RETRY_AFTER_S

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_n", "max_pixels", "max_steps", "max_retry_after_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequest(f"server limit {name} must be a whole number of at least 1 (got {value!r})")
        if not self.sizes or any(w % 8 or h % 8 or w < 64 or h < 64 for w, h in self.sizes):
            raise InvalidRequest(f"the server's sizes must be multiples of 8, at least 64x64 (got {self.sizes!r})")
        if self.steps is not None and not 1 <= self.steps <= self.max_steps:
            raise InvalidRequest(f"the server's default steps must be between 1 and {self.max_steps} (got {self.steps})")

    def size(self, text: str | None, like: tuple[int, int] | None = None) -> tuple[int, int]:
        """The table's size nearest to `text` ("WxH", or "auto"/None: nearest to `like`, else the first).

        Nearest in aspect ratio first (what a client asking for 1536x1024 wants is a landscape), then
        in pixel count. Errors name the field and the bound.
        """
        # 1. The size asked for, checked.
        if text is None or str(text).strip().lower() == "auto":
            if like is None:
                return self.sizes[0]
            width, height = like
        else:
            match = RE_SIZE.match(str(text))
            if not match:
                listed = ", ".join(f"{w}x{h}" for w, h in self.sizes)
                raise InvalidRequest(f"size must be 'WxH' or 'auto' (got {text!r}); sizes that render as asked: {listed}")
            width, height = int(match.group(1)), int(match.group(2))
            if width < 1 or height < 1:
                raise InvalidRequest(f"size must be at least 1x1 (got {text!r})")
            if width * height > self.max_pixels:
                raise InvalidRequest(f"size {width}x{height} is {width * height} pixels, past this server's limit of {self.max_pixels}")
        # 2. The nearest size of the table.
        aspect = math.log(width / height)
        return min(self.sizes, key=lambda s: (round(abs(math.log(s[0] / s[1]) - aspect), 6), abs(s[0] * s[1] - width * height)))

    def count(self, n: int | None) -> int:
        n = 1 if n is None else n
        if not 1 <= n <= self.max_n:
            raise InvalidRequest(f"n must be between 1 and {self.max_n} (got {n})")
        return n

    def check_steps(self, steps: int) -> int:
        if not 1 <= steps <= self.max_steps:
            raise InvalidRequest(f"steps must be between 1 and {self.max_steps} on this server (got {steps})")
        return steps

    def retry_after(self, seconds: float) -> int:
        """HTTP's Retry-After: whole seconds, at least 1, at most max_retry_after_s."""
        return max(1, min(self.max_retry_after_s, math.ceil(seconds)))


def batches(n: int, max_batch: int) -> tuple[int, int]:
    """(batch_size, batch_count) for n images: the largest batch of at most max_batch that divides n,
    so the images are exactly n and seeds run seed, seed+1, ... across them."""
    size = max(b for b in range(1, min(n, max_batch) + 1) if n % b == 0)
    return size, n // size
