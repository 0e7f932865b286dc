"""X/Y plot axes as A1111 names them: "CFG Scale: 5, 7, 9", "Steps: 10-30 (+10)", "Prompt S/R: cat, dog".

An `Axis` is a kind and its values, converted and checked on construction; `parse_axis` reads
A1111's text form, ranges included. Light: no PIL or torch.
"""

from __future__ import annotations

import csv
import io
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from . import samplers
from .errors import InvalidRequest
from .request import MAX_SEED, RenderRequest

MAX_CELLS = 100  # a 10x10 plot; past that a grid is hours of SDXL and too small to read per cell
KINDS = ("Nothing", "Prompt S/R", "CFG Scale", "Steps", "Sampler", "Seed")
_BY_LOWER = {k.lower(): k for k in KINDS} | {"cfg": "CFG Scale", "prompt sr": "Prompt S/R", "sampler name": "Sampler"}
_NUMBER = r"[+-]?\d+(?:\.\d*)?"
# A1111's range forms: "a-b", "a-b (+step)" and "a-b [count]".
_RANGE = re.compile(rf"({_NUMBER})\s*-\s*({_NUMBER})\s*(?:\(\s*({_NUMBER})\s*\)|\[\s*(\d+)\s*\])?")
AXIS_HELP = (
    "axis kinds (KIND: VALUES, values separated by commas, as A1111's X/Y plot):\n"
    "  Prompt S/R  the first value is searched for in the prompt and negative prompt, and each\n"
    "              value replaces it: 'Prompt S/R: dusk, dawn, noon' (quote a value with commas)\n"
    "  CFG Scale   numbers: 'CFG Scale: 4.5, 6, 7.5' or a range\n"
    "  Steps       whole numbers: 'Steps: 10-30 (+10)'\n"
    "  Sampler     A1111 sampler names: 'Sampler: Euler a, DPM++ 2M, DPM++ 2M Karras'\n"
    "  Seed        whole numbers; -1 is a random seed, drawn once: 'Seed: -1, -1, -1'\n"
    "  Nothing     no axis (the default --y): a one-row plot\n"
    "ranges (CFG Scale, Steps, Seed):\n"
    "  1-5         every whole number from 1 to 5 (9-5 counts down)\n"
    "  1-10 (+2)   from 1 to 10 in steps of 2: 1, 3, 5, 7, 9 (a step such as (+0.5) for CFG)\n"
    "  5-9 [3]     3 values evenly spaced from 5 to 9: 5, 7, 9\n"
    f"at most {MAX_CELLS} cells in all"
)


@dataclass(frozen=True)
class Axis:
    """One axis of an X/Y plot: `kind` (one of KINDS) and its values, in order.

    Values may be given as numbers or as A1111 text ("5-9 (+2)" expands); a Seed of -1 becomes a
    random seed here, once, so the plot's labels name the seeds that run.
    """

    kind: str
    values: tuple = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        kind = _BY_LOWER.get(" ".join(str(self.kind).split()).lower())
        if kind is None:
            raise InvalidRequest(f"unknown axis kind {self.kind!r}; choose one of: {', '.join(KINDS)}")
        set_("kind", kind)
        raw = [self.values] if isinstance(self.values, (str, int, float)) else list(self.values)
        if kind == "Nothing":
            set_("values", ())
            return
        if not raw:
            raise InvalidRequest(f"the {kind} axis has no values; for example {_example(kind)!r}")
        values: list[Any] = []
        for item in raw:
            values.extend(_convert(kind, item))
            if len(values) > MAX_CELLS:
                raise InvalidRequest(f"the {kind} axis has more than {MAX_CELLS} values; narrow the range or use a larger step")
        if kind == "Seed":  # A1111's "Seed: -1, -1, -1": three random seeds, fixed before the plot runs
            values = [secrets.randbelow(MAX_SEED + 1) if v == -1 else v for v in values]
        seen: set = set()
        for value in values:
            if value in seen:
                raise InvalidRequest(f"the {kind} axis lists {_format(value)!r} twice; each value is one row or column")
            seen.add(value)
        set_("values", tuple(values))

    @property
    def points(self) -> tuple:
        """The values to plot; a Nothing axis has one point, None."""
        return self.values or (None,)

    @property
    def labels(self) -> list[str]:
        """A1111's label per point: "CFG Scale: 7", "Steps: 20", "Seed: 42"; samplers and S/R values bare."""
        if self.kind == "Nothing":
            return [""]
        if self.kind in ("Prompt S/R", "Sampler"):
            return [str(v) for v in self.values]
        return [f"{self.kind}: {_format(v)}" for v in self.values]

    @property
    def text(self) -> str:
        """The values as A1111 writes "X Values": comma-separated, quoted where a value holds a comma."""
        quote = lambda v: '"' + v.replace('"', '""') + '"' if "," in v or '"' in v else v  # noqa: E731 (CSV's rule)
        return ", ".join(quote(_format(v)) for v in self.values)

    def check(self, request: RenderRequest) -> None:
        """Raise if this axis cannot apply to `request` (a Prompt S/R term missing from the prompt)."""
        if self.kind == "Prompt S/R":
            term = self.values[0]
            if term not in request.prompt and term not in request.negative_prompt:
                raise InvalidRequest(
                    f"Prompt S/R: {term!r} is not in the prompt or the negative prompt; "
                    "the first value is the text to search for, and the other values replace it"
                )

    def apply(self, request: RenderRequest, value: Any) -> RenderRequest:
        """`request` with this axis set to `value` (validated again, as every RenderRequest is)."""
        if self.kind == "Nothing":
            return request
        if self.kind == "Prompt S/R":
            term = self.values[0]
            return request.replace(prompt=request.prompt.replace(term, value), negative_prompt=request.negative_prompt.replace(term, value))
        if self.kind == "CFG Scale":
            return request.replace(guidance_scale=value)
        if self.kind == "Steps":
            return request.replace(num_inference_steps=value)
        if self.kind == "Seed":
            return request.replace(seed=value)
        sampler, schedule = samplers.normalize(value)
        if schedule == "Automatic" and request.schedule_type in samplers.SAMPLERS[sampler].schedule_types:
            schedule = request.schedule_type  # keep the request's schedule where this sampler has it
        return request.replace(sampler=sampler, schedule_type=schedule)


def parse_axis(text: str) -> Axis:
    """An axis from A1111's text form, "KIND: VALUES": "CFG Scale: 5, 7, 9", "Steps: 10-30 (+10)"; "" is Nothing."""
    if not isinstance(text, str):
        raise InvalidRequest(f"an axis is text such as 'CFG Scale: 5, 7, 9' (got {text!r})")
    kind, colon, values = text.partition(":")
    if not colon:
        if kind.strip().lower() in ("", "nothing"):
            return Axis("Nothing")
        raise InvalidRequest(f"an axis is 'KIND: VALUES' such as 'CFG Scale: 5, 7, 9' (got {text!r}); kinds: {', '.join(KINDS)}")
    if "\n" in values.strip() or "\r" in values.strip():
        raise InvalidRequest(f"an axis is one line, 'KIND: VALUES' (got {text[:60]!r})")
    try:
        items = [item.strip() for row in csv.reader(io.StringIO(values.strip()), skipinitialspace=True) for item in row]
    except csv.Error as exc:
        raise InvalidRequest(f"cannot read the axis values {values[:60]!r} ({exc}); separate them with commas, quoting those that hold one") from None
    return Axis(kind, tuple(item for item in items if item))


def _example(kind: str) -> str:
    return {"Prompt S/R": "Prompt S/R: dusk, dawn", "CFG Scale": "CFG Scale: 5, 7, 9", "Steps": "Steps: 10-30 (+10)", "Sampler": "Sampler: Euler a, DPM++ 2M", "Seed": "Seed: 1-4"}[kind]


def _format(value: Any) -> str:
    """A value as the axis text shows it: a float as the infotext writes it (metadata.number_text)."""
    from .metadata import number_text

    return number_text(value) if isinstance(value, float) else str(value)


def _convert(kind: str, item: Any) -> list[Any]:
    """One given value as this kind's values: a range expands; text is checked and made canonical."""
    if kind == "Prompt S/R":
        if not isinstance(item, str):
            raise InvalidRequest(f"Prompt S/R values are text (got {item!r})")
        return [item]
    if kind == "Sampler":
        if not isinstance(item, str):
            raise InvalidRequest(f"Sampler values are A1111 sampler names such as 'Euler a' (got {item!r})")
        sampler, schedule = samplers.normalize(item)  # "unknown sampler ...; choose one of: ..."
        return [sampler if schedule == "Automatic" else f"{sampler} {schedule}"]
    whole = kind != "CFG Scale"
    what = "whole numbers" if whole else "numbers"
    if isinstance(item, bool) or not isinstance(item, (str, int, float)):
        raise InvalidRequest(f"{kind} values are {what} (got {item!r})")
    if isinstance(item, str):
        text = item.strip()
        match = _RANGE.fullmatch(text)
        if match:
            return _range(kind, text, match, whole)
        try:
            item = float(text)
        except ValueError:
            ranges = {"CFG Scale": "4-8 (+0.5)", "Steps": "10-30 (+10)", "Seed": "1-4"}[kind]
            raise InvalidRequest(f"{kind} values are {what} or ranges such as {ranges!r} (got {text!r})") from None
    if not math.isfinite(item) or (whole and int(item) != item):
        raise InvalidRequest(f"{kind} values are {what} (got {item!r})")
    return [int(item) if whole else float(item)]


def _range(kind: str, text: str, match: re.Match, whole: bool) -> list[Any]:
    """Expand "a-b", "a-b (+step)" or "a-b [count]": both ends included where the steps land on them."""
    start, end, step_text, count_text = match.groups()
    numbers = [float(start), float(end)] + ([float(step_text)] if step_text else [])
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidRequest(f"{kind} ranges are finite numbers such as '1-10 (+2)' (got {text[:60]!r})")
    if whole and any(n != int(n) for n in numbers):
        raise InvalidRequest(f"{kind} ranges are whole numbers such as '1-10 (+2)' (got {text!r})")
    a, b = numbers[0], numbers[1]
    if count_text is not None:
        count = int(count_text)
        if not 1 <= count <= MAX_CELLS:
            raise InvalidRequest(f"{text!r}: the count in [ ] must be between 1 and {MAX_CELLS}")
        raw = [a + (b - a) * k / (count - 1) for k in range(count)] if count > 1 else [a]
    else:
        step = numbers[2] if step_text else math.copysign(1.0, b - a)
        if step == 0 or (b - a) * step < 0:
            raise InvalidRequest(f"{text!r}: a step of {step:+g} never goes from {a:g} to {b:g}; use ({'+' if b >= a else '-'}1) or a [count]")
        count = math.floor((b - a) / step + 1e-9) + 1  # 1e-9: "1-2 (+0.1)" must reach 2 despite float error
        if count > MAX_CELLS:
            raise InvalidRequest(f"{text!r} gives {count} values, more than {MAX_CELLS}; use a larger step")
        raw = [a + step * k for k in range(count)]
    return [round(v) if whole else round(v, 6) for v in raw]  # round(.., 6): 0.1 steps print as 0.3, not 0.30000000000000004
