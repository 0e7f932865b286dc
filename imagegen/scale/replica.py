"""One render replica: a Ray Serve deployment holding its loaded engine, on the GPU Ray gave it.

`render` streams events back to the driver: ("progress", done, total) after each step, then
("images", [[packed image, ...] per request]) or ("error", KeyartError). A cancelled stream (the
driver's job was cancelled) stops the pipeline at its next step. Imported only on --ray.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray
from ray import serve

from ..errors import KeyartError, RenderFailed
from . import wire

log = logging.getLogger(__name__)


class _Stopped(BaseException):
    """Raised from the step callback once the driver has gone: a BaseException, so no `except
    Exception` between the callback and here swallows it (as the queue's own cancel)."""


class Renderer:
    """An engine made once per replica; one render at a time (max_ongoing_requests=1)."""

    def __init__(self, engine: str, settings: Any, options: dict[str, Any]):
        from ..engines import create_engine
        from ..settings import configure

        configure(settings)  # the extra style files and the hash cache, as the driver's
        if engine == "sdxl":  # the loading bars of every replica would interleave on the driver's terminal
            from diffusers.utils import logging as diffusers_logging
            from transformers.utils import logging as transformers_logging

            diffusers_logging.disable_progress_bar()
            transformers_logging.disable_progress_bar()
        self.engine = create_engine(engine, settings, **options)
        context = ray.get_runtime_context()
        self.replica = context.get_actor_name() or context.get_actor_id()
        self.node = ray.util.get_node_ip_address()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="keyart-replica")  # the engine's own thread, call after call

    def describe(self) -> dict[str, Any]:
        """What the driver shows and keys the catalog by: the engine's names, and where it runs."""
        return {
            "name": self.engine.name, "model_name": self.engine.model_name, "refiner_name": getattr(self.engine, "refiner_name", None),
            "replica": self.replica, "node": self.node,
        }  # fmt: skip

    async def render(self, payload: dict[str, Any]):
        """Render the requests of `payload` in one engine call; stream progress, then the images."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()  # set when the driver cancels the stream or goes away

        def progress(done: int, total: int) -> None:
            if gone.is_set():
                raise _Stopped
            loop.call_soon_threadsafe(events.put_nowait, ("progress", done, total))

        def work() -> None:
            try:
                event = ("images", self._render(payload, progress))
            except _Stopped:
                return
            except KeyartError as exc:
                event = ("error", exc)
            except Exception as exc:  # a bug or the device (out of memory): the job fails in words, the traceback stays here
                log.exception("render failed on replica %s", self.replica)
                event = ("error", RenderFailed(f"the render failed on replica {self.replica}: {type(exc).__name__}: {exc}"))
            loop.call_soon_threadsafe(events.put_nowait, event)

        running = loop.run_in_executor(self.pool, work)
        try:
            while True:
                event = await events.get()
                yield event
                if event[0] != "progress":
                    break
        finally:
            gone.set()  # a cancelled stream lands here: the pipeline stops at its next step
            if not running.done():
                await asyncio.shield(running)  # the engine's thread is free before the next request starts

    def _render(self, payload: dict[str, Any], progress: Any) -> list[list[dict[str, Any]]]:
        scratch = Path(tempfile.mkdtemp(prefix="keyart-replica-"))
        try:
            requests = [wire.unpack_request(p, scratch) for p in payload["requests"]]
            where = {"replica": self.replica, "node": self.node, "attempt": payload["attempt"], "batch": len(requests)}
            lineages = [{**(lineage or {}), "ray": where} for lineage in payload["lineages"]]
            if len(requests) == 1:
                outputs = [self.engine.render(requests[0], lineage=lineages[0], progress=progress)]
            elif hasattr(self.engine, "render_batch"):
                outputs = self.engine.render_batch(requests, lineages=lineages, progress=progress)
            else:
                outputs = [self.engine.render(r, lineage=lin, progress=progress) for r, lin in zip(requests, lineages)]
            return [wire.pack_images(images) for images in outputs]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def deployment(**options: Any):
    """The Renderer as a Serve deployment with `options` (replicas, resources, autoscaling)."""
    return serve.deployment(Renderer, max_ongoing_requests=1, logging_config={"log_level": "WARNING"}, **options)
