"""Small helpers of the dataset tests: table counts and a full snapshot of the dataset tables."""

from __future__ import annotations

from sqlalchemy import text

from prefshift_common.db import sync_connection

TABLES = ("datasets", "movies", "ratings", "dataset_users")


def counts(url: str, dataset: str) -> dict[str, int]:
    """Rows of one dataset in each table, counted in SQL (not read from the datasets row)."""
    with sync_connection(url) as connection:
        dataset_id = connection.execute(
            text("SELECT id FROM datasets WHERE name = :name"), {"name": dataset}
        ).scalar_one()
        return {
            table: connection.execute(
                text(f"SELECT COUNT(*) FROM {table} WHERE dataset_id = :id"),
                {"id": dataset_id},
            ).scalar_one()
            for table in ("movies", "ratings", "dataset_users")
        }


def snapshot(url: str) -> dict[str, object]:
    """Every table's row count plus a checksum-ish aggregate, to prove nothing changed."""
    with sync_connection(url) as connection:
        state: dict[str, object] = {
            table: connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in TABLES
        }
        state["datasets_rows"] = [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT id, name, fingerprint, n_users, n_movies, n_ratings, imported_at "
                    "FROM datasets ORDER BY id"
                )
            )
        ]
        state["rating_sum"] = tuple(
            connection.execute(
                text("SELECT SUM(rating), SUM(user_id), SUM(movielens_id) FROM ratings")
            ).one()
        )
        return state
