"""Read access to imported datasets, the one place services and tools query them: records
(:mod:`.records`), synchronous loaders for threads and CLIs (:mod:`.loaders`) and asynchronous
reads for the services (:mod:`.reads`), gathered under one name."""

from __future__ import annotations

from prefshift_datasets.loaders import (
    all_datasets,
    get_all_datasets,
    get_dataset,
    get_dataset_by_id,
    load_movies,
    load_rating_arrays,
    load_ratings,
    load_users,
    rating_arrays,
)
from prefshift_datasets.reads import (
    choose_dataset,
    find_dataset,
    find_dataset_by_id,
    find_user,
    known_users,
    list_datasets,
    list_users,
    movies_by_tmdb_ids,
    search_movies_by_title,
    usable_movie_counts,
    user_movies,
    user_ratings,
)
from prefshift_datasets.records import (
    DatasetInfo,
    DatasetUserInfo,
    MovieRecord,
    RatingArrays,
    UserRating,
)

__all__ = [
    "DatasetInfo",
    "DatasetUserInfo",
    "MovieRecord",
    "RatingArrays",
    "UserRating",
    "all_datasets",
    "choose_dataset",
    "find_dataset",
    "find_dataset_by_id",
    "find_user",
    "get_all_datasets",
    "get_dataset",
    "get_dataset_by_id",
    "known_users",
    "list_datasets",
    "list_users",
    "load_movies",
    "load_rating_arrays",
    "load_ratings",
    "load_users",
    "movies_by_tmdb_ids",
    "rating_arrays",
    "search_movies_by_title",
    "usable_movie_counts",
    "user_movies",
    "user_ratings",
]
