"""Style presets as data: each a name, a description, a prompt with one "{prompt}", a negative.

Applied as StyleSelectorXL and Fooocus apply theirs: the user's prompt replaces "{prompt}" and the
style's negative comes first in the negative prompt. The built-in catalog is `styles.json` beside
this file; more JSON files add to or override it: those the entry point configured once
(`use_files`, from KEYART_STYLES via imagegen.settings), else, for library use, KEYART_STYLES itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import InvalidRequest, UnknownStyle
from .settings import ImageSettings

BUILTIN = Path(__file__).with_name("styles.json")
PLACEHOLDER = "{prompt}"
NO_STYLE = "none"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_files: tuple[Path, ...] | None = None  # the extra style files use_files configured; None: not configured


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    prompt: str
    negative_prompt: str = ""
    palette: tuple[str, ...] = field(default_factory=tuple)

    def apply(self, prompt: str, negative_prompt: str = "") -> tuple[str, str]:
        """Return (prompt, negative) with this style applied; braces in `prompt` stay literal."""
        styled = self.prompt.replace(PLACEHOLDER, prompt.strip())
        negatives = [n for n in (self.negative_prompt.strip(), negative_prompt.strip()) if n]
        return styled, ", ".join(negatives)


MAX_STYLE_FILE_BYTES = 4 * 2**20  # a styles file is a few kilobytes of JSON; past this it is not one


def _parse(source: Path) -> list[Style]:
    where = f"the styles file {source} (KEYART_STYLES)"
    if source.is_dir():
        raise InvalidRequest(f"{where} is a folder; KEYART_STYLES lists JSON files")
    try:
        if source.stat().st_size > MAX_STYLE_FILE_BYTES:
            raise InvalidRequest(f"{where} is {source.stat().st_size:,} bytes, past {MAX_STYLE_FILE_BYTES:,}; a styles file is a short JSON list")
        entries = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRequest(f"{where} does not exist; fix KEYART_STYLES or create it") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{where} is not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise InvalidRequest(f"cannot read {where}: {exc}") from exc
    if not isinstance(entries, list):
        raise InvalidRequest(f"{source}: a styles file is a JSON list of objects")
    styles = []
    for i, entry in enumerate(entries):
        where = f"{source}, style #{i + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise InvalidRequest(f"{where}: every style needs a non-empty 'name'")
        unknown = set(entry) - {"name", "description", "prompt", "negative_prompt", "palette"}
        if unknown:
            raise InvalidRequest(f"{where} ({entry['name']}): unknown keys {sorted(unknown)}")
        palette = entry.get("palette", [])
        if not isinstance(palette, list) or not all(isinstance(c, str) and _HEX.fullmatch(c) for c in palette):
            raise InvalidRequest(f"{where} ({entry['name']}): 'palette' must be a list of '#rrggbb' colours")
        template = entry.get("prompt", "")
        if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
            raise InvalidRequest(f"{where} ({entry['name']}): 'prompt' must contain {PLACEHOLDER} exactly once")
        styles.append(
            Style(
                name=entry["name"].strip(),
                description=str(entry.get("description", "")),
                prompt=template,
                negative_prompt=str(entry.get("negative_prompt", "")),
                palette=tuple(palette),
            )
        )
    return styles


@lru_cache(maxsize=8)
def _load(sources: tuple[tuple[Path, int], ...]) -> dict[str, Style]:
    catalog: dict[str, Style] = {}
    for source, _ in sources:
        for style in _parse(source):
            catalog[style.name.lower()] = style
    return catalog


def _stamp(path: Path) -> tuple[Path, int]:
    try:
        return path, path.stat().st_mtime_ns
    except OSError:
        return path, -1  # _parse reports the missing file


def use_files(paths: Iterable[str | Path] | None) -> None:
    """Configure the extra style files, in the order they override: entry points call it once with
    `ImageSettings.styles` (imagegen.settings.configure does). None forgets the configuration, so
    the catalog falls back to the environment's KEYART_STYLES, as for library use."""
    global _files
    _files = None if paths is None else tuple(Path(p).expanduser() for p in paths)


def extra_files() -> tuple[Path, ...]:
    """The extra style files: those configured with use_files, else (library use) KEYART_STYLES's."""
    if _files is not None:
        return _files
    return tuple(Path(p).expanduser() for p in ImageSettings.from_env().styles)


def catalog() -> dict[str, Style]:
    """All styles by lower-case name: the built-ins plus those in the extra files (`extra_files`).

    Cached per file and modification time, so an edited styles file is read again.
    """
    return _load(tuple(_stamp(p) for p in [BUILTIN, *extra_files()]))


def names() -> list[str]:
    return [s.name for s in catalog().values()]


def get(name: str) -> Style:
    style = catalog().get(str(name).strip().lower())
    if style is None:
        raise UnknownStyle(f"unknown style {name!r}; choose one of: {', '.join(names())} (or {NO_STYLE!r})")
    return style


def apply(style: str | None, prompt: str, negative_prompt: str = "") -> tuple[str, str]:
    """The (prompt, negative) that reach the engine for a style name; `None`/"none" leaves them."""
    if style is None or style.strip().lower() == NO_STYLE:
        return prompt, negative_prompt
    return get(style).apply(prompt, negative_prompt)
