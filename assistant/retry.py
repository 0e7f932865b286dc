"""Bounded retries for language model calls: backoff that honours Retry-After, every retry recorded.

Rate limits (429), server errors (5xx, 408, 409), timeouts and refused connections are retried;
requests the server rejects (400, 401, 403, 404, 422...) fail at once with a message that teaches.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import LLMUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# 408 (request timeout) and 409 (lock conflict) are transient too: the openai SDK retries them.
RETRYABLE_4XX = (408, 409, 429)


class LLMRequestRejected(LLMUnavailable):
    """The server refused the request itself (HTTP 4xx other than 408/409/429): retrying cannot help.

    `status` is the HTTP status and `server_message` the server's own words, so a caller can
    tell "response_format is not supported" (400) from a bad key (401).
    """

    def __init__(self, message: str, *, status: int, server_message: str = ""):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


def with_retries(
    call: Callable[[], T],
    *,
    record: Callable[[str], None],
    attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """`call()`, retried up to `attempts` tries in all; each retry is described to `record` first.

    Waits what Retry-After / retry-after-ms says (capped at `max_delay`), else `base_delay * 2**n`
    with jitter. `sleep` defaults to `time.sleep` looked up at call time (so tests can patch it).
    Exceptions that are not the openai SDK's API errors propagate untouched.
    """
    import openai

    if attempts < 1:
        raise ValueError(f"attempts must be at least 1 (got {attempts})")
    sleep = sleep or time.sleep
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except openai.APIStatusError as exc:
            status = exc.status_code
            if not (status in RETRYABLE_4XX or status >= 500):
                raise _rejected(exc) from exc
            what = _describe(exc)
            wait = _retry_after(exc, max_delay)
            last: openai.APIError = exc
        except openai.APIConnectionError as exc:  # APITimeoutError included
            what = _describe(exc)
            wait = None
            last = exc
        if attempt == attempts:
            raise LLMUnavailable(f"the language model request gave up after {attempts} attempts: {what}{_where(last)}") from last
        # Jitter of up to -25% spreads clients that failed together; Retry-After is obeyed as given.
        if wait is None:
            wait = min(base_delay * 2 ** (attempt - 1), max_delay) * random.uniform(0.75, 1.0)
        seconds = f"{wait:.1f}" if wait >= 1 else f"{wait:.2f}"  # 0.05 s backoffs do not read as "0.0 s"
        note = f"{what}: retrying in {seconds} s (attempt {attempt + 1} of {attempts})"
        log.info("language model: %s", note)
        record(note)
        sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def _retry_after(exc: Any, max_delay: float) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, Retry-After seconds or HTTP-date), capped."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    seconds: float | None = None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
            break
        except ValueError:
            if name == "retry-after":
                try:
                    when = email.utils.parsedate_to_datetime(value)
                except (TypeError, ValueError, IndexError):
                    continue
                if when.tzinfo is None:  # "-0000" dates carry no zone; HTTP dates are GMT
                    when = when.replace(tzinfo=datetime.timezone.utc)
                seconds = when.timestamp() - time.time()
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), max_delay)


def _describe(exc: Any) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        kind = {408: "request timeout", 409: "conflict", 429: "rate limited"}.get(status, "server error")
        message = _server_message(exc)
        return f"HTTP {status} ({kind})" + (f": {message}" if message and status >= 500 else "")
    if isinstance(exc, openai.APITimeoutError):
        return "timed out waiting for the server (raise KEYART_LLM_TIMEOUT for slow models)"
    # LangChain re-raises the SDK's error, which wraps httpx2's: the innermost one names the problem.
    cause, seen = exc, 0
    while (cause.__cause__ or cause.__context__) is not None and seen < 10:
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    detail = f" ({type(cause).__name__}: {cause})" if cause is not exc else ""
    return f"could not connect to the server{detail}"


def _where(exc: Any) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return f" (at {url})" if url else ""


def _server_message(exc: Any) -> str:
    """The server's own error text; the SDK keeps the inner `error` object of the body as `body`."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    elif isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return ""


def _requested_model(exc: Any) -> str | None:
    try:
        return json.loads(exc.request.content)["model"]
    except (AttributeError, TypeError, ValueError, KeyError, RuntimeError):  # no body, not JSON, no model
        return None


def _rejected(exc: Any) -> LLMRequestRejected:
    status = exc.status_code
    message = _server_message(exc)
    said = f" (the server said: {message})" if message else ""
    url = getattr(getattr(exc, "request", None), "url", "")
    if status in (401, 403):
        text = f"HTTP {status}: the server at {url} refused the API key{said}; check OPENAI_API_KEY"
    elif status == 404:
        model = _requested_model(exc)
        name = f"no model {model!r}" if model else "no such model"
        text = (
            f"HTTP 404: the server has {name} or no such endpoint{said}; check KEYART_LLM_MODEL and OPENAI_BASE_URL "
            f"(requested {url}; OpenAI-compatible servers usually end in /v1)"
        )
    else:
        text = f"HTTP {status}: the server rejected the request: {message or 'no reason given'}"
    return LLMRequestRejected(text, status=status, server_message=message)
