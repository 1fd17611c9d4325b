"""tmdb-proxy figures: cache-hit latency and throughput, batch latency, upstream rate under a
burst of misses.

    uv run python benchmarks/tmdb_proxy.py                 # Postgres at 127.0.0.1:5432
    uv run python benchmarks/tmdb_proxy.py --misses 5000 --rate 35 --seconds 10

The proxy runs as one uvicorn worker in its own process on a fresh Postgres database (created
and dropped here), online against the fake TMDB of the tests (a thread of this process, on
loopback). The cache is filled directly in the database with every record of
``tmdb-offline/movies.jsonl``, so the hit figures measure the proxy, not the warm-up.

- ``GET /3/movie/{id}`` cache hits: a keep-alive HTTP/1.1 load generator on raw asyncio streams
  (light enough that the proxy, not the generator, is the bottleneck on 2 cores), at several
  concurrencies; the baseline of the same run is ``GET /healthz`` on the same server (the cost of
  FastAPI + uvicorn + the middleware without the database).
- ``POST /movies/batch`` of 200 cached ids.
- a burst of N distinct uncached ids, requested by 200 concurrent clients: the fake's arrival
  times give the upstream rate (overall and the busiest one-second window) against the
  configured limit (this proxy waits for TMDB as long as it takes: deadline 600 s).
- the per-request budget: what a simulator ``POST /ratings`` with a 5,000-movie uncached history
  asks of the proxy — ten ``POST /movies/batch`` of 500 ids TMDB has never been asked for — on a
  proxy with the default fetch budget and deadline: the time to answer and the upstream calls,
  against the budget (10 × ``FETCHES_PER_REQUEST``).

Goal: cache-hit p99 < 10 ms and ≥ 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake TMDB lives with the tests

from prefshift import migrate  # noqa: E402
from prefshift_common.db import sync_url  # noqa: E402
from prefshift_common.movies import release_year  # noqa: E402
from prefshift_tmdb_proxy.repository import cache_upsert_statement  # noqa: E402
from tests.fakes.live import free_port  # noqa: E402
from tests.fakes.tmdb_server import load_movies  # noqa: E402

KEY = "benchmark-key-" + uuid.uuid4().hex[:8]


# --- load generator ------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def load(
    port: int,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
    max_requests: int = 1_000_000,
) -> tuple[np.ndarray, float, int]:
    """Keep-alive connections each sending requests back to back for ``seconds``.
    Returns per-request latencies (s), the elapsed time and the number of non-200 answers."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = 0

    async def connection() -> None:
        nonlocal errors, counter
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and counter < max_requests:
                counter += 1
                request = make_request(counter)
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return np.array(latencies), time.perf_counter() - started, errors


def get_request(path_of: Callable[[int], str]) -> Callable[[int], bytes]:
    return lambda n: f"GET {path_of(n)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


def post_request(path: str, body_of: Callable[[int], bytes]) -> Callable[[int], bytes]:
    def build(n: int) -> bytes:
        body = body_of(n)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return build


def report(name: str, latencies: np.ndarray, elapsed: float, errors: int) -> dict[str, float]:
    figures = {
        "requests": float(len(latencies)),
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p99_ms": float(np.percentile(latencies, 99) * 1000),
        "max_ms": float(latencies.max() * 1000),
        "errors": float(errors),
    }
    print(
        f"{name:<44} {figures['requests']:>8.0f} req {figures['rps']:>8.0f} req/s "
        f"p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  "
        f"max {figures['max_ms']:7.2f} ms  non-200 {errors}"
    )
    if errors:  # a 400 (a Host the allowlist refuses) is fast: such a line measures nothing
        raise SystemExit(f"{name}: {errors} answers were not 200; the figures above are void")
    return figures


# --- set-up --------------------------------------------------------------------------------------


def create_database(admin_url: str) -> str:
    name = f"prefshift_bench_tmdb_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def fill_cache(url: str, movies: dict[int, dict[str, object]]) -> None:
    engine = create_engine(sync_url(url))
    now = datetime.now(UTC)
    rows = [
        {
            "tmdb_id": tmdb_id,
            "status": "ok",
            "payload": payload,
            "title": payload.get("title"),
            "original_title": payload.get("original_title"),
            "year": release_year(payload),
            "fetched_at": now,
            "expires_at": now + timedelta(days=30),
        }
        for tmdb_id, payload in movies.items()
    ]
    with engine.begin() as connection:
        for start in range(0, len(rows), 1000):
            connection.execute(cache_upsert_statement("postgresql", rows[start : start + 1000]))
    engine.dispose()


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180  # a loaded machine imports slowly
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{url} did not answer")


def start_fake(port: int) -> subprocess.Popen[bytes]:
    """The fake TMDB in its own process; it enforces TMDB's own 40/s, as TMDB does."""
    command = [
        sys.executable, "-m", "tests.fakes.tmdb_server", "--port", str(port),
        "--api-key", KEY, "--rate-limit", "40",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT)
    wait_ready(f"http://127.0.0.1:{port}/_fake/times", process)
    return process


def start_proxy(
    url: str, tmdb_base_url: str, rate: float, memo_size: int, **settings: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "PREFSHIFT_DATABASE_URL": url,
        "TMDB_API_KEY": KEY,
        "TMDB_API_BASE_URL": tmdb_base_url,
        "PREFSHIFT_TMDB_PROXY_RATE_LIMIT": str(rate),
        "PREFSHIFT_TMDB_PROXY_RETRY_BUDGET_S": "600",
        "PREFSHIFT_LOG_LEVEL": "WARNING",
        "PREFSHIFT_TMDB_PROXY_MEMO_SIZE": str(memo_size),
        **settings,
    }
    env.pop("PREFSHIFT_API_TOKEN", None)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "prefshift_tmdb_proxy.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    wait_ready(f"http://127.0.0.1:{port}/readyz", process)
    return process, port


# --- scenarios -----------------------------------------------------------------------------------


async def hit_benchmarks(port: int, cached: list[int], seconds: float, label: str) -> None:
    rng = random.Random(0)
    ids = [rng.choice(cached) for _ in range(200_000)]
    healthz = get_request(lambda n: "/healthz")
    movie = get_request(lambda n: f"/3/movie/{ids[n % len(ids)]}")
    # warm-up: every cached id once (fills the memo when it is on), then the code paths
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for start in range(0, len(cached), 500):
            response = await client.post(
                "/movies/batch", json={"tmdb_ids": cached[start : start + 500]}
            )
            assert response.status_code == 200
    await load(port, movie, connections=4, seconds=1.0)
    print(f"\n--- cache hits, {label}, one uvicorn worker, Postgres ({seconds:g} s per line) ---")
    for connections in (1, 8, 32):
        report(f"baseline GET /healthz   c={connections}", *await load(
            port, healthz, connections=connections, seconds=seconds))  # fmt: skip
        report(f"GET /3/movie/{{id}} (hit) c={connections}", *await load(
            port, movie, connections=connections, seconds=seconds))  # fmt: skip

    print("\n--- POST /movies/batch of 200 cached ids ---")
    bodies = [json.dumps({"tmdb_ids": rng.sample(cached, 200)}).encode() for _ in range(200)]
    batch = post_request("/movies/batch", lambda n: bodies[n % len(bodies)])
    for connections in (1, 4):
        report(f"POST /movies/batch 200 ids c={connections}", *await load(
            port, batch, connections=connections, seconds=seconds))  # fmt: skip


async def miss_burst(port: int, fake_url: str, uncached: list[int], rate: float) -> None:
    print(f"\n--- burst of {len(uncached)} distinct misses, configured rate {rate:g}/s ---")
    async with httpx.AsyncClient() as fake:
        await fake.post(f"{fake_url}/_fake/reset")
    # 200 clients, each asking for the next id as soon as it has its answer (httpx alone with
    # 5,000 requests pending on one pool spends its time in the pool, not on the network).
    queue: asyncio.Queue[int] = asyncio.Queue()
    for tmdb_id in uncached:
        queue.put_nowait(tmdb_id)
    responses: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    timeout = httpx.Timeout(len(uncached) / rate * 2 + 60)
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                tmdb_id = queue.get_nowait()
                responses.append(await client.get(f"/3/movie/{tmdb_id}"))

        await asyncio.gather(*(worker() for _ in range(200)))
    elapsed = time.perf_counter() - started
    statuses: dict[int, int] = {}
    for response in responses:
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    async with httpx.AsyncClient() as fake:
        seen = (await fake.get(f"{fake_url}/_fake/times")).json()
    times = sorted(seen["times"])
    rejected = sum(1 for status in seen["statuses"] if status == 429)
    overall = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    busiest, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    print(f"answers: {statuses} in {elapsed:.1f} s")
    print(
        f"upstream requests seen by the fake: {len(times)}; rate {overall:.2f}/s overall, "
        f"busiest 1-s window {busiest} (configured {rate:g}/s); 429s from the fake: {rejected}"
    )


async def request_budget(port: int, fake_url: str, budget: int) -> None:
    history = list(range(1_900_000_000, 1_900_005_000))  # never asked of TMDB
    print("\n--- a 5,000-movie uncached history: 10 x POST /movies/batch of 500 ids ---")
    async with httpx.AsyncClient() as fake:
        await fake.post(f"{fake_url}/_fake/reset")
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        answers = [
            await client.post("/movies/batch", json={"tmdb_ids": history[i : i + 500]})
            for i in range(0, len(history), 500)
        ]
    elapsed = time.perf_counter() - started
    async with httpx.AsyncClient() as fake:
        seen = (await fake.get(f"{fake_url}/_fake/times")).json()
    bodies = [answer.json() for answer in answers if answer.status_code == 200]
    print(
        f"answered in {elapsed:.2f} s, statuses {sorted({a.status_code for a in answers})}; "
        f"asked of TMDB {sum(len(b['missing']) for b in bodies)}, deferred "
        f"{sum(len(b['deferred']) for b in bodies)}; upstream calls seen by the fake "
        f"{len(seen['times'])} (budget 10 x {budget} = {10 * budget}, plus the background "
        "refresher's, within the rate limit)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "PREFSHIFT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per load line")
    parser.add_argument("--misses", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=35.0, help="the proxy's upstream limit")
    parser.add_argument("--no-memo-off", action="store_true", help="skip the memo-off lines")
    args = parser.parse_args()

    movies = load_movies()
    ids = sorted(movies)
    rng = random.Random(1)
    rng.shuffle(ids)
    uncached, cached = ids[: args.misses], ids[args.misses :]
    url = create_database(args.postgres)
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        migrate.upgrade(url)
        fill_cache(url, {i: movies[i] for i in cached})
        processes.append(start_fake(fake_port))
        print(f"{len(cached)} movies cached in Postgres; {len(uncached)} left for the burst")
        print(f"load average before: {os.getloadavg()} on {os.cpu_count()} CPUs")
        variants = [
            (20_000, "memo on (default)"),
            (0, "memo off: every hit reads Postgres"),
        ]
        for memo_size, label in variants[:1] if args.no_memo_off else variants:
            process, port = start_proxy(
                url, fake_url, args.rate, memo_size, PREFSHIFT_TMDB_PROXY_REQUEST_DEADLINE_S="600"
            )
            processes.append(process)
            asyncio.run(hit_benchmarks(port, cached, args.seconds, label))
            if memo_size and args.misses:
                asyncio.run(miss_burst(port, fake_url, uncached, args.rate))
                stats = httpx.get(f"http://127.0.0.1:{port}/cache/stats").json()
                print("/cache/stats:", json.dumps(stats))
            process.terminate()
            process.wait(timeout=30)
        budget = 20  # PREFSHIFT_TMDB_PROXY_FETCHES_PER_REQUEST's default
        process, port = start_proxy(url, fake_url, args.rate, 20_000)
        processes.append(process)
        asyncio.run(request_budget(port, fake_url, budget))
        process.terminate()
        process.wait(timeout=30)
        print(f"\nload average after: {os.getloadavg()}")
        if processes[0].poll() is not None:
            print(f"the fake TMDB exited during the run (code {processes[0].returncode})")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        drop_database(args.postgres, url)


if __name__ == "__main__":
    main()
