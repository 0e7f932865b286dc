"""Prompt quality on labelled shows: do an episode's five style prompts name its characters and
places, fit CLIP's budget, leak no instructions, and differ by more than their style words?

The shows are tests/data/shows/<slug>/ (episodes.csv and labels.json; the README there gives the
labelling and matching rules). Each episode's prompts are written by meta-prompting, as
`python -m assistant episode` writes them, with every catalog style, and measured:

- recall per episode: the share of its labelled characters and places that at least one of its
  prompts names; recall per prompt: the same share for each prompt, averaged over its prompts.
  A character is named by its name without a title, or its first or last word (a word two
  characters of the episode share does not count); a place by its whole name; case and accents
  are ignored; a match inside a longer match of another label does not count.
- over budget: prompts past CLIP's 75 tokens (`clean.clip_tokens`, on the prompt as written, before
  the style preset wraps it, as the pipeline's own warning counts).
- leaks: prompts (or negative prompts) holding a phrase `clean.py` treats as a leaked instruction,
  or an echo of the reply shape's placeholders.
- distinctness: for each pair of an episode's style prompts, the Jaccard distance of their word
  sets once the words of both styles' own presets (name, description, template) and a few
  function words are removed; a pair under DISTINCT_BELOW is not distinct beyond its style words.

Show figures are means over episodes; the totals weigh every episode alike. The last line is
PASS or FAIL against TARGETS; the bench prints figures and exits 0 either way (2 on bad input).

    .venv/bin/python bench/prompt_quality.py                      # every show, offline rules
    .venv/bin/python bench/prompt_quality.py --show ashcombe --verbose
    .venv/bin/python bench/prompt_quality.py --llm openai --json > quality.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # bench/ holds a queue.py that would hide the standard library's `queue`: the root takes its place.
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:  # loaded from its file (the tests): `bench.prompt_match` must still resolve
    sys.path.insert(0, str(ROOT))

from bench.prompt_match import fold, jaccard_distance, named, objects_named, words  # noqa: E402 -- after the path

SHOWS = ROOT / "tests" / "data" / "shows"
DISTINCT_BELOW = 0.2  # a pair sharing more than 80% of its non-style words is one prompt in two styles
TARGETS = {"recall_episode": 0.90, "recall_prompt": 0.80}  # means; no prompt over budget, no leak, no twin pair
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}|<[a-z ]+>")  # "{prompt}", "<style name>" left in a reply


# -- shows ---------------------------------------------------------------------------------------


def show_dirs(slugs: list[str] | None = None, root: Path = SHOWS) -> list[Path]:
    """The labelled show folders (those with a labels.json), all or the named ones, in name order."""
    found = {p.parent.name: p.parent for p in sorted(root.glob("*/labels.json"))}
    if not slugs:
        return list(found.values())
    unknown = [s for s in slugs if s not in found]
    if unknown:
        raise ValueError(f"no labelled show {', '.join(map(repr, unknown))} under {root}; the shows are: {', '.join(found)}")
    return [found[s] for s in slugs]


def load_show(show_dir: Path) -> tuple[Any, dict[str, dict[str, list[str]]]]:
    """(catalog, labels): the folder's episodes.csv (else the default catalog) and its labels.json."""
    from assistant.catalog import load_catalog

    episodes = show_dir / "episodes.csv"
    catalog = load_catalog(episodes if episodes.is_file() else None)
    labels = json.loads((show_dir / "labels.json").read_text(encoding="utf-8"))
    return catalog, labels


def code(episode: Any) -> str:
    return f"S{episode.season:02d}E{episode.episode:02d}"


def label_problems(catalog: Any, labels: dict[str, dict[str, list[str]]]) -> list[str]:
    """What is wrong with a show's labels: episodes without labels or labels without an episode,
    unknown kinds, labels given twice, and labels not written in the summary exactly as they are."""
    problems: list[str] = []
    by_code = {code(e): e for e in catalog.episodes}
    problems += [f"{c}: no labels for this episode" for c in by_code if c not in labels]
    problems += [f"{c}: labelled, but the catalog has no such episode" for c in labels if c not in by_code]
    for c, entry in labels.items():
        if c not in by_code:
            continue
        problems += [f"{c}: unknown label kind {kind!r} (characters, places, objects)" for kind in entry if kind not in ("characters", "places", "objects")]
        for kind, names in entry.items():
            problems += [f"{c}: {kind[:-1]} {name!r} is not in the summary as written" for name in names if name not in by_code[c].summary]
            problems += [f"{c}: {kind[:-1]} {name!r} is labelled twice" for name in dict.fromkeys(names) if names.count(name) > 1]
        if not entry.get("characters") and not entry.get("places"):
            problems.append(f"{c}: no characters or places labelled; recall needs at least one")
    return problems


# -- prompts -------------------------------------------------------------------------------------


def style_words(style: Any) -> set[str]:
    """A style's own words: its name (and the name's parts), its description and its preset's template."""
    from imagegen import styles as style_catalog

    preset = style_catalog.catalog().get(style.name)
    text = " ".join([style.name, style.name.replace("-", " "), style.description, preset.prompt.replace("{prompt}", " ") if preset else ""])
    return words(text)


def leaks(text: str) -> list[str]:
    """Phrases of `text` that read as instructions or as the reply shape echoed back."""
    from assistant.prompting import clean
    from assistant.prompting.meta_prompt import REPLY_SHAPE

    found = [m.group(0) for m in clean._LEAKS.finditer(text)] + _PLACEHOLDER.findall(text)
    shape = json.loads(REPLY_SHAPE)
    echoes = [v for v in [*shape["brief"].values(), *shape["prompts"][0].values()] if isinstance(v, str) and len(v) >= 12]
    return list(dict.fromkeys(found + [e for e in echoes if fold(e) in fold(text)]))


def measure_episode(episode: Any, entities: dict[str, list[str]], styles: list[Any], model: Any) -> dict[str, Any]:
    """One episode's prompts and figures: recall (per episode, per prompt), budget, leaks, style pairs."""
    from assistant.prompting.clean import CLIP_BUDGET, clip_tokens
    from assistant.prompting.meta_prompt import episode_prompts

    # 1. The prompts, as the catalog writes them.
    result = episode_prompts(episode, styles, model)
    labelled = [*entities.get("characters", []), *entities.get("places", [])]
    objects = entities.get("objects", [])
    # 2. Each prompt: what it names, its length, what it leaks.
    prompts, seen, seen_objects = [], set(), set()
    for p in result.prompts:
        hits = named(entities, p.prompt)
        seen |= hits
        seen_objects |= objects_named(objects, p.prompt)
        tokens = clip_tokens(p.prompt)
        leaked = leaks(p.prompt) + leaks(p.negative_prompt)
        prompts.append({
            "style": p.style, "prompt": p.prompt, "negative_prompt": p.negative_prompt, "tokens": tokens, "over_budget": tokens > CLIP_BUDGET,
            "named": [n for n in labelled if n in hits], "recall": len(hits) / len(labelled) if labelled else 1.0, "leaks": leaked,
        })  # fmt: skip
    # 3. Each pair of styles: the distance of their prompts beyond both styles' own words.
    by_style = {s.name: s for s in styles}
    pairs = []
    for a, b in itertools.combinations(result.prompts, 2):
        own = style_words(by_style[a.style]) | style_words(by_style[b.style])
        distance = jaccard_distance(words(a.prompt) - own, words(b.prompt) - own)
        pairs.append({"styles": [a.style, b.style], "distance": round(distance, 4), "distinct": distance >= DISTINCT_BELOW})
    return {
        "episode": code(episode),
        "title": episode.title,
        "written_by": result.trace.label,
        "fallback": result.trace.fallback,
        "cleaner_drops": sum("read as instructions" in w for w in result.trace.warnings),
        "labelled": labelled,
        "named": [n for n in labelled if n in seen],
        "missing": [n for n in labelled if n not in seen],
        "recall_episode": len(seen) / len(labelled) if labelled else 1.0,
        "recall_prompt": statistics.fmean(p["recall"] for p in prompts) if prompts else 0.0,
        "objects": objects,
        "objects_missing": [o for o in objects if o not in seen_objects],
        "over_budget": sum(p["over_budget"] for p in prompts),
        "leaks": sum(bool(p["leaks"]) for p in prompts),
        "min_distance": min((p["distance"] for p in pairs), default=1.0),
        "not_distinct": sum(not p["distinct"] for p in pairs),
        "pairs": pairs,
        "prompts": prompts,
    }


def summarize(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a set of measured episodes: means over episodes, counts over prompts and pairs."""
    with_objects = [e for e in episodes if e["objects"]]
    return {
        "episodes": len(episodes),
        "recall_episode": statistics.fmean(e["recall_episode"] for e in episodes) if episodes else 0.0,
        "recall_prompt": statistics.fmean(e["recall_prompt"] for e in episodes) if episodes else 0.0,
        "episodes_below_target": sum(e["recall_episode"] < TARGETS["recall_episode"] for e in episodes),
        "worst_recall_episode": min((e["recall_episode"] for e in episodes), default=0.0),
        "prompts": sum(len(e["prompts"]) for e in episodes),
        "over_budget": sum(e["over_budget"] for e in episodes),
        "leaks": sum(e["leaks"] for e in episodes),
        "pairs": sum(len(e["pairs"]) for e in episodes),
        "not_distinct": sum(e["not_distinct"] for e in episodes),
        "min_distance": min((e["min_distance"] for e in episodes), default=1.0),
        "recall_objects": statistics.fmean(1 - len(e["objects_missing"]) / len(e["objects"]) for e in with_objects) if with_objects else None,
        "fallbacks": sum(e["fallback"] is not None for e in episodes),
        "cleaner_drops": sum(e["cleaner_drops"] for e in episodes),
    }


def measure(show_dir: Path, model: Any, styles: list[Any] | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A labelled show's figures: {"slug", "show", "label_problems", "episodes": [...], "summary": {...}}.

    `styles` defaults to every catalog style; `progress` is called with each episode's code before it is written."""
    from assistant.workflows.plan import style_specs

    styles = list(style_specs(None)) if styles is None else styles
    catalog, labels = load_show(show_dir)
    measured = []
    for episode in (e for e in catalog.episodes if code(e) in labels):
        if progress is not None:
            progress(code(episode))
        measured.append(measure_episode(episode, labels[code(episode)], styles, model))
    return {"slug": show_dir.name, "show": catalog.show, "label_problems": label_problems(catalog, labels), "episodes": measured, "summary": summarize(measured)}


def verdict(totals: dict[str, Any]) -> list[str]:
    """The targets `totals` misses, each a short reason; none is a PASS."""
    failures = []
    if totals["recall_episode"] < TARGETS["recall_episode"]:
        failures.append(f"recall per episode {totals['recall_episode']:.0%} < {TARGETS['recall_episode']:.0%}")
    if totals["recall_prompt"] < TARGETS["recall_prompt"]:
        failures.append(f"recall per prompt {totals['recall_prompt']:.0%} < {TARGETS['recall_prompt']:.0%}")
    if totals["over_budget"]:
        failures.append(f"{totals['over_budget']} prompt(s) over the CLIP budget")
    if totals["leaks"]:
        failures.append(f"{totals['leaks']} prompt(s) with leaked instructions")
    if totals["not_distinct"]:
        failures.append(f"{totals['not_distinct']} style pair(s) not distinct beyond their style words")
    return failures


# -- output --------------------------------------------------------------------------------------


def _row(name: str, s: dict[str, Any]) -> str:
    objects = "-" if s["recall_objects"] is None else f"{s['recall_objects']:.0%}"
    return (
        f"{name:<20} {s['episodes']:>3} {s['recall_episode']:>8.0%} {s['episodes_below_target']:>6} {s['recall_prompt']:>8.0%}"
        f" {s['over_budget']:>5}/{s['prompts']:<3} {s['leaks']:>5} {s['min_distance']:>8.2f} {s['not_distinct']:>5}/{s['pairs']:<4} {objects:>7}"
    )


HEADER = (
    f"{'show':<20} {'eps':>3} {'recall/ep':>8} {'<90%':>6} {'recall/pr':>8} {'over budget':>9} {'leaks':>5} "
    f"{'min dist':>8} {'twin pairs':>10} {'objects':>7}"
)


def print_report(shows: list[dict[str, Any]], totals: dict[str, Any], failures: list[str], *, model: str, verbose: bool) -> None:
    print(f"prompt quality: episode prompts by {model}, {len(shows)} labelled show(s); twin pair: distance < {DISTINCT_BELOW} beyond style words")
    for show in shows:
        print(f"\n{show['show']} ({show['slug']})")
        for problem in show["label_problems"]:
            print(f"  label problem: {problem}")
        print(f"  {'episode':<8} {'recall':>6} {'per prompt':>10} {'over':>4} {'leaks':>5} {'min dist':>8} {'twins':>5}  missing")
        for e in show["episodes"]:
            note = f"  [{e['written_by']}]" if e["fallback"] else ""
            print(
                f"  {e['episode']:<8} {e['recall_episode']:>6.0%} {e['recall_prompt']:>10.0%} {e['over_budget']:>4} {e['leaks']:>5}"
                f" {e['min_distance']:>8.2f} {e['not_distinct']:>5}  {', '.join(e['missing']) or '-'}{note}"
            )
            if verbose:
                _print_episode(e)
    print()
    print(HEADER)
    for show in shows:
        print(_row(show["slug"], show["summary"]))
    print(_row("TOTAL", totals))
    if totals["fallbacks"] or totals["cleaner_drops"]:
        print(f"offline fallbacks: {totals['fallbacks']} episode(s); phrases dropped by the cleaner: {totals['cleaner_drops']}")
    print(
        f"targets: recall per episode >= {TARGETS['recall_episode']:.0%}, per prompt >= {TARGETS['recall_prompt']:.0%}, "
        "no prompt over budget, no leak, no twin pair"
    )
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))


def _print_episode(e: dict[str, Any]) -> None:
    print(f"    {e['title']}: named {len(e['named'])}/{len(e['labelled'])}; missing: {', '.join(e['missing']) or 'none'}", end="")
    print(f"; objects missing: {', '.join(e['objects_missing'])}" if e["objects_missing"] else "")
    for p in e["prompts"]:
        flags = [f"{p['tokens']} tokens" + (" OVER" if p["over_budget"] else ""), f"recall {p['recall']:.0%}"]
        flags += [f"leak: {', '.join(p['leaks'])}"] if p["leaks"] else []
        print(f"    - {p['style']} ({'; '.join(flags)}): {p['prompt']}")
    twins = [f"{'/'.join(p['styles'])} {p['distance']:.2f}" for p in e["pairs"] if not p["distinct"]]
    if twins:
        print(f"    twin pairs: {', '.join(twins)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", action="append", metavar="SLUG", help="a labelled show's folder name under tests/data/shows (repeatable; default: all)")
    parser.add_argument("--llm", default="offline", help="the language model, as the CLI's --llm: offline (default), openai or transformers")
    parser.add_argument("--json", action="store_true", help="print the whole measurement as JSON (every episode's prompts included)")
    parser.add_argument("--verbose", action="store_true", help="also print each episode's prompts and the labels they miss")
    args = parser.parse_args(argv)

    from assistant.errors import KeyartError
    from assistant.models import is_offline, label
    from assistant.workflows.settings import Settings

    try:
        dirs = show_dirs(args.show)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        model = Settings.from_env(llm=args.llm).language_model()
        shows = []
        for show_dir in dirs:
            # A language model takes seconds an episode: say which one is in hand.
            each = None if is_offline(model) else lambda c, slug=show_dir.name: print(f"  {slug} {c}", file=sys.stderr, flush=True)
            print(f"measuring {show_dir.name} ...", file=sys.stderr, flush=True)
            shows.append(measure(show_dir, model, progress=each))
    except KeyartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    totals = summarize([e for show in shows for e in show["episodes"]])
    failures = verdict(totals)

    if args.json:
        out = {"model": label(model), "targets": {**TARGETS, "distinct_below": DISTINCT_BELOW}, "shows": shows, "totals": totals}
        print(json.dumps({**out, "pass": not failures, "failures": failures}, ensure_ascii=False, indent=1))
    else:
        print_report(shows, totals, failures, model=label(model), verbose=args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
