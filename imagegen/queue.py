"""The render queue: jobs wait in a bounded queue, highest priority first, then in arrival order;
one worker thread per device holds its engine, runs them, and batches compatible text-to-image jobs
into one pipeline call (queue_worker, which renders a batch that runs out of memory in parts); a
delivery thread per worker saves the PNGs and calls back (queue_delivery), so the device goes on to
the next job. State lives in SQLite in the home (queue_store), so a restarted process lists it.

After a restart, queued jobs are queued again, in their old order; jobs that were running are marked
failed ("interrupted: the process stopped..."): the job that was running when a process died may be
what killed it (out of memory), so it is not retried blindly. Submit it again to retry it.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from .errors import InvalidRequest, KeyartError
from .animation import AnimationRequest
from .queue_delivery import Courier, Deliveries
from .queue_store import ANIMATION, FINAL, STATES, Job, OnProgress, OnResult, QueueInUse, QueueStore
from .queue_worker import Worker, WorkerLoop, batch_key
from .request import RenderRequest

log = logging.getLogger(__name__)

__all__ = [
    "FINAL", "STATES", "Job", "JobNotFound", "NotYourJob", "QueueClosed", "QueueFull", "QueueInUse", "RenderQueue", "batch_key",
]  # fmt: skip

MAX_QUEUED = 64
# Images per pipeline call: a batch's memory grows with each image; 4 SDXL images at 1024x1024 fit a
# 24 GB GPU in fp16, and where fewer fit a worker learns it (a batch out of memory renders in halves).
# Not more by default: the image server sizes a single job's batch by this, which no split can make
# smaller; on a larger GPU `serve --max-batch` raises it (bench/engine.py --full measures batch 8).
MAX_BATCH = 4
RECENT_RUNS = 16  # runs averaged for retry_after: enough to smooth one odd job, few enough to follow a change of sizes
FIRST_GUESS_S = 30.0  # retry_after before any run finished: the engine's load plus a first SDXL render
MIN_RETRY_S = 1.0  # HTTP's Retry-After counts whole seconds
RENDERS = "renders"  # the default folder for jobs' PNGs, under the home
ANIMATIONS = "animations"  # the default folder of animation jobs, one folder each, under the home
INTERRUPTED = "interrupted: the process stopped while this job was running; submit it again to retry"
CALLBACK_LOST = (
    "interrupted: the process stopped before this job ran, and the callback that was to take its images "
    "went with it; submit it again"
)


# -- errors -------------------------------------------------------------------------------------


class QueueFull(KeyartError):
    """The queue already holds max_queued waiting jobs; `retry_after` estimates the seconds until a place frees."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class JobNotFound(KeyartError):
    """A job id this queue (and its home) never had."""


class NotYourJob(KeyartError):
    """An owner acting on someone else's job."""


class QueueClosed(KeyartError):
    """Work asked of a queue after close()."""


def _order(job: Job) -> tuple[int, int]:
    return -job.priority, job.seq  # higher priority first, then arrival


# -- the queue ----------------------------------------------------------------------------------


class RenderQueue(WorkerLoop, Deliveries):
    """A bounded, prioritised render queue with its state in `home / "queue.sqlite"`.

    `engine` is an engine, a zero-argument factory (called once, in the worker thread, when the
    first job arrives), or a list of them: one worker thread each, one per device. One queue per
    home at a time (QueueInUse otherwise). Use it as a context manager, or call close().
    """

    def __init__(self, engine: Any, home: str | Path, *, max_queued: int = MAX_QUEUED, max_batch: int = MAX_BATCH):
        # 1. Check the settings before the home is touched.
        sources = list(engine) if isinstance(engine, (list, tuple)) else [engine]
        if not sources or not all(hasattr(s, "render") or callable(s) for s in sources):
            raise TypeError(f"RenderQueue takes an engine, an engine factory or a list of them (got {engine!r})")
        for name, value in (("max_queued", max_queued), ("max_batch", max_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequest(f"{name} must be a whole number of at least 1 (got {value!r})")
        self.home = Path(home).expanduser().absolute()  # stored paths must hold from any working directory
        self.max_queued = max_queued
        self.max_batch = max_batch
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified on every change of any job
        self._durations: deque[float] = deque(maxlen=RECENT_RUNS)
        self._closing = self._closed = False
        self._jobs: dict[str, Job] = {}
        self._queued: list[Job] = []  # kept in _order
        # 2. Hold the home, and apply the restart policy to what the last process left.
        self._store = QueueStore(self.home)
        self._recover(self._store.load())
        self._next_seq = self._store.next_seq()
        # 3. One worker thread per engine, each with its delivery thread; daemons, so a forgotten close() never hangs the exit.
        self._workers = [Worker(s) for s in sources]
        for i, worker in enumerate(self._workers):
            worker.courier = Courier(self._deliver_each, name=f"keyart-deliver-{i}")
            worker.thread = threading.Thread(target=self._work, args=(worker,), name=f"keyart-render-{i}", daemon=True)
            worker.thread.start()

    # -- submitters' side ---------------------------------------------------------------------

    def submit(
        self,
        request: RenderRequest | AnimationRequest,
        *,
        priority: int = 0,
        owner: str = "",
        lineage: dict[str, Any] | None = None,
        output: str | Path | None = None,
        on_result: OnResult | None = None,
        on_progress: OnProgress | None = None,
    ) -> Job:
        """Queue `request` and return its Job at once; QueueFull when max_queued jobs are waiting.

        Higher `priority` runs first (0 by default; negative runs after); equal priorities run in
        arrival order. The images are written as PNGs with their metadata to `output` (default
        `home/renders`) as `<job id>-<index>.png`; with `on_result` and no `output`, only
        `on_result(job, images)` gets them. `lineage` goes to the engine's keyart chunk. The
        callbacks run in the queue's threads: `on_progress(job)` in the worker thread after every
        step; once the images are made, the worker's delivery thread writes them, then calls
        `on_result` and `on_progress` as the job ends (the worker renders the next job meanwhile).

        An AnimationRequest is one job too (imagegen.animate): its progress counts frames, a cancel
        stops it between frames, `output` is its folder (default `home/animations/<job id>`), its
        results are the MP4, GIF and sidecar, and `on_result(job, animation)` gets the Animation.
        Its seed is resolved here, so a restarted queue renders the same frames.
        """
        # 1. Validate, so that nothing unrunnable is stored.
        if not isinstance(request, (RenderRequest, AnimationRequest)):
            raise InvalidRequest(f"the queue takes a RenderRequest or an AnimationRequest (got {type(request).__name__})")
        animation = isinstance(request, AnimationRequest)
        if animation and request.seed < 0:
            import random

            from .request import MAX_SEED

            request = request.replace(seed=random.randint(0, MAX_SEED))
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidRequest(f"priority must be a whole number, higher first (got {priority!r})")
        if not isinstance(owner, str):
            raise InvalidRequest(f"owner must be text: a session or user id (got {owner!r})")
        if lineage is not None:
            try:
                lineage = json.loads(json.dumps(lineage))  # a copy, and proof it can be stored
            except (TypeError, ValueError) as exc:
                raise InvalidRequest(f"lineage must be a JSON object (text, numbers, lists, dicts): {exc}") from exc
            if not isinstance(lineage, dict):
                raise InvalidRequest(f"lineage must be a JSON object (got {type(lineage).__name__})")
        job_id = uuid.uuid4().hex
        if animation:
            folder = Path(output).expanduser().absolute() if output is not None else self.home / ANIMATIONS / job_id
        else:
            folder = Path(output).expanduser().absolute() if output is not None else None if on_result else self.home / RENDERS
        # 2. Enqueue, unless the queue is full.
        with self._lock:
            self._check_open()
            if len(self._queued) >= self.max_queued:
                wait = self._retry_after()
                raise QueueFull(f"the render queue is full ({len(self._queued)} jobs waiting); try again in about {math.ceil(wait)} s", wait)
            job = Job(
                id=job_id, request=request, owner=owner, priority=priority, lineage=lineage, output=folder,
                seq=self._next_seq, created=time.time(), on_progress=on_progress, on_result=on_result,
                request_data={ANIMATION: request.to_dict()} if animation else request.to_dict(),
            )  # fmt: skip
            self._store.add(job)
            self._next_seq += 1
            self._jobs[job.id] = job
            bisect.insort(self._queued, job, key=_order)
            self._renumber()
            self._changed.notify_all()
        log.debug("queued job %s (priority %d, owner %r) at position %d", job.id, priority, owner, job.position)
        return job

    def cancel(self, job_id: str, owner: str | None = None) -> Job:
        """Cancel a job: a queued one leaves the queue at once, a running one stops at its next
        denoising step (its state turns to cancelled then). A finished job stays as it is.

        With `owner`, only that owner's own jobs may be cancelled (NotYourJob otherwise).
        """
        with self._lock:
            if self._closed:
                raise QueueClosed(f"the render queue over {self.home} is closed")
            job = self._job(job_id)
            if owner is not None and job.owner != owner:
                raise NotYourJob(f"job {job_id} is not yours (owner {owner!r}); you can cancel only your own jobs")
            ended = job.state == "queued"
            if ended:
                self._queued.remove(job)
                self._renumber()
                self._settle(job, "cancelled")
            elif job.state == "running":
                job.cancel_requested = True
        if ended:
            self._tell(job)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            return self._job(job_id)

    def jobs(self, owner: str | None = None) -> list[Job]:
        """Every job this home has had (or only `owner`'s), in arrival order."""
        with self._lock:
            return sorted((j for j in self._jobs.values() if owner is None or j.owner == owner), key=lambda j: j.seq)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it is done, failed or cancelled; TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            job = self._job(job_id)
            while not job.is_final:
                if self._closing and job.state == "queued":
                    raise QueueClosed(f"the queue was closed; job {job_id} stays queued in {self.home} for the next queue")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"job {job_id} is still {job.state} after {timeout:g} s")
                self._changed.wait(left)
            return job

    @property
    def busy_seconds(self) -> float:
        """Seconds the workers have spent inside engine calls since the queue started, summed over
        the workers (the call in hand counted so far): over a run's wall time, the device's busy share."""
        with self._lock:
            now = time.monotonic()
            return sum(w.busy_s + (now - w.calling if w.calling is not None else 0.0) for w in self._workers)

    def close(self, *, cancel: bool = False) -> None:
        """Stop the workers after the jobs in hand (with cancel=True, stop those at their next step)
        and deliver the images they made.

        Queued jobs stay queued in the home, for the next queue over it. Calling it again does nothing.
        """
        if any(threading.current_thread() in (w.thread, w.courier.thread) for w in self._workers):
            raise RuntimeError("close() from a job's callback would wait for itself; close the queue from another thread")
        with self._lock:
            if self._closing:
                return
            self._closing = True
            for job in self._jobs.values():
                job.cancel_requested |= cancel and job.state == "running"
            self._changed.notify_all()
        for worker in self._workers:
            worker.thread.join()
            worker.courier.close()  # the images already made are saved and handed over before the store closes
        with self._lock:
            self._store.close()
            self._closed = True
            self._changed.notify_all()

    def __enter__(self) -> RenderQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- bookkeeping (callers hold the lock) ----------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise QueueClosed(f"the render queue over {self.home} is closed")

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} in the render queue over {self.home}")
        return job

    def _renumber(self) -> None:
        for position, job in enumerate(self._queued):
            job.position = position

    def _settle(self, job: Job, state: str, error: str | None = None) -> None:
        """Give `job` its final state, store it, and wake the waiters."""
        job.error = error
        job.position = None
        job.finished = time.time()
        job.state = state  # last: a reader that sees the final state sees the rest too
        self._store.save([job])
        self._changed.notify_all()

    def _recover(self, jobs: list[Job]) -> None:
        """The restart policy: queued jobs queue again; running ones (and ones that cannot run) fail."""
        failed = []
        for job in jobs:
            self._jobs[job.id] = job
            if job.is_final:
                continue
            reason = job.error if job.request is None else INTERRUPTED if job.state == "running" else CALLBACK_LOST if job.output is None else None
            if reason is None:
                self._queued.append(job)
                continue
            job.state, job.error, job.position, job.finished = "failed", reason, None, time.time()
            failed.append(job)
        self._store.save(failed)
        self._queued.sort(key=_order)
        self._renumber()
        if jobs:
            log.info("render queue over %s: %d job(s) queued again, %d marked failed", self.home, len(self._queued), len(failed))

    def _retry_after(self) -> float:
        """Seconds until a place is likely to free: the mean of recent runs, less what the
        soonest-finishing worker has already spent on the run in hand."""
        typical = sum(self._durations) / len(self._durations) if self._durations else FIRST_GUESS_S
        now = time.monotonic()
        left = [typical - (now - w.busy_since) if w.busy_since is not None else 0.0 for w in self._workers]
        return round(max(min(left), MIN_RETRY_S), 1)

    def _tell(self, job: Job) -> None:
        """Call the job's on_progress (outside the lock); a broken display must not stop a render.

        A final job is told once, and its callbacks are let go of then: the queue keeps every job it
        has had, and a callback's closure may hold the job's images (a server route's do).
        """
        callback = job.on_progress
        if job.is_final:
            with self._lock:
                job.on_progress = job.on_result = None
        if callback is None:
            return
        try:
            callback(job)
        except Exception:  # the submitter's code: logged with its traceback, then no longer called
            log.exception("job %s: on_progress failed; it will not be called again", job.id)
            job.on_progress = None
