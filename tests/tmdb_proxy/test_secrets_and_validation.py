"""Bad input is refused before it reaches the database (422 in the envelope; on TMDB's paths
TMDB's error body and status); the TMDB key appears in no log line, no response and no cache
row, whatever happens upstream."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from prefshift_common.db import create_async_db_engine
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.conftest import TMDB_KEY, ProxyFactory


@pytest.mark.parametrize(
    ("path", "status", "tmdb_code"),
    [
        ("/3/movie/abc", 404, 34),
        ("/3/movie/0", 404, 34),
        ("/3/movie/-5", 404, 34),
        ("/3/movie/99999999999", 404, 34),
        ("/3/search/movie?query=Mat%00rix", 422, 5),
        ("/3/search/movie?query=Matrix&page=501", 400, 22),
        ("/3/search/movie?query=Matrix&year=abc", 422, 5),
    ],
)
async def test_bad_requests_on_tmdb_paths_get_tmdbs_error_body(
    proxy: ProxyFactory, path: str, status: int, tmdb_code: int
) -> None:
    async with proxy() as client:
        response = await client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["status_code"] == tmdb_code
    assert isinstance(body["status_message"], str) and body["status_message"]


@pytest.mark.parametrize(
    "payload",
    [
        {"tmdb_ids": list(range(1, 502))},
        {"tmdb_ids": []},
        {"tmdb_ids": ["x"]},
        {"tmdb_ids": [1], "extra": "\u0000"},
        {},
    ],
)
async def test_bad_requests_get_422_in_the_error_envelope(
    proxy: ProxyFactory, payload: object
) -> None:
    async with proxy() as client:
        response = await client.post("/movies/batch", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


async def test_the_key_appears_in_no_log_response_or_cache_row(
    proxy: ProxyFactory,
    fake_tmdb: FakeTmdb,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    async with proxy(fake_tmdb, log_level="DEBUG", tmdb_proxy_max_attempts=2) as client:
        for path in ("/3/movie/603", "/3/movie/2000000000", "/3/search/movie?query=Alien"):
            bodies.append((await client.get(path)).text)
        fake_tmdb.fail(500)
        bodies.append((await client.get("/3/movie/862")).text)  # retried, then 503
        fake_tmdb.fail(429, retry_after=0.1)
        bodies.append((await client.post("/movies/batch", json={"tmdb_ids": [8844]})).text)
        fake_tmdb.fail(401)
        bodies.append((await client.get("/3/movie/5")).text)
        fake_tmdb.healthy()
        bodies.append((await client.get("/cache/stats")).text)
        bodies.append((await client.get("/openapi.json")).text)

    engine = create_async_db_engine(database_url)
    async with engine.connect() as connection:
        cache_rows = [
            str(row) for row in (await connection.execute(text("SELECT * FROM tmdb_cache"))).all()
        ]
    await engine.dispose()
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err

    # The scenario did reach TMDB with the key and did log the requests and the failures:
    assert all(entry.query.get("api_key") == TMDB_KEY for entry in fake_tmdb.log)
    assert "HTTP Request: GET http://127.0.0.1" in logs
    assert "tmdb_retry" in logs and "api_key=***" in logs
    assert '"status_code":9' in bodies[3]  # TMDB's body: service offline
    assert '"status_code":43' in bodies[5] and "TMDB_API_KEY" in bodies[5]
    assert len(cache_rows) == 2
    # …and the key is nowhere.
    for where, content in [("logs", logs), ("responses", "".join(bodies))]:
        assert TMDB_KEY not in content, where
    assert not any(TMDB_KEY in row for row in cache_rows)
