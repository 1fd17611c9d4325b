"""The dataset reads of the embedded persona (the LLM call records are the shared LLM
client's, :mod:`prefshift_common.llm.store`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, select

from prefshift_datasets.models import Movie as MovieRow
from prefshift_datasets.models import Rating as RatingRow

# --- dataset reads the embedded persona needs (datasets.repository has no equivalent) ----------

_RATINGS_CHUNK = 500_000


@dataclass(frozen=True, slots=True)
class RatingTriples:
    """Every rating of a dataset on a movie with a TMDB id, as three parallel arrays."""

    user_ids: npt.NDArray[np.int64]
    tmdb_ids: npt.NDArray[np.int64]
    ratings: npt.NDArray[np.float64]


def rating_triples(connection: Connection, dataset_id: int) -> RatingTriples:
    """(user, TMDB id, rating) of every rating, read in chunks of plain tuples.

    ``prefshift_datasets.repository.load_ratings`` returns the same rows, but turning SQLAlchemy
    rows into numpy costs it about 5 s per 100,000 ratings; tuples cost a tenth of that, which is
    the simulator's start-up time on the seed cohort.
    """
    query = (
        select(RatingRow.user_id, MovieRow.tmdb_id, RatingRow.rating)
        .join(
            MovieRow,
            and_(
                MovieRow.dataset_id == RatingRow.dataset_id,
                MovieRow.movielens_id == RatingRow.movielens_id,
            ),
        )
        .where(RatingRow.dataset_id == dataset_id, MovieRow.tmdb_id.is_not(None))
    )
    blocks: list[npt.NDArray[np.float64]] = []
    result = connection.execution_options(stream_results=True, yield_per=_RATINGS_CHUNK).execute(
        query
    )
    for partition in result.partitions():
        blocks.append(np.array([tuple(row) for row in partition], dtype=np.float64))
    table = np.concatenate(blocks) if blocks else np.zeros((0, 3))
    return RatingTriples(
        user_ids=table[:, 0].astype(np.int64),
        tmdb_ids=table[:, 1].astype(np.int64),
        ratings=table[:, 2],
    )
