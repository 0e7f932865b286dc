"""Errors that speak to the user: each says what went wrong and, where it can, how to fix it.

The CLI turns a `KeyartError` into its message and exit code 2; the dashboard into `st.error`.
"""

from __future__ import annotations


class KeyartError(Exception):
    """Base class for every error keyart shows to a user."""

    exit_code = 2


class InvalidRequest(KeyartError, ValueError):
    """A render request (or a CLI option) that cannot be rendered as given."""


class UnknownStyle(InvalidRequest):
    """A style name that is not in the style catalog."""


class ModelNotFound(KeyartError):
    """An SDXL model (or refiner) that is not configured or cannot be found."""


class MetadataError(KeyartError):
    """A PNG without keyart or A1111 metadata, or metadata that cannot be read back."""


class RenderFailed(KeyartError):
    """A render that ran but produced an unusable result (NaNs, out of memory...)."""


class RemoteUnavailable(KeyartError):
    """A remote engine's server (A1111, an OpenAI-compatible one, another keyart) that cannot be
    reached, refuses the key, or still fails after the retries."""
