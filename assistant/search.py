"""Prompt search: full-text search over the catalog's titles, summaries and prompts, ranked.

An SQLite FTS5 index beside the catalog's tables (`search_index`), one row per piece of art (an
entry: an episode or season in one style), rebuilt from the store whenever the catalog changed since
it was built. Words match as prefixes, in any order, all of them required; ranking is BM25 with a
title worth more than the summary, and the summary more than the prompt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .errors import CatalogError
from .store import Store, now

INDEX_SQL = """
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5(
    show UNINDEXED, season UNINDEXED, episode UNINDEXED, style UNINDEXED, kind UNINDEXED, image_key UNINDEXED,
    title, summary, prompt, tokenize = 'porter unicode61'
);
CREATE TABLE IF NOT EXISTS search_state (id INTEGER PRIMARY KEY CHECK (id = 1), built TEXT NOT NULL, at TEXT NOT NULL);
"""
# bm25() takes a weight per column, unindexed ones included: title 3, summary 2, prompt 1.
WEIGHTS = (0, 0, 0, 0, 0, 0, 3.0, 2.0, 1.0)
MAX_RESULTS = 200
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    """One piece of art that matches, best first; `score` is BM25's (lower is better)."""

    show: str
    season: int
    episode: int  # 0: the season's art
    style: str
    kind: str
    title: str
    image_key: str | None
    score: float
    snippet: str  # where the words matched, [marked]

    @property
    def label(self) -> str:
        return f"S{self.season:02d}" + (f"E{self.episode:02d}" if self.episode else " season")


def search(store: Store, query: str, *, show: str | None = None, style: str | None = None, limit: int = 20) -> list[Hit]:
    """The catalog's art matching every word of `query`, best first (at most `limit`)."""
    # 1. The words, checked: FTS5's own syntax never reaches the index (quotes, NEAR, a lone '*').
    words = WORD.findall(str(query).lower())
    if not words:
        raise CatalogError(f"nothing to search for in {query!r}; give words, e.g. \"storm lighthouse\"")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise CatalogError(f"--limit must be between 1 and {MAX_RESULTS} (got {limit!r})")
    match = " ".join(f'"{w}"*' for w in words)
    # 2. The index, brought up to date, then asked.
    refresh(store)
    sql = (
        f"SELECT show, season, episode, style, kind, title, image_key, bm25(search_index, {', '.join(map(str, WEIGHTS))}) AS score, "
        "snippet(search_index, -1, '[', ']', '...', 12) AS snippet FROM search_index WHERE search_index MATCH ?"
    )
    params: list = [match]
    for column, value in (("show", show), ("style", style)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    sql += " ORDER BY score, show, season, episode, style LIMIT ?"
    rows = store._db().execute(sql, (*params, limit)).fetchall()
    return [Hit(r["show"], r["season"], r["episode"], r["style"], r["kind"], r["title"], r["image_key"] or None, r["score"], r["snippet"]) for r in rows]


def refresh(store: Store) -> bool:
    """Rebuild the index if the catalog changed since it was built; True when it did."""
    db = store._db()  # the store's per-thread connection (sqlite3.Row rows), as export reads it
    db.executescript(INDEX_SQL)
    # The catalog as the index sees it: one cheap query, so an unchanged catalog costs nothing more.
    # Changes are stamped to the second: the index is fresh only if built in a later second than the
    # last change (one made in the second of a build is caught by the next search).
    seen = list(db.execute(
        "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM prompts), (SELECT count(*) FROM summaries), "
        "max(coalesce((SELECT max(updated) FROM entries), ''), coalesce((SELECT max(updated) FROM summaries), ''))"
    ).fetchone())  # fmt: skip
    built, last = json.dumps(seen), seen[-1]
    held = db.execute("SELECT built, at FROM search_state WHERE id = 1").fetchone()
    if held is not None and held["built"] == built and held["at"] > last:
        return False
    # Every entry with its summary and prompts in one query; each prompt result parsed once.
    found = db.execute(
        "SELECT e.show, e.season, e.episode, e.style, e.kind, e.image_key, e.title, coalesce(s.summary, '') AS summary, e.prompt_key, p.result "
        "FROM entries e LEFT JOIN summaries s USING (show, season, episode) LEFT JOIN prompts p ON p.key = e.prompt_key"
    )
    prompts: dict[str, dict[str, str]] = {}
    rows = []
    for r in found:
        if r["prompt_key"] and r["prompt_key"] not in prompts:
            prompts[r["prompt_key"]] = {p["style"]: p["prompt"] for p in json.loads(r["result"] or "{}").get("prompts", [])}
        prompt = prompts.get(r["prompt_key"] or "", {}).get(r["style"], "")
        rows.append((r["show"], r["season"], r["episode"], r["style"], r["kind"], r["image_key"], r["title"], r["summary"], prompt))
    with store.transaction() as tx:
        tx.execute("DELETE FROM search_index")
        tx.executemany("INSERT INTO search_index (show, season, episode, style, kind, image_key, title, summary, prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        tx.execute(
            "INSERT INTO search_state (id, built, at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET built = excluded.built, at = excluded.at", (built, now())
        )
    return True

