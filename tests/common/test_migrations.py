"""The one Alembic history upgrades from empty to head and back down, on SQLite and Postgres."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from prefshift import migrate
from prefshift_common.db import Base, sync_url


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_creates_every_model_table_and_downgrade_removes_them(
    empty_database_url: str,
) -> None:
    migrate.upgrade(empty_database_url)
    import prefshift_datasets.models  # noqa: F401

    assert set(Base.metadata.tables) <= _tables(empty_database_url)
    migrate.downgrade(empty_database_url, "base")
    assert _tables(empty_database_url) == set()
    migrate.upgrade(empty_database_url)
    assert set(Base.metadata.tables) <= _tables(empty_database_url)
