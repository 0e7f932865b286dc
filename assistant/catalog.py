"""A show's catalog: episode (and optional season) summaries read from CSV, JSON, JSONL or Parquet.

`load_catalog(path)` reads the episodes file and a seasons file (explicit, or a sibling `seasons.<suffix>`).
A bad row is skipped and reported in `Catalog.problems` (file, 1-based data row, field); a file that
cannot be used at all is a `CatalogError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .schemas import MAX_NUMBER, Episode, Season

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_show" / "episodes.csv"

SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
FIELDS = ("show", "season", "episode", "title", "summary")  # keyart's names, which `mapping` maps to columns
EPISODE_COLUMNS = ("season", "episode", "summary")  # required
EPISODE_OPTIONAL = ("show", "title")
SEASON_COLUMNS = ("season",)
SEASON_OPTIONAL = ("show", "title", "summary")
SHOWN_PROBLEMS = 3  # how many skipped rows a "no usable rows" error quotes


@dataclass(frozen=True)
class RowProblem:
    """One skipped row: where it is and what is wrong with which field."""

    path: Path
    row: int  # 1-based data row (the header is not counted)
    field: str  # keyart's field name
    message: str

    def __str__(self) -> str:
        return f"{self.path}, {self.where()}"

    def where(self) -> str:
        """The problem without its file: "row 2, field 'episode': ..." (a row that cannot be read at all names no field)."""
        return f"row {self.row}" + (f", field {self.field!r}" if self.field else "") + f": {self.message}"


@dataclass
class Catalog:
    """One show's episodes (sorted by season, episode), the season summaries it has, and the rows it skipped."""

    show: str
    episodes: list[Episode]
    seasons: list[Season] = field(default_factory=list)
    path: Path | None = None
    problems: list[RowProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.episodes = sorted(self.episodes, key=lambda e: (e.season, e.episode))
        self.seasons = sorted(self.seasons, key=lambda s: s.season)

    def season_numbers(self) -> list[int]:
        return sorted({e.season for e in self.episodes} | {s.season for s in self.seasons})

    def episode(self, season: int, episode: int) -> Episode:
        for e in self.episodes:
            if e.season == season and e.episode == episode:
                return e
        if any(e.season == season for e in self.episodes):
            raise CatalogError(f"{self.show} has no episode {episode} in season {season}; season {season} has {self._listing(season)}")
        raise CatalogError(f"{self.show} has no season {season}; {self._overview()}")

    def season(self, number: int) -> Season:
        """The season's summary row, or an empty-summary Season when only its episodes are known."""
        for s in self.seasons:
            if s.season == number:
                return s
        if any(e.season == number for e in self.episodes):
            return Season(show=self.show, season=number, summary="")
        raise CatalogError(f"{self.show} has no season {number}; {self._overview()}")

    def episodes_of(self, season: int) -> list[Episode]:
        found = [e for e in self.episodes if e.season == season]
        if not found:
            raise CatalogError(f"{self.show} has no episodes in season {season}; {self._overview()}")
        return found

    def _listing(self, season: int) -> str:
        numbers = [e.episode for e in self.episodes if e.season == season]
        return "episode " + str(numbers[0]) if len(numbers) == 1 else "episodes " + _ranges(numbers)

    def _overview(self) -> str:
        parts = [f"season {n} has {self._listing(n)}" for n in sorted({e.season for e in self.episodes})]
        return "; ".join(parts) if parts else "the catalog has no episodes"


def load_catalog(path: str | Path | None = None, *, mapping: dict[str, str] | None = None, seasons: str | Path | None = None) -> Catalog:
    """Read an episodes file (default: the sample show) and its seasons file, skipping bad rows.

    `mapping` names the source column of a keyart field ({"summary": "plot"}); `seasons` names the
    seasons file (default: `seasons.<suffix>` beside the episodes file, when there is one).
    """
    # 1. The episodes file, as text cells under keyart's field names.
    episodes_path = Path(path) if path is not None else SAMPLE
    columns, rows, unreadable = _read_rows(episodes_path)
    mapping = _check_fields(mapping or {}, columns, episodes_path)
    _check_mapped_columns(mapping, columns, episodes_path)
    sources = {f: mapping.get(f, f) for f in FIELDS}
    _require_columns(columns, episodes_path, EPISODE_COLUMNS, EPISODE_OPTIONAL, sources)
    rows = [None if row is None else {f: row.get(source.lower(), "") for f, source in sources.items()} for row in rows]
    # 2. One Episode per good row; bad rows (and rows that could not be read) become problems.
    named, episodes, problems = _load_episodes(rows, episodes_path)
    problems = sorted(unreadable + problems, key=lambda p: p.row)
    if not episodes:
        if not problems:
            raise CatalogError(f"{episodes_path}: no episodes; the file needs one row per episode with season, episode and summary")
        # The file is named once, up front: its rows' problems follow without it, so the line stays short.
        shown = "; ".join(p.where() for p in problems[:SHOWN_PROBLEMS]) + ("; ..." if len(problems) > SHOWN_PROBLEMS else "")
        skipped = len({p.row for p in problems})
        raise CatalogError(f"{episodes_path}: no usable episode rows; all {skipped} row(s) were skipped: {shown}")
    show = episodes[0].show
    # 3. Season summaries, from the named file or `seasons.<suffix>` beside the episodes.
    seasons_path = Path(seasons) if seasons is not None else episodes_path.with_name("seasons" + episodes_path.suffix.lower())
    found: list[Season] = []
    if seasons is not None or (seasons_path.is_file() and seasons_path.resolve() != episodes_path.resolve()):
        found, season_problems = _load_seasons(seasons_path, show, named, mapping)
        problems += season_problems
    return Catalog(show=show, episodes=episodes, seasons=found, path=episodes_path, problems=problems)


def parse_mapping(items: list[str]) -> dict[str, str]:
    """{"summary": "plot"} from ["summary=plot"]: keyart field to source column, as `--map` gives them."""
    mapping: dict[str, str] = {}
    for item in items:
        name, equals, column = item.partition("=")
        name, column = name.strip().lower(), column.strip()
        if not equals or not name or not column:
            raise CatalogError(f"cannot read the column mapping {item!r}: expected FIELD=COLUMN, e.g. summary=plot (fields: {', '.join(FIELDS)})")
        if name in mapping:
            raise CatalogError(f"the field {name!r} is mapped twice ({name}={mapping[name]} and {item!r}); map each field once")
        mapping[name] = column
    return _check_fields(mapping)


# -- rows ----------------------------------------------------------------------------------------


class _BadCell(Exception):
    """A cell that makes its row unusable; caught by the row loop and kept as a RowProblem."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field_name, self.message = field_name, message


def _load_episodes(rows: list[dict[str, str] | None], path: Path) -> tuple[bool, list[Episode], list[RowProblem]]:
    """(named, episodes, problems): the show is the first one a good row names (`named`), else the folder's name.

    A None row could not be read at all; its problem is already known, its number still counts."""
    problems: list[RowProblem] = []
    good: list[tuple[int, int, str, str]] = []
    seen: dict[tuple[int, int], int] = {}
    show = ""
    for number, row in enumerate(rows, start=1):
        if row is None:
            continue
        found = _cell_problems(row, path, number, show, ("season", "episode"))
        if not row["summary"]:
            found.append(RowProblem(path, number, "summary", "is empty; every episode needs a summary to draw its key art from"))
        if found:
            problems += found
            continue
        key = (_whole_number(row["season"], "season"), _whole_number(row["episode"], "episode"))
        if key in seen:
            message = f"season {key[0]} episode {key[1]} appears twice (first at row {seen[key]}); keep one row per episode"
            problems.append(RowProblem(path, number, "episode", message))
            continue
        seen[key] = number
        show = show or row["show"]
        good.append((*key, row["title"], row["summary"]))
    named = bool(show)
    show = show or path.resolve().parent.name
    return named, [Episode(show=show, season=s, episode=e, title=title, summary=summary) for s, e, title, summary in good], problems


def _load_seasons(path: Path, show: str, named: bool, mapping: dict[str, str]) -> tuple[list[Season], list[RowProblem]]:
    """The seasons file's rows as Seasons of `show`; another show's rows are problems when the episodes named theirs."""
    columns, rows, problems = _read_rows(path)
    # The mapping applies where the seasons file has the mapped column; elsewhere keyart's own name.
    sources = {f: mapping[f] if f in mapping and mapping[f] and mapping[f].lower() in columns else f for f in FIELDS}
    _require_columns(columns, path, SEASON_COLUMNS, SEASON_OPTIONAL, sources)
    seasons: list[Season] = []
    seen: dict[int, int] = {}
    for number, raw in enumerate(rows, start=1):
        if raw is None:
            continue
        row = {f: raw.get(source.lower(), "") for f, source in sources.items()}
        found = _cell_problems(row, path, number, show if named else "", ("season",))
        if found:
            problems += found
            continue
        season = _whole_number(row["season"], "season")
        if season in seen:
            problems.append(RowProblem(path, number, "season", f"season {season} appears twice (first at row {seen[season]}); keep one row per season"))
            continue
        seen[season] = number
        seasons.append(Season(show=show, season=season, title=row["title"], summary=row["summary"]))
    return seasons, sorted(problems, key=lambda p: p.row)


def _cell_problems(row: dict[str, str], path: Path, number: int, show: str, numbers: tuple[str, ...]) -> list[RowProblem]:
    """What is wrong with a row's show (another show than `show`) and number cells, in column order."""
    found: list[RowProblem] = []
    if show and row["show"] and row["show"].casefold() != show.casefold():
        message = f"names the show {row['show']!r}, but this catalog is {show!r}; keep one show per catalog file"
        found.append(RowProblem(path, number, "show", message))
    for name in numbers:
        try:
            _whole_number(row[name], name)
        except _BadCell as bad:
            found.append(RowProblem(path, number, bad.field_name, bad.message))
    return found


def _whole_number(text: str, field_name: str) -> int:
    """"3" and "3.0" are 3; "007" is 7; "3.5", "three", "", negatives, an episode 0 and numbers past
    MAX_NUMBER are a `_BadCell` (the row is skipped and reported, the others go on)."""
    if not text:
        raise _BadCell(field_name, f"is empty; give the {field_name} number, such as 1")
    cell = text.strip()
    try:
        value = int(cell) if len(cell) <= 32 else None  # int() first: float() rounds 17 digits and more
    except ValueError:
        value = None
    if value is None:
        try:
            number = float(cell[:64])
        except ValueError:
            raise _BadCell(field_name, f"must be a whole number such as 1 or 12 (got {text[:40]!r})") from None
        if not math.isfinite(number) or number != int(number):
            raise _BadCell(field_name, f"must be a whole number such as 1 or 12 (got {text[:40]!r})")
        value = int(number)
    if value < 0:
        raise _BadCell(field_name, f"cannot be negative (got {text!r}); number seasons from 0 (specials) or 1, episodes from 1")
    if field_name == "episode" and value == 0:
        raise _BadCell(field_name, "is 0; number episodes from 1 (0 is the season's own art in the catalog)")
    if value > MAX_NUMBER:
        raise _BadCell(field_name, f"is {text[:24]!r}, past {MAX_NUMBER}; no show has that many (a typo?)")
    return value


# -- columns -------------------------------------------------------------------------------------


def _check_fields(mapping: dict[str, str], columns: list[str] | None = None, path: Path | None = None) -> dict[str, str]:
    """The mapping with lower-case field names; an unknown field is a CatalogError (naming the file's columns when known)."""
    checked = {name.strip().lower(): column.strip() for name, column in mapping.items()}
    unknown = [name for name in checked if name not in FIELDS]
    if unknown:
        where = f"{path}: " if path is not None else ""
        found = f"; the file's columns are {', '.join(columns) or 'none'}" if columns is not None else ""
        raise CatalogError(
            f"{where}unknown catalog field(s) {', '.join(map(repr, unknown))} in the column mapping; "
            f"map one of {', '.join(FIELDS)} to a column, e.g. summary=plot{found}"
        )
    return checked


def _check_mapped_columns(mapping: dict[str, str], columns: list[str], path: Path) -> None:
    absent = [f"{name}={column}" for name, column in mapping.items() if column.lower() not in columns]
    if absent:
        raise CatalogError(f"{path}: has no column for the mapping {', '.join(absent)}; its columns are {', '.join(columns) or 'none'}")


def _require_columns(present: list[str], path: Path, required: tuple[str, ...], optional: tuple[str, ...], sources: dict[str, str]) -> None:
    missing = [f if sources[f] == f else f"{f} (mapped to {sources[f]})" for f in required if sources[f].lower() not in present]
    if missing:
        raise CatalogError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(present) or 'none'} "
            f"(required: {', '.join(required)}; optional: {', '.join(optional)}; "
            "to use a column under another name, map it, e.g. summary=plot)"
        )


# -- files ---------------------------------------------------------------------------------------


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str] | None], list[RowProblem]]:
    """(columns, rows, problems): lower-case column names, each row as {column: stripped text}, and
    the problems of rows that could not be read at all (a JSONL line that is not JSON, a JSON item
    that is not an object), which stand in `rows` as None so the others keep their numbers."""
    import pandas as pd

    if path.is_dir():
        raise CatalogError(f"{path}: is a folder, not a catalog file; give the file itself ({', '.join(SUFFIXES)})")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CatalogError(f"{path}: unknown catalog format {path.suffix or '(no suffix)'!r}; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        hint = f" (the sample show is at {SAMPLE})" if path != SAMPLE else ""
        raise CatalogError(f"{path}: no such catalog file{hint}")
    if suffix in (".json", ".jsonl"):
        return _read_json(path, lines=suffix == ".jsonl")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{path}: cannot be read as {suffix[1:].upper()} ({exc})") from None
    columns = [str(c).strip().lower() for c in frame.columns]
    return columns, [{column: _text(value) for column, value in zip(columns, values)} for values in frame.itertuples(index=False, name=None)], []


_UNREADABLE = object()  # a JSONL line that is not JSON, in the list of parsed lines


def _read_json(path: Path, *, lines: bool) -> tuple[list[str], list[dict[str, str] | None], list[RowProblem]]:
    """A JSON list of objects, or JSONL (one object a line), read with the standard library: its
    numbers have no size limit (pandas refuses a whole file over one number past 2**64), so a
    number too big for a season is that row's problem. Blank JSONL lines are not rows."""
    import json

    kind = "JSONL" if lines else "JSON"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read as {kind} ({exc})") from None
    items: list[Any] = []
    problems: list[RowProblem] = []
    if lines:
        for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
            try:
                items.append(json.loads(line))
            except (ValueError, RecursionError) as exc:  # not JSON, a number of thousands of digits, nesting past Python's limit
                items.append(_UNREADABLE)
                problems.append(RowProblem(path, number, "", f"is not JSON ({exc}); keep one whole JSON object a line"))
    else:
        try:
            items = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise CatalogError(f"{path}: cannot be read as JSON ({exc})") from None
        if not isinstance(items, list):
            raise CatalogError(f"{path}: cannot be read as JSON records: expected a list of objects, one per episode (got {_json_kind(items)})")
    # Columns in the order the objects first name them; a row that is not an object is a problem.
    columns: list[str] = []
    rows: list[dict[str, str] | None] = []
    for number, item in enumerate(items, start=1):
        if item is _UNREADABLE:
            rows.append(None)
            continue
        if not isinstance(item, dict):
            rows.append(None)
            problems.append(RowProblem(path, number, "", f"is {_json_kind(item)}, not an object with season, episode and summary"))
            continue
        row = {str(key).strip().lower(): _text(value) for key, value in item.items()}
        columns += [c for c in row if c not in columns]
        rows.append(row)
    if problems and not columns:  # nothing in the file could be read as a row: a file problem, not a row's
        raise CatalogError(f"{path}: cannot be read as {kind} records ({problems[0].where()})")
    return columns, rows, problems


def _json_kind(value: Any) -> str:
    for kind, name in ((dict, "an object"), (list, "a list"), (str, "a string"), (bool, "true or false"), ((int, float), "a number")):
        if isinstance(value, kind):
            return name
    return "null"


def _text(value: Any) -> str:
    """A cell as text: missing is "", 3.0 stays "3.0" (the number check decides), text is stripped."""
    import pandas as pd

    if value is None:
        return ""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # a numpy scalar (Parquet's numbers): its Python value
        value = value.item()
    if isinstance(value, (list, dict, tuple)) or getattr(value, "ndim", 0) > 0:  # a list or array cell: kept as text, which no number check passes
        return str(value.tolist() if hasattr(value, "tolist") else value).strip()
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
