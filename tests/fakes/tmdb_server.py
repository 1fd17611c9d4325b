"""A fake TMDB v3 API on loopback, answering from ``../shared/data/tmdb-offline/movies.jsonl``
in TMDB's own shapes, with switchable failures and a request log.

    fake = FakeTmdb(api_key="test-key")             # or read_token="..."; neither: no auth check
    with fake.serve() as base_url:                  # "http://127.0.0.1:PORT" (TMDB_API_BASE_URL)
        ...
        fake.fail(429, retry_after=1, count=10)     # the next 10 requests answer 429
        fake.fail(500)                              # every request answers 500 until healthy()
        fake.delay = 0.5                            # answer slowly
        fake.stop(); fake.start()                   # down (connection refused), up on the same port
        fake.count("/3/movie/603"), fake.total, fake.times()   # what the proxy asked

Paths: ``GET /3/movie/{id}`` (unknown id → 404 ``status_code`` 34; ``append_to_response`` and
``language``, which marks the title), its sub-resources (``/credits`` has one made-up actor so a
test can tell TMDB's answer; ``/keywords`` from the TMDB 5000 file), ``/3/movie/popular``,
``top_rated``, ``now_playing``, ``upcoming``, ``latest``, ``/3/discover/movie`` (``with_genres``,
``primary_release_year``), ``/3/find/{imdb_id}``, ``/3/genre/movie/list``, ``/3/configuration``
and ``GET /3/search/movie?query=&year=&page=`` (case-insensitive substring of the title, year as
a filter, 20 per page). Auth like TMDB: ``?api_key=`` or ``Authorization: Bearer``; wrong → 401
``status_code`` 7. ``rate_limit=40`` makes it enforce TMDB's limit itself (429 ``status_code`` 25).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.live import LiveServer, free_port

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared/data"
MOVIES_JSONL = SHARED_DATA / "tmdb-offline/movies.jsonl"
TMDB_5000 = SHARED_DATA / "tmdb-5000/tmdb_5000_movies.csv"

_DETAIL_DEFAULTS: dict[str, Any] = {
    "adult": False,
    "backdrop_path": None,
    "belongs_to_collection": None,
    "budget": 0,
    "homepage": "",
    "origin_country": [],
    "production_companies": [],
    "production_countries": [],
    "revenue": 0,
    "spoken_languages": [],
    "video": False,
}
_STATUS = {
    7: (401, "Invalid API key: You must be granted a valid key."),
    11: (500, "Internal error: Something went wrong, contact TMDb."),
    25: (429, "Your request count (#) is over the allowed limit of (40)."),
    34: (404, "The resource you requested could not be found."),
}


@functools.lru_cache(maxsize=4)
def load_movies(path: Path = MOVIES_JSONL) -> dict[int, dict[str, Any]]:
    """TMDB details records by id, as TMDB would answer them (loaded once per process)."""
    movies: dict[int, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            detail = {k: v for k, v in record.items() if not k.startswith("_")}
            detail["release_date"] = detail.get("release_date") or ""
            for key in ("original_title", "original_language", "tagline", "poster_path"):
                detail.setdefault(key, record["title"] if key == "original_title" else None)
            detail.setdefault("popularity", 0.0)
            detail.setdefault("status", "Released")
            movies[record["id"]] = {**_DETAIL_DEFAULTS, **detail}
    return movies


@functools.lru_cache(maxsize=1)
def load_keywords(path: Path = TMDB_5000) -> dict[int, list[dict[str, Any]]]:
    """TMDB's keywords of the TMDB 5000 movies, by id (the fake's ``/keywords``)."""
    with path.open(encoding="utf-8", newline="") as rows:
        return {int(row["id"]): json.loads(row["keywords"] or "[]") for row in csv.DictReader(rows)}


def tmdb_status(code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """TMDB's error body for one of its status codes (7, 11, 25, 34)."""
    status, message = _STATUS[code]
    return JSONResponse(
        status_code=status,
        content={"success": False, "status_code": code, "status_message": message},
        headers=headers or {},
    )


@dataclass(frozen=True)
class Logged:
    """One request the fake received."""

    at: float  # time.monotonic()
    path: str
    query: dict[str, str]
    authorization: str | None
    status: int


class FakeTmdb:
    """The fake's state: its movies, the failure switches and the request log (thread-safe)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        read_token: str | None = None,
        rate_limit: float | None = None,
        movies: dict[int, dict[str, Any]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.read_token = read_token
        self.rate_limit = rate_limit
        self.movies = movies if movies is not None else load_movies()
        self.delay = 0.0
        self.log: list[Logged] = []
        self._failure: tuple[int, float | None] | None = None
        self._failures_left: int | None = None
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._server: LiveServer | None = None
        self.port = free_port()
        self.app = self._build_app()

    # --- switches -----------------------------------------------------------------------------

    def fail(
        self, status: int, *, retry_after: float | None = None, count: int | None = None
    ) -> None:
        """Answer ``status`` (401, 429 or 5xx) to the next ``count`` requests (None: all, until
        :meth:`healthy`); 429s carry ``Retry-After: retry_after``."""
        with self._lock:
            self._failure = (status, retry_after)
            self._failures_left = count

    def healthy(self) -> None:
        """Stop failing and answer at full speed."""
        with self._lock:
            self._failure = None
            self._failures_left = None
            self.delay = 0.0

    # --- what was asked -------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.log)

    def count(self, path: str | None = None, *, status: int | None = None) -> int:
        """Requests received for ``path`` (all paths when None), optionally with one status."""
        with self._lock:
            return sum(
                1
                for entry in self.log
                if (path is None or entry.path == path)
                and (status is None or entry.status == status)
            )

    def per_path(self) -> Counter[str]:
        with self._lock:
            return Counter(entry.path for entry in self.log)

    def times(self) -> list[float]:
        """Arrival times (``time.monotonic()``) of every request, in order."""
        with self._lock:
            return [entry.at for entry in self.log]

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    # --- server ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Listen on this fake's port (the same one after a :meth:`stop`); return the base URL."""
        self._server = LiveServer(self.app, port=self.port).start()
        return self.base_url

    def stop(self) -> None:
        """Stop listening: the proxy sees connection errors, as when TMDB is down."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run on a free loopback port; yields the base URL (``TMDB_API_BASE_URL``)."""
        self.start()
        try:
            yield self.base_url
        finally:
            self.stop()

    # --- the app --------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        if self.api_key is None and self.read_token is None:
            return True
        key = request.query_params.get("api_key")
        bearer = request.headers.get("authorization", "")
        return (self.api_key is not None and key == self.api_key) or (
            self.read_token is not None and bearer == f"Bearer {self.read_token}"
        )

    def _scripted_failure(self) -> JSONResponse | None:
        with self._lock:
            if self._failure is None:
                return None
            status, retry_after = self._failure
            if self._failures_left is not None:
                self._failures_left -= 1
                if self._failures_left <= 0:
                    self._failure, self._failures_left = None, None
        if status == 429:
            headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
            return tmdb_status(25, headers)
        if status == 401:
            return tmdb_status(7)
        return JSONResponse(
            status_code=status,
            content={"success": False, "status_code": 11, "status_message": _STATUS[11][1]},
        )

    def _over_rate(self, now: float) -> bool:
        if self.rate_limit is None:
            return False
        with self._lock:
            while self._recent and now - self._recent[0] > 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                return True
            self._recent.append(now)
            return False

    async def _answer(self, request: Request, build: Any) -> JSONResponse:
        arrived = time.monotonic()
        if self.delay:
            await asyncio.sleep(self.delay)
        response = self._scripted_failure()
        if response is None and not self._authorised(request):
            response = tmdb_status(7)
        if response is None and self._over_rate(arrived):
            response = tmdb_status(25, {"retry-after": "1"})
        if response is None:
            response = build()
        with self._lock:
            self.log.append(
                Logged(
                    at=arrived,
                    path=request.url.path,
                    query=dict(request.query_params),
                    authorization=request.headers.get("authorization"),
                    status=response.status_code,
                )
            )
        return response

    def _localised(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        """The record as TMDB answers it in ``language`` (here: the title marked with it)."""
        body = dict(record)
        language = request.query_params.get("language")
        if language and language != "en-US":
            body["title"] = f"[{language}] {body['title']}"
        return body

    def _list(self, kind: str, request: Request) -> dict[str, Any]:
        if kind == "top_rated":
            ranked = sorted(self.movies.values(), key=lambda m: -(m.get("vote_average") or 0.0))
        else:
            ranked = sorted(self.movies.values(), key=_by_popularity)
        page = _page(ranked, request)
        if kind in ("now_playing", "upcoming"):
            page = {"dates": {"maximum": "2017-08-30", "minimum": "2017-07-19"}, **page}
        return page

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/_fake/times")
        async def times() -> dict[str, Any]:
            """For a fake in another process (benchmarks): arrival times and statuses."""
            with self._lock:
                return {"times": [e.at for e in self.log], "statuses": [e.status for e in self.log]}

        @app.post("/_fake/reset")
        async def reset() -> dict[str, Any]:
            self.reset_log()
            return {"ok": True}

        @app.get("/3/movie/latest")
        async def latest(request: Request) -> JSONResponse:
            return await self._answer(
                request,
                lambda: JSONResponse(self._localised(self.movies[max(self.movies)], request)),
            )

        @app.get("/3/movie/{kind}")
        async def movie(kind: str, request: Request) -> JSONResponse:
            def build() -> JSONResponse:
                if kind in _LISTS:
                    return JSONResponse(self._list(kind, request))
                record = self.movies.get(int(kind)) if kind.isdigit() else None
                if record is None:
                    return tmdb_status(34)
                body = self._localised(record, request)
                appended = request.query_params.get("append_to_response", "")
                for name in dict.fromkeys(n for n in appended.split(",") if n):
                    if name in _PARTS:
                        body[name] = _part(record, name)
                return JSONResponse(body)

            return await self._answer(request, build)

        @app.get("/3/movie/{movie_id}/{name:path}")
        async def movie_part(movie_id: str, name: str, request: Request) -> JSONResponse:
            def build() -> JSONResponse:
                record = self.movies.get(int(movie_id)) if movie_id.isdigit() else None
                if record is None or name not in _PARTS:
                    return tmdb_status(34)
                return JSONResponse({"id": record["id"], **_part(record, name)})

            return await self._answer(request, build)

        @app.get("/3/discover/movie")
        async def discover(request: Request) -> JSONResponse:
            def build() -> JSONResponse:
                wanted = {
                    int(g) for g in request.query_params.get("with_genres", "").split(",") if g
                }
                year = request.query_params.get("primary_release_year", "")
                hits = [
                    m
                    for m in self.movies.values()
                    if wanted <= {g["id"] for g in m["genres"]}
                    and m["release_date"].startswith(year)
                ]
                return JSONResponse(_page(sorted(hits, key=_by_popularity), request))

            return await self._answer(request, build)

        @app.get("/3/find/{external_id}")
        async def find(external_id: str, request: Request) -> JSONResponse:
            def build() -> JSONResponse:
                hits = [
                    _search_item(m)
                    for m in self.movies.values()
                    if request.query_params.get("external_source") == "imdb_id"
                    and m.get("imdb_id") == external_id
                ]
                empty: dict[str, Any] = {name: [] for name in _FIND_KINDS}
                return JSONResponse({**empty, "movie_results": hits})

            return await self._answer(request, build)

        @app.get("/3/genre/movie/list")
        async def genres(request: Request) -> JSONResponse:
            def build() -> JSONResponse:
                seen = {g["id"]: g["name"] for m in self.movies.values() for g in m["genres"]}
                return JSONResponse(
                    {"genres": [{"id": k, "name": v} for k, v in sorted(seen.items())]}
                )

            return await self._answer(request, build)

        @app.get("/3/configuration")
        async def configuration(request: Request) -> JSONResponse:
            return await self._answer(request, lambda: JSONResponse(_CONFIGURATION))

        @app.get("/3/search/movie")
        async def search(request: Request) -> JSONResponse:
            def build() -> JSONResponse:
                query = request.query_params.get("query", "").casefold()
                year = request.query_params.get("year")
                page = int(request.query_params.get("page", "1"))
                hits = [
                    m
                    for m in self.movies.values()
                    if query
                    and query in m["title"].casefold()
                    and (not year or m["release_date"].startswith(year))
                ]
                hits.sort(key=lambda m: -(m.get("popularity") or 0.0))
                chosen = hits[(page - 1) * 20 : page * 20]
                return JSONResponse(
                    {
                        "page": page,
                        "results": [_search_item(m) for m in chosen],
                        "total_pages": (len(hits) + 19) // 20,
                        "total_results": len(hits),
                    }
                )

            return await self._answer(request, build)

        return app


_LISTS = ("popular", "top_rated", "now_playing", "upcoming")
_FIND_KINDS = (
    "movie_results", "person_results", "tv_results", "tv_episode_results", "tv_season_results",
)  # fmt: skip
_PAGED_PARTS = ("similar", "similar_movies", "recommendations", "reviews", "lists")
_PARTS = (
    "credits", "keywords", "release_dates", "external_ids", "videos", "images",
    "alternative_titles", "translations", "watch/providers", "casts", "trailers",
    *_PAGED_PARTS,
)  # fmt: skip
_CONFIGURATION = {
    "images": {
        "base_url": "http://image.tmdb.org/t/p/",
        "secure_base_url": "https://image.tmdb.org/t/p/",
        "backdrop_sizes": ["w300", "w780", "w1280", "original"],
        "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
        "poster_sizes": ["w92", "w154", "w185", "w342", "w500", "w780", "original"],
        "profile_sizes": ["w45", "w185", "h632", "original"],
        "still_sizes": ["w92", "w185", "w300", "original"],
    },
    "change_keys": ["adult", "budget", "cast", "crew", "genres", "images", "title", "videos"],
}


def _by_popularity(movie: dict[str, Any]) -> tuple[float, int]:
    return -(movie.get("popularity") or 0.0), movie["id"]


def _page(movies: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    page = int(request.query_params.get("page", "1"))
    return {
        "page": page,
        "results": [_search_item(m) for m in movies[(page - 1) * 20 : page * 20]],
        "total_pages": min(500, (len(movies) + 19) // 20),
        "total_results": len(movies),
    }


def _part(movie: dict[str, Any], name: str) -> dict[str, Any]:
    """A sub-resource as TMDB shapes it (without ``id``), with made-up but TMDB-shaped content
    where the data files have none (one cast member, so a test can tell TMDB's answer)."""
    if name == "trailers":
        return {"quicktime": [], "youtube": []}
    if name in ("credits", "casts"):
        actor = {
            "adult": False, "gender": 0, "id": 9_000_000 + movie["id"],
            "known_for_department": "Acting", "name": f"Actor of {movie['id']}",
            "original_name": f"Actor of {movie['id']}", "popularity": 1.0, "profile_path": None,
            "cast_id": 1, "character": "Lead", "credit_id": f"c{movie['id']}", "order": 0,
        }  # fmt: skip
        return {"cast": [actor], "crew": []}
    if name == "keywords":
        return {"keywords": load_keywords().get(movie["id"], [])}
    if name == "external_ids":
        return {
            "imdb_id": movie.get("imdb_id"), "wikidata_id": None, "facebook_id": None,
            "instagram_id": None, "twitter_id": None,
        }  # fmt: skip
    if name == "images":
        return {"backdrops": [], "logos": [], "posters": []}
    if name == "alternative_titles":
        return {"titles": []}
    if name == "translations":
        return {"translations": []}
    if name == "watch/providers":
        return {"results": {}}
    if name in _PAGED_PARTS:
        return {"page": 1, "results": [], "total_pages": 0, "total_results": 0}
    return {"results": []}  # release_dates, videos


def _search_item(movie: dict[str, Any]) -> dict[str, Any]:
    return {
        "adult": False,
        "backdrop_path": None,
        "genre_ids": [g["id"] for g in movie.get("genres") or []],
        "id": movie["id"],
        "original_language": movie.get("original_language"),
        "original_title": movie.get("original_title") or movie["title"],
        "overview": movie.get("overview") or "",
        "popularity": movie.get("popularity") or 0.0,
        "poster_path": movie.get("poster_path"),
        "release_date": movie.get("release_date") or "",
        "title": movie["title"],
        "video": False,
        "vote_average": movie.get("vote_average") or 0.0,
        "vote_count": movie.get("vote_count") or 0,
    }


def main() -> None:
    """Run the fake alone (benchmarks run it in its own process, so that its clock and its
    event loop are not disturbed by the load generator)."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="A fake TMDB v3 API.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--rate-limit", type=float)
    args = parser.parse_args()
    fake = FakeTmdb(api_key=args.api_key, rate_limit=args.rate_limit)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
