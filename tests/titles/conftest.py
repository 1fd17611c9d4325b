"""The titles tests use the tmdb-proxy tests' database: ``ml-latest-small`` plus
``tmdb-offline/movies.jsonl`` imported."""

from tests.tmdb_proxy.conftest import (  # noqa: F401
    ml_small_offline_database_url,
    ml_small_offline_template,
)
