"""Response shapes of the tmdb-proxy's own routes and of TMDB's that are not shared contracts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TmdbStatus(BaseModel):
    """TMDB's error body, e.g. 404 ``{"success": false, "status_code": 34, ...}``."""

    success: bool = False
    status_code: int = Field(examples=[34])
    status_message: str = Field(examples=["The resource you requested could not be found."])


class TmdbObject(BaseModel):
    """A TMDB answer passed through in TMDB's shape (see TMDB's documentation of the path)."""

    model_config = ConfigDict(extra="allow")


class TmdbPage(TmdbObject):
    """TMDB's paged list: 20 items a page, at most 500 pages."""

    page: int
    results: list[dict[str, Any]]
    total_pages: int
    total_results: int


class FindResults(TmdbObject):
    """``/3/find/{external_id}``: what the id names, by kind."""

    movie_results: list[dict[str, Any]]
    person_results: list[dict[str, Any]]
    tv_results: list[dict[str, Any]]
    tv_episode_results: list[dict[str, Any]]
    tv_season_results: list[dict[str, Any]]


class GenreList(TmdbObject):
    """``/3/genre/movie/list``."""

    genres: list[dict[str, Any]]


NOT_FOUND = TmdbStatus(
    status_code=34, status_message="The resource you requested could not be found."
)


class CacheStats(BaseModel):
    """Cache contents (from the database) and traffic counters (this process, since start)."""

    mode: Literal["online", "offline"] = Field(
        description="online: a TMDB credential is set; offline: imported records and datasets."
    )
    entries: int = Field(description="Cache rows (TMDB answers, including remembered 404s).")
    not_found_entries: int
    expired_entries: int
    memo_entries: int = Field(description="Answers held in this process's memory (LRU).")
    offline_records: int = Field(description="Records imported with `prefshift data import-tmdb`.")
    hits: int = Field(description="Ids served without asking TMDB.")
    misses: int = Field(description="Ids the cache did not hold fresh.")
    stale_served: int = Field(
        description="Ids served from an expired cached copy because TMDB did not answer in time."
    )
    fallback_served: int = Field(
        description="Ids served from imported records or the datasets' own movies because TMDB "
        "did not answer in time or the request's fetch budget was spent."
    )
    deferred: int = Field(description="Ids left out: no copy, and TMDB did not answer in time.")
    refresh_queue: int = Field(description="Ids waiting for a background refresh.")
    refreshed: int = Field(description="Ids the background refresher fetched.")
    upstream_calls: int = Field(description="HTTP requests sent to TMDB, retries included.")
    upstream_errors: int = Field(
        description="TMDB answers that were errors (429, 5xx, 401, timeouts)."
    )
    upstream_retries: int
    rate_limit_waits: int = Field(description="Upstream requests that waited for the rate limit.")
    search_index_size: int = Field(description="Movies in the offline title index (0 until built).")
