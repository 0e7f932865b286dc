"""A show's catalog: episode (and optional season) summaries read from CSV, JSON, JSONL or Parquet.

`load_catalog(path)` reads the episodes file and a sibling `seasons.<suffix>` if there is one; every
problem is a `CatalogError` that names the file, the 1-based data row and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .schemas import Episode, Season

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_show" / "episodes.csv"

SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
EPISODE_COLUMNS = ("season", "episode", "summary")  # required
EPISODE_OPTIONAL = ("show", "title")
SEASON_COLUMNS = ("season",)
SEASON_OPTIONAL = ("show", "title", "summary")


@dataclass
class Catalog:
    """One show's episodes (sorted by season, episode) and the season summaries the catalog has."""

    show: str
    episodes: list[Episode]
    seasons: list[Season] = field(default_factory=list)
    path: Path | None = None

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


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read an episodes file (default: the sample show) and its optional sibling seasons file."""
    # 1. The episodes file, as text cells.
    episodes_path = Path(path) if path is not None else SAMPLE
    columns, rows = _read_rows(episodes_path)
    _require_columns(columns, episodes_path, EPISODE_COLUMNS, EPISODE_OPTIONAL)
    fallback_show = episodes_path.resolve().parent.name
    # 2. One Episode per row, checked.
    episodes: list[Episode] = []
    seen: dict[tuple[int, int], int] = {}
    for number, row in enumerate(rows, start=1):
        episode = _episode_row(row, _Where(episodes_path, number), fallback_show)
        key = (episode.season, episode.episode)
        if key in seen:
            raise _Where(episodes_path, number).error(
                "episode", f"season {key[0]} episode {key[1]} appears twice (first at row {seen[key]}); keep one row per episode"
            )
        seen[key] = number
        episodes.append(episode)
    if not episodes:
        raise CatalogError(f"{episodes_path}: no episodes; the file needs one row per episode with season, episode and summary")
    show = _one_show(episodes, episodes_path)
    # 3. Season summaries from `seasons.<suffix>` beside it, if present.
    seasons_path = episodes_path.with_name("seasons" + episodes_path.suffix.lower())
    seasons = _load_seasons(seasons_path, show) if seasons_path.is_file() and seasons_path.resolve() != episodes_path.resolve() else []
    return Catalog(show=show, episodes=episodes, seasons=seasons, path=episodes_path)


# -- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Where a cell came from, so every message names file, row and field."""

    path: Path
    row: int

    def error(self, field_name: str, message: str) -> CatalogError:
        return CatalogError(f"{self.path}, row {self.row}, field {field_name!r}: {message}")


def _episode_row(row: dict[str, str], where: _Where, fallback_show: str) -> Episode:
    summary = row.get("summary", "")
    if not summary:
        raise where.error("summary", "is empty; every episode needs a summary to draw its key art from")
    return Episode(
        show=row.get("show", "") or fallback_show,
        season=_whole_number(row.get("season", ""), where, "season"),
        episode=_whole_number(row.get("episode", ""), where, "episode"),
        title=row.get("title", ""),
        summary=summary,
    )


def _load_seasons(path: Path, show: str) -> list[Season]:
    columns, rows = _read_rows(path)
    _require_columns(columns, path, SEASON_COLUMNS, SEASON_OPTIONAL)
    seasons: list[Season] = []
    seen: dict[int, int] = {}
    for number, row in enumerate(rows, start=1):
        where = _Where(path, number)
        season = _whole_number(row.get("season", ""), where, "season")
        if season in seen:
            raise where.error("season", f"season {season} appears twice (first at row {seen[season]}); keep one row per season")
        seen[season] = number
        seasons.append(Season(show=show, season=season, title=row.get("title", ""), summary=row.get("summary", "")))
    return seasons


def _whole_number(text: str, where: _Where, field_name: str) -> int:
    """"3" and "3.0" are 3; "007" is 7; "3.5", "three", "" and negatives are errors."""
    if not text:
        raise where.error(field_name, f"is empty; give the {field_name} number, such as 1")
    try:
        value = float(text)
    except ValueError:
        raise where.error(field_name, f"must be a whole number such as 1 or 12 (got {text!r})") from None
    if not math.isfinite(value) or value != int(value):
        raise where.error(field_name, f"must be a whole number such as 1 or 12 (got {text!r})")
    if value < 0:
        raise where.error(field_name, f"cannot be negative (got {text!r}); number seasons and episodes from 0 or 1")
    return int(value)


def _one_show(episodes: list[Episode], path: Path) -> str:
    shows = sorted({e.show for e in episodes})
    if len(shows) > 1:
        raise CatalogError(f"{path}: holds more than one show ({', '.join(shows)}); keep one show per catalog file")
    return shows[0]


# -- files ---------------------------------------------------------------------------------------


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows): lower-case column names and each row as {column: stripped text}."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CatalogError(f"{path}: unknown catalog format {path.suffix or '(no suffix)'!r}; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        hint = f" (the sample show is at {SAMPLE})" if path != SAMPLE else ""
        raise CatalogError(f"{path}: no such catalog file{hint}")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, orient="records", lines=suffix == ".jsonl", dtype=False, convert_dates=False, encoding="utf-8")
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{path}: cannot be read as {suffix[1:].upper()} ({exc})") from None
    columns = [str(c).strip().lower() for c in frame.columns]
    return columns, [{column: _text(value) for column, value in zip(columns, values)} for values in frame.itertuples(index=False, name=None)]


def _text(value: Any) -> str:
    """A cell as text: missing is "", 3.0 stays "3.0" (the number check decides), text is stripped."""
    import pandas as pd

    if value is None or (not isinstance(value, (list, dict, tuple)) and pd.isna(value)):
        return ""
    return str(value).strip()


def _require_columns(present: list[str], path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise CatalogError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(present) or 'none'} "
            f"(required: {', '.join(required)}; optional: {', '.join(optional)})"
        )


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
