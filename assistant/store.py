"""The catalog store: one home folder with an SQLite database (WAL) and a folder of images.

Prompts, images and language-model replies are keyed by a hash of their inputs, so a rerun finds
what is already done and a changed input misses only what depends on it. Every write is one
transaction; image files are written (atomically) before the row that names them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import CatalogError, storage_error
from .sqlite_file import SQLiteFile

HOME_ENV = "KEYART_HOME"
DEFAULT_HOME = Path(__file__).resolve().parents[1] / "data" / "home"  # gitignored
DB_NAME = "catalog.sqlite"
LOCK_NAME = ".lock"
IMAGES = "images"
SEASON_ART = 0  # the `episode` number of a season's own art: episodes count from 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    key        TEXT PRIMARY KEY,          -- hash of everything the prompts depend on
    kind       TEXT NOT NULL,             -- 'episode' | 'season'
    show       TEXT NOT NULL,
    season     INTEGER NOT NULL,
    episode    INTEGER NOT NULL,          -- 0 for a season
    llm        TEXT NOT NULL,             -- 'offline', 'openai:gpt-4o-mini', ...
    result     TEXT NOT NULL,             -- EpisodePrompts / SeasonPrompts JSON, trace included
    created    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    key        TEXT PRIMARY KEY,          -- hash of the styled prompt, settings, seed and model
    prompt_key TEXT NOT NULL,
    path       TEXT NOT NULL,             -- relative to the home folder
    seed       INTEGER NOT NULL,
    engine     TEXT NOT NULL,
    model      TEXT NOT NULL,
    request    TEXT NOT NULL,             -- the RenderRequest as JSON
    seconds    REAL NOT NULL,
    created    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (           -- the catalog: one row per piece of art
    show       TEXT NOT NULL,
    season     INTEGER NOT NULL,
    episode    INTEGER NOT NULL,          -- 0: the season's art
    style      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL DEFAULT '',
    prompt_key TEXT,                      -- set once the prompts are written
    image_key  TEXT,                      -- set once the image is rendered
    state      TEXT NOT NULL,             -- 'pending' | 'prompted' | 'done' | 'failed'
    stage      TEXT,                      -- where it failed: 'prompts' | 'render'
    error      TEXT,
    updated    TEXT NOT NULL,
    PRIMARY KEY (show, season, episode, style)
);
CREATE TABLE IF NOT EXISTS summaries (         -- what each item's art was drawn from, for search
    show       TEXT NOT NULL,
    season     INTEGER NOT NULL,
    episode    INTEGER NOT NULL,          -- 0: the season's summary
    summary    TEXT NOT NULL,
    updated    TEXT NOT NULL,             -- when the text last changed (search rebuilds its index then)
    PRIMARY KEY (show, season, episode)
);
CREATE TABLE IF NOT EXISTS llm_cache (
    key        TEXT PRIMARY KEY,          -- hash of the model's settings and the messages
    value      TEXT NOT NULL,
    created    TEXT NOT NULL
);
"""


_ENTRY_SQL = "SELECT * FROM entries WHERE show = ? AND season = ? AND episode = ? AND style = ?"


def digest(value: Any) -> str:
    """A stable hash of JSON-able data: keys sorted, no whitespace, UTF-8."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_home(home: str | Path | None = None) -> Path:
    """`home` (the entry points pass --home or KEYART_HOME from their Settings), else data/home beside the code."""
    chosen = home or DEFAULT_HOME
    return Path(chosen).expanduser()


@dataclass(frozen=True)
class Entry:
    show: str
    season: int
    episode: int
    style: str
    kind: str
    title: str
    prompt_key: str | None
    image_key: str | None
    state: str
    stage: str | None
    error: str | None
    updated: str


@dataclass(frozen=True)
class Art:
    """A piece of catalog art as the store has it: its entry, its prompt result, and its image once done."""

    entry: Entry
    result: dict[str, Any]  # the EpisodePrompts / SeasonPrompts JSON, trace included
    image: sqlite3.Row | None  # None unless the entry is done: an older image of changed prompts is stale

    def styled(self, style: str) -> dict[str, Any] | None:
        """The result's prompt for `style`, if it has one."""
        return next((p for p in self.result.get("prompts", []) if p["style"] == style), None)


def stored_art(home: Path, show: str, season: int, episode: int, style: str) -> Art | None:
    """`Store.art` of the catalog in `home`, or None when there is no catalog there yet."""
    if not (home / DB_NAME).is_file():
        return None
    store = Store(home, create=False)
    try:
        return store.art(show, season, episode, style)
    finally:
        store.close()


def check_home(home: Path) -> None:
    """Refuse a home that cannot serve as one before anything is written beside it: a home that is a
    file, or a catalog.sqlite that is damaged. A home without a catalog yet is fine; nothing is created."""
    if home.exists() and not home.is_dir():
        raise CatalogError(f"the catalog home {home} is a file, not a folder; choose another with --home or {HOME_ENV}")
    if (home / DB_NAME).is_file():
        Store(home, create=False).close()


class Store(SQLiteFile):
    """The home folder's database and images. Safe to share between threads (a connection each).

    `create=False` opens an existing catalog only (none there is a CatalogError) and creates nothing.
    """

    def __init__(self, home: str | Path | None = None, *, create: bool = True):
        self.home = resolve_home(home)
        self.path = self.home / DB_NAME
        if self.home.exists() and not self.home.is_dir():
            raise CatalogError(f"the catalog home {self.home} is a file, not a folder; choose another with --home or {HOME_ENV}")
        if not self.path.is_file() and not create:
            raise CatalogError(f"no catalog in {self.home} yet; run `python dataprep.py run` first (or point --home / {HOME_ENV} at one)")
        # An existing database is opened (and so checked) before anything is created beside it.
        existing = self.path.is_file()
        if existing:
            super().__init__(self.path, SCHEMA, what="catalog")
            if not create:  # a reader (status, export, a check) adds no folder; writers make images/ as they write
                return
        try:
            (self.home / IMAGES).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.home, what="the catalog home", kept=f"nothing was written; choose another with --home or {HOME_ENV}") from exc
        if not existing:
            super().__init__(self.path, SCHEMA, what="catalog")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the home for one run; another run on the same home is told, not interleaved.

        While held, temp files a killed run left behind (never a finished image) are cleared.
        """
        import fcntl

        handle = open(self.home / LOCK_NAME, "a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise CatalogError(f"another dataprep run ({holder}) is using {self.home}; wait for it, or use another --home") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            for stale in (self.home / IMAGES).rglob(".*.tmp"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            handle.close()  # closing the file releases the lock

    # -- prompts ----------------------------------------------------------------------------

    def prompt(self, key: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT result FROM prompts WHERE key = ?", (key,)).fetchone()
        return json.loads(row["result"]) if row else None

    def save_prompts(
        self, key: str, *, kind: str, show: str, season: int, episode: int, llm: str, result: dict[str, Any], entries: list[tuple[str, int, int, str]]
    ) -> None:
        """The prompts and their entries' new state, in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO prompts (key, kind, show, season, episode, llm, result, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, show, season, episode, llm, json.dumps(result, ensure_ascii=False), now()),
            )
            self._link_prompts(db, key, entries, rewritten=True)

    def link_prompts(self, key: str, entries: list[tuple[str, int, int, str]]) -> None:
        """Point entries at prompts already in the store (a rerun, or a summary changed back)."""
        with self.transaction() as db:
            self._link_prompts(db, key, entries, rewritten=False)

    def _link_prompts(self, db: sqlite3.Connection, key: str, entries: list[tuple[str, int, int, str]], *, rewritten: bool) -> None:
        for entry in entries:
            row = db.execute(_ENTRY_SQL, entry).fetchone()
            if row is None:
                continue
            # An entry keeps its image only while its prompts are the same; the render stage
            # then finds that image by its key again, or renders the new one.
            same = row["prompt_key"] == key and not rewritten
            if same and row["state"] in ("prompted", "done"):
                continue
            self._set(db, *entry, prompt_key=key, state="prompted", stage=None, error=None)

    # -- images -----------------------------------------------------------------------------

    def image(self, key: str) -> sqlite3.Row | None:
        return self._db().execute("SELECT * FROM images WHERE key = ?", (key,)).fetchone()

    def image_file(self, key: str) -> Path | None:
        """The image's file if both its row and its file exist."""
        row = self.image(key)
        if row is None:
            return None
        path = self.home / row["path"]
        return path if path.is_file() else None

    def save_image(self, key: str, *, entry: tuple[str, int, int, str], prompt_key: str, path: Path, seed: int, engine: str, model: str, request: dict, seconds: float) -> None:
        """Record a rendered image (its file already in place) and mark its entry done."""
        relative = path.resolve().relative_to(self.home.resolve()).as_posix()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO images (key, prompt_key, path, seed, engine, model, request, seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, prompt_key, relative, seed, engine, model, json.dumps(request), seconds, now()),
            )
            self._set(db, *entry, image_key=key, state="done", stage=None, error=None)

    def link_image(self, entry: tuple[str, int, int, str], key: str) -> None:
        """Mark an entry done with an image already in the store."""
        row = self._db().execute(_ENTRY_SQL, entry).fetchone()
        if row is not None and (row["state"], row["image_key"]) != ("done", key):
            self.set_entry(*entry, image_key=key, state="done", stage=None, error=None)

    # -- entries ----------------------------------------------------------------------------

    def plan_items(self, items: list[Any]) -> None:
        """Entries for prompt items (anything with show, season, episode, kind, title and styles), and
        each item's summary where it has one (for search)."""
        self.plan([
            {"show": i.show, "season": i.season, "episode": i.episode, "style": s.name, "kind": i.kind, "title": i.title}
            for i in items
            for s in i.styles
        ])
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO summaries (show, season, episode, summary, updated) VALUES (?, ?, ?, ?, ?) ON CONFLICT (show, season, episode) "
                "DO UPDATE SET summary = excluded.summary, updated = excluded.updated WHERE summary != excluded.summary",
                [(i.show, i.season, i.episode, summary, now()) for i in items if (summary := getattr(i, "summary", ""))],
            )

    def plan(self, rows: list[dict[str, Any]]) -> None:
        """Make sure every planned entry exists (new ones pending); existing entries keep their state."""
        with self.transaction() as db:
            for r in rows:
                db.execute(
                    "INSERT INTO entries (show, season, episode, style, kind, title, state, updated) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) "
                    "ON CONFLICT (show, season, episode, style) DO UPDATE SET title = excluded.title, kind = excluded.kind",
                    (r["show"], r["season"], r["episode"], r["style"], r["kind"], r.get("title", ""), now()),
                )

    def set_entry(self, show: str, season: int, episode: int, style: str, **fields: Any) -> None:
        with self.transaction() as db:
            self._set(db, show, season, episode, style, **fields)

    def fail(self, entries: list[tuple[str, int, int, str]], *, stage: str, error: str) -> None:
        with self.transaction() as db:
            for entry in entries:
                self._set(db, *entry, state="failed", stage=stage, error=error)

    def _set(self, db: sqlite3.Connection, show: str, season: int, episode: int, style: str, **fields: Any) -> None:
        allowed = {"prompt_key", "image_key", "state", "stage", "error", "title", "kind"}
        assert set(fields) <= allowed, f"unknown entry fields {set(fields) - allowed}"
        columns = ", ".join(f"{name} = ?" for name in fields)
        db.execute(
            f"UPDATE entries SET {columns}, updated = ? WHERE show = ? AND season = ? AND episode = ? AND style = ?",
            (*fields.values(), now(), show, season, episode, style),
        )

    def entry(self, show: str, season: int, episode: int, style: str) -> Entry | None:
        row = self._db().execute(_ENTRY_SQL, (show, season, episode, style)).fetchone()
        return Entry(**dict(row)) if row else None

    def entries(self, show: str | None = None) -> list[Entry]:
        sql = "SELECT * FROM entries" + (" WHERE show = ?" if show else "") + " ORDER BY show, season, episode = 0, episode, style"
        return [Entry(**dict(row)) for row in self._db().execute(sql, (show,) if show else ())]

    def art(self, show: str, season: int, episode: int, style: str) -> Art | None:
        """The entry's prompts and (when done) image; None until its prompts are written."""
        entry = self.entry(show, season, episode, style)
        result = self.prompt(entry.prompt_key) if entry is not None and entry.prompt_key else None
        if result is None:
            return None
        image = self.image(entry.image_key) if entry.image_key and entry.state == "done" else None
        return Art(entry, result, image)

    # -- the language model cache -----------------------------------------------------------

    def cached_reply(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def cache_reply(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO llm_cache (key, value, created) VALUES (?, ?, ?)", (key, value, now()))
