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

The cases are in tests/edge_table.py, the setups and injected failures they use in
tests/edge_setups.py, and the run and checks of one case in tests/edge_runner.py.
"""


from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.edge_runner import clean_environment, check_case, debris
from tests.edge_setups import REAL_CONNECT, REPO, SMALL, Case, Ctx, home_with, png
from tests.edge_table import CASES, IMG

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
        con = REAL_CONNECT(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    return {"done": home}


@pytest.fixture
def ctx(tmp_path, monkeypatch, templates) -> Ctx:
    clean_environment(monkeypatch)
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
    con = REAL_CONNECT(ctx.home / "catalog.sqlite")
    states = con.execute("SELECT episode, state FROM entries WHERE season = 1 AND style = 'anime' ORDER BY episode").fetchall()
    con.close()
    assert states == [(1, "done"), (2, "done")]
    assert debris(ctx) == []
