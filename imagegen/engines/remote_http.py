"""The remote engines' HTTP side: one client per server, its address checked once, and bounded
retries that honour Retry-After.

Retried, with exponential backoff and jitter: refused connections, timeouts, 408, 409, 429 and 5xx
(the rules the language side and the OpenAI SDK follow). Anything else the server refuses fails at
once as `InvalidRequest` carrying the server's own words; a refused key or a server that stays
down is `RemoteUnavailable`, saying which variable to check.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import InvalidRequest, RemoteUnavailable
from ..settings import redact_url

log = logging.getLogger(__name__)

RETRYABLE = (408, 409, 429)  # and every 5xx
CONNECT_TIMEOUT = 10.0  # a server that does not take the connection in 10 s is down, not busy


def checked_url(url: str | None, variable: str, *, default: str | None = None) -> str:
    """`url` (else `default`) as a base address without its trailing slash; InvalidRequest naming
    `variable` when it is not http(s)://host[:port][/path]."""
    text = (url or default or "").strip()
    example = f"for example {variable}=http://127.0.0.1:7860"
    if not text:
        raise InvalidRequest(f"{variable} is not set; {example}")
    try:
        parsed = httpx.URL(text)
        port = parsed.port  # a port that is not a number fails here
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidRequest(f"{variable} is not a valid URL ({redact_url(text)!r}: {exc}); {example}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidRequest(f"{variable} must be an http:// or https:// address with a host (got {redact_url(text)!r}); {example}")
    if port is not None and not 0 < port < 65536:
        raise InvalidRequest(f"{variable} has port {port}, outside 1-65535; {example}")
    return text.rstrip("/")


def check_a1111(settings) -> None:
    """The a1111 engine's settings, checked without connecting (the engine table's `check`)."""
    checked_url(settings.a1111_url, "KEYART_A1111_URL")


def check_openai(settings) -> None:
    """The openai engine's settings, checked without connecting (the engine table's `check`)."""
    from ..settings import OPENAI_IMAGES_URL

    checked_url(settings.images_base_url, "KEYART_IMAGES_BASE_URL", default=OPENAI_IMAGES_URL)


class Remote:
    """One server: its base URL, headers and timeout, and the retry policy for every call."""

    def __init__(
        self,
        base_url: str,
        *,
        what: str,
        variable: str,
        key_variable: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 600.0,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url
        self.shown = redact_url(base_url)  # for messages and lineage: never a password
        self.what = what  # "the a1111 engine"
        self.variable = variable  # KEYART_A1111_URL: named when the server cannot be reached
        self.key_variable = key_variable  # named when the server refuses the key
        self.attempts, self.base_delay, self.max_delay, self.sleep = attempts, base_delay, max_delay, sleep
        self.timeout = timeout
        self.retries: list[str] = []  # every retry of the last call, in words (for the lineage)
        # user:pass@ in the URL becomes HTTP basic auth (A1111's --api-auth), the URL itself without it.
        url = httpx.URL(base_url)
        auth = httpx.BasicAuth(url.username, url.password) if url.username else None
        self._client = httpx.Client(
            base_url=url.copy_with(username=None, password=None),
            headers=headers or {},
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request (`kwargs` as httpx takes them), retried while the failure is transient; the 2xx response."""
        self.retries = []
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                what, wait = f"timed out ({type(exc).__name__}; raise KEYART_REMOTE_TIMEOUT for slow servers)", None
            except httpx.TransportError as exc:  # refused, reset, DNS: the server is not there (yet)
                what, wait = f"could not connect ({type(exc).__name__}: {exc})", None
            else:
                status = response.status_code
                if status < 400:
                    return response
                if not (status in RETRYABLE or status >= 500):
                    raise self._refused(response, path)
                what, wait = f"HTTP {status}" + (f": {said}" if (said := server_message(response)) else ""), retry_after(response, self.max_delay)
            if attempt == self.attempts:
                raise RemoteUnavailable(f"{self.what} gave up on {self.shown}{path} after {self.attempts} attempts: {what}; check {self.variable} and that the server is up")
            # Jitter of up to -25% spreads clients that failed together; Retry-After is obeyed as given.
            if wait is None:
                wait = min(self.base_delay * 2 ** (attempt - 1), self.max_delay) * random.uniform(0.75, 1.0)
            note = f"{what}: retrying in {wait:.2f} s (attempt {attempt + 1} of {self.attempts})"
            log.info("%s: %s", self.what, note)
            self.retries.append(note)
            self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")

    def once(self, method: str, path: str, *, timeout: float = 10.0, **kwargs: Any) -> httpx.Response | None:
        """One try, no retries, for what is advisory (progress, an interrupt): the response, or None on any failure."""
        try:
            return self._client.request(method, path, timeout=timeout, **kwargs)
        except httpx.HTTPError:
            return None

    def fetch(self, url: str) -> bytes:
        """The body at an absolute `url` the server handed out (an image on a CDN): no credentials
        go with it, as it may be another host."""
        try:
            response = httpx.get(url, timeout=httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT), follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RemoteUnavailable(f"{self.what} could not fetch the image at {redact_url(url)[:200]} ({type(exc).__name__}: {exc})") from exc
        return response.content

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """call() and its JSON body; a body that is not JSON is the server's fault, said so."""
        response = self.call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RemoteUnavailable(
                f"{self.what}: {self.shown}{path} answered HTTP {response.status_code} with a body that is not JSON "
                f"({response.text[:120]!r}); is {self.variable} the right server?"
            ) from None

    def _refused(self, response: httpx.Response, path: str) -> Exception:
        status = response.status_code
        said = server_message(response)
        words = f" (the server said: {said})" if said else ""
        if status in (401, 403):
            key = f"{self.key_variable}, or user:password@ in {self.variable}" if self.key_variable else self.variable
            return RemoteUnavailable(f"{self.what}: {self.shown} refused the credentials (HTTP {status}){words}; check {key}")
        if status == 404:
            return RemoteUnavailable(f"{self.what}: {self.shown} has no {path} (HTTP 404){words}; is {self.variable} the right server and address?")
        return InvalidRequest(f"{self.what}: the server refused the request (HTTP {status}): {said or 'no reason given'}")


def server_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message"}}, A1111's {"detail"} or {"error": text}, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        detail = body.get("detail") or body.get("errors")
        if detail:
            return str(detail)[:500]
        if inner:
            return str(inner)[:500]
    return str(body)[:500]


def retry_after(response: httpx.Response, cap: float) -> float | None:
    """Seconds the server asked to wait (retry-after-ms, Retry-After seconds or an HTTP date), capped."""
    seconds: float | None = None
    if (ms := response.headers.get("retry-after-ms")) is not None:
        try:
            seconds = float(ms) / 1000
        except ValueError:
            seconds = None
    if seconds is None and (value := response.headers.get("retry-after")) is not None:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            seconds = when.timestamp() - time.time()
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)
