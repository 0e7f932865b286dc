"""The render queue's worker side: one thread per device holding its engine, the batching rule
(`batch_key`), one engine call per group of jobs, and cancellation at the next denoising step.

`WorkerLoop` is half of `imagegen.queue.RenderQueue`, which supplies the lock, the queued jobs,
the store and the bookkeeping (`_settle`, `_renumber`, `_tell`) it uses.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .animation import AnimationRequest
from .errors import KeyartError, RenderFailed, storage_error
from .metadata import write_png
from .prompt_syntax import extract_loras
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
    schedule, CFG, refiner and hires fix are the call's; the prompts, negative prompts, styles and
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
        request.guidance_scale, request.refiner, request.refiner_switch_at, hires, loras,
    )  # fmt: skip


class Worker:
    """One device: where its engine comes from, the engine once made, and when its run began."""

    def __init__(self, source: Any):
        self.source = source
        self.engine = None if isinstance(source, type) or not hasattr(source, "render") else source  # a class is a factory
        self.busy_since: float | None = None  # time.monotonic() of the run in hand
        self.thread: threading.Thread | None = None
        self.failure: tuple[str, float] | None = None  # the last engine error and its time.monotonic()


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
                    worker.failure = (f"could not create the engine: {_message(exc)}", time.monotonic())
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
        """Move the first queued job, and up to max_batch images of jobs compatible with it, to running."""
        with self._lock:
            if self._closing or not self._queued:
                return []
            group = [self._queued.pop(0)]
            key = batch_key(group[0].request) if hasattr(worker.engine, "render_batch") else None
            images = getattr(group[0].request, "batch_size", 1)
            for job in list(self._queued) if key is not None else []:
                if images >= self.max_batch:
                    break
                if batch_key(job.request) == key and images + job.request.batch_size <= self.max_batch:
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
        """Render `group` in one engine call, then give each job its images or its error."""
        if isinstance(group[0].request, AnimationRequest):
            self._animate(worker, group[0])
            return

        # 1. One step callback for the whole call: every job's progress, and a stop once all are cancelled.
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

        # 2. The engine call: render() for one job, render_batch() for several.
        for job in group:
            self._tell(job)
        began = time.monotonic()
        outputs: list[list[RenderedImage]] | None = None
        error = None
        try:
            if len(group) == 1:
                outputs = [worker.engine.render(group[0].request, lineage=group[0].lineage, progress=progress)]
            else:
                outputs = worker.engine.render_batch([j.request for j in group], lineages=[j.lineage for j in group], progress=progress)
            if len(outputs) != len(group):
                raise RenderFailed(f"the engine returned {len(outputs)} results for a batch of {len(group)} jobs")
        except _Cancelled:
            outputs = None
        except Exception as exc:  # the worker outlives any one job: the message goes to the job, the traceback to the log
            if not isinstance(exc, KeyartError):
                log.exception("render of job(s) %s failed", ", ".join(j.id for j in group))
            outputs, error = None, _message(exc)
            for job in group:
                job.exception = exc  # for a submitter in this process that wants the error's own type
        finally:
            with self._lock:
                worker.busy_since = None
                if outputs is not None:
                    self._durations.append(time.monotonic() - began)
        # 3. Each job: its images saved, or its end (cancelled, failed).
        for job, images in zip(group, outputs or [None] * len(group)):
            self._deliver(job, images, error)

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
            made = animate(worker.engine, job.request, job.output, progress=progress, stop=Stop())
        except Cancelled:
            pass
        except Exception as exc:  # as in _run: the message to the job, a bug's traceback to the log
            if not isinstance(exc, KeyartError):
                log.exception("animation job %s failed", job.id)
            error, job.exception = _message(exc), exc
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

    def _deliver(self, job: Job, images: list[RenderedImage] | None, error: str | None) -> None:
        """Save a job's images and hand them to its callback; or record why it has none.

        A cancel that comes once the images are made is too late: the job is done.
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
            return f"the result callback failed: {_message(exc)}"
        return None


def _message(exc: BaseException) -> str:
    """A KeyartError's own words; anything else with its type, which is most of what it says."""
    return str(exc) if isinstance(exc, KeyartError) else f"{type(exc).__name__}: {exc}"
