"""keyart's own job routes under /keyart/v1: submit a render in RenderRequest's vocabulary, then poll
it, follow it as Server-Sent Events, fetch its images, or cancel it.

Owner: the `X-Keyart-Owner` header when given, else "key:" + the first 16 hex digits of the SHA-256 of
the Bearer token, else "anonymous" (no Authorization header). Only the owner may cancel a job (403
otherwise); anyone with the server's key may read a job by its (unguessable) id.

Retention: jobs run with `output=None`, so no PNG is written; a finished job's RenderedImages stay in
memory, for the last KEPT_RESULTS finished jobs (the oldest dropped first), and may be fetched any
number of times until then. After that, GET still answers the job's state with `"images": null` and
`"images_expired": true`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidRequest
from ..queue import JobNotFound, NotYourJob, QueueClosed, QueueFull
from ..request import FILE_FIELDS, RenderedImage, RenderRequest
from .auth import presented_key
from .errors import ApiError, bad_field
from .openai_fields import Answer, encode

router = APIRouter(prefix="/keyart/v1")
KEPT_RESULTS = 32  # finished jobs whose images stay in memory
EVENT_POLL_S = 0.1  # how often an event stream looks at its job
OWNER_HEADER = "x-keyart-owner"
REFUSED = FILE_FIELDS  # server-side paths: a client may not make the server read its files (controls: below)
PNG = Answer("png", None, "b64_json", "auto")


class Results:
    """The images of finished jobs, bounded; written from worker threads, read from routes."""

    def __init__(self, keep: int = KEPT_RESULTS):
        self.keep = keep
        self._lock = threading.Lock()
        self._images: OrderedDict[str, list[RenderedImage]] = OrderedDict()
        self._dropped: set[str] = set()

    def add(self, job_id: str, images: list[RenderedImage]) -> None:
        with self._lock:
            self._images.setdefault(job_id, []).extend(images)
            self._images.move_to_end(job_id)
            while len(self._images) > self.keep:
                old, _ = self._images.popitem(last=False)
                self._dropped.add(old)

    def get(self, job_id: str) -> list[RenderedImage] | None:
        with self._lock:
            images = self._images.get(job_id)
            return None if images is None else sorted(images, key=lambda i: i.index)


def _results(http: Request) -> Results:
    state = http.app.state
    if getattr(state, "keyart_results", None) is None:
        state.keyart_results = Results()
    return state.keyart_results


def owner_of(http: Request) -> str:
    given = (http.headers.get(OWNER_HEADER) or "").strip()
    if given:
        return given
    key = presented_key(http.headers.get("authorization"))
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "anonymous"


def _job(http: Request, job_id: str):
    try:
        return http.app.state.queue.get(job_id)
    except JobNotFound as exc:
        raise ApiError(404, f"no job {job_id!r} on this server", param="id", code="job_not_found") from exc


def job_body(http: Request, job, *, images: list[dict[str, Any]] | None = None, with_images: bool = False) -> dict[str, Any]:
    done, total = job.progress
    base = f"/keyart/v1/jobs/{job.id}"
    body = {
        "id": job.id, "state": job.state, "position": job.position, "progress": {"done": done, "total": total},
        "priority": job.priority, "owner": job.owner, "error": job.error,
        "links": {"self": base, "events": f"{base}/events", "cancel": base},
    }  # fmt: skip
    if with_images and job.state == "done":
        body["images"] = images
        body["images_expired"] = images is None
    return body


def _encoded(images: list[RenderedImage] | None) -> list[dict[str, Any]] | None:
    if images is None:
        return None
    return [
        {"index": i.index, "seed": i.seed, "infotext": i.infotext, "b64_json": base64.b64encode(encode(i, PNG)).decode("ascii")}
        for i in images
    ]  # fmt: skip


def _request(body: Any, http: Request) -> tuple[RenderRequest, int]:
    """The RenderRequest and priority of a POST body; 400 for anything wrong, before any work."""
    limits = http.app.state.limits
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object of RenderRequest fields", code="invalid_value")
    fields = dict(body)
    priority = fields.pop("priority", 0)
    if "owner" in fields:
        raise ApiError(400, f"owner is not a body field: it is the caller's identity (the {OWNER_HEADER} header, else the API key's hash)", param="owner", code="invalid_value")
    for name in REFUSED:
        if fields.get(name) is not None:
            upload = "an IP-Adapter unit in an A1111 body (alwayson_scripts.controlnet)" if name == "reference" else "POST /v1/images/edits"
            raise ApiError(400, f"{name} is not accepted here (a server-side path); upload the image with {upload}", param=name, code="invalid_value")
    if fields.get("controls"):
        raise ApiError(
            400, "controls name server-side files and are not accepted here; send control images in an A1111 body "
            "(alwayson_scripts.controlnet) to /sdapi/v1/txt2img or /sdapi/v1/img2img", param="controls", code="invalid_value",
        )  # fmt: skip
    if "num_inference_steps" not in fields and limits.steps is not None:
        fields["num_inference_steps"] = limits.steps
    try:
        request = RenderRequest.from_dict(fields)
        limits.check_steps(request.num_inference_steps)
        if request.width * request.height > limits.max_pixels:
            raise InvalidRequest(f"width x height is {request.width * request.height} pixels, past this server's limit of {limits.max_pixels}")
        n = request.batch_size * request.batch_count
        if n > limits.max_n:
            raise InvalidRequest(f"batch_size x batch_count is {n} images, past this server's limit of {limits.max_n}")
    except InvalidRequest as exc:
        raise bad_field(exc) from exc
    except TypeError as exc:  # a missing prompt
        raise ApiError(400, f"prompt is required ({exc})", param="prompt", code="missing_required_parameter") from exc
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ApiError(400, f"priority must be a whole number, higher first (got {priority!r})", param="priority", code="invalid_value")
    return request, priority


@router.post("/jobs")
async def submit(http: Request) -> JSONResponse:
    try:
        body = json.loads(await http.body())
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from exc
    request, priority = _request(body, http)
    state, results = http.app.state, _results(http)
    try:
        job = state.queue.submit(
            request, priority=priority, owner=owner_of(http), lineage={"api": "keyart"}, output=None,
            on_result=lambda j, images: results.add(j.id, images),
        )  # fmt: skip
    except QueueFull as exc:
        wait = state.limits.retry_after(exc.retry_after)
        raise ApiError(429, f"{exc}; Retry-After: {wait} s", type="rate_limit_error", code="queue_full", headers={"Retry-After": str(wait)}) from exc
    except QueueClosed as exc:
        raise ApiError(503, f"{exc}: the server is shutting down", type="server_error", code="shutting_down") from exc
    except InvalidRequest as exc:
        raise bad_field(exc) from exc
    return JSONResponse(job_body(http, job), status_code=202, headers={"Location": f"/keyart/v1/jobs/{job.id}"})


@router.get("/jobs/{job_id}")
async def read(http: Request, job_id: str) -> dict[str, Any]:
    job = _job(http, job_id)
    images = await run_in_threadpool(_encoded, _results(http).get(job_id)) if job.state == "done" else None
    return job_body(http, job, images=images, with_images=True)


@router.get("/jobs/{job_id}/events")
async def events(http: Request, job_id: str) -> StreamingResponse:
    _job(http, job_id)  # 404 before the stream starts

    async def stream():
        seen = None
        while True:
            job = http.app.state.queue.get(job_id)
            body = job_body(http, job)
            now = (body["state"], body["position"], job.progress)
            if job.is_final:
                yield f"event: {job.state}\ndata: {json.dumps(body)}\n\n"
                return
            if now != seen:
                seen = now
                yield f"event: progress\ndata: {json.dumps(body)}\n\n"
            await asyncio.sleep(EVENT_POLL_S)
            if await http.is_disconnected():
                return

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.delete("/jobs/{job_id}")
async def cancel(http: Request, job_id: str) -> JSONResponse:
    job = _job(http, job_id)
    owner = owner_of(http)
    if job.owner != owner:
        raise ApiError(403, f"job {job_id} is not yours; you can cancel only your own jobs", code="not_your_job")
    if job.is_final:
        raise ApiError(409, f"job {job_id} is already {job.state}", code="job_finished")
    try:
        job = http.app.state.queue.cancel(job_id, owner)
    except NotYourJob as exc:
        raise ApiError(403, str(exc), code="not_your_job") from exc
    except QueueClosed as exc:
        raise ApiError(503, f"{exc}: the server is shutting down", type="server_error", code="shutting_down") from exc
    # 200: cancelled now (it was queued); 202: a running job stops at its next step.
    return JSONResponse(job_body(http, job), status_code=200 if job.is_final else 202)
