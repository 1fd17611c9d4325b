"""Title resolution on a labelled set of real, near-miss and invented titles (generated from the
shared datasets, see :mod:`tests.titles.labelled_set`): the recommender's resolver over the
``ml-latest-small`` catalogue, then the real tmdb-proxy app (offline, 17,666 imported records
plus the dataset) over ASGI.

The rules under test do not depend on the database, so this runs in the SQLite pass only (the
proxy's reads are tested on both databases in ``tests/tmdb_proxy``). ``benchmarks/
title_resolution.py`` prints the same figures on a larger set."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prefshift_common.db import create_sync_db_engine
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender.catalog import Catalog
from prefshift_recommender.repository import DatasetRef, dataset_id, load_movie_rows
from prefshift_recommender.resolver import TitleResolver
from tests.titles.labelled_set import labelled_titles, tally
from tests.tmdb_proxy.conftest import make_proxy_factory

# reads its catalogue from a database, but resolves titles the same way on either
pytestmark = pytest.mark.sqlite_only


def load_catalog(engine: Engine, name: str) -> Catalog:
    with engine.connect() as connection:
        ref = DatasetRef(id=dataset_id(connection, name), name=name, fingerprint="test")
        return Catalog.from_rows(ref, load_movie_rows(connection, ref.id))


@pytest.mark.slow
async def test_invented_titles_are_dropped_and_real_ones_resolved(
    ml_small_offline_database_url: str, shared_data: Path
) -> None:
    titles = labelled_titles(shared_data, per_variant=20, seed=0)
    engine = create_sync_db_engine(ml_small_offline_database_url)
    try:
        catalog = load_catalog(engine, "ml-latest-small")
    finally:
        engine.dispose()
    async with make_proxy_factory(ml_small_offline_database_url)() as proxy:
        resolver = TitleResolver(catalog, TmdbProxyClient(proxy))
        found = await asyncio.gather(*(resolver.resolve(t.title, t.year) for t in titles))
    ids = [movie.tmdb_id if movie is not None else None for movie in found]
    tallies = tally(titles, ids)
    print("\n" + "\n".join(counts.row(name) for name, counts in tallies.items()))
    wrong = [(t, i) for t, i in zip(titles, ids, strict=True) if i is not None and i != t.expected]
    assert len(titles) > 300
    assert tallies["invented"].wrong / tallies["invented"].total < 0.01, wrong
    assert tallies["all"].wrong / tallies["all"].total < 0.01, wrong
    assert resolver.dropped == sum(i is None for i in ids)
    assert tallies["real"].resolved / tallies["real"].total >= 0.95, [
        t for t, i in zip(titles, ids, strict=True) if t.label == "real" and i != t.expected
    ]
