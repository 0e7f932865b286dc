"""A1111's model hash: the first 10 hex digits of a checkpoint file's SHA-256.

Civitai links an image to its checkpoint by this hash. Hashing a 7 GB file takes a while, so
results are cached (by path, size and modification time) in KEYART_CACHE (default ~/.cache/keyart).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SHORT = 10  # A1111's "shorthash" length
CHUNK = 1 << 20


def cache_dir() -> Path:
    explicit = os.environ.get("KEYART_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keyart"


def model_hash(path: str | Path) -> str:
    """The short SHA-256 of a checkpoint file, from the cache when the file has not changed."""

    def whole_file(f) -> str:
        log.warning("hashing %s for A1111's Model hash (once per file)", Path(path).name)
        return digest(f)[:SHORT]

    return cached_hash(path, "model-hashes.json", whole_file)


def file_sha256(path: str | Path) -> str:
    """The full SHA-256 (hex) of a file, cached like the model hashes while the file is unchanged."""
    return cached_hash(path, "file-hashes.json", digest)


def digest(f) -> str:
    """The SHA-256 (hex) of an open binary file from its current position to the end, read in chunks."""
    sha = hashlib.sha256()
    while block := f.read(CHUNK):
        sha.update(block)
    return sha.hexdigest()


def cached_hash(path: str | Path, cache_name: str, compute) -> str:
    """`compute(open file)` for `path`, kept in the cache file `cache_name` while the file is unchanged.

    The key is the path, size and modification time; the cache is rewritten atomically (temp file
    then rename), so a crash mid-write leaves the old cache, never a truncated one.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    store = cache_dir() / cache_name
    try:
        cached = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        cached = {}
    if key in cached:
        return cached[key]
    with path.open("rb") as f:
        short = compute(f)
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**cached, key: short}, indent=1), encoding="utf-8")
    os.replace(tmp, store)
    return short
