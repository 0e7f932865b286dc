"""The results file a GPU run leaves to commit: bench/results-<device>.md, one fenced block per benchmark.

`bench/engine.py --save` starts the file; `bench/dataprep.py --full --save` adds its block to it.
Every line is flushed as it is printed, so a run stopped at a time limit keeps what it measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def device_slug(name: str) -> str:
    """ "NVIDIA H200" -> "nvidia-h200": the file name's part for a device."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "device"


def results_path(device_name: str) -> Path:
    return HERE / f"results-{device_slug(device_name)}.md"


class Tee:
    """Print to the terminal and to a results file at once, the file's part fenced as a code block.

    `append` adds a block to an existing file (the engine table first, then the catalog run's)."""

    def __init__(self, terminal, path: Path, *, append: bool = False):
        self.terminal, self.path = terminal, path
        self.file = path.open("a" if append else "w", encoding="utf-8")
        script = Path(sys.argv[0]).name
        self.file.write(f"{chr(10) if append else ''}# bench/{script} {' '.join(sys.argv[1:])}\n\n```\n")
        self.file.flush()

    def write(self, text: str) -> int:
        self.file.write(text)
        self.file.flush()
        return self.terminal.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.terminal.flush()

    def close(self) -> None:
        self.file.write("```\n")
        self.file.close()


def start(path: Path, *, append: bool = False) -> Tee:
    """Send stdout to `path` too, until `finish`."""
    sys.stdout = Tee(sys.stdout, path, append=append)
    return sys.stdout


def finish(stopped: str | None = None) -> None:
    """Close the results file's block, if one is open (saying why it ends early, if `stopped`), and
    print to the terminal alone again."""
    if isinstance(sys.stdout, Tee):
        if stopped:
            print(f"(stopped here: {stopped})")
        tee, sys.stdout = sys.stdout, sys.stdout.terminal
        tee.close()
