"""The render queue's state: the `Job` record, and one SQLite row per job in `home/queue.sqlite` (WAL).

A restarted process reads the rows back and lists what it had; `imagegen.queue` decides what
becomes of jobs that were queued or running when the last process stopped. One queue per home:
`QueueStore.open` holds `home/queue.lock` for the store's lifetime.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .animation import AnimationRequest
from .errors import KeyartError, environmental, storage_error
from .request import RenderRequest

log = logging.getLogger(__name__)

DB_NAME = "queue.sqlite"
LOCK_NAME = "queue.lock"  # not the catalog store's `.lock`: a dataprep run and a queue may share a home
STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,         -- uuid4 hex
    owner       TEXT NOT NULL,            -- a session or user id; '' for nobody in particular
    priority    INTEGER NOT NULL,         -- higher runs first
    seq         INTEGER NOT NULL UNIQUE,  -- arrival order: FIFO among equal priorities
    state       TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    request     TEXT NOT NULL,            -- RenderRequest.to_dict() as JSON
    lineage     TEXT,                     -- JSON object passed to the engine, or NULL
    output      TEXT,                     -- folder for the PNGs; NULL when a callback takes the images
    steps_done  INTEGER NOT NULL DEFAULT 0,
    steps_total INTEGER NOT NULL DEFAULT 0,
    error       TEXT,                     -- why a job failed
    results     TEXT NOT NULL DEFAULT '[]',  -- JSON list of the PNG paths written
    created     REAL NOT NULL,            -- Unix times, in seconds
    started     REAL,
    finished    REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, priority DESC, seq);
"""
COLUMNS = ("state", "steps_done", "steps_total", "error", "results", "started", "finished")  # what changes after insert

OnProgress = Callable[["Job"], None]
OnResult = Callable[["Job", Any], None]  # (job, its RenderedImages; an animation job's Animation)


class QueueInUse(KeyartError):
    """Another render queue (in this process or another) holds the home."""


ANIMATION = "animation"  # a stored job's request data: {"animation": {...}} for an animation, the RenderRequest's fields otherwise


@dataclass(eq=False)
class Job:
    """One render job. The queue updates it in place (under its lock); read it, never set it.

    `priority`: higher runs first; equal priorities run in arrival order (`seq`). `position` is the
    place among queued jobs (0 = next), None once the job left the queue. `progress` is (steps done,
    steps in all) as the engine reports them (frames for an animation); `results` the PNG paths written
when the job is done (an animation's MP4, GIF and sidecar).
    """

    id: str
    request: RenderRequest | AnimationRequest | None  # None only for a restored row whose request no longer validates
    owner: str = ""
    priority: int = 0
    lineage: dict[str, Any] | None = None
    output: Path | None = None
    seq: int = 0
    state: str = "queued"
    position: int | None = None
    progress: tuple[int, int] = (0, 0)
    error: str | None = None
    results: list[Path] = field(default_factory=list)
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False  # set on a running job by cancel(); it stops at its next step
    exception: BaseException | None = field(default=None, repr=False)  # why it failed, as raised (this process only)
    on_progress: OnProgress | None = field(default=None, repr=False)
    on_result: OnResult | None = field(default=None, repr=False)
    request_data: dict[str, Any] = field(default_factory=dict, repr=False)  # the request as stored

    @property
    def is_final(self) -> bool:
        """Done, failed or cancelled: nothing more will happen to it."""
        return self.state in FINAL

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON-ready values (for a jobs API or a status line)."""
        done, total = self.progress
        return {
            "id": self.id,
            "owner": self.owner,
            "priority": self.priority,
            "state": self.state,
            "position": self.position,
            "progress": {"done": done, "total": total},
            "error": self.error,
            "results": [str(p) for p in self.results],
            "request": self.request_data,
            "lineage": self.lineage,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class QueueStore:
    """The jobs table of one home, shared by the queue's threads: one connection behind a lock."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.path = self.home / DB_NAME
        self._lock = threading.Lock()
        self._unsaved = False  # a write failed for want of space or permission: said once, then in memory
        self._handle = _hold(self.home)
        try:
            # check_same_thread=False: the worker threads and the submitters share this one
            # connection, and self._lock serialises every use of it.
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")  # readers (another process listing jobs) never block the worker
            self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: a commit per progress step stays cheap, the file never corrupt
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            self._handle.close()
            if environmental(exc):
                raise storage_error(exc, self.path, what="the render queue's database") from exc
            raise KeyartError(f"cannot open the render queue's database {self.path}: {exc}") from exc

    def next_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]

    def add(self, job: Job) -> None:
        """Insert a new job's row."""
        row = (
            job.id, job.owner, job.priority, job.seq, job.state, json.dumps(job.request_data),
            None if job.lineage is None else json.dumps(job.lineage), None if job.output is None else str(job.output), job.created,
        )  # fmt: skip
        self._write(lambda db: db.execute("INSERT INTO jobs (id, owner, priority, seq, state, request, lineage, output, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row))

    def save(self, jobs: Iterable[Job]) -> None:
        """Write the changing columns of `jobs` in one transaction."""
        rows = [
            (j.state, j.progress[0], j.progress[1], j.error, json.dumps([str(p) for p in j.results]), j.started, j.finished, j.id)
            for j in jobs
        ]
        if not rows:
            return
        self._write(lambda db: db.executemany(f"UPDATE jobs SET {', '.join(c + ' = ?' for c in COLUMNS)} WHERE id = ?", rows))

    def load(self) -> list[Job]:
        """Every job in the home, in arrival order, as the last process left them."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY seq").fetchall()
        return [_job(row) for row in rows]

    def _write(self, change) -> None:
        """`change(db)` as one atomic write under the lock: BEGIN IMMEDIATE ... COMMIT, rolled back on
        any error. A full disk or a read-only file only stops the saving: the queue is the renders'
        bookkeeping, the jobs run on in memory, and the first such failure is logged."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    change(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if not environmental(exc):
                    raise
                if not self._unsaved:
                    log.warning("the render queue's state in %s is no longer saved (%s); the jobs run on in memory", self.path, storage_error(exc, self.path))
                self._unsaved = True
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._handle.close()  # closing the file releases the home


def _hold(home: Path):
    """Lock `home/queue.lock` for one queue, or say who holds it."""
    import fcntl

    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = open(home / LOCK_NAME, "a+", encoding="utf-8")
    except OSError as exc:
        raise storage_error(exc, home, what="the render queue's home", kept="nothing was written") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise QueueInUse(
            f"another render queue ({holder}) is using {home}; share that queue (one per home), close it first, or use another home"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _job(row: sqlite3.Row) -> Job:
    """A stored row as a Job; a request that no longer validates (a style since removed...) is kept as data."""
    data = json.loads(row["request"])
    job = Job(
        id=row["id"],
        request=None,
        owner=row["owner"],
        priority=row["priority"],
        lineage=None if row["lineage"] is None else json.loads(row["lineage"]),
        output=None if row["output"] is None else Path(row["output"]),
        seq=row["seq"],
        state=row["state"],
        progress=(row["steps_done"], row["steps_total"]),
        error=row["error"],
        results=[Path(p) for p in json.loads(row["results"])],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        request_data=data,
    )
    try:
        job.request = AnimationRequest.from_dict(data[ANIMATION]) if ANIMATION in data else RenderRequest.from_dict(data)
    except KeyartError as exc:
        log.warning("job %s: its stored request no longer validates (%s)", job.id, exc)
        if not job.is_final:
            job.error = f"its request no longer validates here: {exc}"
    return job
