"""The catalog in: bad rows reported and skipped, column mapping, four formats, seasons files, written season summaries."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from assistant.catalog import SAMPLE, Catalog, RowProblem, load_catalog, parse_mapping
from assistant.errors import CatalogError
from assistant.models.offline import OfflineModel
from assistant.prompting.season_summary import SEASON_SUMMARY, clean_summary, write_season_summary
from assistant.prompting.self_ask import season_prompts
from assistant.schemas import Season, StyleSpec
from fake_openai import FakeOpenAI, reply, reply_json


def chat():
    """The openai model as an entry point configures it: from the environment the fixture set."""
    from assistant.workflows.settings import Settings

    return Settings.from_env().language_model("openai")


HEADER = "show,season,episode,title,summary\n"
GOOD = 'Harbour,1,1,Pilot,"Mara Quill lights the lamp at Gullhaven Lighthouse."\nHarbour,1,2,Second,"Wren Abernethy dives the wreck off Corran Island."\n'
STYLES = [StyleSpec(name="cinematic", description="film still")]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def episodes_csv(tmp_path, bad_rows="", good=GOOD):
    return write(tmp_path / "episodes.csv", HEADER + good + bad_rows)


# -- bad rows are reported and skipped -----------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ('Harbour,1,3,Blank,""\n', "summary", "is empty; every episode needs a summary"),
        ('Harbour,1,three,Words,"Mara rows out."\n', "episode", "must be a whole number such as 1 or 12 (got 'three')"),
        ('Harbour,1,-3,Minus,"Mara rows out."\n', "episode", "cannot be negative (got '-3')"),
        ('Harbour,1.5,3,Half,"Mara rows out."\n', "season", "must be a whole number such as 1 or 12 (got '1.5')"),
        ('Harbour,,3,NoSeason,"Mara rows out."\n', "season", "is empty; give the season number"),
        ('Other Show,1,3,Elsewhere,"Mara rows out."\n', "show", "names the show 'Other Show', but this catalog is 'Harbour'"),
    ],
)
def test_a_bad_row_is_reported_with_file_row_and_field_and_skipped(tmp_path, row, field, message):
    path = episodes_csv(tmp_path, bad_rows=row)
    catalog = load_catalog(path)
    assert [(e.season, e.episode) for e in catalog.episodes] == [(1, 1), (1, 2)]
    [problem] = catalog.problems
    assert (problem.path, problem.row, problem.field) == (path, 3, field)
    assert message in problem.message
    assert str(problem) == f"{path}, row 3, field {field!r}: {problem.message}"


def test_every_problem_of_a_row_is_listed_in_column_order(tmp_path):
    catalog = load_catalog(episodes_csv(tmp_path, bad_rows="Other,x,-1,Bad,\n"))
    assert [(p.row, p.field) for p in catalog.problems] == [(3, "show"), (3, "season"), (3, "episode"), (3, "summary")]
    assert len(catalog.episodes) == 2


def test_a_duplicate_episode_keeps_the_first_row_and_reports_the_later(tmp_path):
    path = episodes_csv(tmp_path, bad_rows='Harbour,1,1,Again,"A second pilot."\nHarbour,1.0,02,Again,"A second second."\n')
    catalog = load_catalog(path)
    assert [e.title for e in catalog.episodes] == ["Pilot", "Second"]
    assert [str(p) for p in catalog.problems] == [
        f"{path}, row 3, field 'episode': season 1 episode 1 appears twice (first at row 1); keep one row per episode",
        f"{path}, row 4, field 'episode': season 1 episode 2 appears twice (first at row 2); keep one row per episode",
    ]


def test_rows_without_a_show_take_the_catalogs_show(tmp_path):
    catalog = load_catalog(episodes_csv(tmp_path, bad_rows=',1,3,Third,"Mara rows out."\n'))
    assert catalog.problems == [] and {e.show for e in catalog.episodes} == {"Harbour"}
    (tmp_path / "my_show").mkdir()
    unnamed = load_catalog(write(tmp_path / "my_show" / "episodes.csv", HEADER + ',1,1,,"Mara rows out."\n'))
    assert unnamed.show == "my_show" and unnamed.episodes[0].show == "my_show"


def test_no_usable_row_is_an_error_that_counts_and_shows_the_skipped_rows(tmp_path):
    path = write(tmp_path / "episodes.csv", HEADER + "".join(f"Harbour,1,{n},T,\n" for n in range(1, 6)))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no usable episode rows; all 5 row(s) were skipped: ")
    assert "row 1, field 'summary': is empty" in message and "row 3" in message and "row 4" not in message
    assert message.count(str(path)) == 1  # the file named once: the line stays short
    assert message.endswith("; ...")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("episodes.csv", HEADER, "no episodes; the file needs one row per episode"),
        ("episodes.csv", 'show,season,title\nHarbour,1,"x"\n', "missing column(s) episode, summary; found show, season, title"),
        ("episodes.txt", HEADER + GOOD, "unknown catalog format '.txt'"),
        ("episodes.json", "[{not json", "cannot be read as JSON"),
    ],
)
def test_file_level_problems_still_raise(tmp_path, name, text, message):
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_catalog(write(tmp_path / name, text))


def test_a_missing_file_is_an_error():
    with pytest.raises(CatalogError, match="no such catalog file"):
        load_catalog("nowhere/episodes.csv")


# -- seasons files -------------------------------------------------------------------------------


def test_bad_season_rows_are_reported_and_skipped(tmp_path):
    episodes_csv(tmp_path)
    seasons = write(tmp_path / "seasons.csv", 'show,season,title,summary\nHarbour,1,One,"The lamp fails."\nHarbour,1,Again,"Twice."\nHarbour,two,Two,""\nElsewhere,3,Three,""\n')
    catalog = load_catalog(tmp_path / "episodes.csv")
    assert [(s.season, s.title) for s in catalog.seasons] == [(1, "One")]
    assert [(p.path, p.row, p.field) for p in catalog.problems] == [(seasons, 2, "season"), (seasons, 3, "season"), (seasons, 4, "show")]
    assert "season 1 appears twice (first at row 1)" in catalog.problems[0].message


def test_an_explicit_seasons_file_is_read_whatever_its_name_and_format(tmp_path):
    path = episodes_csv(tmp_path)
    write(tmp_path / "seasons.csv", 'season,summary\n1,"The sibling file, not read."\n')
    explicit = tmp_path / "elsewhere" / "arcs.json"
    explicit.parent.mkdir()
    explicit.write_text(json.dumps([{"Season": 1, "Title": "The Lamp", "Summary": "Mara keeps the light."}]), encoding="utf-8")
    catalog = load_catalog(path, seasons=explicit)
    assert catalog.season(1) == Season(show="Harbour", season=1, title="The Lamp", summary="Mara keeps the light.")
    with pytest.raises(CatalogError, match="no such catalog file"):
        load_catalog(path, seasons=tmp_path / "missing.csv")


def test_without_a_seasons_file_a_season_has_an_empty_summary(tmp_path):
    catalog = load_catalog(episodes_csv(tmp_path))
    assert catalog.seasons == [] and catalog.season(1) == Season(show="Harbour", season=1, summary="")


# -- column mapping ------------------------------------------------------------------------------

MAPPED = 'Series,Number_In_Season,Season,Name,Plot,summary\nHarbour,1,1,Pilot,"Mara Quill lights the lamp.",ignored\nHarbour,2,1,Second,"Wren dives.",ignored\n'


def test_mapping_reads_keyart_fields_from_other_columns_case_insensitively(tmp_path):
    path = write(tmp_path / "episodes.csv", MAPPED)
    write(tmp_path / "seasons.csv", 'season,name,plot\n1,The Lamp,"Mara keeps the light."\n')
    mapping = parse_mapping(["summary=plot", "episode=number_in_season", "TITLE = name", "show=SERIES"])
    assert mapping == {"summary": "plot", "episode": "number_in_season", "title": "name", "show": "SERIES"}
    catalog = load_catalog(path, mapping=mapping)
    assert [(e.show, e.episode, e.title, e.summary) for e in catalog.episodes] == [
        ("Harbour", 1, "Pilot", "Mara Quill lights the lamp."),
        ("Harbour", 2, "Second", "Wren dives."),
    ]
    # The seasons file has `plot` and `name` but no `series` or `number_in_season`: mapped where it can be.
    assert catalog.season(1) == Season(show="Harbour", season=1, title="The Lamp", summary="Mara keeps the light.")
    assert catalog.problems == []


def test_mapping_an_unknown_field_lists_the_fields_and_the_files_columns(tmp_path):
    path = write(tmp_path / "episodes.csv", MAPPED)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, mapping={"plot": "summary"})
    message = str(caught.value)
    assert "unknown catalog field(s) 'plot'" in message and "show, season, episode, title, summary" in message
    assert "the file's columns are series, number_in_season, season, name, plot, summary" in message
    with pytest.raises(CatalogError, match="unknown catalog field"):
        parse_mapping(["plot=summary"])


def test_mapping_to_a_missing_column_lists_the_files_columns(tmp_path):
    path = write(tmp_path / "episodes.csv", MAPPED)
    with pytest.raises(CatalogError, match=r"has no column for the mapping summary=synopsis; its columns are series, number_in_season, season, name, plot, summary"):
        load_catalog(path, mapping={"summary": "synopsis"})


def test_a_required_column_missing_suggests_a_mapping(tmp_path):
    path = write(tmp_path / "episodes.csv", 'season,episode,plot\n1,1,"Mara."\n')
    with pytest.raises(CatalogError, match="missing column.s. summary; found season, episode, plot .*map it, e.g. summary=plot"):
        load_catalog(path)


@pytest.mark.parametrize("item", ["summary", "summary=", "=plot", "  "])
def test_a_malformed_mapping_item_says_what_is_expected(item):
    with pytest.raises(CatalogError, match="expected FIELD=COLUMN, e.g. summary=plot"):
        parse_mapping([item])


def test_a_field_mapped_twice_is_an_error():
    with pytest.raises(CatalogError, match="mapped twice"):
        parse_mapping(["summary=plot", "summary=synopsis"])


# -- formats -------------------------------------------------------------------------------------


def test_all_four_formats_give_equal_catalogs(tmp_path):
    episodes = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    seasons = pd.read_csv(SAMPLE.with_name("seasons.csv"), dtype=str, keep_default_na=False)
    typed = episodes.astype({"season": int, "episode": int})  # numbers as numbers, as JSON and Parquet keep them
    catalogs: dict[str, Catalog] = {".csv": load_catalog()}
    for suffix, save in {
        ".json": lambda frame, path: frame.to_json(path, orient="records", force_ascii=False),
        ".jsonl": lambda frame, path: frame.to_json(path, orient="records", lines=True, force_ascii=False),
        ".parquet": lambda frame, path: frame.to_parquet(path, index=False),
    }.items():
        folder = tmp_path / suffix[1:]
        folder.mkdir()
        save(typed, folder / f"episodes{suffix}")
        save(seasons.astype({"season": int}), folder / f"seasons{suffix}")
        catalogs[suffix] = load_catalog(folder / f"episodes{suffix}")
    reference = catalogs[".csv"]
    assert len(reference.episodes) == 14 and len(reference.seasons) == 2
    for suffix, catalog in catalogs.items():
        assert (catalog.show, catalog.episodes, catalog.seasons, catalog.problems) == (reference.show, reference.episodes, reference.seasons, []), suffix


def test_json_numbers_and_nulls_are_checked_like_text(tmp_path):
    rows = [
        {"season": 1, "episode": 1, "summary": "Mara lights the lamp."},
        {"season": 1, "episode": 2.5, "summary": "Half an episode."},
        {"season": 1, "episode": 3, "summary": None},
    ]
    path = tmp_path / "episodes.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    catalog = load_catalog(path)
    assert [e.episode for e in catalog.episodes] == [1]
    assert [(p.row, p.field) for p in catalog.problems] == [(2, "episode"), (3, "summary")]


# -- the command line ----------------------------------------------------------------------------


def test_cli_warns_about_skipped_rows_and_passes_map_and_seasons(tmp_path):
    path = write(tmp_path / "shows.csv", 'season,episode,plot\n1,1,"Mara Quill lights the lamp at Gullhaven Lighthouse."\n1,1,"Again."\n')
    seasons = write(tmp_path / "arcs.csv", 'season,plot\n1,"Mara Quill keeps the Gullhaven Lighthouse burning through the gales."\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    args = ["season", "1", "--input", str(path), "--map", "summary=plot", "--seasons", str(seasons), "--styles", "anime", "--json"]
    done = subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"warning: {path}, row 2, field 'episode': season 1 episode 1 appears twice (first at row 1); keep one row per episode"]
    result = json.loads(done.stdout)
    assert result["summary"].startswith("Mara Quill keeps") and result["summary_written"] is False


def test_cli_prints_a_written_summary_and_rejects_a_malformed_map(tmp_path):
    path = write(tmp_path / "episodes.csv", HEADER + GOOD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    run = [sys.executable, "-m", "assistant", "season", "1", "--input", str(path), "--styles", "anime"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "season summary (written, the catalog has none): In the first of its 2 episodes" in done.stdout
    assert "warning: the catalog has no summary for season 1; offline wrote one from its 2 episodes" in done.stdout
    done = subprocess.run([*run, "--map", "summary"], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 2 and "expected FIELD=COLUMN, e.g. summary=plot" in done.stderr and "Traceback" not in done.stderr


# -- season summaries written when the catalog has none ------------------------------------------


def test_offline_writes_a_deterministic_summary_naming_the_seasons_people_and_places():
    catalog = load_catalog()
    episodes = catalog.episodes_of(2)
    season = Season(show=catalog.show, season=2)
    result = season_prompts(season, episodes, STYLES, OfflineModel())
    assert result.summary_written and result.summary == season_prompts(season, episodes, STYLES, OfflineModel()).summary
    assert result.trace.warnings[0] == "the catalog has no summary for season 2; offline wrote one from its 7 episodes"
    for name in ("Mara Quill", "Cressida Harrow", "Drowned Chapel", "Saltmarrow Cannery"):
        assert name in result.summary, name
    from assistant.models.offline_rules import sentences

    assert 2 <= len(sentences(result.summary)) <= 4 and "\n" not in result.summary
    # Self-ask read the written summary: the arc answer is its first sentence.
    assert result.follow_ups[0].answer == result.summary[: result.summary.index(". ") + 1]


def test_a_catalog_summary_is_kept_and_not_rewritten():
    catalog = load_catalog()
    result = season_prompts(catalog.season(1), catalog.episodes_of(1), STYLES, OfflineModel())
    assert result.summary == catalog.season(1).summary and not result.summary_written
    assert not any("no summary" in w for w in result.trace.warnings)


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("KEYART_LLM_MODEL", "fake-writer")
        yield fake


SELF_ASK = "Follow up: Who?\nIntermediate answer: Mara Quill.\nSo the final answer is: Mara Quill at the lamp in a storm."
PROMPTS = {"brief": {"subject": "Mara Quill"}, "prompts": [{"style": "cinematic", "prompt": "Mara Quill at the lamp, storm", "negative_prompt": "text"}]}
WRITTEN = "Summary: Season 2 of Gullhaven follows Mara Quill as the Drowned Chapel rises from the sands.\n\nCressida Harrow fights her for what the sea gives back."


def test_a_chat_model_writes_the_summary_from_the_episodes_as_json(server):
    catalog = load_catalog()
    episodes = catalog.episodes_of(2)
    server.script(reply(WRITTEN), reply(SELF_ASK), reply_json(PROMPTS))
    result = season_prompts(Season(show="Gullhaven", season=2, title="{title}"), episodes, STYLES, chat())
    assert result.summary_written and result.trace.fallback is None
    assert result.summary == (
        "Season 2 of Gullhaven follows Mara Quill as the Drowned Chapel rises from the sands. Cressida Harrow fights her for what the sea gives back."
    )
    assert result.trace.warnings[0] == "the catalog has no summary for season 2; openai:fake-writer wrote one from its 7 episodes"
    first, second, _ = [r.body for r in server.chat_requests]
    system, user = first["messages"]
    assert system["content"] == SEASON_SUMMARY and "response_format" not in first
    data = json.loads(user["content"].split("Season (JSON):\n", 1)[1])
    assert data["title"] == "{title}" and [e["summary"] for e in data["episodes"]] == [e.summary for e in episodes]
    # Self-ask then reads the written summary.
    assert json.loads(second["messages"][1]["content"].split("Season (JSON):\n", 1)[1].split("\n\nQuestion:")[0])["summary"] == result.summary


def test_an_empty_reply_falls_back_to_the_offline_summary_and_says_so(server):
    catalog = load_catalog()
    episodes = catalog.episodes_of(2)
    season = Season(show="Gullhaven", season=2)
    server.script(reply("  \n "), reply(SELF_ASK), reply_json(PROMPTS))
    result = season_prompts(season, episodes, STYLES, chat())
    assert result.summary_written and result.summary == OfflineModel().season_summary(season, episodes)
    assert result.trace.warnings[0] == (
        "the catalog has no summary for season 2; openai:fake-writer's reply was empty, so offline wrote one from its 7 episodes"
    )
    assert result.trace.fallback is None and len(result.trace.replies) == 3


def test_write_season_summary_alone_traces_its_request(server):
    from assistant.models import new_trace

    server.script(reply("I'm sorry, I can't help with that."))
    trace = new_trace(chat(), "self-ask")
    summary = write_season_summary(Season(show="Gullhaven", season=1), load_catalog().episodes_of(1), chat(), trace)
    assert "Mara Quill" in summary and "a refusal" in trace.warnings[0]
    assert len(trace.messages) == 1 and trace.replies == ["I'm sorry, I can't help with that."]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("```\n**Season 2 summary:** Mara Quill keeps the lamp lit while the town turns on her.\n```", "Mara Quill keeps the lamp lit while the town turns on her."),
        ('"Here is the summary: Mara Quill keeps the lamp lit while the town turns on her."', "Mara Quill keeps the lamp lit while the town turns on her."),
        ('{"summary": "Mara Quill keeps the lamp lit while the town turns on her."}', "Mara Quill keeps the lamp lit while the town turns on her."),
        ("# Season 2\nMara Quill keeps the lamp lit\nwhile the town turns on her.", "Mara Quill keeps the lamp lit while the town turns on her."),
    ],
)
def test_clean_summary_gives_one_plain_paragraph(raw, expected):
    assert clean_summary(raw) == (expected, "")


def test_clean_summary_rejects_fragments():
    assert clean_summary("Season two.")[1].startswith("too short")
    assert clean_summary("")[1] == "empty"


def test_row_problem_is_frozen(tmp_path):
    problem = RowProblem(tmp_path / "e.csv", 2, "summary", "is empty")
    with pytest.raises(AttributeError):
        problem.row = 3
    assert str(problem) == f"{tmp_path / 'e.csv'}, row 2, field 'summary': is empty"
