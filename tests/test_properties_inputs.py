"""Property tests for the files and words users bring: catalog files (CSV, JSON, Parquet, any bytes),
--map, --episodes and --styles, and campaign briefs: each parses or raises keyart's own error.

The profile, strategies and rules they share are in tests/properties.py.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import hypothesis  # a test dependency (pyproject's test extra): missing, the suite fails rather than skips
from hypothesis import example, given
from hypothesis import strategies as st
from tests.properties import allowed, fresh, json_text, json_values, loose, number_words, props


# -- catalog files ------------------------------------------------------------------------------

COLUMN_NAMES = st.one_of(st.sampled_from(["season", "episode", "summary", "title", "show", "Season", " EPISODE ", "plot", "number"]), st.text(max_size=6))
cells = st.one_of(
    st.text(max_size=20),
    st.integers().map(str),
    st.integers(-2, 100_002).map(str),
    number_words,
    st.floats().map(str),
    st.sampled_from(["", "1", "2", "3.0", "007", "1e5", "NaN", "True", "Gullhaven", "A storm comes.", "{braces}"]),
)
catalog_mappings = st.one_of(st.none(), st.dictionaries(st.sampled_from(["summary", "season", "episode", "title", "show", "plot"]), COLUMN_NAMES, max_size=2))


@st.composite
def table(draw):
    columns = draw(st.lists(COLUMN_NAMES, max_size=6))
    if draw(st.booleans()):
        columns = ["season", "episode", "summary", *columns]
    rows = draw(st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns)), max_size=6))
    return columns, rows


def check_catalog(path: Path, mapping, seasons=None) -> None:
    from assistant.catalog import load_catalog
    from assistant.schemas import MAX_NUMBER

    found = allowed(lambda: load_catalog(path, mapping=mapping, seasons=seasons))
    if found is not None:
        assert found.episodes and all(0 <= e.season <= MAX_NUMBER and 1 <= e.episode <= MAX_NUMBER and e.summary for e in found.episodes)


def csv_bytes(columns, rows, encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode(encoding, "replace")


@props(80)
@given(table(), st.one_of(st.none(), table()), catalog_mappings, st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
def test_catalog_csv(workdir, episodes, seasons, mapping, encoding):
    folder = fresh(workdir)
    (folder / "episodes.csv").write_bytes(csv_bytes(*episodes, encoding))
    if seasons is not None:
        (folder / "seasons.csv").write_bytes(csv_bytes(*seasons, "utf-8"))
    check_catalog(folder / "episodes.csv", mapping)


json_cells = st.one_of(json_values, cells, st.integers(-2, 100_002))
json_rows = st.one_of(
    st.dictionaries(COLUMN_NAMES, json_cells, max_size=6),
    st.fixed_dictionaries({"season": json_cells, "episode": json_cells, "summary": json_cells}, optional={"title": json_cells, "show": json_cells}),
    json_values,  # a row that is not an object
)


@props(80)
@example(rows=[{}, None], suffix=".json", mapping=None, with_seasons=False)
@example(rows=[{"": ""}, {"season": "0", "episode": "1", "summary": "0"}], suffix=".json", mapping=None, with_seasons=True)
@given(st.one_of(st.lists(json_rows, max_size=5), json_values), st.sampled_from([".json", ".jsonl"]), catalog_mappings, st.booleans())
def test_catalog_json(workdir, rows, suffix, mapping, with_seasons):
    folder = fresh(workdir)
    if suffix == ".jsonl":
        text = "\n".join(json.dumps(row) for row in rows) if isinstance(rows, list) else json.dumps(rows)
    else:
        text = json.dumps(rows)
    (folder / f"episodes{suffix}").write_text(text, encoding="utf-8")
    seasons = None
    if with_seasons:
        seasons = folder / f"other{suffix}"
        seasons.write_text(text, encoding="utf-8")
    check_catalog(folder / f"episodes{suffix}", mapping, seasons)


@props(60)
@example(suffix=".json", data=b"[{},null]")
@example(suffix=".json", data=b"[[],true]")
@given(st.sampled_from([".csv", ".json", ".jsonl", ".parquet", ".txt", ""]), st.one_of(st.binary(max_size=80), json_text.map(str.encode)))
def test_catalog_any_bytes(workdir, suffix, data):
    path = fresh(workdir) / f"episodes{suffix}"
    path.write_bytes(data)
    check_catalog(path, None)


parquet_columns = st.dictionaries(
    COLUMN_NAMES.filter(bool),
    st.sampled_from(["text", "int", "float", "list", "none"]),
    min_size=1,
    max_size=5,
)
PARQUET_CELLS = {
    "text": st.one_of(st.none(), st.text(max_size=10), cells),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(),
    "list": st.lists(st.integers(-5, 5), max_size=3),
    "none": st.none(),
}


@st.composite
def parquet_tables(draw) -> dict:
    """{column: (kind, cells)}: each column of one kind (text, whole numbers, floats, lists, nulls), as Parquet keeps them."""
    kinds = draw(parquet_columns)
    if draw(st.booleans()):
        kinds = {"season": "text", "episode": "text", "summary": "text"} | kinds
    count = draw(st.integers(0, 4))
    return {name: (kind, [draw(PARQUET_CELLS[kind]) for _ in range(count)]) for name, kind in kinds.items()}


@props(40)
@example(columns={"season": ("list", [[]])})
@given(parquet_tables())
def test_catalog_parquet(workdir, columns):
    import pandas as pd

    dtypes = {"int": "Int64", "float": "float64"}
    frame = pd.DataFrame({name: pd.Series(cells, dtype=dtypes.get(kind, object)) for name, (kind, cells) in columns.items()})
    path = fresh(workdir) / "episodes.parquet"
    try:
        frame.to_parquet(path)
    except Exception:  # a frame pyarrow cannot write is no catalog file
        hypothesis.assume(False)
    check_catalog(path, None)


mapping_items = st.lists(st.one_of(st.builds(lambda f, c: f"{f}={c}", st.sampled_from(["summary", "Season", " title ", "show", "plot", ""]), COLUMN_NAMES), st.text(max_size=12)), max_size=4)


@props(100)
@given(mapping_items)
def test_parse_mapping(items):
    from assistant.catalog import FIELDS, parse_mapping

    mapping = allowed(lambda: parse_mapping(items))
    if mapping is not None:
        assert set(mapping) <= set(FIELDS) and all(mapping.values())
        assert parse_mapping([f"{k}={v}" for k, v in mapping.items()]) == mapping  # round trip


# -- --episodes and --styles --------------------------------------------------------------------

episode_part = st.one_of(
    st.integers(0, 10**13).map(str),
    st.builds(lambda a, b, gap: f"{a}{gap}-{gap}{b}", st.integers(0, 100_002), st.integers(0, 100_002), st.sampled_from(["", " "])),
    st.sampled_from(["", " ", "-", "1-", "-1", "a", "1.5", "١", "1--2", "99999-100000"]),
)
episodes_text = st.one_of(st.lists(episode_part, min_size=1, max_size=5).map(",".join), st.text(max_size=20))


@props(100)
@given(episodes_text)
def test_parse_episodes(text):
    from assistant.workflows.plan import MAX_EPISODE, parse_episodes

    numbers = allowed(lambda: parse_episodes(text))
    if numbers is not None:
        assert numbers and len(set(numbers)) == len(numbers) and all(1 <= n <= MAX_EPISODE for n in numbers)
        assert parse_episodes(",".join(map(str, numbers))) == numbers  # round trip


@props(100)
@given(st.one_of(st.none(), st.text(max_size=30), st.lists(st.sampled_from(["anime", " watercolor", ",", "", "  ", "anime"])).map(",".join)))
def test_parse_styles(text):
    from assistant.workflows.plan import parse_styles

    names = allowed(lambda: parse_styles(text))
    if names is not None:
        assert names and all(n == n.strip() and n and "," not in n for n in names)
        assert parse_styles(",".join(names)) == names  # round trip


# -- campaign briefs ----------------------------------------------------------------------------

BRIEF_VALUES = {
    "show": st.text(max_size=10),
    "season": st.one_of(st.integers(-2, 10**30), number_words),
    "episode": st.one_of(st.none(), st.integers(-2, 10**6)),
    "goal": st.text(max_size=10),
    "audience": st.text(max_size=10),
    "tone": st.text(max_size=10),
    "platforms": st.one_of(st.lists(st.sampled_from(["instagram", "x", "Twitter", "tiktok", "myspace", ""]), max_size=3), st.sampled_from(["x, tiktok", "", ","])),
    "call_to_action": st.text(max_size=12),
    "use_words": st.one_of(st.lists(st.text(max_size=6), max_size=3), st.text(max_size=10)),
    "avoid_words": st.one_of(st.lists(st.text(max_size=6), max_size=3), st.text(max_size=10)),
    "style": st.sampled_from(["cinematic", "anime", "Watercolor", "nope", ""]),
}
brief_data = st.fixed_dictionaries({}, optional={key: loose(value) for key, value in BRIEF_VALUES.items()} | {"unknown": json_values})
yaml_keys = st.one_of(st.sampled_from(["season", "show", "1", "null", "true", "[a]", "? x"]), st.text(max_size=5))
yaml_like = st.lists(st.tuples(yaml_keys, st.one_of(st.text(max_size=10), st.sampled_from(["", "[", "{", "&a [*a]", "*b", "!!python/object:os.system", "- a", "1e999", "2020-01-01", "~", "| \n  x"]))), max_size=4).map(
    lambda pairs: "\n".join(f"{k}: {v}" for k, v in pairs)
)


def brief_texts():
    import yaml

    return st.one_of(
        brief_data.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        brief_data.map(json.dumps),
        yaml_like,
        st.text(max_size=60),
        st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
    )


@props(100)
@example(text="0:", encoding="utf-8")
@example(text="::\n0:", encoding="utf-8")
@example(text=json.dumps({"call_to_action": "\U00010000", "avoid_words": "\U00010000"}), encoding="utf-8")  # JSON's surrogate-pair escapes
@given(brief_texts(), st.sampled_from(["utf-8", "latin-1"]))
def test_load_brief(workdir, text, encoding):
    from assistant.workflows.campaign_state import Brief, load_brief

    path = fresh(workdir) / "brief.yaml"
    path.write_bytes(text.encode(encoding, "replace"))
    brief = allowed(lambda: load_brief(path))
    assert brief is None or isinstance(brief, Brief)


@props(100)
@example(data={None: None})
@example(data={0: None, None: None})
@given(st.one_of(brief_data, st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.text(max_size=4)), json_values, max_size=3)))
def test_brief_from(data):
    from assistant.workflows.campaign_state import brief_from

    brief = allowed(lambda: brief_from(data))
    if brief is not None:
        assert brief_from(brief.model_dump()) == brief  # round trip
