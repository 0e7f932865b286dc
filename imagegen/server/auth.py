"""Bearer-key auth for the service: with a key, every route but the health check needs
`Authorization: Bearer KEY`; without one, any Authorization header (an empty `Bearer ` too) is ignored.
"""

from __future__ import annotations

import hmac

from .errors import ApiError

SCHEME = "bearer"


def check_bearer(header: str | None, api_key: str | None) -> None:
    """Pass when no key is configured or `header` carries it; a 401 in OpenAI's shape otherwise."""
    if api_key is None:
        return
    scheme, _, token = (header or "").strip().partition(" ")
    # compare_digest: the time taken says nothing about how much of the key was right.
    if scheme.lower() != SCHEME or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ApiError(
            401,
            "missing or wrong API key: send the server's key as 'Authorization: Bearer KEY' "
            "(for the OpenAI SDK, api_key=KEY)",
            code="invalid_api_key",
        )
