"""Stored conversations: the illustrator's chats and every turn, with the state after it, in SQLite.

Its own file (`conversations.sqlite`) in the catalog home, so chatting never locks a dataprep run out.
Each turn is one transaction; its image file is written before the row that names it. The state
after each turn (JSON, with its undo history) is what "undo" and resuming read back.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError, storage_error
from .sqlite_file import SQLiteFile
from .store import HOME_ENV, now, resolve_home

DB_NAME = "conversations.sqlite"
TITLE_CHARS = 60  # a conversation's title is its first message, cut to fit a listing line

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT PRIMARY KEY,
    show       TEXT NOT NULL,
    llm        TEXT NOT NULL,             -- the model it started with: 'offline', 'openai:gpt-4o-mini', ...
    engine     TEXT NOT NULL,             -- 'preview', 'sdxl:<model>', ...
    title      TEXT NOT NULL DEFAULT '',  -- the first message
    created    TEXT NOT NULL,
    updated    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations(id),
    turn       INTEGER NOT NULL,          -- 1, 2, ...
    user       TEXT NOT NULL,             -- what was said
    reply      TEXT NOT NULL,             -- what the illustrator answered
    author     TEXT NOT NULL,             -- who understood the message: 'offline', 'openai:...'
    fallback   TEXT,                      -- why the offline rules stood in for the model, if they did
    intents    TEXT NOT NULL,             -- JSON list of the intents acted on
    changes    TEXT NOT NULL,             -- JSON list of what changed, in words
    state      TEXT NOT NULL,             -- JSON ChatState after the turn (history included)
    image      TEXT,                      -- the image shown, relative to the home folder
    request    TEXT,                      -- JSON RenderRequest when this turn rendered
    refused    INTEGER NOT NULL DEFAULT 0,  -- 1 when the brand-safety check blocked the prompt
    traces     TEXT NOT NULL,             -- JSON list of the language-model traces of this turn
    created    TEXT NOT NULL,
    PRIMARY KEY (conversation, turn)
);
"""


@dataclass(frozen=True)
class Conversation:
    id: str
    show: str
    llm: str
    engine: str
    title: str
    created: str
    updated: str
    turns: int


@dataclass(frozen=True)
class TurnRecord:
    """One turn as stored: the message, the reply, and the state it left."""

    conversation: str
    turn: int
    user: str
    reply: str
    author: str
    state: dict[str, Any]
    intents: list[dict[str, Any]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    fallback: str | None = None
    image: str | None = None
    request: dict[str, Any] | None = None
    refused: bool = False
    traces: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""


class Conversations(SQLiteFile):
    """The home's conversations. Safe to share between threads (a connection each).

    `create=False` reads only: it creates neither the home nor conversations.sqlite, and without
    that file there are no conversations (listing is empty, `get` names the id it cannot find).
    """

    def __init__(self, home: str | Path | None = None, *, create: bool = True):
        self.home = resolve_home(home)
        self.path = self.home / DB_NAME
        if self.home.exists() and not self.home.is_dir():
            raise CatalogError(f"the home {self.home} is a file, not a folder; choose another with --home or {HOME_ENV}")
        self._absent = not create and not self.path.is_file()
        if self._absent:  # nothing to open: no connection, so nothing is created
            self._what, self._local = "conversations", threading.local()
            return
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.home, what="the home folder", kept=f"nothing was written; choose another with --home or {HOME_ENV}") from exc
        super().__init__(self.path, SCHEMA, what="conversations")

    def _missing(self) -> bool:
        """True for a read-only view of a home that has no conversations.sqlite (still)."""
        return self._absent and not self.path.is_file()

    def _db(self) -> sqlite3.Connection:
        if self._missing():  # a write through a read-only view: connecting would create the file
            raise CatalogError(f"no conversations in {self.home} yet; start one with: python -m assistant chat")
        return super()._db()

    # -- conversations ----------------------------------------------------------------------

    def start(self, *, show: str, llm: str, engine: str) -> str:
        """A new conversation's id (8 hex digits: short enough to type after --resume)."""
        with self.transaction() as db:
            while True:
                cid = secrets.token_hex(4)
                if db.execute("SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone() is None:
                    break
            stamp = now()
            db.execute(
                "INSERT INTO conversations (id, show, llm, engine, title, created, updated) VALUES (?, ?, ?, ?, '', ?, ?)",
                (cid, show, llm, engine, stamp, stamp),
            )
        return cid

    def get(self, cid: str) -> Conversation:
        row = None if self._missing() else self._db().execute(_LISTING + " WHERE c.id = ? GROUP BY c.id", (cid,)).fetchone()
        if row is None:
            known = [c.id for c in self.listing()[:5]]
            hint = f"recent ones: {', '.join(known)}" if known else "there are none yet"
            raise CatalogError(f"no conversation {cid!r} in {self.path} ({hint}); list them with `python -m assistant chat --list`")
        return Conversation(**dict(row))

    def listing(self) -> list[Conversation]:
        """Every conversation, the most recently updated first."""
        if self._missing():
            return []
        rows = self._db().execute(_LISTING + " GROUP BY c.id ORDER BY c.updated DESC, c.created DESC")
        return [Conversation(**dict(row)) for row in rows]

    # -- turns ------------------------------------------------------------------------------

    def turns(self, cid: str) -> list[TurnRecord]:
        if self._missing():
            return []
        rows = self._db().execute("SELECT * FROM turns WHERE conversation = ? ORDER BY turn", (cid,))
        return [_record(row) for row in rows]

    def exchanges(self, cid: str, last: int) -> list[tuple[str, str]]:
        """(message, reply) of the last `last` turns, oldest first: what a model is shown of the conversation."""
        if self._missing():
            return []
        rows = self._db().execute("SELECT user, reply FROM turns WHERE conversation = ? ORDER BY turn DESC LIMIT ?", (cid, last)).fetchall()
        return [(row["user"], row["reply"]) for row in reversed(rows)]

    def last_state(self, cid: str) -> dict[str, Any] | None:
        """The state the conversation's last turn left (None before its first turn)."""
        self.get(cid)
        row = self._db().execute("SELECT state FROM turns WHERE conversation = ? ORDER BY turn DESC LIMIT 1", (cid,)).fetchone()
        return json.loads(row["state"]) if row else None

    def record(self, turn: TurnRecord) -> TurnRecord:
        """Store one turn (numbered after the last one) and touch its conversation, in one transaction."""
        stamp = now()
        with self.transaction() as db:
            number = db.execute("SELECT COALESCE(MAX(turn), 0) + 1 FROM turns WHERE conversation = ?", (turn.conversation,)).fetchone()[0]
            if number != turn.turn:
                raise CatalogError(f"conversation {turn.conversation} moved on to turn {number} while turn {turn.turn} was made; resume it to see the latest")
            db.execute(
                "INSERT INTO turns (conversation, turn, user, reply, author, fallback, intents, changes, state, image, request, refused, traces, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    turn.conversation, turn.turn, turn.user, turn.reply, turn.author, turn.fallback,
                    _json(turn.intents), _json(turn.changes), _json(turn.state), turn.image,
                    _json(turn.request) if turn.request is not None else None, int(turn.refused), _json(turn.traces), stamp,
                ),
            )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (stamp, turn.conversation))
            db.execute("UPDATE conversations SET title = ? WHERE id = ? AND title = ''", (" ".join(turn.user.split())[:TITLE_CHARS], turn.conversation))
        return TurnRecord(**{**turn.__dict__, "created": stamp})

    def next_turn(self, cid: str) -> int:
        if self._missing():
            return 1
        return self._db().execute("SELECT COALESCE(MAX(turn), 0) + 1 FROM turns WHERE conversation = ?", (cid,)).fetchone()[0]


_LISTING = "SELECT c.id, c.show, c.llm, c.engine, c.title, c.created, c.updated, COUNT(t.turn) AS turns FROM conversations c LEFT JOIN turns t ON t.conversation = c.id"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _record(row: sqlite3.Row) -> TurnRecord:
    data = dict(row)
    for name in ("intents", "changes", "state", "traces"):
        data[name] = json.loads(data[name])
    data["request"] = json.loads(data["request"]) if data["request"] else None
    data["refused"] = bool(data["refused"])
    return TurnRecord(**data)
