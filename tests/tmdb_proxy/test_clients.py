"""Two TMDB client libraries nobody here wrote — ``tmdbsimple`` and ``tmdbv3api`` — against a
real proxy process on loopback, with only their base URL changed: offline and online (the fake
TMDB behind it), with and without ``PREFSHIFT_API_TOKEN`` (which they send as TMDB's key).
One proxy process per configuration, shared by the tests of the module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import tmdbsimple
import tmdbv3api
from tmdbv3api.exceptions import TMDbException

from prefshift.stack import Stack
from prefshift_common.settings import CommonSettings
from tests.conftest import DatabaseFactory
from tests.fakes.live import free_port
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.conftest import TMDB_KEY

pytestmark = pytest.mark.slow  # a stack of services, forked: about 20 s to start

MATRIX = 603
TOKEN = "client-library-token-5b1e"


@dataclass(frozen=True)
class Proxy:
    url: str
    online: bool
    key: str  # what a client sends as its TMDB key: the token, or anything without one
    fake: FakeTmdb | None


@pytest.fixture(
    scope="module",
    params=[("offline", None), ("offline", TOKEN), ("online", None), ("online", TOKEN)],
    ids=["offline", "offline-token", "online", "online-token"],
)
def proxy(
    request: pytest.FixtureRequest,
    database_factory: DatabaseFactory,
    ml_small_offline_template: str,
) -> Iterator[Proxy]:
    mode, token = request.param
    database_url = database_factory.new(template=ml_small_offline_template)
    port = free_port()
    env = {
        "PREFSHIFT_DATABASE_URL": database_url,
        "PREFSHIFT_TMDB_PROXY_URL": f"http://127.0.0.1:{port}",
        "PREFSHIFT_LOG_LEVEL": "WARNING",
        "TMDB_API_KEY": "",
        "TMDB_READ_TOKEN": "",
    }
    fake = FakeTmdb(api_key=TMDB_KEY) if mode == "online" else None
    if fake is not None:
        fake.start()
        env |= {"TMDB_API_KEY": TMDB_KEY, "TMDB_API_BASE_URL": fake.base_url}
    if token is not None:
        env["PREFSHIFT_API_TOKEN"] = token
    saved = os.environ.pop("PREFSHIFT_API_TOKEN", None)
    settings = CommonSettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        tmdb_proxy_url=env["PREFSHIFT_TMDB_PROXY_URL"],
        api_token=token,
    )
    stack = Stack(settings, env=env, services=("tmdb-proxy",), launcher="fork")
    stack.start()
    try:
        stack.wait_ready(timeout=300)
        yield Proxy(
            url=env["PREFSHIFT_TMDB_PROXY_URL"],
            online=fake is not None,
            key=token or "any",
            fake=fake,
        )
    finally:
        stack.stop()
        if fake is not None:
            fake.stop()
        if saved is not None:
            os.environ["PREFSHIFT_API_TOKEN"] = saved


@pytest.fixture
def simple(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``tmdbsimple`` with its base URL pointed at the proxy."""
    original = tmdbsimple.base.TMDB.__init__

    def init(self: Any) -> None:
        original(self)
        self.base_uri = f"{proxy.url}/3"

    monkeypatch.setattr(tmdbsimple.base.TMDB, "__init__", init)
    monkeypatch.setattr(tmdbsimple, "API_KEY", proxy.key)
    return tmdbsimple


@pytest.fixture
def v3(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``tmdbv3api`` with its base URL pointed at the proxy (it keeps its settings in the
    environment; its request cache is off so that each configuration is really asked)."""
    original = tmdbv3api.TMDb.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._base = f"{proxy.url}/3"

    monkeypatch.setattr(tmdbv3api.TMDb, "__init__", init)
    for name in ("TMDB_API_KEY", "TMDB_LANGUAGE", "TMDB_CACHE_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    tmdb = tmdbv3api.TMDb()
    tmdb.api_key = proxy.key
    tmdb.cache = False
    return tmdbv3api


def test_tmdbsimple_movie_calls(simple: Any, proxy: Proxy) -> None:
    movie = simple.Movies(MATRIX)
    info = movie.info(append_to_response="credits,keywords,release_dates,external_ids,videos")
    assert movie.title == info["title"] and "Matrix" in info["title"]
    assert movie.id == MATRIX and isinstance(movie.genres, list)
    for name in ("credits", "keywords", "release_dates", "external_ids", "videos"):
        assert name in info, name
    credits = movie.credits()
    assert credits["id"] == MATRIX and isinstance(movie.cast, list) and isinstance(movie.crew, list)
    if proxy.online:  # TMDB's answer, not the offline empty part
        assert movie.cast[0]["name"] == f"Actor of {MATRIX}"
        assert info["credits"]["cast"][0]["name"] == f"Actor of {MATRIX}"
    keywords = movie.keywords()["keywords"]
    assert {"id": 310, "name": "artificial intelligence"} in keywords  # TMDB 5000
    assert movie.external_ids()["imdb_id"] == "tt0133093"
    assert isinstance(movie.release_dates()["results"], list)
    assert isinstance(movie.videos()["results"], list)
    assert set(movie.images()) >= {"backdrops", "posters"}
    for page in (movie.similar_movies(), movie.recommendations()):
        assert {"page", "results", "total_pages", "total_results"} <= set(page)
    for listing in (
        simple.Movies().popular(),
        simple.Movies().top_rated(page=2),
        simple.Movies().now_playing(),
        simple.Movies().upcoming(),
    ):
        assert listing["page"] >= 1 and isinstance(listing["results"], list)
    assert simple.Movies().popular()["results"]
    assert "title" in simple.Movies().latest()
    found = simple.Find("tt0133093").info(external_source="imdb_id")
    assert [m["id"] for m in found["movie_results"]] == [MATRIX]
    assert {"id": 28, "name": "Action"} in simple.Genres().movie_list()["genres"]
    assert "images" in simple.Configuration().info()
    discovered = simple.Discover().movie(with_genres="28,878", primary_release_year=1999)
    assert MATRIX in {m["id"] for m in discovered["results"]}
    search = simple.Search()
    search.movie(query="The Matrix", year=1999)
    assert MATRIX in {m["id"] for m in search.results}


def test_tmdbsimple_raises_what_it_raises_against_tmdb(simple: Any, proxy: Proxy) -> None:
    with pytest.raises(requests.HTTPError) as unknown:
        simple.Movies(2_000_000_000).info()
    assert unknown.value.response.status_code == 404
    assert unknown.value.response.json()["status_code"] == 34
    if proxy.key != "any":
        simple.API_KEY = "wrong"
        with pytest.raises(requests.HTTPError) as refused:
            simple.Movies(MATRIX).info()
        assert refused.value.response.status_code == 401
        assert refused.value.response.json()["status_code"] == 7


def test_tmdbsimple_bearer_token(
    simple: Any, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simple, "USE_BEARER_AUTH", True)
    assert simple.Movies(MATRIX).info()["id"] == MATRIX


def test_tmdbv3api_movie_calls(v3: Any, proxy: Proxy) -> None:
    movie = v3.Movie()
    details = movie.details(MATRIX)  # appends videos,trailers,images,casts,translations,…
    assert details.id == MATRIX and "Matrix" in details.title
    assert isinstance(list(details.casts.cast), list)
    assert isinstance(list(details.keywords.keywords), list)
    assert isinstance(list(details.release_dates.results), list)
    assert isinstance(list(details.trailers.youtube), list)
    if proxy.online:
        assert details.casts.cast[0].name == f"Actor of {MATRIX}"
    credits = movie.credits(MATRIX)
    assert isinstance(list(credits.cast), list)
    assert "artificial intelligence" in {k.name for k in movie.keywords(MATRIX).keywords}
    assert movie.external_ids(MATRIX).imdb_id == "tt0133093"
    assert isinstance(list(movie.similar(MATRIX)), list)
    assert isinstance(list(movie.recommendations(MATRIX)), list)
    assert isinstance(list(movie.videos(MATRIX)), list)
    assert len(list(movie.popular())) == 20
    assert len(list(movie.top_rated())) == 20
    assert isinstance(list(movie.now_playing()), list)
    assert isinstance(list(movie.upcoming()), list)
    assert movie.latest().id
    assert MATRIX in {m.id for m in v3.Search().movies("The Matrix")}
    found = v3.Find().find_by_imdb_id("tt0133093")
    assert [m.id for m in found.movie_results] == [MATRIX]
    assert "Action" in {g.name for g in v3.Genre().movie_list()}
    discovered = v3.Discover().discover_movies(
        {"with_genres": "28,878", "primary_release_year": 1999}
    )
    assert MATRIX in {m.id for m in discovered}
    assert v3.Configuration().api_configuration().images.secure_base_url.startswith("https://")


def test_tmdbv3api_raises_what_it_raises_against_tmdb(v3: Any, proxy: Proxy) -> None:
    with pytest.raises(TMDbException, match="could not be found"):
        v3.Movie().details(2_000_000_000)
    if proxy.key != "any":
        v3.TMDb().api_key = "wrong"
        with pytest.raises(TMDbException, match="Invalid API key"):
            v3.Movie().details(MATRIX)
