"""PNG files with their metadata: written atomically and never over another image (save_png,
write_png), a folder checked before any work (writable_folder), and read back (read_png,
request_from_png). What the text chunks hold is metadata's: A1111's infotext and keyart's lineage.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import metadata_modes
from .errors import InvalidRequest, MetadataError, UnknownStyle, storage_error
from .metadata import LINEAGE_KEY, PARAMETERS_KEY, parse_infotext, request_from_infotext
from .request import RenderedImage, RenderRequest

if TYPE_CHECKING:
    from PIL.PngImagePlugin import PngInfo

log = logging.getLogger(__name__)

RE_NUMBER = re.compile(r"(\d+)(?=[-.]|$)")  # A1111's sequence number: the 00007 of 00007-1234.png


@dataclass(frozen=True)
class PngMetadata:
    """What a PNG carries: A1111's parameters text and keyart's lineage, either may be absent."""

    infotext: str | None
    lineage: dict[str, Any] | None


def _next_number(directory: Path) -> int:
    """One more than the highest A1111-style sequence number in `directory` (0 when none)."""
    numbers = [int(m.group(1)) for name in os.listdir(directory) if (m := RE_NUMBER.match(name))]
    return max(numbers, default=-1) + 1


def _pnginfo(rendered: RenderedImage) -> PngInfo:
    """The PNG text chunks of an image: A1111's parameters and keyart's lineage, checked as JSON."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if rendered.infotext:
        info.add_text(PARAMETERS_KEY, rendered.infotext)  # tEXt for latin-1, iTXt otherwise
    if rendered.lineage:
        try:
            info.add_itxt(LINEAGE_KEY, json.dumps(rendered.lineage, ensure_ascii=False))
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"the keyart lineage must be JSON (text, numbers, lists, dicts): {exc}") from exc
    return info


TEMP_PREFIX = ".keyart-"  # hidden temp files: ".keyart-<16 hex>.tmp"
STALE_TEMP_S = 3600  # a temp file this old is a killed writer's: no live save takes an hour


@contextmanager
def _temp_png(rendered: RenderedImage, directory: Path) -> Iterator[Path]:
    """A complete, fsynced PNG under a hidden temp name in `directory`, removed when the block ends.

    The caller publishes it (link or replace) inside the block; on any error nothing is left behind
    (a folder this call created is removed again), and an OS failure (no space, read-only, no
    permission) is a StorageError naming the folder.
    """
    # 1. The chunks, checked before anything touches the disk.
    info = _pnginfo(rendered)
    # 2. A hidden temp file in the same folder, so publishing it is a rename on one file system
    # (os.open honours the umask, unlike mkstemp).
    created = _missing_folders(directory)
    tmp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _clear_stale(directory)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            rendered.image.save(f, format="PNG", pnginfo=info)
            f.flush()
            os.fsync(f.fileno())
        yield tmp
    except OSError as exc:
        _discard(tmp, created)
        raise storage_error(exc, directory, what="the images folder", kept="images saved before are kept") from exc
    except BaseException:
        _discard(tmp, created)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _missing_folders(directory: Path) -> list[Path]:
    """The folders of `directory`'s path that do not exist yet, deepest first."""
    missing = []
    for folder in (directory, *directory.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _discard(tmp: Path, created: list[Path]) -> None:
    """Remove a failed write's temp file and the (empty) folders it made."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            break


_CLEARED: set[str] = set()  # folders already cleared by this process: one look each, not one per image


def _clear_stale(directory: Path) -> None:
    """Remove temp files a killed writer left in `directory` (older than STALE_TEMP_S; never an
    image), the first time this process writes there."""
    import time

    key = os.path.abspath(directory)
    if key in _CLEARED:
        return
    _CLEARED.add(key)
    cutoff = time.time() - STALE_TEMP_S
    for stale in directory.glob(f"{TEMP_PREFIX}*.tmp"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except OSError:
            pass


def writable_folder(path: str | Path, flag: str = "--output", purpose: str = "the images") -> Path:
    """Check, before any work, that images can be written into the folder `path`: no part of it is a
    file, and a probe file can be made there (made and removed, with any folder it needed). The
    error names `flag`; nothing is left behind."""
    folder = Path(path).expanduser()
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            where = "is a file" if part == folder else f"is under {part}, which is a file"
            raise InvalidRequest(f"{flag} {folder} {where}, not a folder; choose a folder for {purpose}")
    created = _missing_folders(folder)
    probe = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise storage_error(exc, folder, what=flag, kept="nothing was rendered or written") from exc
    finally:
        _discard(probe, created)
    return folder


def save_png(rendered: RenderedImage, directory: str | Path, *, stem: str | None = None) -> Path:
    """Write `{n:05d}-{seed}.png` (or `{n:05d}-{stem}.png`) with its parameters and lineage; never
    overwrites, never half-written."""
    directory = Path(directory)
    with _temp_png(rendered, directory) as tmp:
        # Publish under the next free number: link() fails if the name exists, so a concurrent
        # writer that took it makes us move on instead of overwriting its image.
        number = _next_number(directory)
        while True:
            final = directory / f"{number:05d}-{stem or rendered.seed}.png"
            try:
                os.link(tmp, final)
                return final
            except FileExistsError:
                number = max(number + 1, _next_number(directory))


def write_png(rendered: RenderedImage, path: str | Path) -> Path:
    """Write one PNG with its parameters and lineage at exactly `path`, replacing any file there.

    Atomic: readers see the old file or the whole new one, never a half-written image.
    """
    path = Path(path)
    with _temp_png(rendered, path.parent) as tmp:
        os.replace(tmp, path)
    return path


def read_png(path: str | Path) -> PngMetadata:
    """The A1111 parameters and keyart lineage stored in a PNG."""
    from PIL import Image, UnidentifiedImageError

    expected = f"expected a PNG with an A1111 {PARAMETERS_KEY!r} or a {LINEAGE_KEY!r} text chunk"
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise MetadataError(f"{path} is a {im.format} image; {expected}")
            text = {key: str(value) for key, value in im.text.items()}
    except (UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MetadataError(f"{path} is not a readable image ({type(exc).__name__}); {expected}") from exc
    except (OSError, ValueError) as exc:
        raise MetadataError(f"cannot read {path} ({exc}); {expected}") from exc
    infotext, lineage = text.get(PARAMETERS_KEY), text.get(LINEAGE_KEY)
    if infotext is None and lineage is None:
        raise MetadataError(f"{path} carries no generation metadata; {expected}")
    if lineage is not None:
        try:
            lineage = json.loads(lineage)
        except (ValueError, RecursionError) as exc:  # not JSON, a number of 4,300 digits, nesting past Python's stack
            raise MetadataError(f"{path}: the {LINEAGE_KEY!r} chunk is not valid JSON ({exc})") from exc
        if not isinstance(lineage, dict):
            raise MetadataError(f"{path}: the {LINEAGE_KEY!r} chunk must be a JSON object")
    return PngMetadata(infotext=infotext, lineage=lineage)


def request_from_png(path: str | Path, **inputs: Any) -> tuple[RenderRequest, int]:
    """The request and image index that reproduce a PNG: keyart's whole batch, else A1111's one image.

    An init image or mask recorded in the lineage must still be there, unchanged; `inputs`
    (init_image=, mask=) replace them, or supply them for A1111's parameters, which cannot name them.
    A recorded value keyart cannot render (a wrong type, an unknown sampler) is an error naming the PNG.
    """
    try:
        return _request_from_png(path, **inputs)
    except MetadataError:
        raise
    except InvalidRequest as exc:
        raise MetadataError(f"{path}: its recorded settings cannot be rendered: {exc}") from exc
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a lineage of the wrong shape
        raise MetadataError(f"{path}: its recorded settings are malformed ({type(exc).__name__}: {exc})") from exc


def _request_from_png(path: str | Path, **inputs: Any) -> tuple[RenderRequest, int]:
    meta = read_png(path)
    inputs = {k: v for k, v in inputs.items() if v is not None}
    if meta.lineage is not None and "request" in meta.lineage:
        # 1. keyart lineage: the original request, so the batch (and thus the maths) is the same.
        data, index = meta.lineage["request"], meta.lineage.get("index", 0)
        if not isinstance(data, dict):
            raise MetadataError(f"{path}: the keyart 'request' must be a JSON object")
        metadata_modes.check_inputs(meta.lineage.get("inputs"), path, set(inputs))
        request = _request_seen({**data, **inputs}, meta.infotext)
        total = request.batch_size * request.batch_count
        if request.seed == -1 or not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < total:
            raise MetadataError(
                f"{path}: the keyart lineage needs a resolved seed and an index below {total} "
                f"(got seed {request.seed}, index {index!r})"
            )
        return request, index
    if meta.infotext is None:
        raise MetadataError(f"{path}: the keyart chunk has no 'request' and there are no A1111 parameters")
    # 2. A1111 parameters only: one image on its own seed.
    return request_from_infotext(meta.infotext, **inputs), 0


def _request_seen(data: dict[str, Any], infotext: str | None) -> RenderRequest:
    """The lineage's request; with the recorded prompt instead of its style if the style here no longer gives it.

    Styles are data that can change or be missing on this machine; the infotext holds the styled prompt.
    """
    try:
        request = RenderRequest.from_dict(data)
    except UnknownStyle:
        if infotext is None:
            raise
        request = None
    if infotext is None:
        return request
    seen = parse_infotext(infotext)[:2]
    # Compared with whitespace collapsed, as CLIP's tokenizer collapses it: such prompts render the same.
    if request is not None and [" ".join(t.split()) for t in request.styled] == [" ".join(t.split()) for t in seen]:
        return request
    log.warning("style %r does not give this image's recorded prompt here; rendering the recorded prompt", data.get("style"))
    return RenderRequest.from_dict({**data, "style": None, "prompt": seen[0], "negative_prompt": seen[1]})
