"""Asynchronous reads of imported datasets for the services: datasets, a user's ratings and
movies, users and their counts. Read-only; the dataset tables belong to the importer.

The default-dataset rule lives here (:func:`choose_dataset`) so every service answers the same
way when a request names no dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.errors import Conflict, NotFound, Unprocessable
from prefshift_common.movies import split_movielens_genres
from prefshift_datasets.models import Dataset, DatasetUser, Movie, Rating
from prefshift_datasets.records import (
    DatasetInfo,
    DatasetUserInfo,
    MovieRecord,
    UserRating,
    dataset_info,
    movie_record,
)

_MAX_IDS_PER_QUERY = 5_000


async def find_dataset(session: AsyncSession, name: str) -> DatasetInfo | None:
    """The dataset called ``name``, or None."""
    row = (
        await session.execute(select(Dataset.__table__).where(Dataset.name == name))
    ).one_or_none()
    return dataset_info(row) if row is not None else None


async def find_dataset_by_id(session: AsyncSession, dataset_id: int) -> DatasetInfo | None:
    """The dataset with this id, or None."""
    row = (
        await session.execute(select(Dataset.__table__).where(Dataset.id == dataset_id))
    ).one_or_none()
    return dataset_info(row) if row is not None else None


async def list_datasets(session: AsyncSession) -> list[DatasetInfo]:
    """Every imported dataset, by name."""
    rows = (await session.execute(select(Dataset.__table__).order_by(Dataset.name))).all()
    return [dataset_info(row) for row in rows]


async def user_ratings(session: AsyncSession, dataset_id: int, user_id: int) -> list[UserRating]:
    """All ratings of one user of a dataset with their movies, ordered by MovieLens id.

    Empty when the dataset has no such user (see :func:`find_user` to tell the two apart).
    """
    rows = (
        await session.execute(
            select(Rating.rating, Movie)
            .join(
                Movie,
                and_(
                    Movie.dataset_id == Rating.dataset_id,
                    Movie.movielens_id == Rating.movielens_id,
                ),
            )
            .where(Rating.dataset_id == dataset_id, Rating.user_id == user_id)
            .order_by(Rating.movielens_id)
        )
    ).all()
    return [
        UserRating(
            movielens_id=movie.movielens_id,
            tmdb_id=movie.tmdb_id,
            title=movie.title,
            year=movie.year,
            genres=split_movielens_genres(movie.genres),
            tmdb_genres=tuple(movie.tmdb_genres or ()),
            overview=movie.overview,
            rating=float(rating),
        )
        for rating, movie in rows
    ]


async def movies_by_tmdb_ids(
    session: AsyncSession, dataset_id: int | None, tmdb_ids: Iterable[int]
) -> dict[int, MovieRecord]:
    """Movies by TMDB id, in one dataset or (``dataset_id=None``) in any.

    When several movies share a TMDB id (MovieLens has a few duplicates, and datasets overlap),
    the one with TMDB metadata wins, then the lowest dataset id and MovieLens id. Ids that no
    movie has are absent from the result.
    """
    wanted = sorted(set(tmdb_ids))
    found: dict[int, MovieRecord] = {}
    for start in range(0, len(wanted), _MAX_IDS_PER_QUERY):
        batch = wanted[start : start + _MAX_IDS_PER_QUERY]
        query = select(Movie).where(Movie.tmdb_id.in_(batch))
        if dataset_id is not None:
            query = query.where(Movie.dataset_id == dataset_id)
        query = query.order_by(
            Movie.tmdb_id,
            Movie.overview.is_(None),
            Movie.dataset_id,
            Movie.movielens_id,
        )
        for movie in (await session.scalars(query)).all():
            assert movie.tmdb_id is not None
            found.setdefault(movie.tmdb_id, movie_record(movie))
    return found


async def search_movies_by_title(
    session: AsyncSession,
    query: str,
    *,
    dataset_id: int | None = None,
    year: int | None = None,
    limit: int = 10,
) -> list[MovieRecord]:
    """Movies whose title contains ``query`` (case-insensitive), most-voted first.

    A plain substring match over the movies table (tens of thousands of rows): good enough to
    resolve an LLM's title offline; tmdb-proxy's search is the real one.
    """
    needle = query.strip().lower()
    if not needle:
        return []
    statement = select(Movie).where(
        func.lower(Movie.title).contains(needle, autoescape=True),
        Movie.tmdb_id.is_not(None),
    )
    if dataset_id is not None:
        statement = statement.where(Movie.dataset_id == dataset_id)
    if year is not None:
        statement = statement.where(or_(Movie.year == year, Movie.year.is_(None)))
    statement = statement.order_by(
        Movie.tmdb_vote_count.is_(None),
        Movie.tmdb_vote_count.desc(),
        func.length(Movie.title),
        Movie.dataset_id,
        Movie.movielens_id,
    ).limit(limit)
    return [movie_record(movie) for movie in (await session.scalars(statement)).all()]


async def list_users(
    session: AsyncSession,
    dataset_id: int,
    min_ratings: int | None = None,
    max_ratings: int | None = None,
    *,
    archetype: str | None = None,
) -> list[DatasetUserInfo]:
    """Users of a dataset, optionally with ``min_ratings ≤ n_ratings ≤ max_ratings``, by id."""
    statement = select(DatasetUser).where(DatasetUser.dataset_id == dataset_id)
    if min_ratings is not None:
        statement = statement.where(DatasetUser.n_ratings >= min_ratings)
    if max_ratings is not None:
        statement = statement.where(DatasetUser.n_ratings <= max_ratings)
    if archetype is not None:
        statement = statement.where(DatasetUser.archetype == archetype)
    users: Sequence[DatasetUser] = (
        await session.scalars(statement.order_by(DatasetUser.user_id))
    ).all()
    return [
        DatasetUserInfo(
            user_id=user.user_id,
            n_ratings=user.n_ratings,
            mean_rating=user.mean_rating,
            archetype=user.archetype,
        )
        for user in users
    ]


async def find_user(session: AsyncSession, dataset_id: int, user_id: int) -> DatasetUserInfo | None:
    """One user of a dataset, or None when the dataset has no such user."""
    user = await session.get(DatasetUser, (dataset_id, user_id))
    if user is None:
        return None
    return DatasetUserInfo(
        user_id=user.user_id,
        n_ratings=user.n_ratings,
        mean_rating=user.mean_rating,
        archetype=user.archetype,
    )


async def user_movies(session: AsyncSession, dataset_id: int, user_id: int) -> list[UserRating]:
    """The user's rated movies that have a TMDB id, one per TMDB id (the lowest MovieLens id
    wins): what the protocol can show and ask about."""
    movies: dict[int, UserRating] = {}
    for rating in await user_ratings(session, dataset_id, user_id):
        if rating.tmdb_id is not None:
            movies.setdefault(rating.tmdb_id, rating)
    return list(movies.values())


async def known_users(session: AsyncSession, dataset_id: int, user_ids: Sequence[int]) -> set[int]:
    """Which of ``user_ids`` the dataset has."""
    known: set[int] = set()
    for start in range(0, len(user_ids), _MAX_IDS_PER_QUERY):
        chunk = list(user_ids[start : start + _MAX_IDS_PER_QUERY])
        known.update(
            await session.scalars(
                select(DatasetUser.user_id).where(
                    DatasetUser.dataset_id == dataset_id, DatasetUser.user_id.in_(chunk)
                )
            )
        )
    return known


async def usable_movie_counts(
    session: AsyncSession, dataset_id: int, user_ids: Sequence[int]
) -> dict[int, int]:
    """How many distinct movies with a TMDB id each user rated (what the protocol can use);
    users with none are absent. One query per thousand users."""
    counts: dict[int, int] = {}
    for start in range(0, len(user_ids), 1000):
        chunk = list(user_ids[start : start + 1000])
        statement = (
            select(Rating.user_id, func.count(func.distinct(Movie.tmdb_id)))
            .select_from(Rating)
            .join(
                Movie,
                and_(
                    Movie.dataset_id == Rating.dataset_id,
                    Movie.movielens_id == Rating.movielens_id,
                ),
            )
            .where(
                Rating.dataset_id == dataset_id,
                Rating.user_id.in_(chunk),
                Movie.tmdb_id.is_not(None),
            )
            .group_by(Rating.user_id)
        )
        counts.update({int(u): int(n) for u, n in await session.execute(statement)})
    return counts


async def choose_dataset(
    session: AsyncSession, requested: str | None, *, default: str | None, setting: str
) -> DatasetInfo:
    """The dataset a request means: the one it names, else the configured ``default`` (the
    ``setting``, named in the error), else the only one imported.

    - a named dataset that is not imported: :class:`NotFound` (404);
    - no dataset imported at all: :class:`Conflict` (409) — the request is fine, the service
      is not ready for it; the same request succeeds after ``prefshift data import``;
    - several imported and none named: :class:`Unprocessable` (422).
    """
    name = requested or default
    if name:
        found = await find_dataset(session, name)
        if found is None:
            raise NotFound(f"dataset {name!r} is not imported (see `prefshift data list`)")
        return found
    datasets = await list_datasets(session)
    if not datasets:
        raise Conflict("no dataset is imported yet: run `prefshift data import <path>` first")
    if len(datasets) > 1:
        names = ", ".join(dataset.name for dataset in datasets)
        raise Unprocessable(
            f"several datasets are imported ({names}): name one in 'dataset' or set {setting}"
        )
    return datasets[0]
