"""A small OpenAI-compatible chat server on 127.0.0.1 for tests: scripted replies, errors and delays.

The openai SDK 3.x sends through `httpx2`, so mocks of legacy `httpx` never see its requests; a
real HTTP server in a thread does, for ChatOpenAI and the raw SDK alike. Every request is recorded.

    with FakeOpenAI() as fake:
        fake.script(status(429, headers={"Retry-After": "1"}), reply("hello"))
        ChatOpenAI(base_url=fake.base_url, api_key="k", max_retries=0).invoke("hi")
        fake.requests[-1].body["messages"]
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FakeOpenAI",
    "Recorded",
    "Reply",
    "Status",
    "Delay",
    "RejectResponseFormat",
    "reply",
    "reply_json",
    "tool_call",
    "status",
    "delay",
    "reject_response_format",
]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


@dataclass
class Recorded:
    """One request as the server saw it; `time` is `time.monotonic()` at arrival."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON, or None for GET
    time: float


# -- behaviours: each answers one request, or returns None to let the next one answer -------------


@dataclass
class Reply:
    """A 200 chat.completion with assistant `content` and/or `tool_calls`."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str = "stop"

    def answer(self, fake: FakeOpenAI, request: Recorded) -> Reply | Status | None:
        return self


@dataclass
class Status:
    """An HTTP error (or any status) with an OpenAI-shaped error body and optional headers."""

    code: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def answer(self, fake: FakeOpenAI, request: Recorded) -> Reply | Status | None:
        return self

    def payload(self) -> dict[str, Any]:
        if self.body is not None:
            return self.body
        return error_body(f"HTTP {self.code} from the fake OpenAI server", _ERROR_TYPES.get(self.code, "server_error" if self.code >= 500 else "invalid_request_error"), _ERROR_CODES.get(self.code))


@dataclass
class Delay:
    """Wait `seconds` (cut short when the server stops), then answer with `then` (or the default)."""

    seconds: float
    then: Any = None

    def answer(self, fake: FakeOpenAI, request: Recorded) -> Reply | Status | None:
        fake._stopping.wait(self.seconds)
        return _as_behaviour(self.then if self.then is not None else fake.default(request.body)).answer(fake, request)


@dataclass
class RejectResponseFormat:
    """400 "response_format is not supported" when the request has `response_format`; else falls through."""

    def answer(self, fake: FakeOpenAI, request: Recorded) -> Reply | Status | None:
        if isinstance(request.body, dict) and "response_format" in request.body:
            return Status(400, error_body("response_format is not supported", "invalid_request_error", None, param="response_format"))
        return None


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def reply(text: str) -> Reply:
    return Reply(content=text)


def reply_json(obj: Any) -> Reply:
    return Reply(content=json.dumps(obj))


def tool_call(name: str, arguments: dict[str, Any], *, id: str | None = None, content: str | None = None) -> Reply:
    call = {"id": id or f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return Reply(content=content, tool_calls=[call], finish_reason="tool_calls")


def status(code: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Status:
    return Status(code, body, dict(headers or {}))


def delay(seconds: float, then: Any = None) -> Delay:
    return Delay(seconds, then)


def reject_response_format() -> RejectResponseFormat:
    return RejectResponseFormat()


def _as_behaviour(value: Any) -> Any:
    """A default responder may return text (a reply) or any behaviour."""
    return reply(value) if isinstance(value, str) else value


def _default_responder(body: Any) -> str:
    return "fake reply"


# -- the server ------------------------------------------------------------------------------------


class FakeOpenAI:
    """An OpenAI-compatible server on 127.0.0.1:<free port>; a context manager; `.stop()` to end it.

    `script(*behaviours)` queues behaviours used one per chat request; when the queue is empty,
    `default(request_body)` answers (text, or a behaviour). `supports_response_format=False` makes
    every request with `response_format` a 400, like servers without structured output.
    """

    def __init__(self, *, default: Callable[[Any], Any] | None = None, models: tuple[str, ...] = ("fake-model",), supports_response_format: bool = True):
        self.default: Callable[[Any], Any] = default or _default_responder
        self.models = models
        self.supports_response_format = supports_response_format
        self.requests: list[Recorded] = []
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def script(self, *behaviours: Any) -> FakeOpenAI:
        with self._lock:
            self._queue.extend(_as_behaviour(b) for b in behaviours)
        return self

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        return len(self._queue)

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- used by the handler ---------------------------------------------------------------------

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _next(self) -> Any:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _answer_chat(self, request: Recorded) -> Reply | Status:
        if not self.supports_response_format:
            rejected = RejectResponseFormat().answer(self, request)
            if rejected is not None:
                return rejected
        behaviour = self._next()
        while True:
            if behaviour is None:
                behaviour = _as_behaviour(self.default(request.body))
            out = behaviour.answer(self, request)
            if out is not None:
                return out
            behaviour = self._next()  # fell through: the next scripted behaviour answers this request

    def _completion(self, body: dict[str, Any], answer: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        prompt_tokens = _count_tokens(json.dumps(body.get("messages", [])))
        completion_tokens = _count_tokens(answer.content or json.dumps(answer.tool_calls or []))
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.models[0]),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }

    def _chunks(self, body: dict[str, Any], answer: Reply) -> list[dict[str, Any]]:
        """The same completion as server-sent `chat.completion.chunk`s (for `stream: true`)."""
        whole = self._completion(body, answer)
        base = {"id": whole["id"], "object": "chat.completion.chunk", "created": whole["created"], "model": whole["model"]}
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        text = answer.content or ""
        for start in range(0, len(text), 8):  # 8 characters a chunk: several chunks for a short reply
            chunks.append({**base, "choices": [{"index": 0, "delta": {"content": text[start : start + 8]}, "finish_reason": None}]})
        if answer.tool_calls:
            calls = [{"index": i, **call} for i, call in enumerate(answer.tool_calls)]
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": answer.finish_reason}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": whole["usage"]})
        return chunks


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow handler never holds up the end of a test run

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hung up (its timeout) is expected here, not news
        super().handle_error(request, client_address)


def _count_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # about four characters a token, as OpenAI's rule of thumb says


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `fake.requests`
            pass

        def do_GET(self) -> None:
            request = self._read()
            if request.path.rstrip("/") in ("/v1/models", "/models"):
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"} for m in fake.models]
                self._send_json(200, {"object": "list", "data": data})
            else:
                self._send_json(404, error_body(f"no route GET {request.path}", "not_found_error", None))

        def do_POST(self) -> None:
            request = self._read()
            if request.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send_json(404, error_body(f"no route POST {request.path}", "not_found_error", None))
                return
            if not isinstance(request.body, dict):
                self._send_json(400, error_body("the body must be a JSON object", "invalid_request_error", None))
                return
            answer = fake._answer_chat(request)
            if isinstance(answer, Status):
                self._send_json(answer.code, answer.payload(), answer.headers)
            elif request.body.get("stream"):
                self._send_stream(fake._chunks(request.body, answer))
            else:
                self._send_json(200, fake._completion(request.body, answer))

        def _read(self) -> Recorded:
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            try:
                body: Any = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw
            path = self.path.split("?", 1)[0]
            request = Recorded(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body, arrived)
            fake._record(request)
            return request

        def _send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout) before the answer: nothing to tell it
                self.close_connection = True

        def _send_stream(self, chunks: list[dict[str, Any]]) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode("utf-8"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True

    return Handler
