"""Prompts that change during a render: every text of a pass's schedule encoded once, switched per step.

A `PassPrompts` holds the prompt and negative of each image of a batch over one pass's steps (the
first pass, or the hires fix's second pass: each lays the schedule over the steps it runs). It gives
the pipeline the first step's embeddings and a diffusers `callback_on_step_end` that puts the next
step's in place, so the pipelines stay stock. The refiner continues its pass's schedule from the
step the base handed over at, with its own encodings (text_encoder_2 alone). With a second-order
sampler (Heun, DPM2) both model evaluations of a step use that step's prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..prompt_schedule import Segment, schedule
from .sdxl_prompt import encode_runs, zeros_for_empty

ZERO = -1  # stands for the all-zeros negative (an empty negative on a force_zeros pipeline)
TENSOR_INPUTS = ["latents", "prompt_embeds", "add_text_embeds"]  # what the step callback replaces


class PassPrompts:
    """Per-step conditioning for one pass of a batch: `prompts[i]` is image i's (prompt, negative) trees."""

    def __init__(self, pipe, prompts: Sequence[tuple[tuple, tuple]], steps: int, *, refiner: bool = False, embeddings: Any = None):
        # 1. Each image's schedules over this pass's steps.
        self.steps = steps
        zero_empty = zeros_for_empty(pipe)
        plans = [(schedule(positive, steps), schedule(negative, steps)) for positive, negative in prompts]
        # 2. The distinct texts, each encoded once (for all images and steps), at one common length.
        self.texts: list[str] = []
        runs: list = []
        index: dict[str, int] = {}

        def key(segment: Segment, negative: bool) -> int:
            if negative and not segment.text and zero_empty:
                return ZERO
            if segment.text not in index:
                index[segment.text] = len(self.texts)
                self.texts.append(segment.text)
                runs.append(segment.runs)
            return index[segment.text]

        # 3. For each step (0-based), each image's (prompt, negative) text index.
        self.per_step: list[tuple[tuple[int, int], ...]] = []
        cursors = [[0, 0] for _ in plans]
        for step in range(1, steps + 1):
            row = []
            for (positive, negative), cursor in zip(plans, cursors):
                while positive[cursor[0]].last < step:
                    cursor[0] += 1
                while negative[cursor[1]].last < step:
                    cursor[1] += 1
                row.append((key(positive[cursor[0]], False), key(negative[cursor[1]], True)))
            self.per_step.append(tuple(row))
        hidden, pooled = encode_runs(pipe, runs, refiner=refiner, embeddings=embeddings)  # embeddings: the engine's textual inversions
        self._hidden, self._pooled = hidden, pooled
        self._assembled: dict[tuple, dict[str, Any]] = {}
        self.used: dict[int, tuple[tuple[int, int], ...]] = {}  # step (1-based) -> the texts it ran with

    @property
    def changes(self) -> bool:
        """Whether any image's conditioning switches during the pass."""
        return len(set(self.per_step)) > 1

    def kwargs(self, offset: int = 0) -> dict[str, Any]:
        """The four embedding kwargs for the step after `offset` steps of this pass have run."""
        return dict(self._tensors(self._row(offset + 1)))

    def callback(self, offset: int = 0, then: Callable | None = None) -> Callable | None:
        """A `callback_on_step_end` for a pipeline call that starts after `offset` steps of the pass.

        It records which texts each step ran with, swaps in the next step's embeddings when they
        differ, then calls `then` (a progress callback) if given. None when nothing switches and
        nothing is to be called.
        """
        if not self.changes and then is None:
            return None

        def on_step_end(pipe, i, t, callback_kwargs):
            order = getattr(pipe.scheduler, "order", 1)  # model evaluations per step: 2 for Heun and DPM2
            ran, upcoming = offset + i // order + 1, offset + (i + 1) // order + 1
            row = self._row(ran)
            self.used.setdefault(ran, row)
            following = self._row(upcoming)
            if self.changes and following != row and upcoming <= self.steps:
                callback_kwargs = dict(callback_kwargs) | self._swapped(pipe, following, callback_kwargs)
            return then(pipe, i, t, callback_kwargs) if then is not None else callback_kwargs

        return on_step_end

    def steps_run(self, pipe) -> int:
        """How many of this pass's steps a finished pipeline call ran (for the refiner's offset)."""
        order = getattr(pipe.scheduler, "order", 1)
        return -(-int(pipe.num_timesteps) // order)

    def record(self, image: int) -> list[dict[str, Any]]:
        """Image `image`'s conditioning as it ran: [{"steps": [first, last], "prompt", "negative"}]."""
        spans: list[dict[str, Any]] = []
        for step in sorted(self.used):
            positive, negative = self.used[step][image]
            texts = {"prompt": self.texts[positive], "negative": "" if negative == ZERO else self.texts[negative]}
            if spans and spans[-1]["steps"][1] == step - 1 and {k: spans[-1][k] for k in texts} == texts:
                spans[-1]["steps"][1] = step
            else:
                spans.append({"steps": [step, step], **texts})
        return spans

    def _row(self, step: int) -> tuple[tuple[int, int], ...]:
        return self.per_step[min(max(step, 1), self.steps) - 1]

    def _tensors(self, row: tuple[tuple[int, int], ...]) -> dict[str, Any]:
        """The pipeline's four embedding tensors for one step's texts, one row per image (cached)."""
        if row not in self._assembled:
            import torch

            def rows(table, which: int):
                picked = [table[pair[which]] if pair[which] != ZERO else torch.zeros_like(table[0]) for pair in row]
                return torch.stack(picked)

            self._assembled[row] = {
                "prompt_embeds": rows(self._hidden, 0),
                "negative_prompt_embeds": rows(self._hidden, 1),
                "pooled_prompt_embeds": rows(self._pooled, 0),
                "negative_pooled_prompt_embeds": rows(self._pooled, 1),
            }
        return self._assembled[row]

    def _swapped(self, pipe, row, callback_kwargs) -> dict[str, Any]:
        """The pipeline's own (CFG-concatenated) prompt_embeds and add_text_embeds for `row`."""
        import torch

        tensors = self._tensors(row)
        hidden, pooled = tensors["prompt_embeds"], tensors["pooled_prompt_embeds"]
        if pipe.do_classifier_free_guidance:  # the pipeline's order: unconditional first
            hidden = torch.cat([tensors["negative_prompt_embeds"], hidden])
            pooled = torch.cat([tensors["negative_pooled_prompt_embeds"], pooled])
        like_hidden, like_pooled = callback_kwargs["prompt_embeds"], callback_kwargs["add_text_embeds"]
        return {"prompt_embeds": hidden.to(like_hidden), "add_text_embeds": pooled.to(like_pooled)}



class BlendedPrompts:
    """A pass's conditioning between two prompts: `both` holds the prompts' rows then the blend prompts',
    encoded together (so at one length); each image runs (1 - weight) x its prompt's + weight x its blend
    prompt's embeddings, pooled ones too. Neither may switch during the pass (no prompt editing)."""

    def __init__(self, both: PassPrompts, images: int, weight: float):
        from ..errors import InvalidRequest

        if both.changes:
            raise InvalidRequest("a blended prompt takes no prompt editing or alternation ([from:to:when], [a|b]) in either prompt")
        self.both, self.images, self.weight, self.steps, self.changes, self.used = both, images, weight, both.steps, False, {}

    def kwargs(self, offset: int = 0) -> dict[str, Any]:
        tensors, n, w = self.both.kwargs(offset), self.images, self.weight
        mixed = {name: (1 - w) * value[:n] + w * value[n:] for name, value in tensors.items() if name in ("prompt_embeds", "pooled_prompt_embeds")}
        return {name: value[:n] for name, value in tensors.items()} | mixed

    def callback(self, offset: int = 0, then: Callable | None = None) -> Callable | None:
        return then

    def steps_run(self, pipe) -> int:
        return self.both.steps_run(pipe)

    def record(self, image: int) -> list[dict[str, Any]]:
        return []


class RenderPrompts:
    """The conditioning of every pass of one batch: base and refiner, first pass and hires fix."""

    LABELS = ("base", "refiner", "hires", "hires refiner")

    def __init__(self, first: PassPrompts, first_refiner=None, hires=None, hires_refiner=None):
        self.first, self.first_refiner, self.hires, self.hires_refiner = first, first_refiner, hires, hires_refiner

    def record(self, image: int) -> dict[str, list] | None:
        """What image `image` ran with in each pass, when anything switched during the render; else None."""
        passes = dict(zip(self.LABELS, (self.first, self.first_refiner, self.hires, self.hires_refiner)))
        if not any(p is not None and p.changes for p in passes.values()):
            return None
        return {label: p.record(image) for label, p in passes.items() if p is not None}
