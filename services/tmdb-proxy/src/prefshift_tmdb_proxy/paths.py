"""TMDB's movie paths beyond plain details: ``append_to_response`` and the sub-resources,
``/3/find``, ``/3/genre/movie/list``, ``/3/configuration``, ``/3/discover/movie`` and the movie
lists (``popular``, ``top_rated``, ``now_playing``, ``upcoming``, ``latest``).

Online, the client's parameters (``language``, ``region``, …; never its ``api_key``) go to TMDB
as they are, and the answer is kept in memory, keyed by path and parameters (so by language
too); an appended answer is kept whole and each part under its own path, so that a later
``/3/movie/{id}/credits`` in the same language is a hit. When TMDB does not answer in time the
offline source answers instead. Offline (or as that fallback), the imported records and the
datasets' movies answer (:mod:`prefshift_tmdb_proxy.catalog`); a part no record holds is TMDB's
empty shape. Plain details (``GET /3/movie/{id}`` in the default language) stay on the
database cache of :class:`~prefshift_tmdb_proxy.service.MovieService`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.app import freeze_long_lived
from prefshift_common.errors import NotFound, ServiceError
from prefshift_common.movies import TMDB_GENRES
from prefshift_tmdb_proxy import repository
from prefshift_tmdb_proxy.catalog import Catalog, window
from prefshift_tmdb_proxy.service import MovieService
from prefshift_tmdb_proxy.shapes import (
    EMPTY_PARTS,
    MAX_APPENDED,
    PAGED,
    TMDB_STATUS,
    details,
    page_of,
    part,
)
from prefshift_tmdb_proxy.upstream import TmdbClient, TmdbUnavailable

log = structlog.get_logger(__name__)

#: The language TMDB answers in when none is asked for: what the database cache holds.
DEFAULT_LANGUAGES: Final = (None, "", "en", "en-US")
#: TMDB's image configuration (``GET /3/configuration``), as TMDB serves it.
CONFIGURATION: Final[dict[str, Any]] = {
    "images": {
        "base_url": "http://image.tmdb.org/t/p/",
        "secure_base_url": "https://image.tmdb.org/t/p/",
        "backdrop_sizes": ["w300", "w780", "w1280", "original"],
        "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
        "poster_sizes": ["w92", "w154", "w185", "w342", "w500", "w780", "original"],
        "profile_sizes": ["w45", "w185", "h632", "original"],
        "still_sizes": ["w92", "w185", "w300", "original"],
    },
    "change_keys": [
        "adult", "air_date", "also_known_as", "alternative_titles", "biography", "birthday",
        "budget", "cast", "certifications", "character_names", "created_by", "crew", "deathday",
        "episode", "episode_number", "episode_run_time", "freebase_id", "freebase_mid",
        "general", "genres", "guest_stars", "homepage", "images", "imdb_id", "languages",
        "name", "network", "origin_country", "original_name", "original_title", "overview",
        "parts", "place_of_birth", "plot_keywords", "production_code", "production_companies",
        "production_countries", "releases", "revenue", "runtime", "season", "season_number",
        "season_regular", "spoken_languages", "status", "tagline", "title", "translations",
        "tvdb_id", "tvrage_id", "type", "video", "videos",
    ],
}  # fmt: skip
#: The movie lists of ``/3/movie/{list}``.
LISTS: Final = ("popular", "top_rated", "now_playing", "upcoming")
#: External id sources ``/3/find`` knows; offline only IMDb ids can be found.
FIND_RESULTS: Final = (
    "movie_results",
    "person_results",
    "tv_results",
    "tv_episode_results",
    "tv_season_results",
)


class TmdbStatusError(ServiceError):
    """A request TMDB itself would refuse, with TMDB's status code (e.g. 27: more than 20
    ``append_to_response`` parts)."""

    status_code = 400
    code = "tmdb_bad_request"
    description = "TMDB would refuse the request (its status_code says why)."

    def __init__(self, tmdb_code: int, detail: str | None = None) -> None:
        message = TMDB_STATUS[tmdb_code][1]
        super().__init__(detail or message)
        self.tmdb_code = tmdb_code  # the TMDB paths answer with its status (see shapes)


@dataclass(frozen=True)
class Reply:
    """A TMDB-shaped answer and where it came from (``tmdb``, ``offline`` or ``movielens``)."""

    body: dict[str, Any]
    source: str


def appended(value: str | None) -> list[str]:
    """``append_to_response``'s names, each once, in order; more than 20 is TMDB's 27."""
    names = list(dict.fromkeys(n.strip() for n in (value or "").split(",") if n.strip()))
    if len(names) > MAX_APPENDED:
        raise TmdbStatusError(27)
    return names


def is_plain(params: Mapping[str, str]) -> bool:
    """Whether a details request is the one the database cache holds (default language,
    nothing appended, no other parameter)."""
    return (
        not params.get("append_to_response")
        and set(params) <= {"language"}
        and (params.get("language") in DEFAULT_LANGUAGES)
    )


class TmdbPaths:
    """One per process, beside the :class:`MovieService` whose records it reuses."""

    def __init__(
        self,
        *,
        movies: MovieService,
        client: TmdbClient | None,
        sessions: async_sessionmaker[AsyncSession],
        cache_size: int,
        cache_ttl_s: float,
        refresh_s: float,
        deadline_s: float,
    ) -> None:
        self._movies = movies
        self._client = client
        self._sessions = sessions
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, Any]] = (
            OrderedDict()
        )
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl_s
        self._refresh = refresh_s
        self._deadline = deadline_s
        self._catalog: Catalog | None = None
        self._catalog_signature: tuple[Any, ...] | None = None
        self._catalog_checked = -math.inf
        self._catalog_lock = asyncio.Lock()

    # --- online ---------------------------------------------------------------------------------

    def _cached(self, path: str, params: Mapping[str, str]) -> tuple[bool, Any]:
        key = (path, tuple(sorted(params.items())))
        entry = self._cache.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return False, None
        self._cache.move_to_end(key)
        return True, entry[1]

    def _keep(self, path: str, params: Mapping[str, str], body: Any) -> None:
        if self._cache_size <= 0:
            return
        key = (path, tuple(sorted(params.items())))
        self._cache[key] = (time.monotonic() + self._cache_ttl, body)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _online(
        self,
        path: str,
        params: Mapping[str, str],
        offline: Callable[[], Awaitable[Reply]],
    ) -> Reply:
        """TMDB's answer (kept in memory), else — no key, TMDB unavailable or slower than the
        request deadline — the offline answer."""
        if self._client is None:
            return await offline()
        known, body = self._cached(path, params)
        if not known:
            try:
                async with asyncio.timeout(self._deadline):
                    body = await self._client.get_json(path, params)
            except (TmdbUnavailable, TimeoutError) as exc:
                log.info("tmdb_path_offline", path=path, reason=type(exc).__name__)
                return await offline()
            self._keep(path, params, body)
        if body is None:
            raise NotFound(f"TMDB does not know {path}")
        return Reply(body, "tmdb")

    # --- details and parts ----------------------------------------------------------------------

    async def details(self, tmdb_id: int, params: Mapping[str, str]) -> Reply:
        """Details with ``append_to_response`` and/or a language (plain details are the
        :class:`MovieService`'s)."""
        names = appended(params.get("append_to_response"))
        path = f"/3/movie/{tmdb_id}"
        reply = await self._online(path, params, lambda: self._offline_details(tmdb_id, names))
        if reply.source == "tmdb":  # each part is also a sub-resource of its own
            part_params = {k: v for k, v in params.items() if k == "language"}
            for name in names:
                held = reply.body.get(name)
                if isinstance(held, dict):  # alone, a part carries the movie's id (lists do not)
                    alone = held if name in PAGED else {"id": tmdb_id, **held}
                    self._keep(f"{path}/{name}", part_params, alone)
        return reply

    async def part(self, tmdb_id: int, name: str, params: Mapping[str, str]) -> Reply:
        """``/3/movie/{id}/{name}``: a sub-resource."""
        path = f"/3/movie/{tmdb_id}/{name}"
        offline_name = "similar" if name == "similar_movies" else name
        return await self._online(
            path, params, lambda: self._offline_part(tmdb_id, offline_name, params)
        )

    async def _record(self, tmdb_id: int) -> tuple[dict[str, Any], str]:
        found = await self._movies.offline_records([tmdb_id])
        if tmdb_id not in found:
            if self._client is not None:
                raise TmdbUnavailable(f"TMDB did not answer for movie {tmdb_id} in time")
            raise NotFound(f"no record of movie {tmdb_id}")
        return found[tmdb_id]

    async def _offline_details(self, tmdb_id: int, names: list[str]) -> Reply:
        record, source = await self._record(tmdb_id)
        body = details(record)
        for name in names:
            if name in EMPTY_PARTS:
                body[name] = await self._offline_part_of(record, name, {})
        return Reply(body, source)

    async def _offline_part(self, tmdb_id: int, name: str, params: Mapping[str, str]) -> Reply:
        record, source = await self._record(tmdb_id)
        return Reply(await self._offline_part_of(record, name, params), source)

    async def _offline_part_of(
        self, record: dict[str, Any], name: str, params: Mapping[str, str]
    ) -> dict[str, Any]:
        if name in ("similar", "recommendations") and not isinstance(record.get(name), dict):
            catalog = await self.catalog()
            return page_of(catalog.similar(record["id"]), _page(params))
        shaped = part(name, record)
        if name in PAGED:
            shaped["page"] = _page(params)
        return shaped

    # --- lists, discover, find, genres, configuration -------------------------------------------

    async def listing(self, kind: str, params: Mapping[str, str]) -> Reply:
        """``/3/movie/popular``, ``top_rated``, ``now_playing``, ``upcoming``."""

        async def offline() -> Reply:
            catalog = await self.catalog()
            page = _page(params)
            if kind == "popular":
                return Reply(page_of(catalog.popular(), page), "offline")
            if kind == "top_rated":
                return Reply(page_of(catalog.top_rated(), page), "offline")
            first, last = window(kind, date.today())
            body = {
                "dates": {"maximum": last.isoformat(), "minimum": first.isoformat()},
                **page_of(catalog.released_between(first, last), page),
            }
            return Reply(body, "offline")

        return await self._online(f"/3/movie/{kind}", params, offline)

    async def latest(self, params: Mapping[str, str]) -> Reply:
        """``/3/movie/latest``: the movie added last (offline: the highest id known)."""

        async def offline() -> Reply:
            latest = (await self.catalog()).latest()
            if latest is None:
                raise NotFound("no movie is known offline")
            return await self._offline_details(latest, [])

        return await self._online("/3/movie/latest", params, offline)

    async def discover(self, params: Mapping[str, str]) -> Reply:
        """``/3/discover/movie``."""

        async def offline() -> Reply:
            catalog = await self.catalog()
            return Reply(page_of(catalog.discover(params), _page(params)), "offline")

        return await self._online("/3/discover/movie", params, offline)

    async def find(self, external_id: str, params: Mapping[str, str]) -> Reply:
        """``/3/find/{external_id}?external_source=imdb_id``."""

        async def offline() -> Reply:
            body: dict[str, Any] = {name: [] for name in FIND_RESULTS}
            source = params.get("external_source") or "imdb_id"
            if source == "imdb_id":
                item = (await self.catalog()).find_imdb(external_id)
                if item is not None:
                    body["movie_results"] = [item]
            return Reply(body, "offline")

        return await self._online(f"/3/find/{external_id}", params, offline)

    async def genres(self, params: Mapping[str, str]) -> Reply:
        """``/3/genre/movie/list``: TMDB's movie genres (offline in English)."""

        async def offline() -> Reply:
            genres = [{"id": gid, "name": name} for gid, name in TMDB_GENRES.items()]
            return Reply({"genres": genres}, "offline")

        return await self._online("/3/genre/movie/list", params, offline)

    async def configuration(self, params: Mapping[str, str]) -> Reply:
        """``/3/configuration``: where TMDB's images are (offline: TMDB's published values)."""

        async def offline() -> Reply:
            return Reply(json.loads(json.dumps(CONFIGURATION)), "offline")

        return await self._online("/3/configuration", params, offline)

    # --- the offline catalogue ------------------------------------------------------------------

    async def catalog(self) -> Catalog:
        """The offline catalogue, rebuilt when an import or a dataset changes the source
        (checked at most every ``refresh_s``)."""
        fresh = time.monotonic() - self._catalog_checked < self._refresh
        if self._catalog is not None and fresh:
            return self._catalog
        async with self._catalog_lock:
            fresh = time.monotonic() - self._catalog_checked < self._refresh
            if self._catalog is not None and fresh:
                return self._catalog
            async with self._sessions() as session:
                signature = await repository.source_signature(session)
                if self._catalog is None or signature != self._catalog_signature:
                    records = await repository.all_dataset_movies(session)
                    records.update(await repository.all_offline(session))
                    ratings = await repository.rating_counts(session)
                    self._catalog = await asyncio.to_thread(Catalog.build, records, ratings)
                    self._catalog_signature = signature
                    freeze_long_lived()  # full collections must not walk the catalogue
                    log.info("tmdb_catalog_built", movies=len(self._catalog))
            self._catalog_checked = time.monotonic()
            return self._catalog


def _page(params: Mapping[str, str]) -> int:
    value = params.get("page", "1")
    return int(value) if value.isdigit() and 1 <= int(value) <= 500 else 1
