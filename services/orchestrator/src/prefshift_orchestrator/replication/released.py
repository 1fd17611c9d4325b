"""Reading the seed study's released runs (the layout of ``seed-results/``), validated.

One folder per user, ``user_<ID>/``, holding

- ``_initial_persona_movies.json`` and ``_test_movies.json``: the persona and test movies with
  the user's real rating (``movieId``, ``title``, ``tmdbId`` as a float, ``genres`` as
  MovieLens's ``"A|B"``, ``tmdb_genres`` as a list or a Python-literal string of one);
- ``_final_test_summary.json``: the persona's test ratings — ``path_1`` one list (the baseline),
  ``path_2`` … ``path_5`` one list per page (the re-ratings after each page); entries
  ``{title, rating, feeling?, genres?}`` with the title as the LLM echoed it;
- ``path_<k>_parsed_with_genres.json``: the arm's pages, ``{page, recommended_movies: [titles],
  simulated_ratings: [{title, rating, feeling, genres}]}``.

Everything is checked here, before anything is stored: a file that is missing, not JSON, of the
wrong shape or with a rating off the scale raises :class:`MalformedRelease` naming the file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The study's arms (``path_1`` is the baseline) and the names prefshift gives them.
#: ``study-svd`` is the study's Surprise SVD (default parameters, MovieLens 32M), not ``als``.
STUDY_ARMS: dict[str, str] = {
    "path_2": "llm",
    "path_3": "llm-persuasive",
    "path_4": "study-svd",
    "path_5": "random",
}
BASELINE_PATH = "path_1"
PERSONA_FILE = "_initial_persona_movies.json"
TEST_FILE = "_test_movies.json"
SUMMARY_FILE = "_final_test_summary.json"
USER_FOLDER = re.compile(r"^user_(\d+)$")
#: The persona's scale in the study: 0–5 in half steps (GPT-5 gave 0.0 a handful of times).
PERSONA_SCALE = (0.0, 5.0)
#: MovieLens's scale, of the real ratings.
REAL_SCALE = (0.5, 5.0)
MAX_FILE_BYTES = 20_000_000


class MalformedRelease(ValueError):
    """A released file that cannot be imported; the message names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class ReleasedMovie:
    """A persona or test movie with the user's real rating."""

    movielens_id: int
    tmdb_id: int
    title: str
    genres: tuple[str, ...]  # TMDB's names, else MovieLens's
    rating: float


@dataclass(frozen=True)
class EchoedRating:
    """A rating the persona gave, under the title as the LLM wrote it."""

    title: str
    rating: float
    feeling: str


@dataclass(frozen=True)
class ReleasedPage:
    """One page an arm showed: the titles in order and the persona's ratings of them."""

    page: int
    recommended: tuple[str, ...]
    ratings: tuple[EchoedRating, ...]


@dataclass(frozen=True)
class ReleasedArm:
    source: str  # "path_2" …
    name: str  # prefshift's arm name
    pages: tuple[ReleasedPage, ...]
    test_pages: tuple[tuple[EchoedRating, ...], ...]  # the re-ratings after page 1, 2, …


@dataclass(frozen=True)
class ReleasedRun:
    """One user's released run."""

    user_id: int
    folder: Path
    digest: str  # sha256 over the user's files (name and content)
    persona: tuple[ReleasedMovie, ...]
    test: tuple[ReleasedMovie, ...]
    baseline: tuple[EchoedRating, ...]
    arms: tuple[ReleasedArm, ...]


def user_folders(path: Path) -> list[tuple[int, Path]]:
    """The ``user_<ID>`` folders of a released folder, by user id."""
    if not path.is_dir():
        raise MalformedRelease(path, "not a folder of the seed study's released runs")
    found = []
    for child in path.iterdir():
        match = USER_FOLDER.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    if not found:
        raise MalformedRelease(path, "no user_<ID> folders (is this the released runs' folder?)")
    return sorted(found)


def arm_file(source: str) -> str:
    return f"{source}_parsed_with_genres.json"


def read_run(user_id: int, folder: Path) -> ReleasedRun:
    """Read and check one user's folder (raises :class:`MalformedRelease`)."""
    names = [PERSONA_FILE, TEST_FILE, SUMMARY_FILE, *(arm_file(s) for s in STUDY_ARMS)]
    raw: dict[str, bytes] = {}
    for name in names:
        file = folder / name
        if not file.is_file():
            raise MalformedRelease(file, "missing")
        if file.stat().st_size > MAX_FILE_BYTES:
            raise MalformedRelease(file, f"larger than {MAX_FILE_BYTES:,} bytes")
        raw[name] = file.read_bytes()
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + hashlib.sha256(raw[name]).digest())
    documents = {name: _json(folder / name, raw[name]) for name in names}

    persona = _movies(folder / PERSONA_FILE, documents[PERSONA_FILE])
    test = _movies(folder / TEST_FILE, documents[TEST_FILE])
    summary_file = folder / SUMMARY_FILE
    summary = documents[SUMMARY_FILE]
    if not isinstance(summary, dict):
        raise MalformedRelease(summary_file, "expected an object with path_1 … path_5")
    baseline_lists = _lists(summary_file, summary, BASELINE_PATH)
    if len(baseline_lists) != 1:
        raise MalformedRelease(summary_file, f"{BASELINE_PATH} must hold one list (the baseline)")
    arms = []
    for source, name in STUDY_ARMS.items():
        test_pages = tuple(
            _echoes(summary_file, f"{source}[{index}]", entries)
            for index, entries in enumerate(_lists(summary_file, summary, source))
        )
        file = folder / arm_file(source)
        arms.append(
            ReleasedArm(source, name, _pages(file, documents[arm_file(source)]), test_pages)
        )
    return ReleasedRun(
        user_id=user_id,
        folder=folder,
        digest=digest.hexdigest(),
        persona=persona,
        test=test,
        baseline=_echoes(summary_file, f"{BASELINE_PATH}[0]", baseline_lists[0]),
        arms=tuple(arms),
    )


def _json(file: Path, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedRelease(file, f"not valid JSON ({exc})") from exc


def _text(file: Path, where: str, value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise MalformedRelease(file, f"{where}: expected a text, got {value!r:.80}")
    return value


def _rating(file: Path, where: str, value: Any, scale: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise MalformedRelease(file, f"{where}: rating {value!r:.40} is not a number")
    low, high = scale
    if not low <= value <= high or (value * 2) % 1:
        raise MalformedRelease(
            file, f"{where}: rating {value} is off the scale ({low:g}–{high:g} in half steps)"
        )
    return float(value)


def _genres(file: Path, where: str, value: Any) -> list[str]:
    """A list of genre names, or a Python-literal string of one (``"['Drama', 'War']"``)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value) if value.strip() else []
        except (ValueError, SyntaxError) as exc:
            raise MalformedRelease(file, f"{where}: genres {value!r:.80} are not a list") from exc
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise MalformedRelease(file, f"{where}: genres {value!r:.80} are not a list of names")
    return [name for name in value if name]


def _movies(file: Path, document: Any) -> tuple[ReleasedMovie, ...]:
    if not isinstance(document, list) or not document:
        raise MalformedRelease(file, "expected a non-empty list of movies")
    movies = []
    for index, entry in enumerate(document):
        where = f"movie {index}"
        if not isinstance(entry, dict):
            raise MalformedRelease(file, f"{where}: expected an object")
        tmdb = entry.get("tmdbId")
        if isinstance(tmdb, bool) or not isinstance(tmdb, int | float) or math.isnan(tmdb):
            raise MalformedRelease(file, f"{where}: tmdbId {tmdb!r:.40} is not a number")
        if tmdb < 1 or tmdb != int(tmdb):
            raise MalformedRelease(file, f"{where}: tmdbId {tmdb} is not a TMDB id")
        movielens = entry.get("movieId")
        if isinstance(movielens, bool) or not isinstance(movielens, int):
            raise MalformedRelease(file, f"{where}: movieId {movielens!r:.40} is not an integer")
        tmdb_genres = _genres(file, where, entry.get("tmdb_genres"))
        movielens_genres = [
            name
            for name in _text(file, where, entry.get("genres"), required=False).split("|")
            if name and name != "(no genres listed)"
        ]
        movies.append(
            ReleasedMovie(
                movielens_id=movielens,
                tmdb_id=int(tmdb),
                title=_text(file, where, entry.get("title")),
                genres=tuple(tmdb_genres or movielens_genres),
                rating=_rating(file, where, entry.get("rating"), REAL_SCALE),
            )
        )
    return tuple(movies)


def _lists(file: Path, summary: dict[str, Any], key: str) -> list[Any]:
    value = summary.get(key)
    if not isinstance(value, list) or not all(isinstance(item, list) for item in value):
        raise MalformedRelease(file, f"{key}: expected a list of lists of ratings")
    return value


def _echoes(file: Path, where: str, entries: list[Any]) -> tuple[EchoedRating, ...]:
    echoes = []
    for index, entry in enumerate(entries):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise MalformedRelease(file, f"{at}: expected an object with title and rating")
        echoes.append(
            EchoedRating(
                title=_text(file, at, entry.get("title")),
                rating=_rating(file, at, entry.get("rating"), PERSONA_SCALE),
                feeling=_text(file, at, entry.get("feeling"), required=False),
            )
        )
    return tuple(echoes)


def _pages(file: Path, document: Any) -> tuple[ReleasedPage, ...]:
    if not isinstance(document, list):
        raise MalformedRelease(file, "expected a list of pages")
    pages = []
    for index, entry in enumerate(document):
        where = f"page {index + 1}"
        if not isinstance(entry, dict):
            raise MalformedRelease(file, f"{where}: expected an object")
        number = entry.get("page", index + 1)
        if isinstance(number, bool) or not isinstance(number, int) or number != index + 1:
            raise MalformedRelease(file, f"{where}: page number {number!r:.20} out of order")
        titles = entry.get("recommended_movies")
        if not isinstance(titles, list):
            raise MalformedRelease(file, f"{where}: recommended_movies is not a list")
        ratings = entry.get("simulated_ratings")
        if not isinstance(ratings, list):
            raise MalformedRelease(file, f"{where}: simulated_ratings is not a list")
        for position, rating in enumerate(ratings):
            if isinstance(rating, dict):
                _genres(file, f"{where} rating {position}", rating.get("genres"))
        pages.append(
            ReleasedPage(
                page=number,
                recommended=tuple(
                    _text(file, f"{where} title {i}", title).strip()
                    for i, title in enumerate(titles)
                ),
                ratings=_echoes(file, where, ratings),
            )
        )
    return tuple(pages)
