"""A1111's prompt syntax, as plain Python: attention weights, `BREAK`, and `<lora:name:weight>` tags.

`parse_attention` follows AUTOMATIC1111's `prompt_parser.parse_prompt_attention` (same regex, same
arithmetic, so `((x))` is 1.1 * 1.1 = 1.2100000000000002 as there); `extract_loras` follows its
extra-networks parser for the `lora` kind. No torch here: the SDXL encoder turns the result into embeddings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidRequest

ROUND = 1.1  # A1111: (text) multiplies attention by 1.1
SQUARE = 1 / 1.1  # A1111: [text] divides it by 1.1
BREAK = ("BREAK", -1.0)  # A1111's marker for "start a new 75-token chunk here"

# A1111's `re_attention`, verbatim: escapes, brackets, `:weight)`, plain text, a stray colon.
RE_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.VERBOSE,
)
RE_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.DOTALL)
# A1111's extra-network tag `<kind:args>`; `lyco` is the old LyCORIS extension's name for the same thing.
RE_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = ("lora", "lyco")


def parse_attention(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) runs, as A1111 does; `BREAK` comes out as `prompt_syntax.BREAK`.

    `(x)` is x at 1.1, `((x))` 1.21, `(x:1.5)` 1.5, `[x]` 1/1.1; `\\(` `\\)` `\\[` `\\]` `\\\\` are
    literal. An unclosed bracket weighs everything after it, as in A1111; a stray `)` or `]` is text.
    Adjacent runs of equal weight are merged. One deliberate difference: A1111 also multiplies the
    BREAK marker inside brackets, which turns `(a BREAK b)` into the literal word "BREAK" at weight
    -1.1; here BREAK is never weighted, so it always starts a new chunk.
    """
    res: list[list] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply_range(start: int, multiplier: float) -> None:
        for entry in res[start:]:
            if entry[0] is not _BREAK_TEXT:
                entry[1] *= multiplier

    # 1. Walk A1111's tokens: brackets open ranges, closers multiply them.
    for match in RE_ATTENTION.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            res.append([piece[1:], 1.0])
        elif piece == "(":
            round_brackets.append(len(res))
        elif piece == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), _weight(weight, match.group(0)))
        elif piece == ")" and round_brackets:
            multiply_range(round_brackets.pop(), ROUND)
        elif piece == "]" and square_brackets:
            multiply_range(square_brackets.pop(), SQUARE)
        else:
            for i, part in enumerate(RE_BREAK.split(piece)):
                if i > 0:
                    res.append([_BREAK_TEXT, BREAK[1]])
                res.append([part, 1.0])
    # 2. Brackets never closed still apply, to the end of the prompt.
    for start in round_brackets:
        multiply_range(start, ROUND)
    for start in square_brackets:
        multiply_range(start, SQUARE)
    if not res:
        res = [["", 1.0]]
    # 3. Merge runs of identical weights (never across a BREAK).
    i = 0
    while i + 1 < len(res):
        a, b = res[i], res[i + 1]
        if a[1] == b[1] and a[0] is not _BREAK_TEXT and b[0] is not _BREAK_TEXT:
            a[0] += b[0]
            res.pop(i + 1)
        else:
            i += 1
    return [(str(t), float(w)) for t, w in res]


class _BreakText(str):
    """The text "BREAK" as a marker: compared by identity, so a weighted literal "BREAK" is never one."""


_BREAK_TEXT = _BreakText("BREAK")


def is_break(run: tuple[str, float]) -> bool:
    """Whether a run from `parse_attention` is A1111's chunk break."""
    return run == BREAK


def _weight(number: str, written: str) -> float:
    try:
        return float(number)
    except ValueError:
        raise InvalidRequest(
            f"the attention weight in {written!r} is not a number; write it as (text:1.2) or (text:0.8)"
        ) from None


# -- LoRA tags --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraTag:
    """One `<lora:name:te_weight:unet_weight>` tag: A1111 names the file, then the text-encoder and
    UNet multipliers (the UNet's defaults to the text encoder's, which defaults to 1.0)."""

    name: str
    te_weight: float = 1.0
    unet_weight: float = 1.0


def extract_loras(text: str) -> tuple[str, list[LoraTag]]:
    """Strip `<lora:...>` tags from a prompt, as A1111 does (each tag becomes ""), and return them.

    Forms: `<lora:name>` (1.0), `<lora:name:w>`, `<lora:name:te:unet>`, and the named `te=`/`unet=`.
    Other `<kind:...>` tags (hypernetworks...) are left in the text.
    """
    tags: list[LoraTag] = []

    def found(match: re.Match) -> str:
        if match.group(1) not in LORA_KINDS:
            return match.group(0)
        tags.append(_lora_tag(match.group(0), match.group(2)))
        return ""

    return RE_EXTRA_NETWORK.sub(found, text), tags


def _lora_tag(written: str, args: str) -> LoraTag:
    """A1111's positional and `key=value` arguments of one tag."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in args.split(":"):
        key, eq, value = item.partition("=")
        if eq:
            named[key.strip()] = value
        else:
            positional.append(item)
    unknown = sorted(set(named) - {"te", "unet"})
    if unknown:
        raise InvalidRequest(f"{written}: unknown LoRA option(s) {unknown}; keyart reads <lora:name:te_weight:unet_weight> and te=, unet=")
    if len(positional) > 3:
        raise InvalidRequest(f"{written}: too many values; write <lora:name:weight> or <lora:name:te_weight:unet_weight>")
    name = positional[0].strip() if positional else ""
    if not name:
        raise InvalidRequest(f"{written}: the LoRA has no name; write <lora:file_name:0.8> (the file name without .safetensors)")
    te = _multiplier(named.get("te", positional[1] if len(positional) > 1 else "1.0"), written)
    unet = _multiplier(named.get("unet", positional[2] if len(positional) > 2 else str(te)), written)
    return LoraTag(name=name, te_weight=te, unet_weight=unet)


def _multiplier(value: str, written: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(f"{written}: LoRA weight {value.strip()!r} is not a number; write e.g. <lora:name:0.8>") from None
