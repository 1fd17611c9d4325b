"""Reading and validating the files of a dataset.

``ratings.csv`` (up to tens of millions of rows) is read in chunks by pandas' C parser and comes
out as numpy arrays, never as one Python object per rating. The small files (movies, links, the
seed study's per-user files, archetypes) are read with the csv module, which knows the exact line
of every record even when a quoted overview spans lines. Every problem is a
:class:`MalformedFileError` naming the file and line.
"""

from __future__ import annotations

import ast
import csv
import functools
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from prefshift_common.movies import year_from_title
from prefshift_datasets.errors import MalformedFileError

RATING_MIN = 0.5
RATING_MAX = 5.0
INT32_MAX = 2**31 - 1
_PARSER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_PARSER_ROW = re.compile(r"(?:row|line) (\d+)")

ByteCounter = Callable[[int], None]


@dataclass(frozen=True)
class RatingsChunk:
    """Validated ratings of one chunk of ``ratings.csv``."""

    user_id: npt.NDArray[np.int32]
    movielens_id: npt.NDArray[np.int32]
    rating: npt.NDArray[np.float32]
    timestamp: npt.NDArray[np.int64] | None
    lines: npt.NDArray[np.int64]  # line of each rating in the file, for error messages

    def __len__(self) -> int:
        return len(self.user_id)


@dataclass
class MovieRow:
    """One movie as read from movies.csv + links.csv or from a per-user file."""

    movielens_id: int
    title: str
    year: int | None
    genres: str
    imdb_id: str | None = None
    tmdb_id: int | None = None
    overview: str | None = None
    tmdb_genres: list[str] | None = None
    tmdb_vote_average: float | None = None
    tmdb_vote_count: int | None = None


class LineTooLongError(MalformedFileError):
    """A line longer than :data:`MAX_LINE_BYTES` (no dataset of this kind has one; a zip bomb
    made of one huge line would otherwise be held in memory whole)."""


#: Longest line any dataset file may have (MovieLens lines are < 1 KB, seed-study lines with an
#: overview < 20 KB).
MAX_LINE_BYTES = 1 << 20


class _BoundedReader(io.RawIOBase):
    """A byte stream that reports how many bytes were read (for progress) and refuses, while
    streaming, a line longer than ``max_line_bytes`` — before the parser holds it in memory."""

    def __init__(
        self,
        stream: IO[bytes],
        file: str,
        on_read: ByteCounter | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self._stream = stream
        self._file = file
        self._on_read = on_read
        self._max_line = max_line_bytes
        self._line = 1
        self._run = 0  # bytes since the last newline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Reads no larger than the limit: a line inside one read is then within the limit, and
        # only the runs that cross reads need counting.
        data = self._stream.read(min(len(buffer), self._max_line))
        size = len(data)
        first = data.find(b"\n")
        if first == -1:
            self._run += size
        else:
            self._run += first
            if self._run <= self._max_line:
                self._line += data.count(b"\n")
                self._run = size - data.rfind(b"\n") - 1
        if self._run > self._max_line:
            raise LineTooLongError(
                self._file,
                self._line,
                f"line longer than {self._max_line:,} bytes; refused (not a dataset file?)",
            )
        buffer[:size] = data
        if self._on_read is not None and size:
            self._on_read(size)
        return size


# --- ratings.csv ------------------------------------------------------------------------------


def read_ratings(
    stream: IO[bytes],
    file: str,
    *,
    chunk_rows: int = 1_000_000,
    on_read: ByteCounter | None = None,
) -> Iterator[RatingsChunk]:
    """Validated chunks of a MovieLens ``ratings.csv`` (userId, movieId, rating[, timestamp])."""
    buffered = io.BufferedReader(_BoundedReader(stream, file, on_read), buffer_size=1 << 20)
    try:
        try:
            reader = pd.read_csv(
                buffered,
                chunksize=chunk_rows,
                engine="c",
                skip_blank_lines=False,
                encoding="utf-8",
                # only an empty field is missing: "nan", "NA" or "null" are refused as text
                keep_default_na=False,
                na_values=[""],
            )
        except pd.errors.EmptyDataError as error:
            raise MalformedFileError(file, 1, "empty file (no header)") from error
        with reader:
            for frame in _chunks(reader, file):
                yield _validate_ratings(frame, file)
    except UnicodeDecodeError as error:
        raise MalformedFileError(file, None, f"not UTF-8 text ({error.reason})") from error


def _chunks(reader: Any, file: str) -> Iterator[pd.DataFrame]:
    while True:
        try:
            frame = next(reader)
        except StopIteration:
            return
        except pd.errors.EmptyDataError as error:
            raise MalformedFileError(file, 1, "empty file (no header)") from error
        except pd.errors.ParserError as error:
            raise _parser_error(file, str(error)) from error
        yield frame


def _parser_error(file: str, message: str) -> MalformedFileError:
    if match := _PARSER_LINE.search(message):
        expected, line, found = match.groups()
        return MalformedFileError(file, int(line), f"expected {expected} fields, found {found}")
    if match := _PARSER_ROW.search(message):
        return MalformedFileError(file, int(match.group(1)), message)
    return MalformedFileError(file, None, message)


def _validate_ratings(frame: pd.DataFrame, file: str) -> RatingsChunk:
    columns = [str(column).strip() for column in frame.columns]
    frame.columns = pd.Index(columns)
    missing = [name for name in ("userId", "movieId", "rating") if name not in columns]
    if missing:
        raise MalformedFileError(file, 1, f"missing column(s) {', '.join(missing)} in header")
    # Blank lines are skipped; they are kept until here so that row index + 2 = line number.
    frame = frame.dropna(how="all")
    has_timestamp = "timestamp" in columns
    problems: list[tuple[int, str]] = []
    user_id = _integer_column(frame, "userId", file, problems)
    movielens_id = _integer_column(frame, "movieId", file, problems)
    rating_raw = frame["rating"]
    rating = pd.to_numeric(rating_raw, errors="coerce")
    bad = rating.isna() | (rating < RATING_MIN) | (rating > RATING_MAX)
    if bad.any():
        position = int(np.argmax(bad.to_numpy()))
        index = int(frame.index[position])
        value = rating_raw.iloc[position]
        problems.append(
            (index, _missing_or(value, f"rating {_show(value)} is not a number in 0.5–5.0"))
        )
    timestamp: npt.NDArray[np.int64] | None = None
    if has_timestamp:
        timestamp_values = _integer_column(
            frame, "timestamp", file, problems, minimum=0, maximum=2**62
        )
        timestamp = timestamp_values.astype(np.int64)
    if problems:
        index, reason = min(problems)
        raise MalformedFileError(file, index + 2, reason)
    return RatingsChunk(
        user_id=user_id.astype(np.int32),
        movielens_id=movielens_id.astype(np.int32),
        rating=rating.to_numpy(dtype=np.float32),
        timestamp=timestamp,
        lines=frame.index.to_numpy(dtype=np.int64) + 2,
    )


def _show(value: object) -> str:
    """A value as the file had it: strings quoted, numbers plain (not ``np.float64(7.0)``)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(value)


def _missing_or(value: object, reason: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing field (truncated row?)"
    return reason


def _integer_column(
    frame: pd.DataFrame,
    name: str,
    file: str,
    problems: list[tuple[int, str]],
    *,
    minimum: int = 1,
    maximum: int = INT32_MAX,
) -> npt.NDArray[np.int64]:
    raw = frame[name]
    if pd.api.types.is_integer_dtype(raw.dtype):
        values = raw.to_numpy(dtype=np.int64)
        bad = (values < minimum) | (values > maximum)
    else:
        numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = (
                np.isnan(numeric)
                | (numeric != np.floor(numeric))
                | (numeric < minimum)
                | (numeric > maximum)
            )
        values = np.where(bad, 0, numeric).astype(np.int64)
    if bad.any():
        position = int(np.argmax(bad))
        index = int(frame.index[position])
        value = raw.iloc[position]
        problems.append(
            (
                index,
                _missing_or(
                    value, f"{name} {_show(value)} is not an integer in {minimum}…{maximum}"
                ),
            )
        )
    return values


# --- small files (csv module) -----------------------------------------------------------------


def _records(
    stream: IO[bytes], file: str, required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, record) pairs of a small CSV file, checking the header and field counts."""
    bounded = io.BufferedReader(_BoundedReader(stream, file), buffer_size=1 << 16)
    text = io.TextIOWrapper(bounded, encoding="utf-8", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            raise MalformedFileError(file, 1, "empty file (no header)")
        header = [column.strip() for column in header]
        missing = [name for name in required if name not in header]
        if missing:
            raise MalformedFileError(file, 1, f"missing column(s) {', '.join(missing)} in header")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise MalformedFileError(
                    file,
                    reader.line_num,
                    f"expected {len(header)} fields, found {len(row)}",
                )
            yield reader.line_num, dict(zip(header, row, strict=True))
    except UnicodeDecodeError as error:
        raise MalformedFileError(file, None, f"not UTF-8 text ({error.reason})") from error
    except csv.Error as error:
        raise MalformedFileError(file, reader.line_num, str(error)) from error
    finally:
        text.detach()


def _int(value: str, file: str, line: int, name: str, *, optional: bool = False) -> int | None:
    """An id that may be written as a float (``807.0``); empty → None when optional."""
    text = value.strip()
    if not text and optional:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not 0 < number <= INT32_MAX:
        raise MalformedFileError(file, line, f"{name} {value!r} is not a positive integer")
    return int(number)


def _float(value: str, file: str, line: int, name: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise MalformedFileError(file, line, f"{name} {value!r} is not a number")
    return number


def _rating(value: str, file: str, line: int) -> float:
    number = _float(value, file, line, "rating")
    if number is None or not RATING_MIN <= number <= RATING_MAX:
        raise MalformedFileError(file, line, f"rating {value!r} is not a number in 0.5–5.0")
    return number


def _title(value: str, file: str, line: int) -> str:
    title = value.strip()
    if not title:
        raise MalformedFileError(file, line, "empty title")
    if "\x00" in title:
        raise MalformedFileError(file, line, "NUL byte in title")
    return title


def read_movies(stream: IO[bytes], file: str) -> dict[int, MovieRow]:
    """``movies.csv`` (movieId, title, genres) by MovieLens id."""
    movies: dict[int, MovieRow] = {}
    for line, record in _records(stream, file, ("movieId", "title", "genres")):
        movielens_id = _int(record["movieId"], file, line, "movieId")
        assert movielens_id is not None
        if movielens_id in movies:
            raise MalformedFileError(file, line, f"movieId {movielens_id} appears twice")
        title = _title(record["title"], file, line)
        movies[movielens_id] = MovieRow(
            movielens_id=movielens_id,
            title=title,
            year=year_from_title(title),
            genres=record["genres"].strip(),
        )
    return movies


def read_links(stream: IO[bytes], file: str, movies: dict[int, MovieRow]) -> None:
    """Set imdb and TMDB ids from ``links.csv`` (movieId, imdbId, tmdbId) on known movies."""
    for line, record in _records(stream, file, ("movieId", "imdbId", "tmdbId")):
        movielens_id = _int(record["movieId"], file, line, "movieId")
        assert movielens_id is not None
        movie = movies.get(movielens_id)
        if movie is None:
            continue  # a link to a movie the dataset does not list changes nothing
        movie.tmdb_id = _int(record["tmdbId"], file, line, "tmdbId", optional=True)
        imdb = record["imdbId"].strip()
        movie.imdb_id = imdb[:16] or None


def _tmdb_genres(value: str, file: str, line: int) -> list[str] | None:
    text = value.strip()
    if not text:
        return None
    parsed = _literal_genres(text)
    if parsed is None:
        raise MalformedFileError(file, line, f"tmdb_genres {value!r} is not a list of names")
    return list(parsed)


@functools.lru_cache(maxsize=4096)
def _literal_genres(text: str) -> tuple[str, ...] | None:
    """A Python-literal list of names, as the seed study wrote it (few distinct values: cached)."""
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(parsed, list) or not all(isinstance(name, str) for name in parsed):
        return None
    return tuple(parsed)


@dataclass(frozen=True)
class PerUserRows:
    """The ratings and movies of one ``movies_enriched-user<ID>.csv`` file."""

    ratings: list[tuple[int, float]]  # (movielens_id, rating)
    movies: list[MovieRow]


PER_USER_COLUMNS = (
    "movieId",
    "title",
    "genres",
    "imdbId",
    "tmdbId",
    "overview",
    "tmdb_vote_average",
    "tmdb_vote_count",
    "tmdb_genres",
    "rating",
)


def read_per_user_file(stream: IO[bytes], file: str) -> PerUserRows:
    """One of the seed study's per-user files: its ratings and its movies with TMDB fields."""
    ratings: list[tuple[int, float]] = []
    movies: list[MovieRow] = []
    seen: set[int] = set()
    for line, record in _records(stream, file, PER_USER_COLUMNS):
        movielens_id = _int(record["movieId"], file, line, "movieId")
        assert movielens_id is not None
        if movielens_id in seen:
            raise MalformedFileError(file, line, f"movieId {movielens_id} appears twice")
        seen.add(movielens_id)
        title = _title(record["title"], file, line)
        vote_count = _float(record["tmdb_vote_count"], file, line, "tmdb_vote_count")
        imdb = record["imdbId"].strip()
        movies.append(
            MovieRow(
                movielens_id=movielens_id,
                title=title,
                year=year_from_title(title),
                genres=record["genres"].strip(),
                imdb_id=imdb.split(".")[0].zfill(7)[:16] if imdb else None,
                tmdb_id=_int(record["tmdbId"], file, line, "tmdbId", optional=True),
                # "" = TMDB knows the movie but has no overview; None = no TMDB record
                overview=record["overview"].replace("\x00", "").strip(),
                tmdb_genres=_tmdb_genres(record["tmdb_genres"], file, line),
                tmdb_vote_average=_float(
                    record["tmdb_vote_average"], file, line, "tmdb_vote_average"
                ),
                tmdb_vote_count=int(vote_count) if vote_count is not None else None,
            )
        )
        ratings.append((movielens_id, _rating(record["rating"], file, line)))
    return PerUserRows(ratings=ratings, movies=movies)


def read_archetypes(stream: IO[bytes], file: str) -> dict[int, str]:
    """``archetypes.csv`` (userId, archetype) of the seed cohort."""
    archetypes: dict[int, str] = {}
    for line, record in _records(stream, file, ("userId", "archetype")):
        user_id = _int(record["userId"], file, line, "userId")
        assert user_id is not None
        archetype = record["archetype"].strip()
        if not archetype or len(archetype) > 32:
            raise MalformedFileError(file, line, f"archetype {archetype!r} is empty or too long")
        archetypes[user_id] = archetype
    return archetypes
