"""The service's errors: one exception type that carries an HTTP status and the API's error body.

OpenAI's shape is `{"error": {"message", "type", "param", "code"}}`, all four keys present
(https://platform.openai.com/docs/guides/error-codes); the app's handlers turn an ApiError, and
any KeyartError a route lets through, into it.
"""

from __future__ import annotations

from typing import Any

from ..errors import KeyartError


class ApiError(KeyartError):
    """An answer other than 200: its status, OpenAI's error fields and any extra headers."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
        code: str | None = None, headers: dict[str, str] | None = None,
    ):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


class ClientGone(KeyartError):
    """The client disconnected while its job waited or ran; its job was cancelled."""


def bad_field(exc: Exception, param: str | None = None) -> ApiError:
    """A 400 for a field the caller got wrong, with the validator's teaching message."""
    return ApiError(400, str(exc), param=param or _field_of(str(exc)), code="invalid_value")


def _field_of(message: str) -> str | None:
    """The field an InvalidRequest message starts with ("size must be ..." -> "size")."""
    head = message.split(" ", 1)[0]
    return head if head.isidentifier() else None
