"""Running one edge case (tests/test_edges.py): the tool in-process or as a subprocess, then the checks:
the exit code, one short error line without a traceback, and every file under the case's folder
as it was (or, where finished work is kept, no debris)."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

from tests.edge_setups import ERROR_LINE_LIMIT, REAL_CONNECT, REPO, SUBPROCESS_TIMEOUT, Case, Ctx

# -- running a case ------------------------------------------------------------------------------

ENTRIES = {
    "dataprep": (lambda: __import__("dataprep").main, [str(REPO / "dataprep.py")]),
    "assistant": (lambda: __import__("assistant.cli", fromlist=["main"]).main, ["-m", "assistant"]),
    "imagegen": (lambda: __import__("imagegen.cli", fromlist=["main"]).main, ["-m", "imagegen"]),
}
IGNORED = ("-wal", "-shm", "-journal")  # SQLite's side files come and go with connections


def clean_environment(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if (name.startswith("KEYART_") and name != "KEYART_CACHE") or name.startswith("OPENAI_"):
            mp.delenv(name)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _db_digest(path: Path) -> str:
    """A database's content (committed rows, WAL included), else its bytes."""
    try:
        db = REAL_CONNECT(f"file:{path}?mode=ro", uri=True)
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
            con = REAL_CONNECT(f"file:{db}?mode=ro", uri=True)
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
