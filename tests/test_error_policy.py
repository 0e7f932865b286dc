"""The one error policy at the edges (imagegen.errors.run_edge): keyart's errors are one line and
exit 2, operating-system and SQLite failures are said in our words, a bug is one line saying so
with the traceback in a log file (exit 3); and the techniques' reading limit on long summaries."""

import errno
import sqlite3

import pytest

from imagegen.errors import InvalidRequest, StorageError, run_edge, storage_error


class Echo:
    def __init__(self):
        self.lines = []

    def __call__(self, text, err=False):
        self.lines.append((text, err))


def raising(exc):
    def body():
        raise exc

    return body


def test_our_errors_are_one_line_and_exit_2():
    echo = Echo()
    assert run_edge(raising(InvalidRequest("steps must be\nbetween 1 and 150")), echo=echo) == 2
    assert echo.lines == [("error: steps must be between 1 and 150", True)]


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/home/x/images/a.png"), "no space left on the disk writing /home/x/images/a.png"),
        (OSError(errno.EROFS, "Read-only file system", "/mnt/ro"), "read-only file system"),
        (OSError(errno.EACCES, "Permission denied", "/root/x"), "no permission to write /root/x"),
        (sqlite3.OperationalError("database or disk is full"), "no space left on the disk"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.DatabaseError("file is not a database"), "is not a keyart database or is damaged"),
        (sqlite3.OperationalError("disk I/O error"), "disk I/O error"),
    ],
)
def test_machine_failures_that_reach_the_edge_are_said_in_our_words(exc, words):
    echo = Echo()
    assert run_edge(raising(exc), echo=echo) == 2
    (line, err), = echo.lines
    assert err and line.startswith("error: ") and words in line and "\n" not in line and "Traceback" not in line
    assert isinstance(storage_error(exc), StorageError)


def test_a_bug_is_one_line_saying_so_and_the_traceback_goes_to_a_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    echo = Echo()
    assert run_edge(raising(KeyError("frobnicate")), echo=echo, program="dataprep") == 3
    (line, _), = echo.lines
    assert line.startswith("error: dataprep hit an internal error, a bug: KeyError: 'frobnicate'; the traceback is in ")
    log = line.split("the traceback is in ")[1].split(" (please report it)")[0]
    assert log.startswith(str(tmp_path)) and "Traceback (most recent call last)" in open(log).read()


def test_interrupts_say_what_is_kept_and_exit_130():
    echo = Echo()
    assert run_edge(raising(KeyboardInterrupt()), echo=echo, interrupted="interrupted: kept") == 130
    assert echo.lines == [("interrupted: kept", True)]


def test_a_corrupt_catalog_database_is_one_line_and_nothing_is_created_beside_it(tmp_path, capsys):
    import dataprep

    home = tmp_path / "home"
    home.mkdir()
    (home / "catalog.sqlite").write_bytes(b"not a database at all, " * 10)
    for command in (["status"], ["run", "--episodes", "1", "--styles", "anime"], ["export", "--output", str(tmp_path / "out" / "c.csv")]):
        assert dataprep.main([*command, "--home", str(home)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: the catalog database") and "is not a keyart database or is damaged" in err and err.count("\n") == 1
    assert sorted(p.name for p in home.iterdir()) == ["catalog.sqlite"] and not (tmp_path / "out").exists()


def test_a_home_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    import dataprep

    home = tmp_path / "home"
    home.write_text("a file")
    assert dataprep.main(["run", "--home", str(home), "--episodes", "1", "--styles", "anime"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and home.read_text() == "a file"


def test_a_summary_past_the_reading_limit_is_cut_at_a_sentence_and_the_trace_says_so():
    from assistant.catalog import load_catalog
    from assistant.models.offline import OfflineModel
    from assistant.prompting.clean import MAX_SUMMARY_CHARS
    from assistant.prompting.meta_prompt import episode_prompts
    from assistant.workflows.plan import style_specs

    episode = load_catalog(None).episodes[0]
    long = episode.model_copy(update={"summary": " ".join([episode.summary] * (2 * MAX_SUMMARY_CHARS // len(episode.summary) + 50))})
    result = episode_prompts(long, list(style_specs(None)), OfflineModel())
    note = next(w for w in result.trace.warnings if "characters" in w)
    assert f"the summary is {len(long.summary):,} characters; the first" in note and f"up to {MAX_SUMMARY_CHARS:,}" in note
    assert len(result.prompts) == 5 and all(p.prompt for p in result.prompts)
    short = episode_prompts(episode, list(style_specs(None)), OfflineModel())
    assert not [w for w in short.trace.warnings if "characters" in w]


def test_a_bug_behind_the_image_service_is_a_json_500_in_openais_shape():
    import httpx

    from imagegen.server.app import create_app
    from tests.test_server_openai import serving

    class Broken:
        """A queue whose every look fails: what a bug below the routes looks like."""

        def jobs(self):
            raise RuntimeError("the jobs table is gone")

        def close(self, cancel=False):
            pass

    with serving(create_app(Broken)) as url:
        answer = httpx.get(f"{url}/sdapi/v1/progress", timeout=30)
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200  # the server answers on
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "internal_error"
    assert "a bug: RuntimeError" in error["message"] and "jobs table" not in error["message"]  # internals stay in the log
