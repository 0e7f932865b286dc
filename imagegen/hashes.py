"""A1111's model hash: the first 10 hex digits of a checkpoint file's SHA-256.

Civitai links an image to its checkpoint by this hash. Hashing a 7 GB file takes a while, so
results are cached (by path, size and modification time) in the cache folder: the one the entry
point configured (`use_cache`, from KEYART_CACHE via imagegen.settings), else, for library use, the
environment's (KEYART_CACHE, default ~/.cache/keyart).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from .settings import ImageSettings

log = logging.getLogger(__name__)

SHORT = 10  # A1111's "shorthash" length
CHUNK = 1 << 20
_cache: Path | None = None  # the folder use_cache configured; None: not configured


def use_cache(folder: str | Path | None) -> None:
    """Configure the cache folder: entry points call it once with `ImageSettings.cache`
    (imagegen.settings.configure does). None forgets it: the environment's folder applies again."""
    global _cache
    _cache = Path(folder).expanduser() if folder else None


def cache_dir() -> Path:
    """The cache folder: the configured one, else (library use) the environment's."""
    if _cache is not None:
        return _cache
    folder = ImageSettings.from_env().cache
    assert folder is not None, "ImageSettings.from_env always sets the cache folder"
    return Path(folder).expanduser()


def model_hash(path: str | Path) -> str:
    """The short SHA-256 of a checkpoint file, from the cache when the file has not changed."""

    def whole_file(f) -> str:
        log.warning("hashing %s for its A1111 short hash (once per file)", Path(path).name)
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
