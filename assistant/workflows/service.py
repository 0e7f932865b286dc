"""The one road to the image engine: a RenderService holds the engine (loaded on first use) behind
imagegen's render queue, and every workflow renders through it.

Front ends make one service per engine and home (the dashboard one per process, shared by every
session), submit with an owner, and read a job's place in the queue and its progress; the
workflows write the images where they belong. Renders from several sessions never overlap on one
engine: one queue worker runs them, batching compatible text-to-image jobs.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from imagegen import KeyartError, RenderedImage, RenderFailed, RenderRequest
from imagegen.engines import ENGINES, MODEL_ENV, REFINER_ENV, VAE_ENV, Choice, check_request, choose, create_engine, describe, spec
from imagegen.scale import ScaleOptions
from imagegen.settings import ImageSettings

AUTO_RULE = describe()[0][1]  # what auto picks, in words: for --help

__all__ = ["AUTO_RULE", "ENGINES", "MODEL_ENV", "REFINER_ENV", "VAE_ENV", "Cancelled", "Choice", "RenderService", "choose", "locate_model", "locate_vae"]

log = logging.getLogger(__name__)

QUEUES = "queues"  # under the home: one render queue's state per front end ("dashboard", "dataprep", ...)
POLL_S = 0.2  # how often a waiting caller looks at its stop event
StepProgress = Callable[[int, int], None]  # (steps done, steps in all), as engines report them


def locate_model(value: str, variable: str = MODEL_ENV):
    """Where an SDXL model setting points (a folder, a file or a hub id), checked, loading nothing."""
    from imagegen.engines.sdxl_load import locate

    return locate(value, variable=variable)


def locate_vae(value: str):
    """Where the VAE setting points (a folder, a file or a hub id), checked, loading nothing."""
    from imagegen.engines.sdxl_load import locate_vae

    return locate_vae(value, variable=VAE_ENV)


class Cancelled(KeyartError):
    """A render the caller stopped (a Stop button, Ctrl-C) before it finished."""


class RenderService:
    """An image engine, loaded on first use, and the render queue in front of it.

    Pass an engine to use it as it is (tests), or a name, the image settings (model paths, device,
    LoRA folder...; from the entry point's Settings) and options for imagegen's factory (resolved
    now, loaded when the first job runs). `home` keeps the queue's state in `home/queues/<front>`;
    without one it lives in a temporary folder for this process.
    """

    def __init__(
        self, engine: Any = None, *, name: str = "auto", settings: ImageSettings | None = None, options: dict[str, Any] | None = None,
        home: str | Path | None = None, front: str = "renders", max_queued: int = 64, max_batch: int = 4, scale: ScaleOptions | None = None,
        announce: Callable[[str], None] | None = None,
    ):  # fmt: skip
        self._engine = engine
        self._scale = scale  # render on Ray replicas instead of a local engine (imagegen.scale)
        self._replicas = None
        self._announce = announce  # told, in a line each, when the replicas start and where they run
        self._front = front
        self._settings = settings if settings is not None else ImageSettings()  # nothing configured: preview cards
        self._options = options or {}
        self._queue_home = Path(home) / QUEUES / front if home is not None else None
        self._limits = {"max_queued": max_queued, "max_batch": max_batch}
        self._lock = threading.Lock()
        self._queue = None
        self._describer = None
        self._ip_adapter = self._settings.ip_adapter
        if engine is not None:
            self.name, self.model, self.refiner = engine.name, engine.model_name, getattr(engine, "refiner_name", None)
            self.vae = getattr(engine, "vae_name", None)
            self._ip_adapter = getattr(getattr(engine, "adapter", None), "path", None)  # the sdxl engine's IP-Adapter, when it has one
            self.reason = "given"
            return
        choice = choose(name, settings=self._settings, **self._options)  # validates name, options and configuration, loading nothing
        self.name, self.reason = choice.name, choice.reason
        if scale is not None:
            from imagegen.scale import check_engine

            check_engine(self.name)
        self.model, self.refiner, self.vae = "keyart-preview", None, None
        if choice.name == "sdxl":
            self.model = locate_model(self._settings.sdxl_model).name
            refiner, vae = self._settings.sdxl_refiner, self._settings.sdxl_vae
            self.refiner = locate_model(refiner, REFINER_ENV).name if refiner else None
            self.vae = locate_vae(vae).name if vae else None

    def identity(self, refiner: str) -> str:
        """The engine as image keys see it: which model, the refiner when it will run, and a VAE in
        place of the model's own (it changes every pixel, so a new one renders the catalog again)."""
        uses_refiner = self.refiner is not None and refiner != "off"
        return f"{self.name}:{self.model}" + (f"+{self.refiner}" if uses_refiner else "") + (f"/vae:{self.vae}" if self.vae else "")

    @property
    def _check_settings(self) -> ImageSettings | None:
        """The settings a request check reads for models: none for an engine given ready-made (it holds its models)."""
        return None if self.reason == "given" else self._settings

    def takes(self, feature: str) -> bool:
        """Whether this engine honours `feature` (imagegen.engines.FEATURES: "img2img", "reference", ...)
        as configured: a reference image also needs the IP-Adapter weights (KEYART_IP_ADAPTER)."""
        if feature not in spec(self.name).supports:
            return False
        return feature != "reference" or bool(self._ip_adapter)

    def describer(self):
        """The image-to-prompt models of these settings (imagegen.describe), made once and shared: they load on first use."""
        with self._lock:
            if self._describer is None:
                from imagegen.describe import Describer

                self._describer = Describer.from_settings(self._settings)
            return self._describer

    # -- the queue ----------------------------------------------------------------------------

    def engine(self) -> Any:
        """The loaded engine (loading it now if need be); the queue's worker calls this once."""
        with self._lock:
            if self._engine is None:
                log.info("loading the %s engine (%s)", self.name, self.reason)
                self._engine = create_engine(self.name, settings=self._settings, **self._options)
            return self._engine

    @property
    def max_batch(self) -> int:
        return self._limits["max_batch"]

    @property
    def workers(self) -> int:
        """Render calls that run at once: the replicas with --ray (once started), else one."""
        return self._replicas.workers if self._replicas is not None else 1

    @property
    def ahead(self) -> int:
        """How many jobs a caller may keep submitted at once to keep every worker busy without
        changing any image: where the queue never batches jobs (batched images differ from single
        ones in the last bits), two per worker, so each worker's next job waits in the queue while
        the caller saves the last one's images; never more than the queue holds. One where it batches."""
        return min(2 * self.workers, self._limits["max_queued"]) if self.max_batch == 1 else 1

    def start(self) -> str | None:
        """With `scale`, join the Ray cluster and start the replicas now (each loads its engine;
        the first job does this otherwise): a line saying where they run. A local engine loads with
        its first job (None)."""
        if self._scale is None:
            return None
        with self._lock:
            if self._replicas is None:
                import hashlib

                from imagegen.scale import replicas

                where = str(self._queue_home or "")
                app = f"keyart-{self._front}-{hashlib.sha1(where.encode()).hexdigest()[:8]}"  # a rerun over the same home replaces a killed run's
                started = replicas(self._scale, self.name, self._settings, self._options, app=app)
                if self._announce is not None:
                    self._announce("starting the render replicas (each loads the engine)...")
                started.start()
                self._replicas = started
                if self._announce is not None:
                    self._announce(started.where)
            return self._replicas.where

    @property
    def queue(self):
        """The render queue, started on first use (its worker threads, its SQLite state)."""
        if self._scale is not None:
            self.start()
        with self._lock:
            if self._queue is None:
                from imagegen.queue import RenderQueue

                home = self._queue_home or Path(tempfile.mkdtemp(prefix="keyart-queue-"))
                engines = self._replicas.engines() if self._replicas is not None else self.engine
                self._queue = RenderQueue(engines, home, **self._limits)
            return self._queue

    def submit(
        self, request: RenderRequest, *, owner: str = "", priority: int = 0, lineage: dict[str, Any] | None = None,
        progress: StepProgress | None = None,
    ):  # fmt: skip
        """Queue `request`; the returned Job tells its place, progress and state. `wait` gives its images."""
        check_request(self.name, request, settings=self._check_settings)  # a field this engine cannot honour, or a model it lacks, fails now
        images: list[RenderedImage] = []

        def keep(job, rendered) -> None:
            images.extend(rendered)

        def tell(job) -> None:
            if progress is not None and job.state == "running" and job.progress[1]:
                progress(*job.progress)

        job = self.queue.submit(request, owner=owner, priority=priority, lineage=lineage, on_result=keep, on_progress=tell)
        job.images = images  # filled by the worker when the job is done
        return job

    def wait(self, job, *, stop: threading.Event | None = None, timeout: float | None = None) -> list[RenderedImage]:
        """The job's images once it is done; its own error if it failed; Cancelled if it was stopped.

        Setting `stop` cancels the job (at its next step if it runs); Ctrl-C does the same.
        """
        queue = self.queue
        waited = 0.0
        try:
            while not job.is_final:
                if stop is not None and stop.is_set():
                    queue.cancel(job.id)
                try:
                    queue.wait(job.id, timeout=POLL_S)
                except TimeoutError:
                    waited += POLL_S
                    if timeout is not None and waited >= timeout:
                        raise
        except KeyboardInterrupt:
            queue.cancel(job.id)
            raise
        if job.state == "done":
            return list(job.images)
        if job.state == "cancelled":
            raise Cancelled("the render was stopped before it finished")
        if isinstance(job.exception, KeyartError):
            raise job.exception
        raise RenderFailed(job.error or "the render failed")

    def render(
        self, request: RenderRequest, *, owner: str = "", priority: int = 0, lineage: dict[str, Any] | None = None,
        progress: StepProgress | None = None, stop: threading.Event | None = None,
    ) -> list[RenderedImage]:  # fmt: skip
        """Submit and wait: the images of `request`, rendered in turn with everyone else's."""
        return self.wait(self.submit(request, owner=owner, priority=priority, lineage=lineage, progress=progress), stop=stop)

    def animate(
        self, request, folder: str | Path, *, owner: str = "", priority: int = 0, lineage: dict[str, Any] | None = None,
        progress: StepProgress | None = None, stop: threading.Event | None = None, on_job: Callable[[Any], None] | None = None,
    ):  # fmt: skip
        """An animation (imagegen.animation.AnimationRequest) rendered into `folder` as one job of the
        queue: `progress(frames done, frames)`, `stop` cancels it between frames, `on_job(job)` is told
        the job once queued. Returns the Animation."""
        from imagegen.errors import InvalidRequest

        if not self.takes("img2img"):
            raise InvalidRequest(f"the {self.name} engine has no img2img, which every frame after the first needs; use sdxl or preview")
        check_request(self.name, request.frame_request(0, init_image=None), settings=self._check_settings)
        made: list = []

        def tell(job) -> None:
            if progress is not None and job.state == "running" and job.progress[1]:
                progress(*job.progress)

        job = self.queue.submit(request, owner=owner, priority=priority, lineage=lineage, output=folder, on_result=lambda job, a: made.append(a), on_progress=tell)
        job.images = []
        if on_job is not None:
            on_job(job)
        self.wait(job, stop=stop)
        return made[0]

    def cancel(self, job_id: str, owner: str | None = None):
        return self.queue.cancel(job_id, owner=owner)

    def jobs(self, owner: str | None = None) -> list:
        return self.queue.jobs(owner) if self._queue is not None else []

    def close(self, *, cancel: bool = False) -> None:
        """Stop the queue's workers after the jobs in hand (cancel=True: at their next step), then
        remove the Ray replicas, if any."""
        with self._lock:
            queue, self._queue = self._queue, None
            replicas, self._replicas = self._replicas, None
        if queue is not None:
            queue.close(cancel=cancel)
        if replicas is not None:
            replicas.close()
