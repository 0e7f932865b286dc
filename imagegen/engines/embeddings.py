"""Textual-inversion embeddings for SDXL, used the way A1111 uses them: a file in the embeddings
folder is named in a prompt by its file name, and its vectors take that word's place in the text
encoders' input.

Compatible with A1111's embeddings (https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Features#textual-inversion):
an SDXL embedding is a `.safetensors` file holding `clip_l` (n, 768) and `clip_g` (n, 1280), one
row per vector; the name is the file's stem, anywhere in the folder, matched as a whole word in
any case, in the prompt and the negative prompt; an n-vector embedding takes n of a chunk's 75
token places; A1111's "TI hashes" field records each one used with the first 12 hex digits of the
file's SHA-256. A file that is not an SDXL embedding (an SD 1.5 one, say) is skipped, with its
reason, as A1111 skips it: its name stays a plain word.

The folder (KEYART_EMBEDDINGS_DIR, read by imagegen.settings) is a parameter here. The engine reads
it again (`refresh`) at the start of each render, so a new or changed file works without a restart.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import hashes
from ..errors import InvalidRequest

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
SHORT = 12  # A1111's textual-inversion "shorthash" length
KEYS = ("clip_l", "clip_g")  # text_encoder's vectors, then text_encoder_2's
MAX_VECTORS = 75  # one chunk's token places: an embedding must fit in one


@dataclass(frozen=True)
class Embedding:
    """One usable SDXL embedding: its name, file and how many vectors it holds (widths per key)."""

    name: str
    path: Path
    vectors: int
    widths: tuple[int, int]  # clip_l's, clip_g's

    def describe(self) -> dict[str, Any]:
        """A1111's /sdapi/v1/embeddings entry: `shape` is one vector's length (OpenCLIP-G's, SDXL's main encoder)."""
        return {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": self.widths[1], "vectors": self.vectors}


class Embeddings:
    """The embeddings of one folder (None: none configured), re-read when the folder changes; their
    vectors loaded on first use and kept."""

    def __init__(self, folder: str | Path | None):
        value = str(folder).strip() if folder is not None else ""
        self.folder = Path(value).expanduser() if value else None
        self._seen: tuple | None = None  # the folder's files as last read: (path, size, mtime) each
        self._usable: dict[str, Embedding] = {}  # by lower-case name
        self._skipped: dict[str, str] = {}  # name -> why
        self._pattern: re.Pattern | None = None
        self._headers: dict[tuple, Any] = {}  # (path, size, mtime) -> what _read_header found
        self._tensors: dict[tuple[Path, int, int], dict[str, Any]] = {}
        self._hashes: dict[tuple[Path, int, int], str] = {}  # (path, size, mtime) -> short SHA-256

    # -- the folder ---------------------------------------------------------------------------

    def usable(self) -> dict[str, Embedding]:
        """The SDXL embeddings in the folder, by name as the file spells it, sorted by name."""
        self.refresh()
        return {e.name: e for e in sorted(self._usable.values(), key=lambda e: e.name.lower())}

    def skipped(self) -> dict[str, str]:
        """The folder's files that are not SDXL embeddings, by name, with why."""
        self.refresh()
        return dict(sorted(self._skipped.items()))

    def refresh(self) -> None:
        """Read the folder again: its file list and sizes and times; only new or changed files' headers are read."""
        if self.folder is None or not self.folder.is_dir():
            self._seen, self._usable, self._skipped, self._pattern = None, {}, {}, None
            return
        files = sorted((p for p in self.folder.rglob(f"*{SUFFIX}") if p.is_file()), key=lambda p: str(p))
        seen = tuple((p, *_stamp(p)) for p in files)
        if seen == self._seen:
            return
        usable: dict[str, Embedding] = {}
        skipped: dict[str, str] = {}
        headers: dict[tuple, Any] = {}
        for stamp in seen:
            path, name = stamp[0], stamp[0].stem
            if name.lower() in usable:
                skipped[str(path.relative_to(self.folder))] = f"another file is already named {name!r}"
                continue
            found = self._headers[stamp] if stamp in self._headers else _read_header(path)
            headers[stamp] = found
            if isinstance(found, str):
                skipped[name] = found
            else:
                usable[name.lower()] = Embedding(name, path, *found)
        for name, why in skipped.items():
            if why != self._skipped.get(name):  # said once, not at every render
                log.warning("embedding %s skipped: %s", name, why)
        self._seen, self._usable, self._skipped, self._headers = seen, usable, skipped, headers
        names = sorted(usable, key=len, reverse=True)  # the longest first: "neg-xl" before "neg"
        # A whole word in any case, never inside a <lora:...> tag.
        self._pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])(?![^<>]*>)", re.IGNORECASE) if names else None

    # -- prompts ------------------------------------------------------------------------------

    def split(self, text: str) -> list[str | Embedding]:
        """`text` as plain pieces and the embeddings it names, in order ([text] when it names none); the
        folder as last read (`refresh`), or read now the first time."""
        if self._seen is None:
            self.refresh()
        if self._pattern is None:
            return [text]
        pieces: list[str | Embedding] = []
        at = 0
        for match in self._pattern.finditer(text):
            pieces += [text[at : match.start()], self._usable[match.group(1).lower()]]
            at = match.end()
        pieces.append(text[at:])
        return [p for p in pieces if not isinstance(p, str) or p]

    def used(self, texts: list[str]) -> list[Embedding]:
        """The embeddings `texts` name, each once, in the order first named."""
        found = {e.name: e for text in texts for e in self.split(text) if isinstance(e, Embedding)}
        return list(found.values())

    def vectors(self, embedding: Embedding, key: str, width: int):
        """`embedding`'s (vectors, width) tensor for one text encoder (`key`: clip_l or clip_g), checked against its width."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            stamp = (embedding.path, *_stamp(embedding.path))
            if stamp not in self._tensors:
                self._tensors = {k: v for k, v in self._tensors.items() if k[0] != embedding.path}
                self._tensors[stamp] = load_file(str(embedding.path))
            table = self._tensors[stamp][key]
        except (OSError, SafetensorError, KeyError) as exc:  # changed or removed since the folder was read
            raise InvalidRequest(f"embedding {embedding.name} ({embedding.path}) can no longer be read ({exc}); render again to read the folder anew") from exc
        if table.shape[-1] != width:
            raise InvalidRequest(
                f"embedding {embedding.name}'s {key} vectors are {table.shape[-1]} wide, but this model's text encoder is {width} wide: "
                "it was made for another model; remove it from the prompt"
            )
        return table

    def records(self, texts: list[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """What an image records of the embeddings `texts` name: A1111's `TI hashes` field ({} for none;
        unquoted, as lora_infotext) and the lineage's list (name, file, vectors, hash)."""
        used = [(e, self._short_hash(e)) for e in self.used(texts)]
        if not used:
            return {}, []
        field = ", ".join(f"{e.name.translate(str.maketrans('', '', ':,'))}: {short}" for e, short in used)
        return {"TI hashes": field}, [{"name": e.name, "file": e.path.name, "vectors": e.vectors, "hash": short} for e, short in used]


    def _short_hash(self, embedding: Embedding) -> str:
        """The file's short SHA-256: read from the hash cache once per version of the file, then kept here."""
        stamp = (embedding.path, *_stamp(embedding.path))
        if stamp not in self._hashes:
            self._hashes = {k: v for k, v in self._hashes.items() if k[0] != embedding.path}
            self._hashes[stamp] = hashes.file_sha256(embedding.path)[:SHORT]
        return self._hashes[stamp]


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _read_header(path: Path) -> tuple[int, tuple[int, int]] | str:
    """(vectors, (clip_l width, clip_g width)) for an SDXL embedding file, else why it is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            shapes = {key: f.get_slice(key).get_shape() for key in KEYS if key in keys}
    except (SafetensorError, OSError) as exc:
        return f"not a readable .safetensors file ({exc})"
    if set(KEYS) - keys:
        sd15 = {"emb_params", "string_to_param"} & keys or (len(keys) == 1 and "clip_l" not in keys)
        kind = "an SD 1.5 (or SD 2) embedding" if sd15 else f"not an SDXL embedding (its tensors: {', '.join(sorted(keys)[:4])})"
        return f"{kind}; SDXL embeddings hold clip_l and clip_g"
    dims = [shapes[key] for key in KEYS]
    if any(len(d) != 2 for d in dims) or dims[0][0] != dims[1][0] or not 1 <= dims[0][0] <= MAX_VECTORS:
        return f"clip_l and clip_g must be (vectors, width) with the same 1 to {MAX_VECTORS} vectors (got {dims[0]} and {dims[1]})"
    return dims[0][0], (dims[0][1], dims[1][1])
