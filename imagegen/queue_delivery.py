"""The render queue's delivery side: each worker hands the results of its engine calls to its own
delivery thread, which writes the jobs' PNGs, calls their `on_result` and settles them, so the worker
takes its next job at once and the device never waits for PNG encoding or a submitter's callback.

`Deliveries` is part of `imagegen.queue.RenderQueue` (as `WorkerLoop` is); it uses the
queue's lock and its bookkeeping (`_settle`, `_tell`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import KeyartError, storage_error
from .png_files import write_png
from .queue_store import Job
from .request import RenderedImage

log = logging.getLogger(__name__)

# Engine calls whose results may wait for the delivery thread before the worker waits for it: enough
# to cover one slow PNG write, few enough to bound the images held in memory (4 per call at most, by default).
WAITING = 2

Delivery = tuple[Job, "list[RenderedImage] | None", "str | None"]  # a job, its images (None: none), why it has none


class Courier:
    """One worker's delivery thread, and the engine calls' results waiting for it, in order."""

    def __init__(self, deliver: Callable[[list[Delivery]], None], name: str):
        self._waiting: queue.Queue[list[Delivery] | None] = queue.Queue(maxsize=WAITING)
        self.thread = threading.Thread(target=self._loop, args=(deliver,), name=name, daemon=True)
        self.thread.start()

    def send(self, deliveries: list[Delivery]) -> None:
        """Hand over one engine call's results; this waits while WAITING calls' results are undelivered."""
        self._waiting.put(deliveries)

    def close(self) -> None:
        """Deliver everything handed over, then end the thread. Calling it again does nothing."""
        if self.thread.is_alive():
            self._waiting.put(None)
            self.thread.join()

    def _loop(self, deliver: Callable[[list[Delivery]], None]) -> None:
        while (deliveries := self._waiting.get()) is not None:
            deliver(deliveries)
            del deliveries  # while the thread waits for the next, the last call's images must not stay alive here


class Deliveries:
    """The delivery threads' work, mixed into RenderQueue."""

    def _deliver_each(self, deliveries: list[Delivery]) -> None:
        """Deliver one engine call's results, job after job; a job whose delivery breaks fails alone."""
        for job, images, error in deliveries:
            try:
                self._deliver(job, images, error)
            except Exception as exc:  # a bug, or the queue's own store failing: the job fails in memory, its waiters wake
                log.exception("job %s: its images could not be delivered", job.id)
                with self._lock:
                    if not job.is_final:
                        job.error, job.exception, job.position, job.finished = f"could not deliver the images: {message(exc)}", exc, None, time.time()
                        job.state = "failed"
                    self._changed.notify_all()

    def _deliver(self, job: Job, images: list[RenderedImage] | None, error: str | None) -> None:
        """Save a job's images and hand them to its callback; or record why it has none.

        A cancel that comes once the images are being saved is too late: the job is done. One that
        comes before (while the worker renders the next job) still cancels it: a job runs until delivered.
        """
        # 1. No images: the job was cancelled or failed.
        with self._lock:
            if job.state != "running":  # cancelled at a step while the others in its batch ran on
                return
            if job.cancel_requested or (images is None and error is None):
                self._settle(job, "cancelled")
            elif images is None:
                self._settle(job, "failed", error)
        if job.is_final:
            self._tell(job)
            return
        # 2. The PNGs (atomic writes), then the callback.
        try:
            paths = [write_png(image, job.output / f"{job.id}-{image.index:03d}.png") for image in images] if job.output else []
        except (KeyartError, OSError) as exc:
            error = f"could not save the images: {storage_error(exc, job.output, what='the images folder') if isinstance(exc, OSError) else exc}"
            job.exception = exc
        else:
            with self._lock:
                job.results = paths
            error = self._hand_over(job, images)
        # 3. Done, or failed with the reason.
        with self._lock:
            if error is None:
                total = job.progress[1]
                job.progress = (total, total)  # done is all of it, whatever the last step reported
            self._settle(job, "done" if error is None else "failed", error)
        self._tell(job)

    @staticmethod
    def _hand_over(job: Job, images: Any) -> str | None:
        """Call the job's on_result; its failure is the job's, in words."""
        if job.on_result is None:
            return None
        try:
            job.on_result(job, images)
        except Exception as exc:  # the submitter's code: the job fails with its message
            log.exception("job %s: on_result failed", job.id)
            return f"the result callback failed: {message(exc)}"
        return None


def message(exc: BaseException) -> str:
    """A KeyartError's own words; anything else with its type, which is most of what it says."""
    return str(exc) if isinstance(exc, KeyartError) else f"{type(exc).__name__}: {exc}"
