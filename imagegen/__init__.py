"""keyart's image side: one render vocabulary, A1111-named controls, and pluggable engines.

A leaf package: it imports nothing else of keyart, and nothing heavy (torch, diffusers) until an
engine that needs it is created.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from .errors import InvalidRequest, KeyartError, MetadataError, ModelNotFound, RenderFailed, UnknownStyle
from .prompt_schedule import prompt_schedule
from .request import RenderedImage, RenderRequest

try:
    __version__ = _metadata.version("keyart")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = [
    "InvalidRequest",
    "KeyartError",
    "MetadataError",
    "ModelNotFound",
    "RenderFailed",
    "RenderRequest",
    "RenderedImage",
    "UnknownStyle",
    "__version__",
    "prompt_schedule",
]
