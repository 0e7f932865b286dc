"""Prompt search: `dataprep.py search` over a catalog the offline rules and preview cards built, with
a planted summary that must rank first, an index that follows the catalog, and bad queries refused."""

import csv
import json
import shutil
from pathlib import Path

import pytest

import dataprep
from assistant.search import search
from assistant.store import Store

ROOT = Path(__file__).resolve().parents[1]
PLANTED = "zeppelin"  # a word the sample show never uses


@pytest.fixture(scope="module")
def show(tmp_path_factory):
    """The sample show with one summary that mentions a zeppelin, built into a catalog (season 1, two styles)."""
    folder = tmp_path_factory.mktemp("show")
    shutil.copy(ROOT / "data" / "sample_show" / "seasons.csv", folder / "seasons.csv")
    with open(ROOT / "data" / "sample_show" / "episodes.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if (row["season"], row["episode"]) == ("1", "5"):
            row["summary"] += f" Above the harbour a silver {PLANTED} drifts in the fog."
    with open(folder / "episodes.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    home = folder / "home"
    argv = ["run", "--input", str(folder / "episodes.csv"), "--home", str(home), "--season", "1", "--styles", "anime,watercolor", "--engine", "preview"]
    assert dataprep.main([*argv, "--width", "64", "--height", "64"]) == 0
    return folder, home, argv


def test_a_planted_summary_ranks_its_episode_first(show):
    _, home, _ = show
    hits = search(Store(home, create=False), PLANTED)
    assert hits and {(h.season, h.episode) for h in hits} == {(1, 5)}  # every word is required
    assert {h.style for h in hits} == {"anime", "watercolor"} and f"[{PLANTED}]" in hits[0].snippet
    # Among many matches, the episode whose summary (and so its prompt) names both words comes first.
    ranked = search(Store(home, create=False), f"silver {PLANTED} harbour")
    assert (ranked[0].season, ranked[0].episode) == (1, 5)
    # Prefixes match, and the title weighs most: the episode titled "The Keeper's Lamp" leads "keep lamp".
    titled = search(Store(home, create=False), "keep lamp")
    assert titled[0].title == "The Keeper's Lamp"


def test_the_cli_prints_ranked_art_with_its_image_and_filters(show, capsys):
    _, home, _ = show
    assert dataprep.main(["search", PLANTED, "--home", str(home), "--style", "watercolor", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    [hit] = found["hits"]
    assert (hit["season"], hit["episode"], hit["style"]) == (1, 5, "watercolor") and Path(hit["image"]).is_file()
    assert dataprep.main(["search", "lighthouse", "--home", str(home), "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("Gullhaven S01") == 3 and ".png" in out
    assert dataprep.main(["search", "nothingatall", "--home", str(home)]) == 0
    assert "matches 'nothingatall'" in capsys.readouterr().out


def test_the_index_follows_the_catalog(show):
    folder, home, argv = show
    # A changed summary: the next run plans it, and search finds the new word, not the old one.
    episodes = (folder / "episodes.csv").read_text(encoding="utf-8").replace(PLANTED, "airship")
    (folder / "episodes.csv").write_text(episodes, encoding="utf-8")
    assert dataprep.main([*argv, "--width", "64", "--height", "64"]) in (0, 1)
    store = Store(home, create=False)
    assert [(h.season, h.episode) for h in search(store, "airship")][:1] == [(1, 5)]
    assert search(store, PLANTED) == []


@pytest.mark.parametrize("query", ['"*', "  ", "***", "-"])
def test_a_query_without_words_is_exit_2(show, capsys, query):
    _, home, _ = show
    assert dataprep.main(["search", query, "--home", str(home)]) == 2
    assert "nothing to search for" in capsys.readouterr().err


def test_fts_syntax_in_a_query_is_plain_words(show):
    _, home, _ = show
    # Quotes, NEAR, OR and a column filter are words here, never FTS5's syntax (no error, no injection).
    assert search(Store(home, create=False), 'storm" OR title:lamp NEAR(x') == []
    assert search(Store(home, create=False), 'lamp" "keeper')[0].title == "The Keeper's Lamp"


def test_no_catalog_or_a_bad_limit_is_exit_2_and_creates_nothing(show, tmp_path, capsys):
    home = tmp_path / "none"
    assert dataprep.main(["search", "storm", "--home", str(home)]) == 2
    assert "no catalog" in capsys.readouterr().err and not home.exists()
    assert dataprep.main(["search", "storm", "--home", str(show[1]), "--limit", "0"]) == 2
    assert "--limit must be between 1 and 200" in capsys.readouterr().err


def test_an_unchanged_catalog_is_not_indexed_again(show):
    import time

    from assistant.search import refresh

    _, home, _ = show
    store = Store(home, create=False)
    refresh(store)
    time.sleep(1.1)  # changes are stamped to the second: a build in a later second is fresh
    refresh(store)
    assert refresh(store) is False
    store.set_entry("Gullhaven", 1, 5, "anime", title="The Zeppelin Night")
    assert refresh(store) is True and search(store, "zeppelin night")[0].style == "anime"
