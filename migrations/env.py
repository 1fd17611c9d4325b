"""One Alembic history for every service's tables."""

from __future__ import annotations

from alembic import context

import prefshift_common.llm.models  # noqa: F401  (each import registers its tables)
import prefshift_tmdb_proxy.models  # noqa: F401
from prefshift_common.db import Base, create_sync_db_engine
from prefshift_common.settings import CommonSettings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or CommonSettings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_sync_db_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
