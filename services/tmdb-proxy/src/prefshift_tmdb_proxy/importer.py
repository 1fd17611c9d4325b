"""``prefshift data import-tmdb FILE.jsonl``: stream TMDB-shaped records into the offline table.

Streamed in batches (a 17,666-record file never sits in memory at once) and idempotent: every
batch is one ``INSERT … ON CONFLICT DO UPDATE``, so importing a file twice changes nothing and
importing a newer file replaces the records it holds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from prefshift_common.db import create_sync_db_engine
from prefshift_common.movies import release_year
from prefshift_tmdb_proxy.repository import offline_upsert_statement

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
MAX_INT4 = 2_147_483_647


@dataclass
class ImportSummary:
    """What an import did."""

    lines: int = 0
    imported: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, for the person

    def skip(self, line_number: int, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < 10:
            self.problems.append(f"line {line_number}: {reason}")


def offline_row(record: dict[str, Any]) -> dict[str, Any]:
    """The table row of a TMDB-shaped record (raises ValueError when it is not one)."""
    tmdb_id = record.get("id")
    if not isinstance(tmdb_id, int) or isinstance(tmdb_id, bool) or not 1 <= tmdb_id <= MAX_INT4:
        raise ValueError("'id' is not a TMDB id")
    title = record.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("'title' is missing")
    original_title = record.get("original_title")
    imdb_id = record.get("imdb_id")
    return {
        "tmdb_id": tmdb_id,
        "payload": record,
        "title": title,
        "original_title": original_title if isinstance(original_title, str) else None,
        "year": release_year(record),
        "imdb_id": imdb_id if isinstance(imdb_id, str) and len(imdb_id) <= 16 else None,
    }


#: Columns of the TMDB 5000 movies file that hold TMDB's JSON, and those that are numbers.
_JSON_COLUMNS = ("genres", "production_companies", "production_countries", "spoken_languages")
_NUMBER_COLUMNS = {"budget": int, "revenue": int, "runtime": int, "popularity": float}
_TEXT_COLUMNS = (
    "homepage", "original_language", "original_title", "release_date", "status", "tagline",
)  # fmt: skip


def read_tmdb_5000(path: Path) -> dict[int, dict[str, Any]]:
    """TMDB's fields of the movies of a TMDB 5000 movies file (``tmdb_5000_movies.csv``), by
    id: ``keywords`` (as ``append_to_response=keywords`` answers them), the JSON columns, and
    the numbers and texts the JSON-lines records may lack."""
    csv.field_size_limit(1 << 24)  # the JSON columns are long
    extras: dict[int, dict[str, Any]] = {}
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            if not (row.get("id") or "").isdigit():
                continue
            fields: dict[str, Any] = {"keywords": {"keywords": json.loads(row["keywords"] or "[]")}}
            for column in _JSON_COLUMNS:
                if row.get(column):
                    fields[column] = json.loads(row[column])
            for column, kind in _NUMBER_COLUMNS.items():
                if row.get(column):
                    fields[column] = kind(float(row[column]))
            for column in _TEXT_COLUMNS:
                if row.get(column):
                    fields[column] = row[column]
            extras[int(row["id"])] = fields
    return extras


def with_extras(record: dict[str, Any], extras: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A record with the TMDB 5000 fields it lacks (its own values win)."""
    found = extras.get(record.get("id"))  # type: ignore[arg-type]
    if not found:
        return record
    return {**found, **{k: v for k, v in record.items() if v is not None}}


def _records(
    path: Path, summary: ImportSummary, extras: dict[int, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            summary.lines += 1
            # Postgres cannot store NUL in text or JSONB; such records are refused, not mangled.
            if b"\\u0000" in raw or b"\x00" in raw:
                summary.skip(number, "contains a NUL character")
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                yield offline_row(with_extras(record, extras) if extras else record)
            except ValueError as exc:
                summary.skip(number, str(exc))


def import_tmdb_jsonl(
    database_url: str,
    path: Path,
    *,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    tmdb_5000: Path | None = None,
) -> ImportSummary:
    """Upsert the records of a JSON-lines file; ``on_progress`` gets the records written so far.
    With ``tmdb_5000`` (a ``tmdb_5000_movies.csv``), records of its movies get its keywords and
    the TMDB fields they lack (budget, revenue, companies, countries, languages, …)."""
    summary = ImportSummary()
    extras = read_tmdb_5000(tmdb_5000) if tmdb_5000 is not None else {}
    engine = create_sync_db_engine(database_url)
    try:
        dialect = engine.dialect.name
        batch: dict[int, dict[str, Any]] = {}

        def flush() -> None:
            if not batch:
                return
            # One statement per batch; ids are unique within it (ON CONFLICT needs that).
            with engine.begin() as connection:
                connection.execute(offline_upsert_statement(dialect, list(batch.values())))
            summary.imported += len(batch)
            batch.clear()
            if on_progress is not None:
                on_progress(summary.imported)

        for row in _records(path, summary, extras):
            batch[row["tmdb_id"]] = row
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        engine.dispose()
    log.info("tmdb_import_done", path=str(path), imported=summary.imported, skipped=summary.skipped)
    return summary
