"""The edge cases' parts (tests/test_edges.py): a case and its folders, the setups that prepare them,
the failures injected in place of what root cannot make (a read-only file system, a full disk),
and the images and files cases feed the tools."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import sqlite3
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL = ("--season", "1", "--episodes", "1", "--styles", "anime")  # one episode still, one style
ERROR_LINE_LIMIT = 400  # "short": one line a terminal shows whole, whatever the input's size
SUBPROCESS_TIMEOUT = 10  # seconds; a case past it is unbounded work
REAL_CONNECT = sqlite3.connect
_REAL_OPEN = builtins.open


# -- a case and its folders --------------------------------------------------------------------


@dataclass
class Ctx:
    """One case's folders: `tmp` holds everything the case may touch; `cwd` is where the tool runs."""

    tmp: Path
    home: Path
    out: Path
    cwd: Path
    mp: pytest.MonkeyPatch
    templates: dict[str, Path]

    def fill(self, text: str) -> str:
        for name in ("tmp", "home", "out"):
            text = text.replace("{" + name + "}", str(getattr(self, name)))
        return text


Setup = Callable[[Ctx], None]


@dataclass(frozen=True)
class Case:
    id: str
    tool: str  # dataprep | assistant | imagegen
    argv: tuple[str, ...]  # {tmp}, {home} and {out} are filled in
    code: int  # 2 refused, 1 partial, 0 done
    phrase: str | tuple[str, ...] = ()  # each in the error line (code 2) or in the output (0, 1), any case; "a|b": either
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None
    alone: bool = True  # code 2: the error line is all stderr says (False: progress lines before it are fine)
    same: bool = True  # code 2 (and 0 where set): everything under tmp unchanged; False: only no debris
    stdin: str = ""
    subprocess: bool = False

    def __str__(self) -> str:
        return self.id


def both(*setups: Setup) -> Setup:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)

    return setup


def files(named: dict[str, str | bytes | Callable[[], bytes]]) -> Setup:
    """Files under tmp (a callable makes its bytes when the case runs)."""

    def setup(ctx: Ctx) -> None:
        for name, content in named.items():
            path = ctx.tmp / ctx.fill(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            content = content() if callable(content) else content
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    return setup


def folders(*names: str) -> Setup:
    def setup(ctx: Ctx) -> None:
        for name in names:
            (ctx.tmp / ctx.fill(name)).mkdir(parents=True, exist_ok=True)

    return setup


def home_with(kind: str) -> Setup:
    """The home as a case needs it: "done" (a catalog with S01E01 anime rendered), "empty" (a bare
    folder), "file" (a regular file), "garbage" (a catalog.sqlite that is not a database)."""

    def setup(ctx: Ctx) -> None:
        if kind == "done":
            shutil.copytree(ctx.templates["done"], ctx.home, symlinks=True)
        elif kind == "empty":
            ctx.home.mkdir()
        elif kind == "file":
            ctx.home.write_text("not a folder\n")
        elif kind == "garbage":
            ctx.home.mkdir()
            (ctx.home / "catalog.sqlite").write_bytes(b"this is not an SQLite database\x00\xff" * 64)
        else:
            raise AssertionError(kind)

    return setup


# -- injected failures (each stands in for a real condition that root cannot make) -------------


def _fail(code: int, path) -> None:
    raise OSError(code, os.strerror(code), os.fspath(path))


def deny_writes(which: str, code: int) -> Setup:
    """Every write under ctx.<which> fails with `code`: EROFS stands in for a read-only file system,
    EACCES for a folder without write permission (root ignores permission bits)."""

    def setup(ctx: Ctx) -> None:
        root = os.path.abspath(getattr(ctx, which))
        mp = ctx.mp

        def under(path) -> bool:
            if isinstance(path, int):
                return False
            full = os.path.abspath(os.fsdecode(os.fspath(path)))
            return full == root or full.startswith(root + os.sep)

        def guarded_open(file, mode="r", *args, **kwargs):
            if not isinstance(file, int) and any(c in mode for c in "wax+") and under(file):
                _fail(code, file)
            return _REAL_OPEN(file, mode, *args, **kwargs)

        real_os_open, real_mkdir, real_path_mkdir = os.open, os.mkdir, Path.mkdir

        def guarded_os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC) and under(path):
                _fail(code, path)
            return real_os_open(path, flags, *args, **kwargs)

        def guarded_mkdir(path, *args, **kwargs):
            if under(path) and not os.path.isdir(path):
                _fail(code if os.path.exists(os.path.dirname(os.path.abspath(path))) else errno.ENOENT, path)
            return real_mkdir(path, *args, **kwargs)

        def guarded_path_mkdir(self, mode=0o777, parents=False, exist_ok=False):
            if under(self) and not self.is_dir():
                if parents and not self.parent.exists():
                    guarded_path_mkdir(self.parent, mode, parents=True, exist_ok=True)
                if self.exists() and not exist_ok:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(self))
                _fail(code, self)
            return real_path_mkdir(self, mode, parents, exist_ok)

        def guarded_move(real):
            def move(src, dst, *args, **kwargs):
                if under(dst) or under(src):
                    _fail(code, dst)
                return real(src, dst, *args, **kwargs)

            return move

        def guarded_unlink(real):
            def unlink(path, *args, **kwargs):
                if under(path):
                    _fail(code, path)
                return real(path, *args, **kwargs)

            return unlink

        def guarded_connect(database, *args, **kwargs):
            if isinstance(database, (str, os.PathLike)) and not kwargs.get("uri") and under(database):
                if not os.path.isfile(database):
                    raise sqlite3.OperationalError("unable to open database file")
                # A read-only open: SQLite itself refuses every write, as on a read-only mount.
                return REAL_CONNECT(f"file:{os.path.abspath(database)}?mode=ro", *args, **{**kwargs, "uri": True})
            return REAL_CONNECT(database, *args, **kwargs)

        mp.setattr(builtins, "open", guarded_open)
        mp.setattr(io, "open", guarded_open)
        mp.setattr(os, "open", guarded_os_open)
        mp.setattr(os, "mkdir", guarded_mkdir)
        mp.setattr(Path, "mkdir", guarded_path_mkdir)
        for name in ("replace", "rename", "link"):
            mp.setattr(os, name, guarded_move(getattr(os, name)))
        for name in ("unlink", "remove", "rmdir"):
            mp.setattr(os, name, guarded_unlink(getattr(os, name)))
        mp.setattr(sqlite3, "connect", guarded_connect)

    return setup


def disk_full_on_fsync(ctx: Ctx) -> None:
    """The disk fills while a file is flushed: os.fsync raises ENOSPC, as a full disk does."""

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    ctx.mp.setattr(os, "fsync", fsync)


class _FullDatabase(sqlite3.Connection):
    """A connection whose writes fail as SQLite's do when the disk is full (SQLITE_FULL)."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def _check(self, sql: str) -> None:
        if sql.lstrip().split(None, 1)[0].upper() in self.WRITES:
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql, *args):
        self._check(sql)
        return super().execute(sql, *args)

    def executemany(self, sql, *args):
        self._check(sql)
        return super().executemany(sql, *args)

    def cursor(self, *args, **kwargs):
        check = self._check

        class _Cursor(sqlite3.Cursor):
            def execute(self, sql, *a):
                check(sql)
                return super().execute(sql, *a)

        return super().cursor(_Cursor)


def sqlite_full(ctx: Ctx) -> None:
    """catalog.sqlite's writes fail with "database or disk is full", standing in for a full disk."""

    def connect(database, *args, **kwargs):
        if isinstance(database, (str, os.PathLike)) and Path(os.fspath(database)).name == "catalog.sqlite":
            kwargs["factory"] = _FullDatabase
        return REAL_CONNECT(database, *args, **kwargs)

    ctx.mp.setattr(sqlite3, "connect", connect)


# -- images made for the cases -------------------------------------------------------------------


def png(width: int = 16, height: int = 16, text: dict[str, str] | None = None) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 80, 120)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small PNG whose header claims width x height (past Pillow's decompression-bomb limit)."""
    data = bytearray(png(8, 8))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG")
    return buffer.getvalue()


def parquet(columns: dict[str, list]) -> Callable[[], bytes]:
    def make() -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.table(columns), buffer)
        return buffer.getvalue()

    return make


def parquet_uint64() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "season": pa.array([1, 1], pa.uint64()),
        "episode": pa.array([1, 2**63 + 1], pa.uint64()),
        "summary": ["Mara Quill lights the lamp.", "An episode number past 2^63."],
    })  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


GOOD_ROW = "Harbour,1,1,Pilot,Mara Quill lights the lamp in the gale."
CSV_HEAD = "show,season,episode,title,summary\n"
LATIN1_CSV = (CSV_HEAD + "Harbour,1,1,Pilot,S\xe9gol\xe8ne arrives on the ferry.\n").encode("latin-1")
ONE_STYLE_JSON = json.dumps([{"name": "ink", "description": "ink", "prompt": "ink drawing of {prompt}"}])
BRIEF_X = "show: Gullhaven\nseason: 1\nepisode: 1\nplatforms: [x]\nstyle: anime\n"
