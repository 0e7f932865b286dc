"""The driver's side of a replica: `RayEngine`, an engine (render, render_batch) whose renders run
on whichever replica of the deployment is free. One per render-queue worker, so the queue keeps as
many calls in flight as there are replicas, batching compatible jobs per call as it does for a
local engine.

A replica that dies mid-render (its node lost, its process killed) has the call sent again, to a
live replica; the seeds are fixed before the first try, so the retry renders the same images, and
only the driver writes them, so nothing is duplicated.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import KeyartError, RenderFailed
from ..request import RenderedImage, RenderRequest
from . import wire

log = logging.getLogger(__name__)

ATTEMPTS = 3  # calls of one render: a replica's death is retried twice; a render that kills every replica it meets is said so


class RayEngine:
    """An engine whose renders go to a Ray Serve deployment of Renderers (handle) named as `described`."""

    def __init__(self, handle: Any, described: dict[str, Any]):
        self.handle = handle
        self.name = described["name"]
        self.model_name = described["model_name"]
        self.refiner_name = described.get("refiner_name")
        self.retries = 0  # calls sent again after a replica died, for logs and tests

    def render(self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Any = None) -> list[RenderedImage]:
        return self.render_batch([request], lineages=[lineage], progress=progress)[0]

    def render_batch(
        self, requests: list[RenderRequest], *, lineages: list[dict[str, Any] | None] | None = None, progress: Any = None
    ) -> list[list[RenderedImage]]:
        """Each request's images, rendered in one call on one replica (retried on another if it dies)."""
        from ray.exceptions import RayActorError

        # 1. Seeds fixed here, so a retry on another replica draws the same images.
        requests = [r.with_seed() for r in requests]
        payload = {"requests": [wire.pack_request(r) for r in requests], "lineages": list(lineages or [None] * len(requests))}
        # 2. The call, again while the replica it lands on dies.
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._call({**payload, "attempt": attempt}, requests, progress)
            except RayActorError as exc:  # died or unreachable: Serve routes the next call to a live replica
                cause = str(exc).splitlines()[0]
                if attempt == ATTEMPTS:
                    raise RenderFailed(f"the render's replica died {ATTEMPTS} times in a row (last: {cause}); the request may be what kills them") from exc
                self.retries += 1
                log.warning("a replica died mid-render (%s); sending the render again (attempt %d of %d)", cause, attempt + 1, ATTEMPTS)
        raise AssertionError("unreachable: the loop returns or raises")

    def _call(self, payload: dict[str, Any], requests: list[RenderRequest], progress: Any) -> list[list[RenderedImage]]:
        stream = self.handle.options(stream=True).render.remote(payload)
        finished = False
        try:
            for event in stream:
                if event[0] == "progress":
                    if progress is not None:
                        progress(event[1], event[2])  # the queue's callback raises to cancel: the stream is cancelled below
                    continue
                finished = True
                if event[0] == "error":
                    error = event[1]
                    raise error if isinstance(error, KeyartError) else RenderFailed(str(error))
                return [wire.unpack_images(packed, request) for packed, request in zip(event[1], requests)]
        finally:
            if not finished:
                stream.cancel()
        raise RenderFailed("the replica ended the render without images or an error")
