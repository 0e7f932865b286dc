"""Errors that speak to the user: each says what went wrong and, where it can, how to fix it.

The CLI turns a `KeyartError` into its message and exit code 2; the dashboard into `st.error`.
"""

from __future__ import annotations


class KeyartError(Exception):
    """Base class for every error keyart shows to a user."""

    exit_code = 2


class InvalidRequest(KeyartError, ValueError):
    """A render request (or a CLI option) that cannot be rendered as given."""


class UnknownStyle(InvalidRequest):
    """A style name that is not in the style catalog."""


class ModelNotFound(KeyartError):
    """An SDXL model (or refiner) that is not configured or cannot be found."""


class MetadataError(KeyartError):
    """A PNG without keyart or A1111 metadata, or metadata that cannot be read back."""


class RenderFailed(KeyartError):
    """A render that ran but produced an unusable result (NaNs, out of memory...)."""


class OutOfMemory(RenderFailed):
    """A render the device had too little memory for; the render queue renders a batch of several
    jobs that meets it in smaller parts."""


class RemoteUnavailable(KeyartError):
    """A remote engine's server (A1111, an OpenAI-compatible one, another keyart) that cannot be
    reached, refuses the key, or still fails after the retries."""


class StorageError(KeyartError):
    """The machine refused a read or write: no space left, a read-only or unreachable folder, no
    permission, or a damaged file. The message says which file, what was kept and how to go on."""


class InternalError(KeyartError):
    """A bug: an exception keyart has no words for. The message says so and where the traceback is."""

    exit_code = 3


# What a resumable run keeps when the disk or a file fails under it: every item it finished.
KEPT = "everything finished before is kept; run the same command again to resume"


# SQLite's words for a machine or file problem (not a bug in a statement).
SQLITE_ENVIRONMENTAL = ("full", "readonly", "read-only", "not a database", "malformed", "disk i/o", "unable to open", "locked", "corrupt")


def environmental(exc: BaseException) -> bool:
    """Whether a SQLite error is the machine's or the file's (disk full, read-only, damaged, locked)."""
    import sqlite3

    return isinstance(exc, sqlite3.DatabaseError) and any(w in str(exc).lower() for w in SQLITE_ENVIRONMENTAL)


def storage_error(exc: BaseException, where: object = None, *, what: str = "", kept: str = KEPT) -> KeyartError:
    """Our words for an operating-system or SQLite failure at `where` (a path, for the message):
    no space, read-only, permission, missing, damaged. Anything else keeps its own text."""
    import errno
    import sqlite3

    if where is None and isinstance(exc, OSError) and exc.filename:
        where = exc.filename
    place = " ".join(str(x) for x in (what, where) if x not in (None, "")) or "a file"
    if isinstance(exc, OSError):
        code = exc.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            return StorageError(f"no space left on the disk writing {place}; {kept} once there is room")
        if code == errno.EROFS:
            return StorageError(f"{place} is on a read-only file system; point keyart at a writable folder ({kept})")
        if code in (errno.EACCES, errno.EPERM):
            return StorageError(f"no permission to write {place}; fix its permissions or choose another folder ({kept})")
        if code == errno.ENOTDIR:
            return StorageError(f"{place}: a part of the path is a file, not a folder; choose a folder")
        if code == errno.EISDIR:
            return StorageError(f"{place} is a folder where a file is expected")
        if code == errno.EIO:
            return StorageError(f"the disk failed reading or writing {place} (I/O error); check the drive; {kept}")
        return StorageError(f"cannot use {place}: {exc.strerror or exc}")
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if "full" in text:
            return StorageError(f"no space left on the disk writing {place}; {kept} once there is room")
        if "readonly" in text or "read-only" in text:
            return StorageError(f"{place} cannot be written (read-only file or folder); point keyart at a writable folder ({kept})")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StorageError(f"{place} is not a keyart database or is damaged ({exc}); move it aside (keyart then starts a new one) or restore a copy")
        if "disk i/o" in text:
            return StorageError(f"the disk failed reading or writing {place} (disk I/O error); check the drive and free space; {kept}")
        if "unable to open" in text:
            return StorageError(f"cannot open {place}: the folder is missing, not writable, or not a folder")
        if "locked" in text or "busy" in text:
            return StorageError(f"{place} is locked by another program; wait for it or close it, then run again")
        return StorageError(f"{place}: {exc}")
    return exc if isinstance(exc, KeyartError) else InternalError(f"{type(exc).__name__}: {exc}")


def run_edge(body, *, echo, interrupted: str = "interrupted: " + KEPT, program: str = "keyart") -> int:
    """Run a command-line tool's `body()` under the one error policy; its exit code.

    0 done, 1 a partial result (the body returns it), 2 bad input, configuration or environment (our
    errors, one line), 3 a bug (one line saying so, the traceback in a log file), 130 interrupted.
    Operating-system and SQLite failures that reach here unnamed are translated as storage errors.
    """
    import sqlite3

    try:
        return body()
    except KeyartError as exc:
        echo(f"error: {one_line(exc)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        echo(interrupted, err=True)
        return 130
    except (OSError, sqlite3.Error) as exc:
        error = storage_error(exc)
        echo(f"error: {one_line(error)}", err=True)
        return error.exit_code
    except Exception as exc:  # a bug: the user gets one line and where the whole story is
        log = crash_log(program)
        echo(f"error: {program} hit an internal error, a bug: {type(exc).__name__}: {one_line(exc)[:300]}; the traceback is in {log} (please report it)", err=True)
        return InternalError.exit_code


def one_line(exc: BaseException, limit: int = 2000) -> str:
    """An error's message on one line, cut to `limit` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def crash_log(program: str) -> str:
    """Write the exception being handled, with its traceback, to a new file; its path."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix=f"{program}-crash-", suffix=".log")
    with open(fd, "w", encoding="utf-8") as out:
        traceback.print_exc(file=out)
    return path


def one_line_parser(**kwargs):
    """An argparse parser (its subcommands' too) whose usage errors are one `error:` line and exit 2,
    as every other bad input is, instead of the usage block."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):  # noqa: D401 -- argparse's hook
            self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")

    return Parser(**kwargs)
