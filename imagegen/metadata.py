"""A1111's PNG "parameters" infotext and the keyart lineage JSON: written into PNGs and read back.

The infotext is the PNG text chunk that AUTOMATIC1111's web UI writes and that A1111, Forge and
Civitai read: the prompt, an optional `Negative prompt:` line, then one `Key: value, ...` line of
generation parameters. We write and read that format as the A1111 wiki documents it (Features,
"PNG info": https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features) and as the
infotexts those tools write show it (samples in tests/test_metadata.py), so they read our images
and we read theirs. The lineage chunk carries the whole request, so a re-render is exact.
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
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata as _metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import metadata_modes
from .errors import InvalidRequest, MetadataError, UnknownStyle, storage_error
from .request import RenderedImage, RenderRequest

if TYPE_CHECKING:
    from PIL.PngImagePlugin import PngInfo

log = logging.getLogger(__name__)

PARAMETERS_KEY = "parameters"  # A1111's PNG text chunk
LINEAGE_KEY = "keyart"  # our JSON chunk
NEGATIVE_PREFIX = "Negative prompt:"
# A parameters line names at least Steps, Seed and Size; a last line with fewer pairs is prompt
# text that happens to hold a colon or two ("a cat, style: noir, mood: dark").
MIN_PAIRS = 3
# A field name as the web UIs write them: "Steps", "CFG scale", "Hires upscaler", "Lora hashes".
RE_KEY = re.compile(r"\w[\w /-]*")
# None is a single character: a one-letter "key" is prompt text, such as the drive of a C:\ path.
MIN_KEY_LENGTH = 2
RE_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")  # past 5 digits a side is no size
RE_NUMBER = re.compile(r"(\d+)(?=[-.]|$)")  # A1111's sequence number: the 00007 of 00007-1234.png
REQUIRED = ("Steps", "Seed", "Size")
# A1111's names for the request's fields (Size and Refiner are translated by hand).
TEXT_FIELDS = {"Sampler": "sampler", "Schedule type": "schedule_type"}
NUMBER_FIELDS = {
    "Steps": "num_inference_steps",
    "CFG scale": "guidance_scale",
    "Seed": "seed",
    "Refiner switch at": "refiner_switch_at",
    "Variation seed": "subseed",
    "Variation seed strength": "subseed_strength",
}
VERSIONED = ("torch", "diffusers", "transformers", "pillow", "keyart")
EXAMPLE = "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 1024x1024"


@dataclass(frozen=True)
class PngMetadata:
    """What a PNG carries: A1111's parameters text and keyart's lineage, either may be absent."""

    infotext: str | None
    lineage: dict[str, Any] | None


# -- the A1111 infotext -----------------------------------------------------------------------


def _quote(value: object) -> str:
    """A value as it goes on the `Key: value, ...` line: JSON-quoted where plain text would break it."""
    text = number_text(value) if isinstance(value, float) else str(value)
    # A comma would end the value, a line break the line, a colon could read as a new key; a value
    # that starts with a quote is quoted too, so a reader cannot take it for a JSON string, and one
    # with blanks at its ends, which a reader strips.
    if any(c in text for c in ",:") or len(text.splitlines()) > 1 or text.startswith('"') or text != text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


def number_text(value: float) -> str:
    """A float as the shortest text that reads back as the same float; 7.0 as "7", as A1111 shows it."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def format_infotext(prompt: str, negative_prompt: str, fields: dict[str, object]) -> str:
    """A1111's "parameters": the prompt, `Negative prompt: ...` (if any), then `Key: value, ...`."""
    params = ", ".join(f"{key}: {_quote(value)}" for key, value in fields.items() if value is not None)
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{params}".strip()


def parse_infotext(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, fields) from an infotext; the field values as text.

    The last line is the parameters line when it holds at least MIN_PAIRS `Key: value` pairs;
    otherwise it is more prompt text. Above it, the lines before the first one that starts with
    `Negative prompt:` are the prompt; that line (less the prefix) and the ones after it the
    negative. Each line is stripped; Windows line endings (CRLF) read as plain newlines.
    """
    # 1. The lines, each without its surrounding blanks (and the \r of a CRLF ending).
    lines = [line.strip() for line in text.replace("\r\n", "\n").strip().split("\n")]
    # 2. The last line: the parameters, or prompt text like the lines above it.
    pairs = parameter_pairs(lines[-1])
    if len(pairs) >= MIN_PAIRS:
        lines.pop()
    else:
        pairs = []
    # 3. The prompt up to the first negative line, the negative from there on.
    cut = next((i for i, line in enumerate(lines) if line.startswith(NEGATIVE_PREFIX)), len(lines))
    negative = lines[cut:]
    if negative:
        negative[0] = negative[0].removeprefix(NEGATIVE_PREFIX).strip()
    # A negative written on the line after its prefix ("Negative prompt:\nblurry") starts at its text.
    return "\n".join(lines[:cut]), "\n".join(negative).lstrip("\n"), dict(pairs)


def parameter_pairs(line: str) -> list[tuple[str, str]]:
    """The `Key: value` pairs of a parameters line, left to right, a repeated key kept each time.

    A key runs up to its colon. A value that opens with a quote and whose closing quote is followed
    by a comma (or the line's end) is a JSON string, its backslash escapes decoded; any other value
    is the text up to the next comma. A piece whose key is not a field name, such as a prompt's
    "(cat:1.2)", is passed over up to its comma and gives no pair.
    """
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        # 1. The key: the text up to the next colon, unless a comma ends the piece first.
        colon, comma = line.find(":", pos), line.find(",", pos)
        if colon == -1:
            break
        if -1 < comma < colon:
            pos = comma + 1
            continue
        key = line[pos:colon].strip()
        # 2. The value, and where the next piece starts.
        value, pos = _read_value(line, colon + 1)
        if len(key) >= MIN_KEY_LENGTH and RE_KEY.fullmatch(key):
            pairs.append((key, value))
    return pairs


def _read_value(line: str, start: int) -> tuple[str, int]:
    """The value that starts at `start` (just after a key's colon), and the index past its comma."""
    start = _skip_blanks(line, start)
    close = _closing_quote(line, start) if line.startswith('"', start) else None
    if close is not None:
        after = _skip_blanks(line, close + 1)
        if after == len(line) or line[after] == ",":
            quoted = line[start : close + 1]
            try:
                return json.loads(quoted, strict=False), after + 1
            except json.JSONDecodeError:
                return quoted, after + 1  # not valid JSON (an unknown escape): kept as written
    # Plain text (or a quote that does not end the value): up to the next comma.
    end = line.find(",", start)
    end = len(line) if end == -1 else end
    return line[start:end].strip(), end + 1


def _skip_blanks(line: str, i: int) -> int:
    """The index of the first non-blank character of `line` at or after `i` (len(line) if none)."""
    while i < len(line) and line[i].isspace():
        i += 1
    return i


def _closing_quote(line: str, start: int) -> int | None:
    """The index of the quote that closes the one at `start`, stepping over backslash escapes."""
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2  # the escaped character cannot close the string
        elif line[i] == '"':
            return i
        else:
            i += 1
    return None


def infotext_for(
    request: RenderRequest,
    *,
    seed: int,
    model: str,
    index: int = 0,
    extra: dict[str, object] | None = None,
    model_hash: str | None = None,
) -> str:
    """The infotext of one image of a seed-resolved request: the styled prompt the model saw."""
    prompt, negative = request.styled
    fields: dict[str, object] = {
        "Steps": request.num_inference_steps,
        "Sampler": request.sampler,
        "Schedule type": request.schedule,
        "CFG scale": request.guidance_scale,
        "Seed": seed,
        "Size": f"{request.width}x{request.height}",
        "Model hash": model_hash,  # A1111 writes it before the name; skipped when None
        "Model": model,
    }
    if request.subseed_strength > 0:  # A1111 writes them after the model, only when used
        fields |= {"Variation seed": request.subseeds()[index], "Variation seed strength": request.subseed_strength}
    head, tail = metadata_modes.infotext_fields(request)  # img2img, inpaint, outpaint, hires fix
    fields |= head
    if request.batch_size > 1:
        fields |= {"Batch size": request.batch_size, "Batch pos": index % request.batch_size}
    fields |= tail | (extra or {})
    fields["Version"] = f"keyart {_keyart_version()}"
    return format_infotext(prompt, negative, fields)


def request_from_infotext(text: str, **inputs: Any) -> RenderRequest:
    """A request that renders the image an infotext describes: batch 1, on the image's own seed.

    A1111's parameters cannot name an init image, mask or control image: pass them in `inputs`
    (init_image=, mask=) to reproduce an img2img, inpaint or outpaint render, and `control_images=`
    (one path per `ControlNet N` field) or `controls=` (units that replace them) for ControlNet.
    """
    prompt, negative, fields = parse_infotext(text)
    missing = [key for key in REQUIRED if key not in fields]
    if missing:
        raise MetadataError(f"the A1111 parameters lack {', '.join(missing)}; expected a last line such as {EXAMPLE!r}")
    size = RE_SIZE.match(fields["Size"].strip())
    if size is None:
        raise InvalidRequest(f"Size must be WIDTHxHEIGHT such as 1024x1024 (got {fields['Size']!r})")
    options: dict[str, Any] = {name: fields[key] for key, name in TEXT_FIELDS.items() if key in fields}
    options |= {name: parse_number(fields[key]) for key, name in NUMBER_FIELDS.items() if key in fields}
    images = inputs.pop("control_images", None)
    if "IP-Adapter scale" in fields and inputs.get("reference") is None:
        log.warning("these parameters are a reference-image (IP-Adapter) render's, whose image they cannot name; pass it (reference, --reference) to reproduce it")
    options |= metadata_modes.request_fields(fields, parse_number) | inputs
    if "strength" in options and options.get("init_image") is None:
        log.warning("these parameters are an img2img render's, whose init image they cannot name; pass it (init_image, --init-image) to reproduce it")
    described = metadata_modes.control_units(fields, parse_number)
    if described and "controls" not in options:
        if images is not None and len(images) == len(described):
            options["controls"] = [unit | {"image": str(image)} for unit, image in zip(described, images)]
        elif images is not None:
            raise InvalidRequest(f"these parameters have {len(described)} ControlNet units; pass one control image for each (got {len(images)})")
        else:
            log.warning(
                "these parameters are a ControlNet render's, whose control images they cannot name; to reproduce it pass %s",
                metadata_modes.control_flags(described),
            )
    return RenderRequest(
        prompt=prompt,
        negative_prompt=negative,
        style=None,  # the prompt already has the style applied
        width=int(size.group(1)),
        height=int(size.group(2)),
        refiner="on" if "Refiner" in fields else "off",
        **options,
    )


def parse_number(text: str) -> int | float | str:
    """A number from infotext; anything else passes through for RenderRequest's own error."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# -- the keyart lineage -----------------------------------------------------------------------


def _keyart_version() -> str:
    from . import (
        __version__,  # late: safe even if the package ever imports this module first
    )

    return __version__


@lru_cache(maxsize=None)  # installed versions do not change while a process runs
def _version(name: str) -> str | None:
    try:
        return _metadata.version(name)
    except _metadata.PackageNotFoundError:
        return None


def stamp() -> dict[str, Any]:
    """What every keyart lineage records about the software and the time: keyart, library versions, created."""
    return {
        "keyart": _keyart_version(),
        # Read from the installed distributions: importing torch here would cost seconds.
        "versions": {name: v for name in VERSIONED if (v := _version(name)) is not None},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def lineage_for(
    request: RenderRequest,
    *,
    seed: int,
    index: int,
    engine: str,
    model: str,
    extra: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyart JSON of one image: the whole request, where it came from, and what rendered it."""
    made = stamp()  # keyart's version first, as ever; the library versions and the time last
    data: dict[str, Any] = {
        "keyart": made.pop("keyart"),
        "engine": engine,
        "model": model,
        "request": request.to_dict(),
        "seed": seed,
        "index": index,
        "lineage": dict(lineage or {}),
        # The init image and mask: path, SHA-256 and size, so a reproduction finds the very same files.
        **({"inputs": records} if (records := metadata_modes.input_records(request)) else {}),
        **made,
    }
    clash = set(extra or {}) & set(data)
    if clash:
        raise MetadataError(f"extra lineage keys {sorted(clash)} would overwrite keyart's own")
    return data | (extra or {})


# -- PNG files --------------------------------------------------------------------------------


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
