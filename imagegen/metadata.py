"""A1111's PNG "parameters" infotext and the keyart lineage JSON: what goes into a PNG's text chunks
and how it reads back (the files themselves: png_files).

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
import re
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata as _metadata
from typing import Any

from . import metadata_modes
from .errors import InvalidRequest, MetadataError
from .request import RenderRequest

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
