"""Errors of the language side that speak to the user; kin of imagegen's `KeyartError`."""

from __future__ import annotations

from imagegen.errors import KEPT, KeyartError, StorageError, environmental, storage_error

__all__ = [
    "KEPT", "BlocklistUnusable", "CampaignError", "CatalogError", "KeyartError", "LLMNotConfigured", "LLMUnavailable", "PolicyViolation", "ReplyInvalid",
    "StorageError", "environmental", "storage_error",
]  # fmt: skip


class LLMNotConfigured(KeyartError):
    """A language model was asked for but is not set up (missing key, model name or folder)."""


class LLMUnavailable(KeyartError):
    """The language model could not be reached or kept failing after the allowed retries."""


class ReplyInvalid(KeyartError):
    """A reply that stayed unusable (not JSON, wrong shape) after the repair round."""


class CatalogError(KeyartError):
    """A catalog file that cannot be read, or a season/episode that is not in it."""


class PolicyViolation(KeyartError):
    """A prompt or piece of copy that the brand-safety check blocked; the message says what and why."""


class BlocklistUnusable(PolicyViolation):
    """The brand-safety blocklist file cannot be used (missing, a folder, not UTF-8, unreadable): a
    setting to fix, not a verdict on any prompt."""


class CampaignError(KeyartError):
    """A brief or campaign file that cannot be used, or a rerun that cannot be done as asked."""
