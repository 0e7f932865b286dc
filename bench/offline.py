"""The offline writer's time against the summary's length: episode prompts (five styles) for
summaries from 1 KB to 1 MB, made by repeating the sample show's summaries, side by side.

Summaries past the techniques' reading limit (prompting.clean.MAX_SUMMARY_CHARS) are cut at a
sentence end with a note in the trace, so the time levels off there; the table shows where.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# bench/ holds a queue.py that would hide the standard library's `queue`: the root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,20000,100000,1000000", help="summary lengths in characters, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (median)")
    args = parser.parse_args(argv)

    from assistant.catalog import load_catalog
    from assistant.models.offline import OfflineModel
    from assistant.prompting.clean import MAX_SUMMARY_CHARS
    from assistant.prompting.meta_prompt import episode_prompts
    from assistant.workflows.plan import style_specs

    catalog = load_catalog(None)
    text = " ".join(e.summary for e in catalog.episodes)
    episode = catalog.episodes[0]
    styles, model = list(style_specs(None)), OfflineModel()
    print(f"offline episode prompts, {len(styles)} styles, median of {args.repeats}; reading limit {MAX_SUMMARY_CHARS:,} characters")
    print(f"{'summary':>10}  {'seconds':>8}  {'ms per KB':>9}  note")
    for size in (int(s) for s in args.sizes.split(",")):
        summary = (text * (size // len(text) + 1))[:size]
        runs, result = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = episode_prompts(episode.model_copy(update={"summary": summary}), styles, model)
            runs.append(time.perf_counter() - start)
        seconds = statistics.median(runs)
        note = next((w for w in result.trace.warnings if "characters" in w), "")
        print(f"{size:>10,}  {seconds:>8.3f}  {1000 * seconds / (size / 1000):>9.2f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
