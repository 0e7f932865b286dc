"""Functions over a parsed prompt: the prompt in force at each step, and the weighted runs an encoder reads.

`prompt_schedule(prompt, steps)` lists `(last_step, text)`: the text in force up to and including
each step (steps count from 1), with edits and alternations resolved and attention syntax kept, as
A1111's prompt editing documents its schedules (https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features#prompt-editing).
LoRA tags leave the text: they apply to the whole render (`loras`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidRequest
from .prompt_syntax import Alternation, Break, Edit, Group, Lora, LoraTag, Node, Text, parse, walk

Run = tuple[str, float]  # text and its attention weight
Runs = list[list[Run]]  # one list per BREAK-separated chunk group; never empty


@dataclass(frozen=True)
class Segment:
    """Steps up to and including `last` use `text`, whose weighted runs are `runs`."""

    last: int
    text: str
    runs: Runs


MAX_STEPS = 150  # RenderRequest's bound: a schedule is laid over the steps a render can take


def prompt_schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """The text in force up to and including each step: `a [cat:dog:0.5]` at 10 -> [(5, "a cat"), (10, "a dog")]."""
    return [(segment.last, segment.text) for segment in schedule(parse(prompt), steps)]


def schedule(nodes: tuple[Node, ...], steps: int) -> list[Segment]:
    """The segments of a parsed prompt over `steps` steps; one segment when nothing changes."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise InvalidRequest(f"a prompt schedule needs a whole number of steps from 1 to {MAX_STEPS}, as a render takes (got {steps!r})")
    if not is_scheduled(nodes):
        return [Segment(steps, render(nodes, 1, steps), runs(nodes, 1, steps))]
    # Step by step: a prompt has tens of nodes and a render tens of steps, so this stays cheap,
    # and it is plainly right for nested edits and alternations.
    segments: list[Segment] = []
    for step in range(1, steps + 1):
        text = render(nodes, step, steps)
        if segments and segments[-1].text == text:
            segments[-1] = Segment(step, text, segments[-1].runs)
        else:
            segments.append(Segment(step, text, runs(nodes, step, steps)))
    return segments


def is_scheduled(nodes: tuple[Node, ...]) -> bool:
    """Whether the prompt changes during a render (it holds an edit or an alternation)."""
    return any(isinstance(node, (Edit, Alternation)) for node in walk(nodes))


def loras(nodes: tuple[Node, ...]) -> list[LoraTag]:
    """Every LoRA tag in the prompt, in order, whichever branch holds it."""
    return [node.tag for node in walk(nodes) if isinstance(node, Lora)]


def _chosen(node: Edit | Alternation, step: int, steps: int) -> tuple[Node, ...]:
    if isinstance(node, Edit):
        return node.before if step <= node.boundary(steps) else node.after
    return node.options[(step - 1) % len(node.options)]


def render(nodes: tuple[Node, ...], step: int, steps: int) -> str:
    """The prompt text at `step`: attention brackets and BREAK as written, LoRA tags left out."""
    out = []
    for node in nodes:
        if isinstance(node, (Text, Break)):
            out.append(node.raw)
        elif isinstance(node, Group):
            out.append(node.opener + render(node.children, step, steps) + node.closer)
        elif isinstance(node, (Edit, Alternation)):
            out.append(render(_chosen(node, step, steps), step, steps))
    return "".join(out)


def runs(nodes: tuple[Node, ...], step: int = 1, steps: int = 1) -> Runs:
    """The weighted text at `step`, one run list per BREAK-separated part; equal neighbours merged.

    A run's weight is the product of its groups' multipliers, innermost first: `(((x:1.3)))` is
    1.3 x 1.1 x 1.1, the same float as a closing-bracket-by-closing-bracket evaluation gives.
    """
    parts: Runs = [[]]

    def visit(children: tuple[Node, ...], multipliers: tuple[float, ...]) -> None:
        for node in children:
            if isinstance(node, Text):
                weight = 1.0
                for factor in reversed(multipliers):
                    weight *= factor
                part = parts[-1]
                if part and part[-1][1] == weight:
                    part[-1] = (part[-1][0] + node.text, weight)
                elif node.text or not part:
                    part.append((node.text, weight))
            elif isinstance(node, Break):
                parts.append([])
            elif isinstance(node, Group):
                visit(node.children, (*multipliers, node.multiplier))
            elif isinstance(node, (Edit, Alternation)):
                visit(_chosen(node, step, steps), multipliers)

    visit(nodes, ())
    return [part or [("", 1.0)] for part in parts]


def attention_runs(prompt: str) -> Runs:
    """The weighted runs of a prompt that does not change during a render (no edits, no alternation)."""
    nodes = parse(prompt)
    if is_scheduled(nodes):
        raise InvalidRequest(f"{prompt!r} changes during the render; take its runs step by step with schedule()")
    return runs(nodes)
