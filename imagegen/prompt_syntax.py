"""keyart's prompt language: a tokenizer and a recursive-descent parser from prompt text to a syntax tree.

The tree has six kinds of node: `Text`, `Group` (attention: `(x)`, `(x:1.5)`, `[x]`), `Break`,
`Lora` (`<lora:name:w>`), `Edit` (`[from:to:when]`) and `Alternation` (`[a|b|c]`). The functions
over it (the schedule per step, the weighted runs an encoder reads) are in `prompt_schedule`.

Compatible with the prompt syntax AUTOMATIC1111's web UI documents ("Attention/emphasis", "Prompt
editing", "Alternating Words", "BREAK" on https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features,
and LoRA tags on .../wiki/Extra-Networks), so prompts pasted from A1111, Forge or Civitai mean what
they meant there. Written from that documentation and the behaviour tables in tests/test_prompt_syntax.py.
No torch here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import InvalidRequest

EMPHASIS = 1.1  # the documented factor: (x) multiplies attention by 1.1, [x] divides it by 1.1
MAX_DEPTH = 64  # brackets nested deeper than this are a mistake, and would exhaust Python's stack
LORA_KINDS = ("lora", "lyco")  # `lyco` is the old LyCORIS extension's name for the same tags
EDIT_HINT = "prompt editing is [from:to:when], [to:when] or [from::when], with when a step (10) or a fraction of the steps (0.5)"

# One lexeme at a time, first match wins. BREAK takes the spaces around it, so "a BREAK b" leaves
# "a" and "b"; plain text stops before anything that could begin another lexeme.
_LEXEME = re.compile(
    r"""
    (?P<escape>\\[()\[\]\\:|])
  | (?P<lora><(?:lora|lyco):[^>]+>)
  | (?P<brk>\s*\bBREAK\b\s*)
  | (?P<weight>:\s*(?P<number>[+-]?(?:[\d.]+|(?i:nan|inf(?:inity)?)))\s*\))
  | (?P<mark>[()\[\]:|])
  | (?P<plain>(?:(?!\bBREAK\b)[^\\()\[\]:|<\s])+ | [\s\S])
    """,
    re.VERBOSE,
)


# -- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Literal text: `text` with escapes resolved, `raw` as written."""

    text: str
    raw: str


@dataclass(frozen=True)
class Break:
    """`BREAK`: the encoder starts a new 75-token chunk here. Never weighted."""

    raw: str


@dataclass(frozen=True)
class LoraTag:
    """One `<lora:name:te_weight:unet_weight>` tag: the file's name, then the text-encoder and UNet
    multipliers (the UNet's defaults to the text encoder's, which defaults to 1.0)."""

    name: str
    te_weight: float = 1.0
    unet_weight: float = 1.0


@dataclass(frozen=True)
class Lora:
    """A LoRA tag where it stands; it applies to the whole render, whichever step or branch holds it."""

    tag: LoraTag
    raw: str


@dataclass(frozen=True)
class Group:
    """Attention over `children`: `(…)` at 1.1, `(…:w)` at w, `[…]` at 1/1.1.

    `closer` is what closed it as written (")", ":1.5)", "]"), or "" when the prompt ended first or
    an enclosing group's bracket ended it; an unclosed group still weighs what it holds.
    """

    children: tuple
    multiplier: float
    opener: str
    closer: str


@dataclass(frozen=True)
class Edit:
    """`[before:after:when]`: `before` up to and including step `boundary(when, steps)`, then `after`."""

    before: tuple
    after: tuple
    when: float

    def boundary(self, steps: int) -> int:
        """The last step of `before`: below 1, `when` is a fraction of the steps; otherwise a step."""
        return int(self.when * steps) if self.when < 1 else int(self.when)


@dataclass(frozen=True)
class Alternation:
    """`[a|b|c]`: option 1 at step 1, option 2 at step 2, and round again."""

    options: tuple


Node = Text | Break | Lora | Group | Edit | Alternation


# -- the tokenizer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # escape | lora | brk | weight | mark | plain
    raw: str
    start: int
    number: str | None = None


def _tokens(prompt: str) -> list[_Token]:
    found = []
    for match in _LEXEME.finditer(prompt):
        kind = match.lastgroup if match.lastgroup != "number" else "weight"
        found.append(_Token(kind, match.group(0), match.start(), match.group("number")))
    return found


# -- the parser -------------------------------------------------------------------------------


def parse(prompt: str) -> tuple[Node, ...]:
    """The syntax tree of `prompt`; bad syntax is an `InvalidRequest` that says how to write it."""
    if not isinstance(prompt, str):
        raise InvalidRequest("a prompt must be text")
    return _Parser(prompt).top()


class _Parser:
    """Recursive descent over the tokens. `open` is the stack of brackets around the current position."""

    def __init__(self, prompt: str):
        self.prompt = prompt
        self.tokens = _tokens(prompt)
        self.at = 0
        self.open: list[str] = []

    def top(self) -> tuple[Node, ...]:
        nodes = self.sequence()
        assert self.at == len(self.tokens), "the top level reads every token"
        return nodes

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def ends_here(self, token: _Token) -> bool:
        """Whether `token` ends the innermost group: its own closer, a separator inside [...], or
        the closer of an enclosing group (which ends every group inside it)."""
        if not self.open:
            return False
        if token.kind == "mark" and token.raw in ":|":
            return self.open[-1] == "["
        wants = "(" if token.kind == "weight" or token.raw == ")" else "[" if token.raw == "]" else None
        return token.kind in ("mark", "weight") and wants in self.open

    def sequence(self) -> tuple[Node, ...]:
        """Nodes up to the end of the innermost group (or of the prompt); the group's end is not read."""
        nodes: list[Node] = []
        while (token := self.peek()) is not None and not self.ends_here(token):
            self.at += 1
            if token.kind == "mark" and token.raw in "([":
                nodes.append(self.round(token) if token.raw == "(" else self.square(token))
            elif token.kind == "brk":
                nodes.append(Break(token.raw))
            elif token.kind == "lora":
                nodes.append(Lora(_lora_tag(token.raw), token.raw))
            else:  # text, an escape, or a bracket, colon or bar that means nothing here
                literal = token.raw[1:] if token.kind == "escape" else token.raw
                if nodes and isinstance(nodes[-1], Text):
                    nodes[-1] = Text(nodes[-1].text + literal, nodes[-1].raw + token.raw)
                else:
                    nodes.append(Text(literal, token.raw))
        return tuple(nodes)

    def enter(self, bracket: str, token: _Token) -> None:
        if len(self.open) == MAX_DEPTH:
            raise InvalidRequest(f"brackets nest more than {MAX_DEPTH} deep at character {token.start + 1}; close some of them")
        self.open.append(bracket)

    def round(self, opener: _Token) -> Group:
        """`(…)`, `(…:weight)`, or an unclosed `(…`."""
        self.enter("(", opener)
        children = self.sequence()
        self.open.pop()
        closer = self.peek()
        if closer is not None and (closer.kind == "weight" or closer.raw == ")"):
            self.at += 1
            multiplier = _attention_weight(closer, self.prompt[opener.start : closer.start + len(closer.raw)]) if closer.kind == "weight" else EMPHASIS
            return Group(children, multiplier, "(", closer.raw)
        return Group(children, EMPHASIS, "(", "")

    def square(self, opener: _Token) -> Group | Edit | Alternation:
        """`[…]` (attention), `[a:b:when]` and its short forms (an edit), or `[a|b|…]` (alternation)."""
        self.enter("[", opener)
        parts = [self.sequence()]
        separators: list[str] = []
        while (token := self.peek()) is not None and token.kind == "mark" and token.raw in ":|":
            self.at += 1
            separators.append(token.raw)
            parts.append(self.sequence())
        self.open.pop()
        closer = self.peek()
        closed = closer is not None and closer.kind == "mark" and closer.raw == "]"
        if closed:
            self.at += 1
        end = closer.start + 1 if closed else (closer.start if closer is not None else len(self.prompt))
        written = self.prompt[opener.start : end]
        if not separators:
            return Group(parts[0], 1 / EMPHASIS, "[", "]" if closed else "")
        if not closed:
            kind = "alternation" if "|" in separators else "prompt edit"
            raise InvalidRequest(f"unclosed {kind} {written!r}: end it with ]")
        if set(separators) == {":", "|"}:
            raise InvalidRequest(
                f"{written!r} mixes : and |; a group is either an alternation [a|b] or an edit [from:to:when] "
                "(write \\: or \\| for the character itself)"
            )
        if separators[0] == "|":
            return Alternation(tuple(parts))
        if len(parts) > 3:
            raise InvalidRequest(f"{written!r} has {len(parts)} parts; {EDIT_HINT}")
        when = _when(parts[-1], written)
        before, after = (parts[0], parts[1]) if len(parts) == 3 else ((), parts[0])
        return Edit(before, after, when)


def _attention_weight(token: _Token, written: str) -> float:
    try:
        weight = float(token.number or "")
    except ValueError:
        raise InvalidRequest(f"the attention weight in {written!r} is not a number; write it as (text:1.2) or (text:0.8)") from None
    if not math.isfinite(weight):
        raise InvalidRequest(f"the attention weight in {written!r} must be a finite number; write it as (text:1.2) or (text:0.8)")
    return weight


def _when(part: tuple, written: str) -> float:
    """The `when` of an edit: plain text holding a number of 0 or more."""
    text = part[0].text.strip() if len(part) == 1 and isinstance(part[0], Text) else None
    try:
        when = float(text) if text else math.nan
    except ValueError:
        when = math.nan
    if not math.isfinite(when) or when < 0:
        shown = repr(text) if text else "nothing"
        raise InvalidRequest(f"in {written!r}, when is {shown}, not a step or fraction; {EDIT_HINT}")
    return when


# -- LoRA tags --------------------------------------------------------------------------------


def _lora_tag(written: str) -> LoraTag:
    """The arguments of `<lora:name[:te[:unet]]>`, or the named `te=` and `unet=`."""
    values = written[1:-1].split(":")[1:]  # drop the kind
    positional = [v for v in values if "=" not in v]
    named = dict(v.split("=", 1) for v in values if "=" in v)
    named = {key.strip(): value for key, value in named.items()}
    if unknown := sorted(set(named) - {"te", "unet"}):
        raise InvalidRequest(f"{written}: unknown LoRA option(s) {unknown}; keyart reads <lora:name:te_weight:unet_weight> and te=, unet=")
    if len(positional) > 3:
        raise InvalidRequest(f"{written}: too many values; write <lora:name:weight> or <lora:name:te_weight:unet_weight>")
    name = positional[0].strip() if positional else ""
    if not name:
        raise InvalidRequest(f"{written}: the LoRA has no name; write <lora:file_name:0.8> (the file name without .safetensors)")
    te = _multiplier(named["te"] if "te" in named else positional[1] if len(positional) > 1 else "1", written)
    unet = _multiplier(named["unet"] if "unet" in named else positional[2] if len(positional) > 2 else None, written, te)
    return LoraTag(name=name, te_weight=te, unet_weight=unet)


def _multiplier(value: str | None, written: str, default: float = 1.0) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidRequest(f"{written}: LoRA weight {value.strip()!r} is not a number; write e.g. <lora:name:0.8>")
    return number


def walk(nodes: tuple):
    """Every node of a tree, depth first, every branch of every edit and alternation included."""
    for node in nodes:
        yield node
        if isinstance(node, Group):
            yield from walk(node.children)
        elif isinstance(node, Edit):
            yield from walk(node.before)
            yield from walk(node.after)
        elif isinstance(node, Alternation):
            for option in node.options:
                yield from walk(option)


def extract_loras(prompt: str) -> tuple[str, list[LoraTag]]:
    """`prompt` without its `<lora:…>` tags (everything else as written) and the tags, in order.

    Other `<kind:…>` tags (hypernetworks…) stay in the text.
    """
    tags, kept = [], []
    for token in _tokens(prompt):
        if token.kind == "lora":
            tags.append(_lora_tag(token.raw))
        else:
            kept.append(token.raw)
    return "".join(kept), tags
