"""More like this: the catalog's images ranked by how alike they look to one of them, or to a picture.

Each catalog image gets an embedding once per model: CLIP's image features when KEYART_CLIP_MODEL is
set, else the offline colour histogram (labelled as such). Embeddings are kept in the catalog store
(`image_embeddings`, by image key and model) and made for new images when a search needs them, in
batches; the ranking is cosine similarity, best first.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagegen.describe import OFFLINE_EMBEDDING

from ..errors import CatalogError
from ..store import Store, now

EMBED_SQL = """
CREATE TABLE IF NOT EXISTS image_embeddings (
    image_key  TEXT NOT NULL,
    model      TEXT NOT NULL,             -- 'clip:<model>' or 'offline:colour-histogram'
    vector     BLOB NOT NULL,             -- float32, unit length
    created    TEXT NOT NULL,
    PRIMARY KEY (image_key, model)
);
"""
BATCH = 16  # images embedded at once
MAX_RESULTS = 200
CODE = re.compile(r"^s(\d{1,3})(?:\s*e(\d{1,4})|\s+season)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Alike:
    """One catalog image and its cosine similarity to the query (1 is the same picture)."""

    show: str
    season: int
    episode: int  # 0: the season's poster
    style: str
    kind: str
    title: str
    image_key: str
    path: str
    score: float

    @property
    def label(self) -> str:
        return f"S{self.season:02d}" + (f"E{self.episode:02d}" if self.episode else " season")


@dataclass
class Likeness:
    """The ranking, and how it was made: `offline` when no CLIP model is configured."""

    query: str
    hits: list[Alike]
    method: str
    offline: bool

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"query": self.query, "method": self.method, "offline": self.offline, "hits": [asdict(h) for h in self.hits]}


def describer_for(settings: Any) -> Any:
    """The embedding models of the image settings (imagegen.describe.Describer): CLIP when configured, else the offline histogram."""
    from imagegen.describe import Describer

    return Describer.from_settings(settings)


def target(text: str) -> tuple[int, int] | Path:
    """What --like names: (season, episode) for "S01E03", (season, 0) for "S01" (its poster), or an image file."""
    text = str(text).strip()
    if m := CODE.match(text):
        return int(m.group(1)), int(m.group(2) or 0)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise CatalogError(f"--like takes a catalog code (S01E03, or S01 for the season's poster) or an image file; {text!r} is neither")


def more_like(
    store: Store, describer: Any, *, like: tuple[int, int] | Path | bytes, show: str | None = None, style: str | None = None, limit: int = 12,
) -> Likeness:  # fmt: skip
    """The catalog's images most like `like` (a catalog item, an image file or its bytes), best first; `show` and `style` narrow both the item and the results."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise CatalogError(f"--limit must be between 1 and {MAX_RESULTS} (got {limit!r})")
    import numpy as np

    # 1. The catalog's images, each with an embedding of this model (made now where missing).
    rows = _images(store, show, style)
    vectors = _embeddings(store, describer, rows)
    # 2. The query's embedding: a catalog image's own, or the picture's.
    if isinstance(like, tuple):
        query_row = _item(store, like, show, style)
        query, own = np.frombuffer(_embeddings(store, describer, [query_row])[query_row["key"]], dtype=np.float32), query_row["key"]
        said = f"{query_row['show']} S{like[0]:02d}" + (f"E{like[1]:02d}" if like[1] else " season") + f" ({query_row['style']})"
    else:
        from imagegen.describe import open_image

        query, own = np.asarray(describer.embed([open_image(like)])[0], dtype=np.float32), None
        said = str(like) if isinstance(like, Path) else "the uploaded image"
    # 3. Cosine similarity (the vectors are unit length), best first, the query's own image left out.
    ranked = sorted(((float(np.dot(np.frombuffer(vectors[r["key"]], dtype=np.float32), query)), r) for r in rows if r["key"] != own), key=lambda sr: (-sr[0], sr[1]["show"], sr[1]["season"], sr[1]["episode"], sr[1]["style"]))
    hits = [
        Alike(r["show"], r["season"], r["episode"], r["style"], r["kind"], r["title"], r["key"], str(store.home / r["path"]), round(score, 4))
        for score, r in ranked[:limit]
    ]  # fmt: skip
    offline = describer.embedding == OFFLINE_EMBEDDING
    method = "offline: colour histograms (no CLIP model: KEYART_CLIP_MODEL is not set)" if offline else f"CLIP image similarity ({Path(describer.clip_model).name})"
    return Likeness(said, hits, method, offline)


def _rendered(store: Store, **where: Any) -> list[Any]:
    """The catalog's rendered images whose entries match `where` (None matches all), in catalog order, on disk."""
    sql = (
        "SELECT e.show, e.season, e.episode, e.style, e.kind, e.title, i.key, i.path FROM entries e JOIN images i ON i.key = e.image_key "
        "WHERE e.state = 'done'"
    )
    params = []
    for column, value in where.items():
        if value is not None:
            sql += f" AND e.{column} = ?"
            params.append(value)
    rows = store._db().execute(sql + " ORDER BY e.show, e.season, e.episode, e.style", params)
    return [r for r in rows if (store.home / r["path"]).is_file()]


def _images(store: Store, show: str | None, style: str | None) -> list[Any]:
    return _rendered(store, show=show or None, style=style or None)


def _item(store: Store, like: tuple[int, int], show: str | None, style: str | None) -> Any:
    season, episode = like
    found = next(iter(_rendered(store, season=season, episode=episode, show=show or None, style=style or None)), None)
    if found is None:
        what = f"S{season:02d}" + (f"E{episode:02d}" if episode else " season") + (f" in {style}" if style else "")
        raise CatalogError(f"{what} has no rendered image in the catalog at {store.home}; render it first (python dataprep.py run), or name another")
    return found


def _embeddings(store: Store, describer: Any, rows: list[Any]) -> dict[str, bytes]:
    """Image key -> float32 embedding bytes for each row, made and kept for those the store lacks."""
    from imagegen.describe import open_image

    db, model = store._db(), describer.embedding
    db.executescript(EMBED_SQL)
    held = {r["image_key"]: r["vector"] for r in db.execute("SELECT image_key, vector FROM image_embeddings WHERE model = ?", (model,))}
    missing = [r for r in rows if r["key"] not in held]
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        vectors = describer.embed([open_image(store.home / r["path"]) for r in batch])
        made = [(r["key"], model, array("f", v).tobytes(), now()) for r, v in zip(batch, vectors)]
        with store.transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO image_embeddings (image_key, model, vector, created) VALUES (?, ?, ?, ?)", made)
        held.update({key: vector for key, _, vector, _ in made})
    return {r["key"]: held[r["key"]] for r in rows}
