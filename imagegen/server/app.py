"""The image service's FastAPI app: `create_app(queue)` with auth, body limits, OpenAI's error
shape and the OpenAI Images API routes. It talks to the render queue only; the queue's workers
hold the engines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import KeyartError
from ..queue import RenderQueue
from .auth import check_bearer
from .errors import ApiError, ClientGone, bad_field
from .limits import Limits
from .openai_images import router as openai_router
from .a1111_api import router as a1111_router
from .jobs_api import router as jobs_router
from .openai_images import validation_error

log = logging.getLogger(__name__)

CLIENT_GONE = 499  # nginx's "client closed request": logged, never read by anyone
CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def create_app(queue: RenderQueue | Callable[[], RenderQueue], *, api_key: str | None = None, limits: Limits | None = None) -> FastAPI:
    """The service over `queue`: a RenderQueue the caller owns (and closes), or a zero-argument
    factory whose queue the app makes at startup and closes at shutdown (running jobs cancelled).

    With `api_key`, every route but GET /health needs `Authorization: Bearer <api_key>`.
    """
    # 1. The settings, checked before anything starts.
    if api_key is not None and not api_key.strip():
        raise KeyartError("the API key is empty; give a key, or none to serve without auth on loopback")
    limits = limits or Limits()
    owned = not isinstance(queue, RenderQueue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.queue = queue() if owned else queue
        try:
            yield
        finally:
            if owned:
                app.state.queue.close(cancel=True)

    # 2. The app; docs off: every route but /health is behind the key, and clients read none.
    app = FastAPI(title="keyart image service", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.limits = limits
    app.state.api_key = api_key
    if not owned:
        app.state.queue = queue
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    _add_handlers(app)

    # 3. The routes.
    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    app.include_router(openai_router, dependencies=[Depends(require_key)])
    app.include_router(a1111_router, dependencies=[Depends(require_key)])
    app.include_router(jobs_router, dependencies=[Depends(require_key)])
    return app


async def require_key(request: Request) -> None:
    check_bearer(request.headers.get("authorization"), request.app.state.api_key)


def _add_handlers(app: FastAPI) -> None:
    """Every error a client sees in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return await api_error(_request, validation_error(exc))

    @app.exception_handler(ClientGone)
    async def client_gone(_request: Request, _exc: ClientGone) -> Response:
        return Response(status_code=CLIENT_GONE)

    @app.exception_handler(KeyartError)
    async def keyart_error(_request: Request, exc: KeyartError) -> JSONResponse:
        return await api_error(_request, bad_field(exc))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug: the client gets OpenAI's error shape saying so; the traceback goes to the server's log.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        error = ApiError(500, f"the server hit an internal error, a bug: {type(exc).__name__}; its log has the traceback", type="server_error", code="internal_error")
        return JSONResponse(error.body(), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"no route {request.method} {request.url.path} on this server"
        elif exc.status_code == 405:
            message = f"{request.url.path} does not take {request.method}"
        else:
            message = str(exc.detail)
        error = ApiError(exc.status_code, message, code=CODES.get(exc.status_code))
        return JSONResponse(error.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))


class BodyLimit:
    """ASGI middleware: a body past `max_bytes` is a 413 in OpenAI's shape, whether its
    Content-Length says so up front or it only turns out so while it streams in."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 1. What the headers announce.
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, int(length))
            return
        # 2. What actually arrives.
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(seen, self.max_bytes)
            return message

        async def watching_send(message: dict) -> None:
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge as exc:
            if not started:
                await self._refuse(send, exc.seen)

    async def _refuse(self, send: Callable, size: int) -> None:
        error = ApiError(413, f"the request body is {size} bytes or more, past this server's limit of {self.max_bytes} bytes", code="body_too_large")
        await JSONResponse(error.body(), status_code=413)({"type": "http"}, None, send)


class _TooLarge(StarletteHTTPException):
    """Raised from receive(): an HTTPException, so FastAPI's body parsing passes it on as it is."""

    def __init__(self, seen: int, max_bytes: int):
        super().__init__(413, f"the request body is {seen} bytes or more, past this server's limit of {max_bytes} bytes")
        self.seen = seen


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """The app on uvicorn in a thread, on `host` and a free port, until the block ends; yields its
    base URL. For tests and benchmarks (`python -m imagegen serve` runs uvicorn in the foreground)."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="keyart-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
