"""The population a dataset's personas take their collaborative statistics from.

By default a persona's movie means and item–item similarities come from the dataset its
user is in, without that user's own ratings. A larger population the dataset's users were
drawn from (MovieLens 32M for the seed cohort) can stand in for it — for
``prefshift persona fidelity`` and ``prefshift eval personas`` (``--reference-dataset``) and
for the simulator service (``PREFSHIFT_SIMULATOR_REFERENCE_DATASETS``) — but only if it holds
the dataset's users under the same ids, so that leaving a persona's user id out still leaves
its own ratings out.
"""

from __future__ import annotations

import pandas as pd

#: The share of a persona dataset's ratings a reference population must hold under the same
#: user ids for its statistics to be trusted to leave each persona's own ratings out.
REFERENCE_MIN_SHARE = 0.99


class ReferencePopulationError(ValueError):
    """A reference dataset that may hold the personas' own ratings under other user ids."""


def check_reference(
    own: pd.DataFrame, theirs: pd.DataFrame, *, dataset: str, reference: str
) -> float:
    """The share of ``own``'s ratings (columns ``user_id``, ``tmdb_id``, ``rating``: the
    persona dataset's) that ``theirs`` (the reference's) holds under the same user id, movie
    and value; raises :class:`ReferencePopulationError` below ``REFERENCE_MIN_SHARE``.

    A reference that holds the persona dataset's users under the same ids keeps the guarantee
    that a persona's own ratings are left out; one that holds them under other ids, or holds
    other people entirely, cannot be shown not to hold the same person twice, so it is
    refused."""
    keys = ["user_id", "tmdb_id"]
    mine = own[[*keys, "rating"]].drop_duplicates(keys)
    other = theirs[[*keys, "rating"]].drop_duplicates(keys)
    if mine.empty:
        return 1.0
    joined = mine.merge(other, on=keys, how="left", suffixes=("", "_reference"))
    share = float((joined["rating"] == joined["rating_reference"]).mean())
    if share < REFERENCE_MIN_SHARE:
        raise ReferencePopulationError(
            f"reference dataset {reference!r} holds {share:.1%} of {dataset!r}'s ratings under "
            f"the same user ids (at least {REFERENCE_MIN_SHARE:.0%} needed): its statistics "
            "could hold a persona's own ratings under another id. Use a dataset that "
            f"{dataset!r}'s users were drawn from (e.g. ml-32m for seed-cohort)."
        )
    return share
