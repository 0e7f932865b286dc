"""One SQLite file shared by threads: a connection per thread, WAL, and explicit transactions.

The catalog store and the conversations store both build on it, so readers (status, the
dashboard) never block a writer, and every write is one BEGIN IMMEDIATE ... COMMIT.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CatalogError


class SQLiteFile:
    """`path` opened lazily per thread; `schema` (idempotent SQL) applied on construction."""

    def __init__(self, path: Path, schema: str, *, what: str):
        self.path = path
        self._what = what  # "catalog", "conversations": for error messages
        self._local = threading.local()
        self._db().executescript(schema)  # executescript commits on its own

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # transactions are explicit
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot open the {self._what} database {self.path}: {exc}") from exc
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at each checkpoint, never corrupt
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (the next use opens a new one)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
