"""The render queue's worker side: one thread per device holding its engine, the batching rule
(`batch_key`), one engine call per group of jobs (in parts when a group runs out of memory),
cancellation at the next denoising step, and the results handed to the delivery thread (queue_delivery).

`WorkerLoop` is part of `imagegen.queue.RenderQueue`, which supplies the lock, the queued jobs,
the store and the bookkeeping (`_settle`, `_renumber`, `_tell`) it uses; `Deliveries` is the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .animation import AnimationRequest
from .errors import KeyartError, OutOfMemory, RenderFailed
from .prompt_syntax import extract_loras
from .queue_delivery import Courier, message
from .queue_store import Job
from .request import RenderedImage, RenderRequest

log = logging.getLogger(__name__)

ENGINE_RETRY_S = 30.0  # after the engine fails to start, how long jobs fail with that error before it is tried again


class _Cancelled(BaseException):
    """Raised from the step callback to stop a pipeline call whose jobs were all cancelled.

    A BaseException, as asyncio's CancelledError is, so no `except Exception` on its way out of
    diffusers or the engine swallows it.
    """


def batch_key(request: RenderRequest) -> tuple | None:
    """What must match for requests to share one pipeline call; None for a request never batched.

    Text to image only, one batch each (batch_count 1), no variation seed or control units. Size, steps, sampler,
    schedule, CFG, refiner, hires fix, tiling and FreeU are the call's; the prompts, negative prompts, styles and
    seeds are per image. `<lora:...>` tags must match too: a LoRA is loaded for the whole call.
    """
    if not isinstance(request, RenderRequest):  # an animation: one job, frame after frame
        return None
    if request.mode != "txt2img" or request.batch_count != 1 or request.subseed_strength > 0 or request.controls or request.reference or request.styled_blend:
        return None
    try:
        loras = tuple(sorted((t.name, t.te_weight, t.unet_weight) for t in extract_loras(request.styled[0])[1]))
    except KeyartError:  # a malformed tag: the engine will say so, for this job alone
        return None
    hires = None
    if request.hr_scale > 1:
        second = request.hr_second_pass_steps or request.num_inference_steps
        hires = (request.hr_scale, request.hr_upscaler, second, request.denoising_strength)
    return (
        "txt2img", request.width, request.height, request.num_inference_steps, request.sampler, request.schedule,
        request.guidance_scale, request.refiner, request.refiner_switch_at, hires, loras, request.tiling, request.freeu,
    )  # fmt: skip


class Worker:
    """One device: where its engine comes from, the engine once made, when its run began, its time
    inside engine calls, the most images per call that fit at each size, and its delivery thread."""

    def __init__(self, source: Any):
        self.source = source
        self.engine = None if isinstance(source, type) or not hasattr(source, "render") else source  # a class is a factory
        self.busy_since: float | None = None  # time.monotonic() of the run in hand
        self.thread: threading.Thread | None = None
        self.courier: Courier | None = None  # the delivery thread: PNGs and result callbacks
        self.failure: tuple[str, float] | None = None  # the last engine error and its time.monotonic()
        self.calling: float | None = None  # time.monotonic() when the engine call in hand began
        self.busy_s = 0.0  # seconds spent inside engine calls (failed ones too: the device was busy)
        self.fits: dict[tuple[int, int], int] = {}  # output size -> most images per call, learnt when more ran out of memory


class WorkerLoop:
    """The worker threads' loop, mixed into RenderQueue."""

    def _work(self, worker: Worker) -> None:
        while True:
            # 1. Wait for a job, or for close().
            with self._lock:
                while not self._queued and not self._closing:
                    self._changed.wait()
                if self._closing:
                    return
            # 2. The engine: made once, here in its worker thread, when the first job arrives. Within
            # ENGINE_RETRY_S of a failure, jobs fail with its error at once rather than each paying for
            # another try (a server that is down costs its retries once, not once per catalog image).
            if worker.engine is None and worker.failure is not None and time.monotonic() - worker.failure[1] < ENGINE_RETRY_S:
                self._fail_queued(worker.failure[0])
                continue
            if worker.engine is None:
                try:
                    engine = worker.source()
                    if not hasattr(engine, "render"):
                        raise TypeError(f"the engine factory returned {engine!r}, which has no render()")
                    worker.engine = engine
                except Exception as exc:  # the queued jobs carry the error; a job submitted later tries again
                    if isinstance(exc, KeyartError):  # a setting or a server, said in one line
                        log.error("could not create the engine: %s", exc)
                    else:
                        log.exception("could not create the engine")
                    worker.failure = (f"could not create the engine: {message(exc)}", time.monotonic())
                    self._fail_queued(worker.failure[0])
                    continue
            # 3. The next job, with the queued jobs that can share its pipeline call.
            group = self._take(worker)
            if group:
                self._run(worker, group)

    def _fail_queued(self, error: str) -> None:
        """Fail every job waiting now: each would meet the same engine error, one retry budget at a time."""
        with self._lock:
            failed, self._queued = list(self._queued), []
            self._renumber()
            for job in failed:
                self._settle(job, "failed", error)
        for job in failed:
            self._tell(job)

    def _take(self, worker: Worker) -> list[Job]:
        """Move the first queued job, and up to max_batch images of jobs compatible with it (fewer
        where a larger batch of that size ran out of memory on this worker), to running."""
        with self._lock:
            if self._closing or not self._queued:
                return []
            group = [self._queued.pop(0)]
            key = batch_key(group[0].request) if hasattr(worker.engine, "render_batch") else None
            limit = min(self.max_batch, worker.fits.get(group[0].request.output_size, self.max_batch)) if key is not None else 1
            images = getattr(group[0].request, "batch_size", 1)
            for job in list(self._queued) if key is not None else []:
                if images >= limit:
                    break
                if batch_key(job.request) == key and images + job.request.batch_size <= limit:
                    self._queued.remove(job)
                    group.append(job)
                    images += job.request.batch_size
            started = time.time()
            for job in group:
                job.position, job.started, job.state = None, started, "running"
            self._renumber()
            self._store.save(group)
            worker.busy_since = time.monotonic()
            self._changed.notify_all()
        return group

    def _run(self, worker: Worker, group: list[Job]) -> None:
        """Render `group` (in parts, if it runs out of memory together) and hand each job's images,
        or its error, to the worker's delivery thread."""
        if isinstance(group[0].request, AnimationRequest):
            self._animate(worker, group[0])
            return
        for job in group:
            self._tell(job)
        began = time.monotonic()
        rendered = self._render(worker, group)
        with self._lock:
            worker.busy_since = None
            if rendered:
                self._durations.append(time.monotonic() - began)

    def _render(self, worker: Worker, group: list[Job], ceiling: list[int] | None = None) -> bool:
        """One engine call for `group`, its results handed to the delivery thread; whether it made images.

        Several jobs that run out of memory together are rendered in halves, each the same way
        (`ceiling` holds the fewest images that ran out of memory in this group, so a part as large
        is split without trying); the most images a part then rendered is this worker's limit at that size.
        """
        # 1. The call, unless as many images already ran out of memory.
        count = sum(j.request.batch_size for j in group)
        if len(group) > 1 and ceiling is not None and count >= ceiling[0]:
            return self._split(worker, group, ceiling)
        outputs, error = None, None
        try:
            outputs = self._call(worker, group)
        except _Cancelled:
            pass
        except OutOfMemory as exc:
            if len(group) == 1:  # nothing left to split: the job fails with the engine's words
                error = self._failure(group, exc)
            else:
                # 2. Out of memory together: in halves, the limit at this size starting again from one image.
                size = group[0].request.output_size  # a batch is text to image: no file to read for it
                log.warning("out of memory rendering %d images (%d jobs) at %dx%d in one call; rendering them in parts", count, len(group), *size)
                worker.fits[size] = 1
                if ceiling is None:
                    ceiling = [count]
                ceiling[0] = min(ceiling[0], count)  # in place: the rest of the split sees it
                return self._split(worker, group, ceiling)
        except Exception as exc:  # the worker outlives any one job: the message goes to the job, the traceback to the log
            error = self._failure(group, exc)
        if outputs is not None and ceiling is not None and count > worker.fits.get(size := group[0].request.output_size, 0):
            worker.fits[size] = count
            log.info("at most %d images per call at %dx%d on this device from now on: %d ran out of memory", count, *size, ceiling[0])
        # 3. The delivery thread saves the images (or records the end) while this one takes the next job.
        worker.courier.send(list(zip(group, outputs or [None] * len(group), [error] * len(group))))
        return outputs is not None

    def _split(self, worker: Worker, group: list[Job], ceiling: list[int]) -> bool:
        half = len(group) // 2
        first = self._render(worker, group[:half], ceiling)
        return self._render(worker, group[half:], ceiling) or first

    def _call(self, worker: Worker, group: list[Job]) -> list[list[RenderedImage]]:
        """The engine call: render() for one job, render_batch() for several, with one step callback
        for them all (every job's progress, and a stop once all are cancelled)."""

        def progress(done: int, total: int) -> None:
            with self._lock:
                live = [j for j in group if j.state == "running" and not j.cancel_requested]
                ended = [j for j in group if j.state == "running" and j.cancel_requested]
                for job in ended:
                    self._settle(job, "cancelled")
                for job in live:
                    job.progress = (done, total)
                self._store.save(live)
                self._changed.notify_all()
            for job in ended + live:
                self._tell(job)
            if not live:
                raise _Cancelled

        if all(j.cancel_requested for j in group):  # a part whose jobs were all cancelled while another part rendered
            raise _Cancelled
        with self._engine_call(worker):
            if len(group) == 1:
                outputs = [worker.engine.render(group[0].request, lineage=group[0].lineage, progress=progress)]
            else:
                outputs = worker.engine.render_batch([j.request for j in group], lineages=[j.lineage for j in group], progress=progress)
        if len(outputs) != len(group):
            raise RenderFailed(f"the engine returned {len(outputs)} results for a batch of {len(group)} jobs")
        return outputs

    @contextmanager
    def _engine_call(self, worker: Worker) -> Iterator[None]:
        """Count the time inside the block as the worker's busy time (RenderQueue.busy_seconds)."""
        with self._lock:
            worker.calling = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                worker.busy_s += time.monotonic() - worker.calling
                worker.calling = None

    @staticmethod
    def _failure(group: list[Job], exc: Exception) -> str:
        """A failed call's message for its jobs (a bug's traceback to the log); each job keeps the exception."""
        if not isinstance(exc, KeyartError):
            log.exception("render of job(s) %s failed", ", ".join(j.id for j in group))
        for job in group:
            job.exception = exc  # for a submitter in this process that wants the error's own type
        return message(exc)

    def _animate(self, worker: Worker, job: Job) -> None:
        """Render an animation job frame after frame into its folder; a cancel stops it between frames."""
        from .animate import Cancelled, animate

        class Stop:  # animate's stop event, read between frames: the job's cancel
            @staticmethod
            def is_set() -> bool:
                return job.cancel_requested

        def progress(done: int, total: int) -> None:
            with self._lock:
                job.progress = (done, total)
                self._store.save([job])
                self._changed.notify_all()
            self._tell(job)

        self._tell(job)
        made, error, began = None, None, time.monotonic()
        try:
            with self._engine_call(worker):
                made = animate(worker.engine, job.request, job.output, progress=progress, stop=Stop())
        except Cancelled:
            pass
        except Exception as exc:  # as in _run: the message to the job, a bug's traceback to the log
            if not isinstance(exc, KeyartError):
                log.exception("animation job %s failed", job.id)
            error, job.exception = message(exc), exc
        finally:
            with self._lock:
                worker.busy_since = None
                if made is not None:
                    self._durations.append(time.monotonic() - began)
        with self._lock:
            if made is None:
                self._settle(job, "cancelled" if error is None else "failed", error)
            else:
                job.results = [made.video, made.gif, made.sidecar]
        if made is not None:
            error = self._hand_over(job, made)
            with self._lock:
                self._settle(job, "done" if error is None else "failed", error)
        self._tell(job)
