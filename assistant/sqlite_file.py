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

from .errors import CatalogError, environmental, storage_error


class _Connection(sqlite3.Connection):
    """A connection whose disk-full, read-only, locked and damaged-file errors speak keyart's words
    (StorageError naming the file and what is kept); a statement's own errors pass as they are."""

    where: Path
    what: str

    def _translated(self, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except sqlite3.Error as exc:
            if environmental(exc):
                raise storage_error(exc, self.where, what=f"the {self.what} database") from exc
            raise

    def execute(self, *args, **kwargs):
        return self._translated(super().execute, *args, **kwargs)

    def executemany(self, *args, **kwargs):
        return self._translated(super().executemany, *args, **kwargs)

    def executescript(self, *args, **kwargs):
        return self._translated(super().executescript, *args, **kwargs)

    def commit(self):
        return self._translated(super().commit)


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
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None, factory=_Connection)  # transactions are explicit
            except sqlite3.Error as exc:
                if environmental(exc):
                    raise storage_error(exc, self.path, what=f"the {self._what} database") from exc
                raise CatalogError(f"cannot open the {self._what} database {self.path}: {exc}") from exc
            db.where, db.what = self.path, self._what
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
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # a connection without the translating factory still speaks our words
            if environmental(exc):
                raise storage_error(exc, self.path, what=f"the {self._what} database") from exc
            raise

    def close(self) -> None:
        """Close this thread's connection (the next use opens a new one)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
