"""Importing the real datasets: counts, metadata, idempotency, zips, the ml-32m layout."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

from prefshift_common.db import sync_connection
from prefshift_datasets.errors import DatasetConflictError, DatasetError
from prefshift_datasets.importer import ImportProgress, import_dataset
from tests.datasets.helpers import counts, snapshot


def test_ml_latest_small_counts(ml_small_database_url: str) -> None:
    assert counts(ml_small_database_url, "ml-latest-small") == {
        "movies": 9_742,
        "ratings": 100_836,
        "dataset_users": 610,
    }
    with sync_connection(ml_small_database_url) as connection:
        row = connection.execute(
            text(
                "SELECT n_ratings, n_movies, n_users, has_tmdb_metadata FROM datasets "
                "WHERE name = 'ml-latest-small'"
            )
        ).one()
        assert tuple(row) == (100_836, 9_742, 610, False)
        toy_story = connection.execute(
            text("SELECT tmdb_id, imdb_id, title, year, genres FROM movies WHERE movielens_id = 1")
        ).one()
        assert tuple(toy_story) == (
            862,
            "0114709",
            "Toy Story (1995)",
            1995,
            "Adventure|Animation|Children|Comedy|Fantasy",
        )
        # links.csv leaves 8 movies without a TMDB id: NULL, not 0
        assert (
            connection.execute(
                text("SELECT COUNT(*) FROM movies WHERE tmdb_id IS NULL")
            ).scalar_one()
            == 8
        )
        user_1 = connection.execute(
            text("SELECT n_ratings, mean_rating FROM dataset_users WHERE user_id = 1")
        ).one()
        assert user_1.n_ratings == 232
        assert user_1.mean_rating == pytest.approx(4.366379, abs=1e-5)
        stamp = connection.execute(
            text("SELECT timestamp FROM ratings WHERE user_id = 1 AND movielens_id = 1")
        ).scalar_one()
        assert stamp == 964982703


def test_seed_cohort_counts_tmdb_fields_and_archetypes(seed_cohort_database_url: str) -> None:
    url = seed_cohort_database_url
    assert counts(url, "seed-cohort") == {
        "movies": 17_357,
        "ratings": 100_630,
        "dataset_users": 150,
    }
    with sync_connection(url) as connection:
        # every movie carries its TMDB record (9 have an empty TMDB overview: "", not NULL)
        missing = connection.execute(
            text(
                "SELECT COUNT(*) FROM movies WHERE overview IS NULL OR tmdb_genres IS NULL "
                "OR tmdb_id IS NULL OR tmdb_vote_count IS NULL"
            )
        ).scalar_one()
        assert missing == 0
        assert (
            connection.execute(
                text("SELECT COUNT(*) FROM movies WHERE overview <> ''")
            ).scalar_one()
            == 17_348
        )
        seven = connection.execute(
            text(
                "SELECT tmdb_id, year, tmdb_vote_count, tmdb_vote_average, overview "
                "FROM movies WHERE movielens_id = 47"
            )
        ).one()
        assert (seven.tmdb_id, seven.year) == (807, 1995)
        assert seven.overview.startswith("Two homicide detectives")
        archetypes = dict(
            connection.execute(
                text("SELECT archetype, COUNT(*) FROM dataset_users GROUP BY archetype")
            ).all()
        )
        assert archetypes == {"Specialist": 90, "Explorer": 37, "Generalist": 23}
        bounds = connection.execute(
            text("SELECT MIN(n_ratings), MAX(n_ratings) FROM dataset_users")
        ).one()
        assert bounds[0] >= 400 and bounds[1] <= 2_500


def test_second_import_changes_nothing(ml_small_database_url: str, shared_data: Path) -> None:
    before = snapshot(ml_small_database_url)
    result = import_dataset(ml_small_database_url, shared_data / "ml-latest-small")
    assert result.created is False
    assert (result.n_ratings, result.n_movies, result.n_users) == (100_836, 9_742, 610)
    assert snapshot(ml_small_database_url) == before


def test_zip_of_the_same_folder_is_the_same_dataset(
    ml_small_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for file in (shared_data / "ml-latest-small").iterdir():
            zipped.write(file, f"ml-latest-small/{file.name}")
    before = snapshot(ml_small_database_url)
    result = import_dataset(ml_small_database_url, archive)
    assert result.name == "ml-latest-small"
    assert result.created is False
    assert snapshot(ml_small_database_url) == before


def test_different_content_under_an_existing_name_is_refused(
    ml_small_database_url: str, tmp_path: Path
) -> None:
    folder = _tiny_movielens(tmp_path / "tiny")
    before = snapshot(ml_small_database_url)
    with pytest.raises(DatasetConflictError, match="ml-latest-small"):
        import_dataset(ml_small_database_url, folder, name="ml-latest-small")
    assert snapshot(ml_small_database_url) == before
    replaced = import_dataset(ml_small_database_url, folder, name="ml-latest-small", replace=True)
    assert replaced.created and replaced.replaced
    assert counts(ml_small_database_url, "ml-latest-small") == {
        "movies": 3,
        "ratings": 4,
        "dataset_users": 2,
    }


def _tiny_movielens(folder: Path, *, ratings: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation\n"
        '2,"American President, The (1995)",Comedy|Drama|Romance\n'
        "3,Some Show (2006–2007),(no genres listed)\n"
    )
    (folder / "links.csv").write_text(
        "movieId,imdbId,tmdbId\n1,0114709,862\n2,0112346,9087.0\n3,,\n"
    )
    (folder / "ratings.csv").write_text(
        ratings
        or "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964982704\n"
        "2,1,5.0,964982705\n2,3,0.5,964982706\n"
    )
    return folder


def test_ml_32m_layout_in_a_zip_subfolder(database_url: str, tmp_path: Path) -> None:
    folder = _tiny_movielens(tmp_path / "src")
    archive = tmp_path / "ml-32m.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in folder.iterdir():
            zipped.write(file, f"ml-32m/{file.name}")
        zipped.writestr("ml-32m/README.txt", "synthetic")
        zipped.writestr("ml-32m/tags.csv", "userId,movieId,tag,timestamp\n1,1,fun,1\n")
    events: list[ImportProgress] = []
    result = import_dataset(database_url, archive, progress=events.append)
    assert result.name == "ml-32m"
    assert (result.n_ratings, result.n_movies, result.n_users) == (4, 3, 2)
    assert events[-1].stage == "done"
    assert any(event.stage == "ratings" and event.done == event.total for event in events)
    with sync_connection(database_url) as connection:
        movies = connection.execute(
            text("SELECT movielens_id, tmdb_id, year, title FROM movies ORDER BY movielens_id")
        ).all()
    assert [tuple(movie) for movie in movies] == [
        (1, 862, 1995, "Toy Story (1995)"),
        (2, 9087, 1995, "American President, The (1995)"),
        (3, None, 2006, "Some Show (2006–2007)"),
    ]


def test_per_user_files_alone_make_a_dataset(
    database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "two-users" / "users_1"
    folder.mkdir(parents=True)
    originals = sorted((shared_data / "seed-cohort" / "users_1").glob("movies_enriched-user*.csv"))
    for file in originals[:2]:
        (folder / file.name).write_bytes(file.read_bytes())
    expected = sum(len(file.read_text().splitlines()) for file in originals[:2])
    result = import_dataset(database_url, tmp_path / "two-users")
    assert result.name == "two-users"
    assert result.n_users == 2
    # rows of quoted multi-line overviews would make this smaller than the line count
    assert 0 < result.n_ratings <= expected - 2
    with sync_connection(database_url) as connection:
        assert (
            connection.execute(
                text("SELECT COUNT(*) FROM movies WHERE overview IS NULL")
            ).scalar_one()
            == 0
        )
        assert connection.execute(text("SELECT has_tmdb_metadata FROM datasets")).scalar_one()


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "../etc", "-dash"])
def test_invalid_names_are_refused(database_url: str, tmp_path: Path, name: str) -> None:
    folder = _tiny_movielens(tmp_path / "tiny")
    with pytest.raises(DatasetError, match="invalid dataset name"):
        import_dataset(database_url, folder, name=name)


def test_a_path_without_a_dataset_is_refused(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DatasetError, match="no dataset found"):
        import_dataset(database_url, tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        import_dataset(database_url, tmp_path / "missing")
