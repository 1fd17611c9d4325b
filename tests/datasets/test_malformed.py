"""Malformed files are refused with their file and line, and leave the database as it was."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from prefshift_datasets.errors import MalformedFileError
from prefshift_datasets.importer import import_dataset
from tests.datasets.helpers import snapshot


@pytest.fixture
def ml_copy(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(shared_data / "ml-latest-small", folder)
    return folder


def _edit_line(file: Path, line: int, edit: Callable[[str], str]) -> None:
    lines = file.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = edit(lines[line - 1])
    file.write_text("\n".join(lines), encoding="utf-8")


def _replace_field(index: int, value: str) -> Callable[[str], str]:
    def edit(line: str) -> str:
        fields = line.split(",")
        fields[index] = value
        return ",".join(fields)

    return edit


RATINGS_CASES = [
    # (line, edit, expected reason); ratings.csv is userId,movieId,rating,timestamp
    (5_000, _replace_field(2, "four"), "rating 'four' is not a number"),
    (77_777, _replace_field(2, "7.0"), "rating 7.0 is not a number in 0.5–5.0"),
    (60_001, _replace_field(2, "0.0"), "is not a number in 0.5–5.0"),
    (12_345, _replace_field(0, "abc"), "userId 'abc' is not an integer"),
    (2, _replace_field(1, "-5"), "movieId -5 is not an integer"),
    (40_000, _replace_field(0, "1.5"), "userId 1.5 is not an integer"),
    (99_999, lambda line: line + ",extra", "expected 4 fields, found 5"),
    (31_000, lambda line: ",".join(line.split(",")[:2]), "missing field (truncated row?)"),
    (3, _replace_field(1, "99999999"), "movieId 99999999 is not in movies.csv"),
]


@pytest.mark.parametrize(("line", "edit", "reason"), RATINGS_CASES)
def test_garbled_ratings_are_refused_with_file_and_line(
    ml_small_database_url: str,
    ml_copy: Path,
    line: int,
    edit: Callable[[str], str],
    reason: str,
) -> None:
    _edit_line(ml_copy / "ratings.csv", line, edit)
    before = snapshot(ml_small_database_url)
    # small chunks: the bad row lies deep inside a later chunk
    with pytest.raises(MalformedFileError) as raised:
        import_dataset(ml_small_database_url, ml_copy, chunk_rows=7_000)
    assert (raised.value.file, raised.value.line) == ("ratings.csv", line)
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"ratings.csv, line {line}: ")
    assert snapshot(ml_small_database_url) == before


def test_truncated_ratings_file_is_refused(ml_small_database_url: str, ml_copy: Path) -> None:
    ratings = ml_copy / "ratings.csv"
    content = ratings.read_bytes()
    # cut in the middle of the last-but-one row, as an interrupted download would
    cut = content.rstrip(b"\n").rfind(b"\n", 0, len(content) - 40) + 6
    ratings.write_bytes(content[:cut])
    line = content[:cut].count(b"\n") + 1
    before = snapshot(ml_small_database_url)
    with pytest.raises(MalformedFileError) as raised:
        import_dataset(ml_small_database_url, ml_copy)
    assert (raised.value.file, raised.value.line) == ("ratings.csv", line)
    assert snapshot(ml_small_database_url) == before


def test_duplicate_rating_is_refused(ml_small_database_url: str, ml_copy: Path) -> None:
    ratings = ml_copy / "ratings.csv"
    with ratings.open("a") as file:
        file.write("1,1,3.0,964982703\n")
    before = snapshot(ml_small_database_url)
    with pytest.raises(MalformedFileError, match=r"ratings\.csv: a user rates a movie twice"):
        import_dataset(ml_small_database_url, ml_copy, name="duplicates")
    assert snapshot(ml_small_database_url) == before


def test_missing_header_column_is_refused(database_url: str, ml_copy: Path) -> None:
    _edit_line(ml_copy / "ratings.csv", 1, lambda _line: "userId,movieId,score,timestamp")
    with pytest.raises(
        MalformedFileError, match=r"ratings\.csv, line 1: missing column\(s\) rating"
    ):
        import_dataset(database_url, ml_copy)


def test_not_utf8_is_refused(database_url: str, ml_copy: Path) -> None:
    movies = ml_copy / "movies.csv"
    movies.write_bytes(movies.read_bytes().replace(b"Jumanji", b"Jum\xff\xfeanji"))
    with pytest.raises(MalformedFileError, match=r"movies\.csv.*not UTF-8"):
        import_dataset(database_url, ml_copy)


@pytest.mark.parametrize(
    ("file", "line", "edit", "reason"),
    [
        ("movies.csv", 4_000, _replace_field(0, "x12"), "movieId 'x12' is not a positive integer"),
        ("movies.csv", 9_743, lambda line: line.split(",")[0], "expected 3 fields, found 1"),
        ("links.csv", 250, _replace_field(2, "tt862"), "tmdbId 'tt862' is not a positive integer"),
    ],
)
def test_garbled_movies_and_links_are_refused(
    ml_small_database_url: str,
    ml_copy: Path,
    file: str,
    line: int,
    edit: Callable[[str], str],
    reason: str,
) -> None:
    _edit_line(ml_copy / file, line, edit)
    before = snapshot(ml_small_database_url)
    with pytest.raises(MalformedFileError) as raised:
        import_dataset(ml_small_database_url, ml_copy, name="broken")
    assert (raised.value.file, raised.value.line) == (file, line)
    assert reason in raised.value.reason
    assert snapshot(ml_small_database_url) == before


def test_garbled_per_user_file_is_refused(
    seed_cohort_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    source = sorted((shared_data / "seed-cohort" / "users_2").glob("*.csv"))[0]
    folder = tmp_path / "seed" / "users_2"
    folder.mkdir(parents=True)
    text = source.read_text(encoding="utf-8")
    # the seed's tmdb_genres column is a Python literal; an unparsable one must not pass
    broken = text.replace("\"['Crime', 'Drama']\"", "\"['Crime', 'Drama'\"", 1)
    assert broken != text
    (folder / source.name).write_text(broken, encoding="utf-8")
    before = snapshot(seed_cohort_database_url)
    with pytest.raises(MalformedFileError) as raised:
        import_dataset(seed_cohort_database_url, tmp_path / "seed")
    assert raised.value.file == f"users_2/{source.name}"
    assert raised.value.line is not None and raised.value.line > 1
    assert "tmdb_genres" in raised.value.reason
    # the reported line holds the broken value
    physical = broken.split("\n")[raised.value.line - 1]
    assert "['Crime', 'Drama'\"" in physical
    assert snapshot(seed_cohort_database_url) == before
