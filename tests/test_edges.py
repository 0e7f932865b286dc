"""Bad input, full disks and broken homes: every command-line tool answers with one clear line,
does bounded work and leaves nothing half-done.

Each case runs a tool (`dataprep.py`, `python -m assistant`, `python -m imagegen`) in-process, or as
a subprocess where a separate process is needed, and checks what a user would want:
- the exit code: 2 for bad input, configuration or a broken environment (a home that is a file, a
  read-only home, a damaged catalog.sqlite, a full disk), 1 for a partial result, 0 for success;
- no traceback, and a refusal said in ONE short line starting with "error: " that names what the
  user needs to fix (the flag, the variable, the file);
- nothing half-done: every file and folder under the test's folder (home, output, inputs) is as
  it was, none created; where finished work is legitimately kept (a failure mid-run), no temp
  file, stray image or damaged database is left behind.

Tests run as root, where permission bits do not make a folder read-only: a failing low-level call
(os.fsync, os.open, Path.mkdir, sqlite3.connect...) stands in for a full disk, a read-only file
system or a folder without permission. Nothing is mounted, nothing needs privileges.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_show" / "episodes.csv"
BRIEF = REPO / "data" / "briefs" / "gullhaven-s01e03.yaml"
SMALL = ("--season", "1", "--episodes", "1", "--styles", "anime")  # one episode still, one style
ERROR_LINE_LIMIT = 400  # "short": one line a terminal shows whole, whatever the input's size
SUBPROCESS_TIMEOUT = 10  # seconds; a case past it is unbounded work
_REAL_CONNECT = sqlite3.connect
_REAL_OPEN = builtins.open


# -- the case table ------------------------------------------------------------------------------


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
                return _REAL_CONNECT(f"file:{os.path.abspath(database)}?mode=ro", *args, **{**kwargs, "uri": True})
            return _REAL_CONNECT(database, *args, **kwargs)

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
        return _REAL_CONNECT(database, *args, **kwargs)

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


# -- the table -----------------------------------------------------------------------------------

D, A, I = "dataprep", "assistant", "imagegen"
H = ("--home", "{home}")
O = ("--output", "{out}")
IMG = ("--width", "256", "--height", "256")

CASES: list[Case] = [
    # ---- the issue's own examples --------------------------------------------------------------
    Case("csv-episode-past-2**63", D, ("run", *H, "--input", "{tmp}/in/episodes.csv", "--styles", "anime", "--episodes", "1"), 1, ("row 2", "episode"),
         setup=files({"in/episodes.csv": CSV_HEAD + GOOD_ROW + "\nHarbour,1,9223372036854775808,Huge,An episode number of 2^63.\n"}), same=False),
    Case("json-episode-past-2**64", D, ("run", *H, "--input", "{tmp}/in/episodes.json", "--styles", "anime", "--episodes", "1"), 1, ("row 2", "episode"),
         setup=files({"in/episodes.json": '[{"season": 1, "episode": 1, "summary": "Mara Quill lights the lamp."},'
                                           ' {"season": 1, "episode": 18446744073709551617, "summary": "Past 2^64."}]'}), same=False),
    Case("jsonl-season-past-2**63", D, ("run", *H, "--input", "{tmp}/in/episodes.jsonl", "--styles", "anime", "--episodes", "1"), 1, ("row 2", "season"),
         setup=files({"in/episodes.jsonl": '{"season": 1, "episode": 1, "summary": "Mara Quill lights the lamp."}\n'
                                            '{"season": 9223372036854775809, "episode": 2, "summary": "Past 2^63."}\n'}), same=False),
    Case("parquet-uint64-episode-past-2**63", D, ("run", *H, "--input", "{tmp}/in/episodes.parquet", "--styles", "anime", "--episodes", "1"), 1, ("row 2", "episode"),
         setup=files({"in/episodes.parquet": parquet_uint64}), same=False),
    Case("episodes-range-too-large", D, ("run", *H, "--episodes", "1-99999999"), 2, "--episodes"),
    Case("styles-commas-only", D, ("run", *H, "--styles", ",,"), 2, "--styles"),
    Case("full-disk-writing-image", D, ("run", *H, "--season", "1", "--episodes", "2", "--styles", "anime"), 2, ("space", "{home}"),
         setup=both(home_with("done"), disk_full_on_fsync), alone=False, same=False),
    Case("full-disk-writing-sqlite", D, ("run", *H, "--season", "1", "--episodes", "2", "--styles", "anime"), 2, ("space", "catalog.sqlite"),
         setup=both(home_with("done"), sqlite_full), alone=False, same=False),
    Case("full-disk-writing-image-imagegen", I, ("render", "a lighthouse", *IMG, *O), 2, ("space", "{out}"), setup=disk_full_on_fsync, alone=False),
    Case("read-only-home-new", D, ("run", *H, *SMALL), 2, ("read-only", "{home}"), setup=both(home_with("empty"), deny_writes("home", errno.EROFS))),
    Case("read-only-home-with-catalog", D, ("run", *H, "--season", "1", "--episodes", "2", "--styles", "anime"), 2, ("read-only", "{home}"),
         setup=both(home_with("done"), deny_writes("home", errno.EROFS)), alone=False),
    Case("read-only-home-status", D, ("status", *H), 0, "catalog", setup=both(home_with("done"), deny_writes("home", errno.EROFS))),
    Case("home-is-a-file", D, ("run", *H, *SMALL), 2, ("{home}", "is a file"), setup=home_with("file")),
    Case("home-is-a-file-status", D, ("status", *H), 2, ("{home}", "is a file"), setup=home_with("file")),
    Case("home-is-a-file-chat", A, ("chat", *H), 2, ("{home}", "is a file"), setup=home_with("file")),
    Case("home-is-a-file-env", D, ("run", *SMALL), 2, ("KEYART_HOME", "{home}", "is a file"), env={"KEYART_HOME": "{home}"}, setup=home_with("file"), subprocess=True),
    Case("corrupt-catalog-run", D, ("run", *H, *SMALL), 2, "catalog.sqlite", setup=home_with("garbage")),
    Case("corrupt-catalog-status", D, ("status", *H), 2, "catalog.sqlite", setup=home_with("garbage")),
    Case("corrupt-catalog-export", D, ("export", *H, *O), 2, "catalog.sqlite", setup=home_with("garbage")),
    Case("corrupt-catalog-campaign", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "catalog.sqlite",
         setup=both(home_with("garbage"), files({"brief.yaml": BRIEF_X}))),
    Case("render-output-is-a-file", I, ("render", "a lighthouse", *IMG, *O), 2, ("--output", "{out}"), setup=files({"out": "a regular file\n"})),
    Case("render-output-under-a-file", I, ("render", "a lighthouse", *IMG, "--output", "{tmp}/plain/sub"), 2, ("--output", "{tmp}/plain"), setup=files({"plain": "x\n"})),
    Case("render-output-no-permission", I, ("render", "a lighthouse", *IMG, *O), 2, ("--output", "{out}"), setup=deny_writes("out", errno.EACCES)),
    Case("render-output-read-only-existing", I, ("render", "a lighthouse", *IMG, *O), 2, ("--output", "{out}"),
         setup=both(folders("out"), deny_writes("out", errno.EROFS))),
    Case("openai-base-url-port-none", A, ("episode", "--season", "1", "--episode", "1", "--llm", "openai"), 2, "OPENAI_BASE_URL",
         env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:none/v1"}),
    Case("openai-base-url-port-none-dataprep", D, ("prompts", *H, *SMALL, "--llm", "openai"), 2, "OPENAI_BASE_URL",
         env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:none/v1"}),
    Case("init-image-decompression-bomb", I, ("render", "a lighthouse", "--init-image", "{tmp}/bomb.png", *O), 2, "bomb.png", setup=files({"bomb.png": bomb_png})),
    Case("info-decompression-bomb", I, ("info", "{tmp}/bomb.png"), 2, "bomb.png", setup=files({"bomb.png": bomb_png})),
    Case("upscale-decompression-bomb", I, ("upscale", "{tmp}/bomb.png", *O), 2, "bomb.png", setup=files({"bomb.png": bomb_png})),
    Case("styles-file-not-utf8", I, ("render", "a lighthouse", "--style", "ink", *IMG, *O), 2, "styles.json",
         env={"KEYART_STYLES": "{tmp}/styles.json"}, setup=files({"styles.json": b'[{"name": "ink", "prompt": "\xff\xfe {prompt}"}]'})),
    Case("styles-file-not-utf8-dataprep", D, ("run", *H, *SMALL), 2, "styles.json",
         env={"KEYART_STYLES": "{tmp}/styles.json"}, setup=files({"styles.json": b"\xff\xfe[]"})),
    Case("blocklist-not-utf8-campaign", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "blocklist.txt",
         env={"KEYART_BLOCKLIST": "{tmp}/blocklist.txt"}, setup=files({"blocklist.txt": b"gore\n\xff\xfe\xfa\n", "brief.yaml": BRIEF_X})),
    Case("blocklist-not-utf8-chat", A, ("chat", *H), 2, "blocklist.txt", stdin="draw season 1 episode 1\n",
         env={"KEYART_BLOCKLIST": "{tmp}/blocklist.txt"}, setup=files({"blocklist.txt": b"gore\n\xff\xfe\xfa\n"})),
    Case("lora-weight-nan", I, ("render", "a lighthouse <lora:ink:nan>", *IMG, *O), 2, "<lora:ink:nan>"),
    Case("lora-weight-inf", I, ("render", "a lighthouse <lora:ink:inf>", *IMG, *O), 2, "<lora:ink:inf>"),
    Case("lora-weight-nan-unet", I, ("render", "a lighthouse <lora:ink:0.8:nan>", *IMG, *O), 2, "<lora:ink:0.8:nan>"),
    Case("attention-weight-nan", I, ("render", "a (lighthouse:nan)", *IMG, *O), 2, "nan"),
    Case("campaign-every-post-held-back", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 1, "blocked",
         env={"KEYART_BLOCKLIST": "{tmp}/blocklist.txt"}, setup=files({"blocklist.txt": "gullhaven\nlighthouse\nstorm\n", "brief.yaml": BRIEF_X}), same=False),
    Case("chat-resume-unknown", A, ("chat", *H, "--resume", "UNKNOWN"), 2, "UNKNOWN"),
    Case("chat-resume-unknown-existing-home", A, ("chat", *H, "--resume", "UNKNOWN"), 2, "UNKNOWN", setup=home_with("done")),
    Case("chat-list-no-home", A, ("chat", *H, "--list"), 0, "no conversations"),
    # ---- dataprep: numbers out of range, unknown choices ----------------------------------------
    Case("dataprep-season-negative", D, ("run", *H, "--season", "-1", "--styles", "anime"), 2, "season -1"),
    Case("dataprep-season-huge", D, ("run", *H, "--season", "99999999999999999999999", "--styles", "anime"), 2, "season 99999999999999999999999"),
    Case("dataprep-limit-zero", D, ("run", *H, "--limit", "0"), 2, "--limit"),
    Case("dataprep-limit-negative", D, ("prompts", *H, "--limit", "-3"), 2, "--limit"),
    Case("dataprep-steps-zero", D, ("run", *H, *SMALL, "--steps", "0"), 2, "steps"),
    Case("dataprep-steps-huge", D, ("render", *H, *SMALL, "--steps", "99999999999"), 2, "steps"),
    Case("dataprep-cfg-nan", D, ("run", *H, *SMALL, "--cfg-scale", "nan"), 2, "cfg"),
    Case("dataprep-cfg-inf", D, ("run", *H, *SMALL, "--cfg-scale", "inf"), 2, "cfg"),
    Case("dataprep-width-not-multiple-of-8", D, ("run", *H, *SMALL, "--width", "1001"), 2, "multiple of 8"),
    Case("dataprep-height-huge", D, ("run", *H, *SMALL, "--height", "99999999"), 2, "height"),
    Case("dataprep-unknown-sampler", D, ("run", *H, *SMALL, "--sampler", "Euler z"), 2, "Euler z"),
    Case("dataprep-unknown-schedule-type", D, ("run", *H, *SMALL, "--schedule-type", "Wobbly"), 2, "Wobbly"),
    Case("dataprep-unknown-style", D, ("run", *H, "--styles", "oil,anime"), 2, "oil"),
    Case("dataprep-unknown-quality", D, ("run", *H, *SMALL, "--quality", "best"), 2, "--quality"),
    Case("dataprep-unknown-llm", D, ("prompts", *H, *SMALL, "--llm", "gpt9"), 2, "--llm"),
    Case("dataprep-unknown-engine", D, ("render", *H, *SMALL, "--engine", "magic"), 2, "--engine"),
    Case("dataprep-steps-not-a-number", D, ("run", *H, *SMALL, "--steps", "many"), 2, "--steps"),
    Case("dataprep-episodes-backwards", D, ("run", *H, "--episodes", "5-2"), 2, "--episodes"),
    Case("dataprep-episodes-words", D, ("run", *H, "--episodes", "first"), 2, "--episodes"),
    Case("dataprep-season-absent", D, ("run", *H, "--season", "42", "--styles", "anime"), 2, "season 42"),
    Case("dataprep-dtype-flag-on-preview", D, ("run", *H, *SMALL, "--dtype", "fp13"), 2, "--dtype"),
    # ---- dataprep: catalogs ---------------------------------------------------------------------
    Case("input-missing", D, ("run", *H, "--input", "{tmp}/nowhere.csv"), 2, "nowhere.csv"),
    Case("input-is-a-directory", D, ("run", *H, "--input", "{tmp}/episodes.csv"), 2, ("episodes.csv", "folder|directory"), setup=folders("episodes.csv")),
    Case("input-unknown-suffix", D, ("run", *H, "--input", "{tmp}/episodes.txt"), 2, ".txt", setup=files({"episodes.txt": CSV_HEAD + GOOD_ROW})),
    Case("csv-empty-file", D, ("run", *H, "--input", "{tmp}/in/episodes.csv"), 2, "episodes.csv", setup=files({"in/episodes.csv": ""})),
    Case("csv-header-only", D, ("run", *H, "--input", "{tmp}/in/episodes.csv"), 2, "episodes.csv", setup=files({"in/episodes.csv": CSV_HEAD})),
    Case("csv-not-utf8", D, ("run", *H, "--input", "{tmp}/in/episodes.csv"), 2, ("episodes.csv", "UTF-8"), setup=files({"in/episodes.csv": LATIN1_CSV})),
    Case("csv-missing-summary-column", D, ("run", *H, "--input", "{tmp}/in/episodes.csv"), 2, "summary",
         setup=files({"in/episodes.csv": "show,season,episode,title\nHarbour,1,1,Pilot\n"})),
    Case("csv-all-rows-bad", D, ("run", *H, "--input", "{tmp}/in/episodes.csv"), 2, "row 1",
         setup=files({"in/episodes.csv": CSV_HEAD + "Harbour,one,1,Pilot,Text.\nHarbour,1,,Two,Text.\n"})),
    Case("csv-binary-garbage", D, ("run", *H, "--input", "{tmp}/in/episodes.csv"), 2, "episodes.csv", setup=files({"in/episodes.csv": bytes(range(256)) * 8})),
    Case("json-syntax-error", D, ("run", *H, "--input", "{tmp}/in/episodes.json"), 2, "episodes.json", setup=files({"in/episodes.json": '[{"season": 1, "episode": 1,'})),
    Case("json-an-object", D, ("run", *H, "--input", "{tmp}/in/episodes.json"), 2, "episodes.json",
         setup=files({"in/episodes.json": '{"season": 1, "episode": 1, "summary": "One object, not a list."}'})),
    Case("json-a-number", D, ("run", *H, "--input", "{tmp}/in/episodes.json"), 2, "episodes.json", setup=files({"in/episodes.json": "42"})),
    Case("json-wrong-types", D, ("run", *H, "--input", "{tmp}/in/episodes.json", "--styles", "anime", "--episodes", "1"), 1, ("row 2", "season"),
         setup=files({"in/episodes.json": '[{"season": 1, "episode": 1, "summary": "Mara Quill lights the lamp."},'
                                           ' {"season": [1, 2], "episode": {"n": 2}, "summary": 7}]'}), same=False),
    Case("json-not-utf8", D, ("run", *H, "--input", "{tmp}/in/episodes.json"), 2, "episodes.json",
         setup=files({"in/episodes.json": '[{"season": 1, "episode": 1, "summary": "S\xe9gol\xe8ne"}]'.encode("latin-1")})),
    Case("jsonl-one-bad-line", D, ("run", *H, "--input", "{tmp}/in/episodes.jsonl", "--styles", "anime", "--episodes", "1"), 1, "row 2",
         setup=files({"in/episodes.jsonl": '{"season": 1, "episode": 1, "summary": "Mara Quill lights the lamp."}\n{"season": 1, "episode": 2,\n'}), same=False),
    Case("parquet-garbage", D, ("run", *H, "--input", "{tmp}/in/episodes.parquet"), 2, "episodes.parquet", setup=files({"in/episodes.parquet": b"PAR1 not really"})),
    Case("parquet-missing-column", D, ("run", *H, "--input", "{tmp}/in/episodes.parquet"), 2, "summary",
         setup=files({"in/episodes.parquet": parquet({"season": [1], "episode": [1]})})),
    Case("seasons-file-missing", D, ("run", *H, "--seasons", "{tmp}/seasons.csv"), 2, "seasons.csv"),
    Case("seasons-file-is-a-directory", D, ("run", *H, "--seasons", "{tmp}/seasons.csv"), 2, ("seasons.csv", "folder|directory"), setup=folders("seasons.csv")),
    Case("seasons-file-garbage", D, ("run", *H, "--seasons", "{tmp}/seasons.json"), 2, "seasons.json", setup=files({"seasons.json": "{{{"})),
    Case("map-without-equals", D, ("run", *H, "--map", "summary"), 2, "FIELD=COLUMN"),
    Case("map-empty-column", D, ("run", *H, "--map", "summary="), 2, "FIELD=COLUMN"),
    Case("map-unknown-field", D, ("run", *H, "--map", "plot=summary"), 2, "plot"),
    Case("map-missing-column", D, ("run", *H, "--map", "summary=plot"), 2, "plot"),
    Case("map-field-twice", D, ("run", *H, "--map", "summary=a", "--map", "summary=b"), 2, "twice"),
    Case("seasons-file-season-past-2**63", D, ("run", *H, *SMALL, "--seasons", "{tmp}/in/seasons.csv"), 1, ("row 1", "season"),
         setup=files({"in/seasons.csv": "season,summary\n9223372036854775808,Too many seasons.\n1,The first season.\n"}), same=False),
    Case("dataprep-render-before-prompts", D, ("render", *H, *SMALL), 2, "prompts"),
    Case("chat-input-missing", A, ("chat", *H, "--input", "{tmp}/nowhere.csv"), 2, "nowhere.csv"),
    # ---- dataprep: status and export ------------------------------------------------------------
    Case("status-no-home", D, ("status", *H), 2, "no catalog"),
    Case("export-no-home", D, ("export", *H, *O), 2, "no catalog"),
    Case("export-output-is-a-directory", D, ("export", *H, "--output", "{out}"), 2, ("--output", "{out}"), setup=both(home_with("done"), folders("out"))),
    Case("export-output-under-a-file", D, ("export", *H, "--output", "{tmp}/plain/catalog.csv"), 2, ("--output", "{tmp}/plain"),
         setup=both(home_with("done"), files({"plain": "x\n"}))),
    Case("export-full-disk", D, ("export", *H, "--output", "{out}/catalog.csv"), 2, ("space", "{out}"), setup=both(home_with("done"), deny_writes("out", errno.ENOSPC)), alone=False),
    Case("export-unknown-show", D, ("export", *H, "--output", "{out}/catalog.csv", "--show", "Nobody"), 2, "Nobody", setup=home_with("done")),
    # ---- settings from the environment ----------------------------------------------------------
    Case("env-dtype-fp13", I, ("render", "a lighthouse", *IMG, *O), 2, "KEYART_DTYPE", env={"KEYART_DTYPE": "fp13"}),
    Case("env-memory-lots", I, ("render", "a lighthouse", *IMG, *O), 2, "KEYART_MEMORY", env={"KEYART_MEMORY": "lots"}),
    Case("env-dtype-fp13-dataprep", D, ("run", *H, *SMALL), 2, "KEYART_DTYPE", env={"KEYART_DTYPE": "fp13"}),
    Case("env-llm-timeout-negative", A, ("episode", "--season", "1", "--episode", "1"), 2, "KEYART_LLM_TIMEOUT", env={"KEYART_LLM_TIMEOUT": "-1"}),
    Case("env-llm-timeout-nan", D, ("prompts", *H, *SMALL), 2, "KEYART_LLM_TIMEOUT", env={"KEYART_LLM_TIMEOUT": "nan"}),
    Case("env-remote-timeout-soon", I, ("render", "a lighthouse", *IMG, *O), 2, "KEYART_REMOTE_TIMEOUT", env={"KEYART_REMOTE_TIMEOUT": "soon"}),
    Case("env-remote-timeout-soon-process", I, ("render", "a lighthouse", *IMG, *O), 2, "KEYART_REMOTE_TIMEOUT", env={"KEYART_REMOTE_TIMEOUT": "soon"}, subprocess=True),
    Case("env-remote-timeout-soon-info", I, ("info", "{tmp}/plain.png"), 2, "KEYART_REMOTE_TIMEOUT", env={"KEYART_REMOTE_TIMEOUT": "soon"},
         setup=files({"plain.png": png}), subprocess=True),
    Case("env-a1111-url-ftp", I, ("render", "a lighthouse", "--engine", "a1111", *IMG, *O), 2, "KEYART_A1111_URL", env={"KEYART_A1111_URL": "ftp://x"}),
    Case("env-a1111-url-ftp-dataprep", D, ("run", *H, *SMALL, "--engine", "a1111"), 2, "KEYART_A1111_URL", env={"KEYART_A1111_URL": "ftp://x"}),
    Case("env-a1111-url-unset", I, ("render", "a lighthouse", "--engine", "a1111", *IMG, *O), 2, "KEYART_A1111_URL"),
    Case("env-images-url-not-a-url", I, ("render", "a lighthouse", "--engine", "openai", *IMG, *O), 2, "KEYART_IMAGES_BASE_URL",
         env={"KEYART_IMAGES_BASE_URL": "not a url", "KEYART_IMAGES_API_KEY": "sk-test"}),
    Case("env-sdxl-model-missing-folder", I, ("render", "a lighthouse", "--engine", "sdxl", *IMG, *O), 2, "KEYART_SDXL_MODEL", env={"KEYART_SDXL_MODEL": "{tmp}/no-such-model"}),
    Case("env-engine-magic", D, ("render", *H, *SMALL), 2, "KEYART_ENGINE", env={"KEYART_ENGINE": "magic"}),
    Case("env-quality-best", D, ("run", *H, *SMALL), 2, "KEYART_QUALITY", env={"KEYART_QUALITY": "best"}),
    Case("env-llm-gpt9", A, ("season", "1"), 2, "KEYART_LLM", env={"KEYART_LLM": "gpt9"}),
    Case("env-llm-json-yaml", D, ("prompts", *H, *SMALL), 2, "KEYART_LLM_JSON", env={"KEYART_LLM_JSON": "yaml"}),
    Case("env-styles-missing-file", I, ("render", "a lighthouse", *IMG, *O), 2, ("KEYART_STYLES", "missing.json"), env={"KEYART_STYLES": "{tmp}/missing.json"}),
    Case("env-styles-not-a-list", D, ("run", *H, *SMALL), 2, "styles.json", env={"KEYART_STYLES": "{tmp}/styles.json"}, setup=files({"styles.json": '{"name": "ink"}'})),
    Case("env-styles-a-directory", I, ("render", "a lighthouse", *IMG, *O), 2, "KEYART_STYLES", env={"KEYART_STYLES": "{tmp}/styles"}, setup=folders("styles")),
    Case("env-blocklist-missing", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, ("KEYART_BLOCKLIST", "missing.txt"),
         env={"KEYART_BLOCKLIST": "{tmp}/missing.txt"}, setup=files({"brief.yaml": BRIEF_X})),
    Case("env-blocklist-a-directory", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, ("KEYART_BLOCKLIST", "folder|directory"),
         env={"KEYART_BLOCKLIST": "{tmp}/lists"}, setup=both(folders("lists"), files({"brief.yaml": BRIEF_X}))),
    Case("env-llm-model-missing-folder", A, ("episode", "--season", "1", "--episode", "1", "--llm", "transformers"), 2, "KEYART_LLM_MODEL",
         env={"KEYART_LLM_MODEL": "{tmp}/no-such-model"}),
    Case("openai-without-key", A, ("episode", "--season", "1", "--episode", "1", "--llm", "openai"), 2, "OPENAI_API_KEY"),
    # ---- imagegen render ------------------------------------------------------------------------
    Case("render-no-prompt", I, ("render", *O), 2, "PROMPT"),
    Case("render-steps-zero", I, ("render", "a lighthouse", "--steps", "0", *O), 2, "steps"),
    Case("render-steps-huge", I, ("render", "a lighthouse", "--steps", "1000000", *O), 2, "steps"),
    Case("render-width-odd", I, ("render", "a lighthouse", "--width", "1001", *O), 2, "width"),
    Case("render-height-negative", I, ("render", "a lighthouse", "--height", "-8", *O), 2, "height"),
    Case("render-seed-past-32-bits", I, ("render", "a lighthouse", "--seed", str(2**70), *O), 2, "seed"),
    Case("render-seed-minus-two", I, ("render", "a lighthouse", "--seed", "-2", *O), 2, "seed"),
    Case("render-batch-size-zero", I, ("render", "a lighthouse", "--batch-size", "0", *O), 2, "batch size"),
    Case("render-batch-count-huge", I, ("render", "a lighthouse", "--batch-count", "1000000000", *O), 2, "batch count"),
    Case("render-cfg-nan", I, ("render", "a lighthouse", "--cfg-scale", "nan", *O), 2, "CFG"),
    Case("render-refiner-switch-two", I, ("render", "a lighthouse", "--refiner-switch-at", "2", *O), 2, "refiner switch"),
    Case("render-subseed-strength-nan", I, ("render", "a lighthouse", "--subseed", "3", "--subseed-strength", "nan", *O), 2, "seed strength"),
    Case("render-unknown-style", I, ("render", "a lighthouse", "--style", "oil", *O), 2, "oil"),
    Case("render-unknown-sampler", I, ("render", "a lighthouse", "--sampler", "Euler z", *O), 2, "Euler z"),
    Case("render-unknown-quality", I, ("render", "a lighthouse", "--quality", "ultra", *O), 2, "ultra"),
    Case("render-unknown-engine", I, ("render", "a lighthouse", "--engine", "magic", *O), 2, "magic"),
    Case("render-device-flag-on-preview", I, ("render", "a lighthouse", "--device", "tpu9", *O), 2, "--device"),
    Case("render-steps-not-a-number", I, ("render", "a lighthouse", "--steps", "many", *O), 2, "--steps"),
    Case("render-strength-without-init", I, ("render", "a lighthouse", "--strength", "0.5", *O), 2, "--strength"),
    Case("render-init-image-missing", I, ("render", "a lighthouse", "--init-image", "{tmp}/nowhere.png", *O), 2, "nowhere.png"),
    Case("render-init-image-a-directory", I, ("render", "a lighthouse", "--init-image", "{tmp}/pics", *O), 2, "pics", setup=folders("pics")),
    Case("render-init-image-empty", I, ("render", "a lighthouse", "--init-image", "{tmp}/empty.png", *O), 2, "empty.png", setup=files({"empty.png": b""})),
    Case("render-init-image-text", I, ("render", "a lighthouse", "--init-image", "{tmp}/notes.png", *O), 2, "notes.png", setup=files({"notes.png": "hello\n"})),
    Case("render-init-image-truncated", I, ("render", "a lighthouse", "--init-image", "{tmp}/cut.png", *IMG, *O), 2, "cut.png",
         setup=files({"cut.png": lambda: png(64, 64)[:60]})),
    Case("render-mask-wrong-size", I, ("render", "a door", "--init-image", "{tmp}/in.png", "--mask", "{tmp}/mask.png", *O), 2, "mask",
         setup=files({"in.png": lambda: png(64, 64), "mask.png": lambda: png(32, 32)})),
    Case("render-outpaint-sideways", I, ("render", "more sea", "--init-image", "{tmp}/in.png", "--outpaint", "sideways", *O), 2, "sideways",
         setup=files({"in.png": lambda: png(64, 64)})),
    Case("render-outpaint-pixels-odd", I, ("render", "more sea", "--init-image", "{tmp}/in.png", "--outpaint", "left", "--outpaint-pixels", "7", *O), 2, "outpaint",
         setup=files({"in.png": lambda: png(64, 64)})),
    Case("render-strength-above-one", I, ("render", "more sea", "--init-image", "{tmp}/in.png", "--strength", "1.5", *O), 2, "strength",
         setup=files({"in.png": lambda: png(64, 64)})),
    Case("render-negative-lora-nan", I, ("render", "a lighthouse", "--negative-prompt", "blur <lora:ink:nan>", *IMG, *O), 2, "<lora:ink:nan>"),
    Case("render-from-index-out-of-range", I, ("render", "--from", "{tmp}/idx.png", *O), 2, "idx.png",
         setup=files({"idx.png": lambda: png(text={"keyart": json.dumps({"request": {"prompt": "x", "seed": 5}, "index": 7})})})),
    Case("render-hires-scale-nan", I, ("render", "a lighthouse", "--hires-scale", "nan", *O), 2, "hires"),
    Case("render-hires-scale-huge", I, ("render", "a lighthouse", "--hires-scale", "100", *O), 2, "hires"),
    Case("render-edit-unclosed", I, ("render", "a [cat:dog", *O), 2, "[cat:dog"),
    Case("render-edit-when-a-word", I, ("render", "a [cat:dog:soon]", *O), 2, "soon"),
    Case("render-from-missing", I, ("render", "--from", "{tmp}/gone.png", *O), 2, "gone.png"),
    Case("render-from-text-file", I, ("render", "--from", "{tmp}/notes.png", *O), 2, "notes.png", setup=files({"notes.png": "not a png\n"})),
    Case("render-from-png-without-metadata", I, ("render", "--from", "{tmp}/plain.png", *O), 2, "plain.png", setup=files({"plain.png": png})),
    Case("render-from-bad-lineage-json", I, ("render", "--from", "{tmp}/bad.png", *O), 2, "bad.png", setup=files({"bad.png": lambda: png(text={"keyart": "{not json"})})),
    Case("render-from-lineage-wrong-types", I, ("render", "--from", "{tmp}/typed.png", *O), 2, "typed.png",
         setup=files({"typed.png": lambda: png(text={"keyart": json.dumps({"request": {"prompt": "x", "num_inference_steps": "many", "seed": 5}, "index": 0})})})),
    Case("render-from-infotext-garbage", I, ("render", "--from", "{tmp}/junk.png", *O), 2, "junk.png",
         setup=files({"junk.png": lambda: png(text={"parameters": "a cat\nSteps: lots, Sampler: ???, Seed: -9, Size: big"})})),
    # ---- imagegen info, schedule, grid, xy, upscale, serve -------------------------------------
    Case("info-missing", I, ("info", "{tmp}/gone.png"), 2, "gone.png"),
    Case("info-a-directory", I, ("info", "{tmp}/pics"), 2, "pics", setup=folders("pics")),
    Case("info-empty-file", I, ("info", "{tmp}/empty.png"), 2, "empty.png", setup=files({"empty.png": b""})),
    Case("info-jpeg", I, ("info", "{tmp}/photo.jpg"), 2, "photo.jpg", setup=files({"photo.jpg": jpeg})),
    Case("info-truncated-png", I, ("info", "{tmp}/cut.png"), 2, "cut.png", setup=files({"cut.png": lambda: png(64, 64, {"parameters": "a cat"})[:50]})),
    Case("schedule-steps-zero", I, ("schedule", "a [cat|dog]", "--steps", "0"), 2, "steps"),
    Case("schedule-steps-a-billion", I, ("schedule", "a [cat|dog]", "--steps", "1000000000"), 2, "steps", subprocess=True),
    Case("schedule-unclosed", I, ("schedule", "a [cat:dog:0.5"), 2, "[cat:dog:0.5"),
    Case("grid-seeds-zero", I, ("grid", "a lighthouse", "--seeds", "0", *O), 2, "seeds"),
    Case("grid-seeds-a-million", I, ("grid", "a lighthouse", "--seeds", "1000000", *O), 2, "seeds"),
    Case("xy-range-too-long", I, ("xy", "a lighthouse", "--x", "Steps: 1-100000", *O), 2, "100"),
    Case("xy-unknown-kind", I, ("xy", "a lighthouse", "--x", "Colour: red, blue", *O), 2, "Colour"),
    Case("grid-output-is-a-file", I, ("grid", "a lighthouse", "--seeds", "2", "--width", "64", "--height", "64", *O), 2, ("--output", "{out}"),
         setup=files({"out": "a regular file\n"})),
    Case("upscale-output-is-a-file", I, ("upscale", "{tmp}/in.png", *O), 2, ("--output", "{out}"), setup=files({"in.png": png, "out": "a regular file\n"})),
    Case("upscale-missing", I, ("upscale", "{tmp}/gone.png", *O), 2, "gone.png"),
    Case("upscale-scale-nan", I, ("upscale", "{tmp}/in.png", "--scale", "nan", *O), 2, "scale", setup=files({"in.png": png})),
    Case("upscale-scale-huge", I, ("upscale", "{tmp}/in.png", "--scale", "100", *O), 2, "scale", setup=files({"in.png": png})),
    Case("serve-port-out-of-range", I, ("serve", "--port", "70000", "--home", "{home}"), 2, "--port"),
    Case("serve-max-queue-zero", I, ("serve", "--max-queue", "0", "--home", "{home}"), 2, "--max-queue"),
    Case("serve-max-batch-zero", I, ("serve", "--max-batch", "0", "--home", "{home}"), 2, "--max-batch"),
    Case("serve-max-batch-past-a1111s", I, ("serve", "--max-batch", "9", "--home", "{home}"), 2, ("--max-batch", "between 1 and 8")),
    Case("serve-public-without-key", I, ("serve", "--host", "0.0.0.0", "--home", "{home}"), 2, "--api-key"),
    # ---- python -m assistant ---------------------------------------------------------------------
    Case("assistant-episode-absent", A, ("episode", "--season", "1", "--episode", "999"), 2, "episode 999"),
    Case("assistant-episode-huge", A, ("episode", "--season", "1", "--episode", str(2**70)), 2, "episode"),
    Case("assistant-season-absent", A, ("season", "99"), 2, "season 99"),
    Case("assistant-season-negative", A, ("season", "-1"), 2, "season"),
    Case("assistant-styles-commas-only", A, ("season", "1", "--styles", ",,"), 2, "--styles"),
    Case("assistant-unknown-style", A, ("season", "1", "--styles", "oil"), 2, "oil"),
    Case("assistant-input-not-utf8", A, ("season", "1", "--input", "{tmp}/in/episodes.csv"), 2, "episodes.csv", setup=files({"in/episodes.csv": LATIN1_CSV})),
    Case("campaign-no-brief", A, ("campaign", *O, *H), 2, "--brief"),
    Case("campaign-brief-missing", A, ("campaign", "--brief", "{tmp}/gone.yaml", *O, *H), 2, "gone.yaml"),
    Case("campaign-brief-a-directory", A, ("campaign", "--brief", "{tmp}/briefs", *O, *H), 2, "briefs", setup=folders("briefs")),
    Case("campaign-brief-bad-yaml", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, ("brief.yaml", "line"),
         setup=files({"brief.yaml": "show: Gullhaven\nseason: [1\nplatforms: x\n"})),
    Case("campaign-brief-a-list", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "brief.yaml", setup=files({"brief.yaml": "- show\n- season\n"})),
    Case("campaign-brief-unknown-key", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "colour", setup=files({"brief.yaml": BRIEF_X + "colour: red\n"})),
    Case("campaign-brief-season-a-word", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "season",
         setup=files({"brief.yaml": "show: Gullhaven\nseason: first\nplatforms: [x]\n"})),
    Case("campaign-brief-episode-huge", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "episode",
         setup=files({"brief.yaml": f"show: Gullhaven\nseason: 1\nepisode: {2**70}\nplatforms: [x]\n"})),
    Case("campaign-brief-unknown-platform", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "myspace",
         setup=files({"brief.yaml": "show: Gullhaven\nseason: 1\nplatforms: [myspace]\n"})),
    Case("campaign-brief-other-show", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "Harbourside",
         setup=files({"brief.yaml": "show: Harbourside\nseason: 1\nplatforms: [x]\n"})),
    Case("campaign-brief-not-utf8", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "brief.yaml", setup=files({"brief.yaml": b"show: Gullh\xe4ven\n"})),
    Case("campaign-brief-empty-platforms", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, "platforms",
         setup=files({"brief.yaml": "show: Gullhaven\nseason: 1\nplatforms: []\n"})),
    Case("campaign-output-is-a-file", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H), 2, ("--output", "{out}"),
         setup=files({"brief.yaml": BRIEF_X, "out": "a regular file\n"})),
    Case("campaign-platform-without-from-step", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H, "--platform", "x"), 2, "--from-step",
         setup=files({"brief.yaml": BRIEF_X})),
    Case("campaign-state-corrupt", A, ("campaign", *O, *H), 2, "campaign.json", setup=files({"out/campaign.json": "{\"brief\": [1, 2"})),
    Case("campaign-state-wrong-shape", A, ("campaign", *O, *H, "--from-step", "copy"), 2, "campaign.json", setup=files({"out/campaign.json": "[1, 2, 3]"})),
    Case("campaign-unknown-from-step", A, ("campaign", "--brief", "{tmp}/brief.yaml", *O, *H, "--from-step", "lunch"), 2, "--from-step",
         setup=files({"brief.yaml": BRIEF_X})),
]


# -- running a case ------------------------------------------------------------------------------

ENTRIES = {
    "dataprep": (lambda: __import__("dataprep").main, [str(REPO / "dataprep.py")]),
    "assistant": (lambda: __import__("assistant.cli", fromlist=["main"]).main, ["-m", "assistant"]),
    "imagegen": (lambda: __import__("imagegen.cli", fromlist=["main"]).main, ["-m", "imagegen"]),
}
IGNORED = ("-wal", "-shm", "-journal")  # SQLite's side files come and go with connections


def _clean_environment(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if (name.startswith("KEYART_") and name != "KEYART_CACHE") or name.startswith("OPENAI_"):
            mp.delenv(name)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _db_digest(path: Path) -> str:
    """A database's content (committed rows, WAL included), else its bytes."""
    try:
        db = _REAL_CONNECT(f"file:{path}?mode=ro", uri=True)
        try:
            return "db:" + hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return "bytes:" + _digest(path)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`: folders by name, files by content and mtime, databases
    by content, lock files by name."""
    state: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.endswith(IGNORED):
            continue
        if path.is_symlink():
            state[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            state[rel] = ("dir",)
        elif path.name.endswith(".lock"):
            state[rel] = ("lock",)
        elif path.suffix == ".sqlite":
            state[rel] = ("db", _db_digest(path))
        else:
            state[rel] = ("file", path.stat().st_mtime_ns, _digest(path))
    return state


def debris(ctx: Ctx) -> list[str]:
    """What a failure must never leave: temp files, images the catalog does not know, a damaged catalog."""
    found = [p.relative_to(ctx.tmp).as_posix() for p in ctx.tmp.rglob("*.tmp")]
    db = ctx.home / "catalog.sqlite"
    if db.is_file() and (ctx.home / "images").is_dir():
        try:
            con = _REAL_CONNECT(f"file:{db}?mode=ro", uri=True)
            try:
                ok = con.execute("PRAGMA integrity_check").fetchone()[0]
                known = {row[0] for row in con.execute("SELECT path FROM images")}
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            return found + [f"catalog.sqlite unreadable: {exc}"]
        if ok != "ok":
            found.append(f"catalog.sqlite integrity: {ok}")
        for image in (ctx.home / "images").rglob("*.png"):
            rel = image.relative_to(ctx.home).as_posix()
            if rel not in known:
                found.append(f"image the catalog does not list: {rel}")
    return found


def run_tool(case: Case, ctx: Ctx, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); an exception that escapes main is what Python would print: a
    traceback and exit code 1."""
    argv = [ctx.fill(a) for a in case.argv]
    env = {k: ctx.fill(v) for k, v in case.env.items()}
    load, process = ENTRIES[case.tool]
    if case.subprocess:
        full = {k: v for k, v in os.environ.items() if not ((k.startswith("KEYART_") and k != "KEYART_CACHE") or k.startswith("OPENAI_"))}
        full |= env | {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
        try:
            done = subprocess.run(
                [sys.executable, *process, *argv], cwd=ctx.cwd, env=full, input=case.stdin, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return -9, "", err + f"\n[still running after {SUBPROCESS_TIMEOUT} s: unbounded work]"
        return done.returncode, done.stdout, done.stderr
    for name, value in env.items():
        ctx.mp.setenv(name, value)
    ctx.mp.setattr(sys, "stdin", io.StringIO(case.stdin))
    ctx.mp.chdir(ctx.cwd)
    main = load()
    capsys.readouterr()
    escaped = ""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - what the user would see: the traceback
        escaped = traceback.format_exc()
        code = 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err + escaped


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]


def _phrases(case: Case, ctx: Ctx) -> list[str]:
    phrases = (case.phrase,) if isinstance(case.phrase, str) else case.phrase
    return [ctx.fill(p) for p in phrases]


def _says(text: str, phrase: str, tmp: Path) -> bool:
    """`phrase` (or one of its "|" alternatives) in `text`; a phrase that is not a path is looked
    for outside the case's folder name, which often spells the case's own words."""
    if str(tmp) not in phrase:
        text = text.replace(str(tmp), "<tmp>")
    return any(alternative.lower() in text.lower() for alternative in phrase.split("|"))


def check_case(case: Case, ctx: Ctx, capsys) -> None:
    ctx.cwd.mkdir(exist_ok=True)
    if case.setup is not None:
        case.setup(ctx)
    before = snapshot(ctx.tmp)
    started = time.perf_counter()
    code, out, err = run_tool(case, ctx, capsys)
    seconds = time.perf_counter() - started
    ctx.mp.undo()  # the injected failures end with the tool: the checks below read the real disk
    after = snapshot(ctx.tmp)
    tail = "\n".join(err.splitlines()[-6:])
    what = f"exit {code} (expected {case.code}) after {seconds:.1f} s; stderr ends:\n{tail}"
    problems: list[str] = []
    if code != case.code:
        problems.append(f"exit code {code}, expected {case.code}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("a traceback")
    phrases = _phrases(case, ctx)
    if case.code == 2:
        errors = [line for line in _lines(err) if line.startswith("error: ")]
        if len(errors) != 1:
            problems.append(f"{len(errors)} lines start with 'error: ', expected one")
        else:
            line = errors[0]
            if case.alone and _lines(err) != [line]:
                problems.append("stderr says more than the error line")
            if not _lines(err)[-1].startswith("error: "):
                problems.append("the error is not the last line")
            if len(line) >= ERROR_LINE_LIMIT:
                problems.append(f"the error line is {len(line)} characters")
            missing = [p for p in phrases if not _says(line, p, ctx.tmp)]
            if missing:
                problems.append(f"the error line lacks {missing}")
    else:
        missing = [p for p in phrases if not _says(out + err, p, ctx.tmp)]
        if missing:
            problems.append(f"the output lacks {missing}")
    if case.same and case.code in (0, 2):
        changed = sorted(set(before) ^ set(after)) + sorted(k for k in set(before) & set(after) if before[k] != after[k])
        if changed:
            problems.append(f"files changed or created: {changed[:6]}")
    left = debris(ctx)
    if left:
        problems.append(f"left behind: {left[:4]}")
    assert not problems, "; ".join(problems) + "\n" + what


# -- fixtures and tests --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def templates(tmp_path_factory) -> dict[str, Path]:
    """A catalog with S01E01 in anime rendered (preview engine, offline rules), built in its own
    process so no connection of this one stays open on it."""
    root = tmp_path_factory.mktemp("edge-templates")
    home = root / "done"
    env = {k: v for k, v in os.environ.items() if not ((k.startswith("KEYART_") and k != "KEYART_CACHE") or k.startswith("OPENAI_"))}
    done = subprocess.run(
        [sys.executable, str(REPO / "dataprep.py"), "run", "--home", str(home), *SMALL], cwd=root, env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for db in home.rglob("*.sqlite"):  # fold the WAL into the file, so copies are complete on their own
        con = _REAL_CONNECT(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    return {"done": home}


@pytest.fixture
def ctx(tmp_path, monkeypatch, templates) -> Ctx:
    _clean_environment(monkeypatch)
    return Ctx(tmp=tmp_path, home=tmp_path / "home", out=tmp_path / "out", cwd=tmp_path / "cwd", mp=monkeypatch, templates=templates)


def test_the_table_is_wide_enough():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids repeat"
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=str)
def test_edge(case: Case, ctx: Ctx, capsys):
    check_case(case, ctx, capsys)


def _stale(path: Path) -> Path:
    """A temp file as a render killed mid-save leaves it, an hour old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png()[:40])
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    return path


def test_a_render_killed_mid_save_leaves_a_temp_file_the_next_render_removes(ctx: Ctx, capsys):
    from imagegen.cli import main

    stale = _stale(ctx.out / ".keyart-0123456789abcdef.tmp")  # imagegen.metadata's temp name
    mine = ctx.out / "notes.tmp"
    mine.write_text("a user's own file\n")
    ctx.mp.chdir(ctx.tmp)
    assert main(["render", "a lighthouse", *IMG, "--output", str(ctx.out)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(list(ctx.out.glob("*.png"))) == 1
    assert not stale.exists(), "the killed render's temp file is still in --output"
    assert mine.exists(), "a file that is not keyart's temp file was removed"


def test_a_killed_save_s_temp_file_in_the_home_is_cleared_by_the_next_run(ctx: Ctx, capsys):
    import dataprep

    home_with("done")(ctx)
    stale = _stale(next((ctx.home / "images").rglob("*.png")).parent / ".keyart-fedcba9876543210.tmp")
    ctx.mp.chdir(ctx.tmp)
    assert dataprep.main(["run", "--home", str(ctx.home), *SMALL]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert not stale.exists()


def test_a_render_killed_mid_save_leaves_no_image_and_the_rerun_completes_the_catalog(ctx: Ctx, capsys):
    """Ctrl-C while the PNG is flushed: no half image, the entry not done; the rerun renders it."""
    import dataprep

    home_with("done")(ctx)
    args = ["run", "--home", str(ctx.home), "--season", "1", "--episodes", "2", "--styles", "anime"]

    def interrupted(fd):
        raise KeyboardInterrupt

    ctx.mp.chdir(ctx.tmp)
    ctx.mp.setattr(os, "fsync", interrupted)
    assert dataprep.main(args) == 130
    ctx.mp.undo()
    assert "Traceback" not in capsys.readouterr().err
    assert debris(ctx) == []
    assert dataprep.main(args) == 0
    con = _REAL_CONNECT(ctx.home / "catalog.sqlite")
    states = con.execute("SELECT episode, state FROM entries WHERE season = 1 AND style = 'anime' ORDER BY episode").fetchall()
    con.close()
    assert states == [(1, "done"), (2, "done")]
    assert debris(ctx) == []
