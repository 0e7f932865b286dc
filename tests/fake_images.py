"""A recording fake of the image servers the remote engines talk to, on 127.0.0.1: A1111's
/sdapi/v1 and OpenAI's /v1/images, answering in their shapes with solid-colour PNGs.

Every request is recorded (method, path, headers, JSON body or multipart fields and files); errors
can be scripted ahead of the answers (`fail(503, retry_after="0")`). Used with tests'
`serving(fake.app)`:

    fake = FakeImages()
    with serving(fake.app) as url:
        fake.fail(429, retry_after="0")
        ... the engine renders ...
    fake.requests[-1].body["prompt"]
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from PIL.PngImagePlugin import PngInfo

MODEL = "fake-xl-1.0"
RENDERS = ("txt2img", "img2img", "generations", "edits")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None  # JSON, or the form's text fields
    files: dict[str, bytes] = field(default_factory=dict)  # multipart files by field name


def png(size: tuple[int, int], colour: tuple[int, int, int], parameters: str | None = None) -> bytes:
    info = PngInfo()
    if parameters:
        info.add_text("parameters", parameters)
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


class FakeImages:
    def __init__(self, *, models: list[dict[str, str]] | None = None, grid: bool = False):
        self.requests: list[Recorded] = []
        self.script: deque[tuple[int, dict[str, str], Any]] = deque()
        self.models = models if models is not None else [{"id": "gpt-image-1.5", "object": "model", "owned_by": "openai"}]
        self.grid = grid  # A1111's "return grid": a grid image before the batch's, index_of_first_image 1
        self.delay = 0.0  # seconds each render takes to answer
        self.app = self._app()

    def fail(self, status: int, body: Any = None, *, retry_after: str | None = None) -> None:
        """The next render request (txt2img, img2img, generations, edits) answers `status` instead."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.script.append((status, headers, body if body is not None else {"error": {"message": f"scripted {status}", "type": "x", "param": None, "code": None}}))

    def renders(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(RENDERS)]

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def anything(path: str, request: Request) -> Response:
            recorded = Recorded(request.method, "/" + path, {k.lower(): v for k, v in request.headers.items()})
            if request.headers.get("content-type", "").startswith("multipart/"):
                form = await request.form()
                recorded.body = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                recorded.files = {k: await v.read() for k, v in form.multi_items() if not isinstance(v, str)}
            else:
                raw = await request.body()
                recorded.body = json.loads(raw) if raw else None
            self.requests.append(recorded)
            if self.delay and recorded.path.endswith(RENDERS):
                await asyncio.sleep(self.delay)
            return self._answer(recorded)

        return app

    def _answer(self, r: Recorded) -> Response:
        if r.path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/v1/images/generations", "/v1/images/edits") and self.script:
            status, headers, body = self.script.popleft()
            return JSONResponse(body, status_code=status, headers=headers)
        if r.path == "/sdapi/v1/options":
            return JSONResponse({"sd_model_checkpoint": MODEL} if r.method == "GET" else {})
        if r.path == "/sdapi/v1/progress":
            return JSONResponse({"progress": 0.5, "state": {"sampling_step": 1, "sampling_steps": 2}})
        if r.path == "/sdapi/v1/interrupt":
            return JSONResponse({})
        if r.path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            return JSONResponse(self._a1111(r.body))
        if r.path == "/v1/models":
            return JSONResponse({"object": "list", "data": self.models})
        if r.path in ("/v1/images/generations", "/v1/images/edits"):
            return JSONResponse(self._openai(r.body))
        return JSONResponse({"error": {"message": f"no route {r.path}", "type": "x", "param": None, "code": None}}, status_code=404)

    def _a1111(self, body: dict[str, Any]) -> dict[str, Any]:
        count = body.get("batch_size", 1) * body.get("n_iter", 1)
        seed = body.get("seed", -1)
        seed = 1234 if seed == -1 else seed
        size = (body.get("width", 512), body.get("height", 512))
        if body.get("enable_hr"):
            size = (int(size[0] * body["hr_scale"]), int(size[1] * body["hr_scale"]))
        seeds = [seed + i for i in range(count)]
        infotexts = [f"{body.get('prompt', '')}\nSteps: {body.get('steps')}, Seed: {s}, Size: {size[0]}x{size[1]}, Model: {MODEL}" for s in seeds]
        images = [base64.b64encode(png(size, (10 * i, 80, 160), text)).decode() for i, text in enumerate(infotexts)]
        if self.grid:
            images.insert(0, base64.b64encode(png((8, 8), (255, 0, 0))).decode())
        info = {"seed": seed, "all_seeds": seeds, "infotexts": infotexts, "sd_model_name": MODEL, "index_of_first_image": 1 if self.grid else 0}
        return {"images": images, "parameters": body, "info": json.dumps(info)}

    def _openai(self, body: dict[str, Any]) -> dict[str, Any]:
        n = int(body.get("n", 1))
        width, height = (int(v) for v in str(body.get("size", "1024x1024")).split("x"))
        return {"created": 0, "data": [{"b64_json": base64.b64encode(png((width, height), (200, 40 * i, 40))).decode(), "revised_prompt": body.get("prompt")} for i in range(n)]}
