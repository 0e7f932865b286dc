"""Catalog images in flight: the render stage's window of submitted jobs, each written to the store
by the stage's own thread as it finishes (stages.py submits them).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from imagegen import KeyartError
from imagegen.errors import StorageError

from ..store import IMAGES, Store
from .plan import image_path
from .service import RenderService


class Report(Protocol):
    images: Any  # stages.Tally: done, failed, seconds


class Progress(Protocol):
    def step(self, name: str, outcome: str, label: str, detail: str = "") -> None: ...


@dataclass
class Render:
    """One catalog image on its way: where it goes, what it is, and its job once submitted."""

    entry: tuple[str, int, int, str]
    label: str
    request: Any
    key: str
    prompt_key: str
    lineage: dict[str, Any]
    job: Any = None
    started: float = 0.0


class Renders:
    """Catalog images in flight: up to `slot.ahead` jobs submitted at once (two per worker where the
    queue never batches, so the engine renders the next while this thread writes one; else one),
    each written and recorded by this thread as it finishes, oldest first.

    Only this thread writes the store, so its guarantees hold however many workers render: an image
    is written atomically under its content key, then recorded; a crash in between re-renders the
    same key onto the same file name, so nothing is duplicated.
    """

    def __init__(self, store: Store, slot: RenderService, report: Report, progress: Progress):
        self.store, self.slot, self.report, self.progress = store, slot, report, progress
        self.pending: deque[Render] = deque()

    @property
    def window(self) -> int:
        """Jobs kept submitted: read after each submit, since the first may start the replicas."""
        return self.slot.ahead

    def add(self, render: Render) -> None:
        with self._or_cancel():
            render.started = time.perf_counter()
            render.job = self.slot.submit(render.request, lineage=render.lineage)
            self.pending.append(render)
            while len(self.pending) >= self.window:
                self.finish(self.pending.popleft())

    def drain(self) -> None:
        """Write every image still in flight (Ctrl-C or a full disk cancels the rest)."""
        with self._or_cancel():
            while self.pending:
                self.finish(self.pending.popleft())

    def collect(self) -> None:
        """Write the images whose jobs have ended, without waiting for the others."""
        with self._or_cancel():
            for render in [r for r in self.pending if r.job.is_final]:
                self.pending.remove(render)
                self.finish(render)

    @contextmanager
    def _or_cancel(self) -> Iterator[None]:
        """Whatever stops the stage (Ctrl-C, a full disk, the replicas not starting) cancels what is in flight."""
        try:
            yield
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        for render in self.pending:
            self.slot.cancel(render.job.id)
        self.pending.clear()

    def finish(self, render: Render) -> None:
        """Wait for one image, write its file atomically, then record it."""
        from imagegen.png_files import write_png

        try:
            [image] = self.slot.wait(render.job)
            path = write_png(image, self.store.home / IMAGES / image_path(*render.entry, render.key))
        except StorageError:  # a full disk or a read-only home fails every item alike: the run stops here
            raise
        except KeyartError as exc:
            self.report.images.failed += 1
            self.store.fail([render.entry], stage="render", error=str(exc))
            self.progress.step("render", "failed", render.label, str(exc))
            return
        job = render.job
        seconds = job.finished - job.started if job.started and job.finished else time.perf_counter() - render.started
        self.store.save_image(
            render.key, entry=render.entry, prompt_key=render.prompt_key, path=path, seed=image.seed, engine=self.slot.name, model=self.slot.model,
            request=image.request.to_dict(), seconds=seconds,
        )  # fmt: skip
        self.report.images.done += 1
        self.report.images.seconds += seconds
        self.progress.step("render", "done", render.label)
