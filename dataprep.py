"""dataprep: a show's episode and season summaries -> LLM-written SDXL prompts -> a catalog of images.

The catalog stages (prompts, render, run, status, export) are not built yet. Until they are, render
a prompt with `python -m imagegen render PROMPT` (see `python -m imagegen render --help`).
"""

import sys


def main(argv: list[str] | None = None) -> int:
    sys.stderr.write("dataprep: the catalog stages are not available yet; render a prompt with `python -m imagegen render PROMPT`\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
