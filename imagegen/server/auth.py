"""Key auth for the service: with a key, every route but the health check needs it, as
`Authorization: Bearer KEY` (OpenAI's clients) or HTTP basic auth with the key as the password, any
user name (A1111's --api-auth, which Open WebUI's Automatic1111 engine sends as `user:password`).
Without a key, any Authorization header (an empty `Bearer ` or `Basic ` too) is ignored.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from .errors import ApiError


def presented_key(header: str | None) -> str | None:
    """The key an Authorization header carries: a Bearer token, or a basic-auth password; None if neither."""
    scheme, _, token = (header or "").strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme == "bearer" and token:
        return token
    if scheme == "basic" and token:
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        return password if colon else None
    return None


def check_bearer(header: str | None, api_key: str | None) -> None:
    """Pass when no key is configured or `header` carries it; a 401 in OpenAI's shape otherwise."""
    if api_key is None:
        return
    given = presented_key(header)
    # compare_digest: the time taken says nothing about how much of the key was right.
    if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(
            401,
            "missing or wrong API key: send the server's key as 'Authorization: Bearer KEY' "
            "(for the OpenAI SDK, api_key=KEY; for A1111 clients, user:KEY as the API auth)",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="keyart"'},
        )
