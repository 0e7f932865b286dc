"""The catalog as a table (CSV or Parquet) and one contact sheet PNG per season; and its status.

The table has one row per piece of art: where it belongs, its prompt and who wrote it, the image
and what rendered it, or why it failed. Files are written to a temp name and renamed into place.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import CatalogError
from ..store import SEASON_ART, Entry, Store

FORMATS = ("csv", "parquet")
COLUMNS = [
    "show", "season", "episode", "kind", "title", "style", "state",
    "prompt", "negative_prompt", "llm", "technique", "fallback",
    "image", "seed", "engine", "model", "width", "height", "steps", "sampler", "cfg_scale",
    "failed_at", "error", "prompt_key", "image_key", "updated",
]  # fmt: skip


_ROWS_SQL = (
    "SELECT e.*, i.path AS image_path, i.seed AS image_seed, i.engine AS image_engine, i.model AS image_model, i.request AS image_request "
    "FROM entries e LEFT JOIN images i ON i.key = e.image_key AND e.state = 'done'"
)
_ENTRY_COLUMNS = ("show", "season", "episode", "style", "kind", "title", "prompt_key", "image_key", "state", "stage", "error", "updated")
_CHUNK = 500  # keys per `IN (...)`: well under SQLite's limit on bound parameters


def catalog_rows(store: Store, show: str | None = None) -> list[dict[str, Any]]:
    """Every entry of the catalog (of `show`), with its prompt and image when it has them.

    Two queries in all: the entries joined with their images, then their prompts. Besides COLUMNS,
    each row carries `request` (the image's RenderRequest, {} without one) and `result` (the prompt
    result, trace included, or None; shared by the rows of one prompt key) for the dashboard.
    """
    db = store._db()  # the store's per-thread connection: sqlite3.Row rows
    sql = _ROWS_SQL + (" WHERE e.show = ?" if show else "") + " ORDER BY e.show, e.season, e.episode = 0, e.episode, e.style"
    found = db.execute(sql, (show,) if show else ()).fetchall()
    keys = list(dict.fromkeys(r["prompt_key"] for r in found if r["prompt_key"]))
    prompts: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        prompts |= {r["key"]: json.loads(r["result"]) for r in db.execute(f"SELECT key, result FROM prompts WHERE key IN ({marks})", chunk)}
    rows = []
    for found_row in found:
        e = Entry(**{k: found_row[k] for k in _ENTRY_COLUMNS})
        result = prompts.get(e.prompt_key) if e.prompt_key else None
        given = next((p for p in (result or {}).get("prompts", []) if p["style"] == e.style), {})
        trace = (result or {}).get("trace", {})
        has_image = found_row["image_path"] is not None  # an entry that is done, and its image row
        request = json.loads(found_row["image_request"]) if has_image else {}
        rows.append(
            {
                "show": e.show,
                "season": e.season,
                "episode": None if e.episode == SEASON_ART else e.episode,
                "kind": e.kind,
                "title": e.title,
                "style": e.style,
                "state": e.state,
                "prompt": given.get("prompt"),
                "negative_prompt": given.get("negative_prompt"),
                "llm": trace.get("model"),
                "technique": trace.get("technique"),
                "fallback": trace.get("fallback"),
                "image": str(store.home / found_row["image_path"]) if has_image else None,
                "seed": found_row["image_seed"] if has_image else None,
                "engine": found_row["image_engine"] if has_image else None,
                "model": found_row["image_model"] if has_image else None,
                "width": request.get("width"),
                "height": request.get("height"),
                "steps": request.get("num_inference_steps"),
                "sampler": request.get("sampler"),
                "cfg_scale": request.get("guidance_scale"),
                "failed_at": e.stage if e.state == "failed" else None,
                "error": e.error if e.state == "failed" else None,
                "prompt_key": e.prompt_key,
                "image_key": e.image_key if has_image else None,
                "updated": e.updated,
                "request": request,
                "result": result,
            }
        )
    return rows


def status(store: Store, show: str | None = None) -> dict[str, Any]:
    """Counts by show and kind (done, prompted, pending, failed) and every failure with its reason."""
    shows: dict[str, dict[str, Counter]] = {}
    failures = []
    fallbacks = 0
    for row in catalog_rows(store, show):
        shows.setdefault(row["show"], {}).setdefault(row["kind"], Counter())[row["state"]] += 1
        fallbacks += bool(row["fallback"])
        if row["state"] == "failed":
            failures.append({k: row[k] for k in ("show", "season", "episode", "style", "failed_at", "error")})
    return {
        "home": str(store.home),
        "shows": {name: {kind: dict(counts) for kind, counts in kinds.items()} for name, kinds in shows.items()},
        "failures": failures,
        "fallbacks": fallbacks,
    }


def export(store: Store, output: str | Path, fmt: str = "csv", *, show: str | None = None, sheets: bool = True) -> list[Path]:
    """Write the catalog table to `output` and a contact sheet per season beside it; returns the files."""
    import pandas as pd

    # 1. Check the request before writing anything.
    if fmt not in FORMATS:
        raise CatalogError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    output = Path(output)
    rows = catalog_rows(store, show)
    if not rows:
        raise CatalogError(f"the catalog in {store.home} is empty" + (f" for show {show!r}" if show else "") + "; run `python dataprep.py run` first")
    if output.is_dir():
        raise CatalogError(f"--output {output} is a folder; give the table's file name, such as {output / ('catalog.' + fmt)}")
    if output.suffix.lower() != f".{fmt}":
        output = output.with_name(output.name + f".{fmt}") if output.suffix == "" else output
    from imagegen.png_files import writable_folder

    writable_folder(output.parent, "--output")  # a file in the way, a read-only folder: said before anything is written
    output.parent.mkdir(parents=True, exist_ok=True)
    # 2. The table, then the sheets, each written atomically.
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["episode"] = frame["episode"].astype("Int64")
    frame["seed"] = frame["seed"].astype("Int64")
    written = [_atomic(output, lambda tmp: frame.to_csv(tmp, index=False) if fmt == "csv" else frame.to_parquet(tmp, index=False))]
    if sheets:
        for (name, season), group in frame.groupby(["show", "season"], sort=True):
            sheet = output.with_name(f"{output.stem}-{_slug(name)}-s{season:02d}.png")
            image = _sheet(group, name, season)
            written.append(_atomic(sheet, lambda tmp: image.save(tmp, format="PNG")))
    return written


def _sheet(group, show: str, season: int):
    from imagegen.contact_sheet import Cell, contact_sheet
    from imagegen.styles import names as style_names

    def row_label(r) -> str:
        title = f" {r['title']}" if isinstance(r["title"], str) and r["title"] else ""
        return f"Season{title}" if r["kind"] == "season" else f"E{int(r['episode']):02d}{title}"

    records = group.to_dict("records")
    rows = list(dict.fromkeys(row_label(r) for r in records))
    order = {name: i for i, name in enumerate(style_names())}  # the catalog's own style order
    columns = sorted(dict.fromkeys(r["style"] for r in records), key=lambda name: (order.get(name, len(order)), name))
    notes = {"failed": "failed: {error}", "prompted": "not rendered yet", "pending": "pending"}
    cells = [
        Cell(row=row_label(r), column=r["style"], image=r["image"] if isinstance(r["image"], str) else None, note=notes.get(r["state"], "").format(error=r["error"]))
        for r in records
    ]
    return contact_sheet(cells, rows=rows, columns=columns, title=f"{show} - season {season}")


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "show"


def _atomic(path: Path, write) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
