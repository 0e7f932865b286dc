"""The bridge from an HTTP request to the render queue: submit, await the job without blocking the
event loop, and cancel it when the client goes away.

What happens when a client disconnects: the route notices within DISCONNECT_POLL_S, cancels its job
(a queued one leaves the queue at once, a running one stops at its next denoising step, with the
other jobs of its batch running on), and the images, if any were made, are dropped: the service
keeps no images on disk (jobs run with `output=None`, their images handed to the route in memory).
A job that outlives `Limits.wait_s` is cancelled the same way and answered 422.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..errors import InvalidRequest
from ..queue import QueueClosed, QueueFull, RenderQueue
from ..request import RenderedImage, RenderRequest
from .errors import ApiError, ClientGone, bad_field
from .limits import Limits

log = logging.getLogger(__name__)

DISCONNECT_POLL_S = 0.25  # how often a waiting route asks whether its client is still there


def build(make: Callable[[], RenderRequest], cleanup: Callable[[], None] | None = None) -> RenderRequest:
    """The RenderRequest `make()` builds from a route's fields; its InvalidRequest is the caller's 400
    naming the field. `cleanup` (an edit's temp files) runs if it fails, as nothing will queue them."""
    try:
        return make()
    except BaseException as exc:
        if cleanup is not None:
            cleanup()
        if isinstance(exc, InvalidRequest):
            raise bad_field(exc) from exc
        raise


async def render(
    queue: RenderQueue, request: RenderRequest, http: Any, limits: Limits, *, owner: str = "",
    lineage: dict[str, Any] | None = None, cleanup: Callable[[], None] | None = None,
) -> list[RenderedImage]:  # fmt: skip
    """The images of `request`, rendered through `queue`; `http` is the Starlette request (for
    is_disconnected). `cleanup` runs once the job is final (temp files of an edit), in any case.

    Before the job is queued, a full queue is a 429 with Retry-After. After, nothing answers 5xx,
    429 or 408 (the OpenAI SDK would retry those as a new render): a failed or cancelled job is a 422.
    """
    loop = asyncio.get_running_loop()
    finished: asyncio.Future = loop.create_future()
    images: list[RenderedImage] = []

    def on_result(_job, rendered: list[RenderedImage]) -> None:
        images.extend(rendered)

    def on_progress(job) -> None:  # in the worker thread; a job's final report comes from the delivery thread
        if job.is_final:
            if cleanup is not None:
                cleanup()
            loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(job))

    # 1. Queue it, or say when to come back.
    try:
        job = queue.submit(request, owner=owner, lineage=lineage, output=None, on_result=on_result, on_progress=on_progress)
    except QueueFull as exc:
        if cleanup is not None:
            cleanup()
        wait = limits.retry_after(exc.retry_after)
        raise ApiError(429, f"{exc}; Retry-After: {wait} s", type="rate_limit_error", code="queue_full", headers={"Retry-After": str(wait)}) from exc
    except QueueClosed as exc:
        if cleanup is not None:
            cleanup()
        raise ApiError(503, f"{exc}: the server is shutting down", type="server_error", code="shutting_down") from exc
    # 2. Wait for it, watching the client and the clock.
    deadline = loop.time() + limits.wait_s
    try:
        while not finished.done():
            await asyncio.wait({finished}, timeout=DISCONNECT_POLL_S)
            if finished.done():
                break
            if await http.is_disconnected():
                _cancel(queue, job.id)
                log.info("job %s cancelled: its client disconnected", job.id)
                raise ClientGone(f"job {job.id}: the client disconnected")
            if loop.time() > deadline:
                _cancel(queue, job.id)
                raise ApiError(422, f"the render took longer than this server's {limits.wait_s:g} s limit and was cancelled; ask for fewer images or steps", code="render_timeout")
    except asyncio.CancelledError:  # the server is stopping under this route: nobody will read the images
        _cancel(queue, job.id)
        raise
    # 3. Its images, or why there are none.
    job = finished.result()
    if job.state == "done":
        return sorted(images, key=lambda i: i.index)
    if job.state == "cancelled":
        raise ApiError(422, "the render was cancelled on the server before it finished", code="job_cancelled")
    status = 400 if isinstance(job.exception, ValueError) else 422
    raise ApiError(status, f"the render failed: {job.error}", code="render_failed")


def _cancel(queue: RenderQueue, job_id: str) -> None:
    try:
        queue.cancel(job_id)
    except QueueClosed:
        pass  # closing with cancel=True stops the job anyway
