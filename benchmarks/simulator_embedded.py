"""Embedded persona figures: ``POST /ratings`` of 30 movies for a persona with 40 history movies
and 120 experiences, over HTTP on loopback.

    uv run python benchmarks/simulator_embedded.py                   # SQLite in a temp dir
    uv run python benchmarks/simulator_embedded.py --requests 1000 --database-url postgresql://postgres@127.0.0.1:5432/bench

The seed cohort is imported into a fresh database; tmdb-proxy (offline) and the simulator each
run as one uvicorn worker in their own process, as `prefshift` runs them. The persona is a real
seed-cohort user: the protocol's split gives its 40 history movies and 30 test movies (the
items); 120 other movies of the cohort with seeded ratings are its experiences.

With the default ``PREFSHIFT_SIMULATOR_METADATA_TTL`` the metadata of a repeated persona is
kept in the simulator, so the proxy is asked only once; ``--metadata-ttl 0`` measures the cold
path, where every request fetches the metadata of all its 190 movies from the proxy.

- sequential: one keep-alive client, one request at a time: p50/p99 latency and calls/s; the
  baseline of the same run is ``GET /healthz`` on the same server, the same way;
- concurrent: N clients at once: calls/s;
- the tmdb-proxy's ``POST /movies/batch`` of the same ids, directly (part of every request);
- the model alone (in this process, no HTTP, no proxy): p50/p99 of scoring the same request.

Goal: p99 < 20 ms over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from prefshift_simulator.embedded.persona_models import DEFAULT_PERSONA_MODEL

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, **env},
    )


def wait_ready(url: str, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def persona_body(database_url: str, n_experiences: int) -> dict[str, Any]:
    from prefshift_datasets.split import SplitMovie, split_persona_and_test
    from prefshift_simulator.evaluation import read_dataset

    snapshot = read_dataset(database_url, "seed-cohort")
    user_id = int(snapshot.ratings["user_id"].min())
    frame = snapshot.ratings[snapshot.ratings["user_id"] == user_id]
    real = {int(t): float(r) for t, r in zip(frame["tmdb_id"], frame["rating"], strict=True)}
    split = split_persona_and_test([SplitMovie(t, snapshot.facts[t].genres) for t in real], seed=0)
    rng = np.random.default_rng(0)
    others = [t for t in sorted(snapshot.facts) if t not in real]
    experienced = rng.choice(others, size=n_experiences, replace=False)
    return {
        "persona": {
            "user_id": user_id,
            "dataset": "seed-cohort",
            "history": [{"tmdb_id": t, "rating": real[t]} for t in split.persona],
            "experiences": [
                {"tmdb_id": int(t), "rating": float(rng.integers(1, 11)) / 2, "feeling": "ok"}
                for t in experienced
            ],
        },
        "items": list(split.test),
        "seed": 1,
    }


def sequential(client: httpx.Client, request: Any, n: int) -> np.ndarray:
    latencies = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        response = request(client)
        latencies[i] = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    return latencies


async def concurrent(url: str, body: dict[str, Any], clients: int, n: int) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                response = await client.post("/ratings", json=body)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return n / (time.perf_counter() - started)


def model_alone(database_url: str, body: dict[str, Any], n: int, persona_model: str) -> np.ndarray:
    """Latencies of the model alone with one named parameter set (``literature``: no response
    noise, the code path of the model before noise and parameter sets were added)."""
    from prefshift_simulator.embedded.backend import load_stats
    from prefshift_simulator.embedded.feelings import feeling
    from prefshift_simulator.embedded.model import EmbeddedPersonaModel
    from prefshift_simulator.embedded.persona_models import shipped_persona_models
    from prefshift_simulator.evaluation import read_dataset

    facts = read_dataset(database_url, "seed-cohort").facts
    stats, _ = load_stats(database_url, "seed-cohort")
    model = EmbeddedPersonaModel(shipped_persona_models()[persona_model].params)
    persona = body["persona"]
    latencies = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        predictions = model.predict(
            user_id=persona["user_id"],
            history=[(m["tmdb_id"], m["rating"]) for m in persona["history"]],
            experiences=[(e["tmdb_id"], e["rating"]) for e in persona["experiences"]],
            items=body["items"],
            facts=facts,
            stats=stats,
            seed=1,
            occasion=i % 5,
        )
        [feeling(p, facts.get(p.tmdb_id)) for p in predictions]
        latencies[i] = time.perf_counter() - started
    return latencies


def ms(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--experiences", type=int, default=120)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--metadata-ttl",
        type=float,
        default=None,
        help="PREFSHIFT_SIMULATOR_METADATA_TTL (0: every request fetches all its metadata)",
    )
    args = parser.parse_args()

    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    workdir = tempfile.mkdtemp(prefix="prefshift-bench-")
    database_url = args.database_url or f"sqlite:///{workdir}/bench.db"
    migrate.upgrade(database_url)
    import_dataset(database_url, SHARED / "seed-cohort", name="seed-cohort")
    body = persona_body(database_url, args.experiences)

    proxy_port, simulator_port = free_port(), free_port()
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    url = f"http://127.0.0.1:{simulator_port}"
    env = {
        "PREFSHIFT_DATABASE_URL": database_url,
        "PREFSHIFT_TMDB_PROXY_URL": proxy_url,
        "PREFSHIFT_SIMULATOR_DATASET": "seed-cohort",
        "PREFSHIFT_SIMULATOR_BACKEND": "embedded",
        "PREFSHIFT_LOG_LEVEL": "WARNING",
        "TMDB_API_KEY": "",
        "TMDB_READ_TOKEN": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
    }
    if args.metadata_ttl is not None:
        env["PREFSHIFT_SIMULATOR_METADATA_TTL"] = str(args.metadata_ttl)
    processes = [
        start("prefshift_tmdb_proxy.main:create_app", proxy_port, env),
        start("prefshift_simulator.main:create_app", simulator_port, env),
    ]
    try:
        wait_ready(proxy_url)
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            sequential(client, lambda c: c.post("/ratings", json=body), 30)  # warm-up
            ratings = sequential(client, lambda c: c.post("/ratings", json=body), args.requests)
            health = sequential(client, lambda c: c.get("/healthz"), args.requests)
        ids = list(
            dict.fromkeys(
                [
                    *body["items"],
                    *(m["tmdb_id"] for m in body["persona"]["history"]),
                    *(e["tmdb_id"] for e in body["persona"]["experiences"]),
                ]
            )
        )
        with httpx.Client(base_url=proxy_url, timeout=30) as proxy:
            batch = sequential(
                proxy, lambda c: c.post("/movies/batch", json={"tmdb_ids": ids}), args.requests
            )
        throughput = asyncio.run(concurrent(url, body, args.clients, args.requests))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
    # interleaved, so that both sets see the same load
    before_runs, after_runs = [], []
    for _ in range(4):
        before_runs.append(model_alone(database_url, body, 100, "literature"))
        after_runs.append(model_alone(database_url, body, 100, DEFAULT_PERSONA_MODEL))
    before, alone = np.concatenate(before_runs), np.concatenate(after_runs)

    print(
        f"POST /ratings: 30 items, {len(body['persona']['history'])} history, "
        f"{len(body['persona']['experiences'])} experiences, {args.requests} requests, "
        f"database {database_url.split(':')[0]}, metadata ttl "
        f"{args.metadata_ttl if args.metadata_ttl is not None else 'default (300 s)'}"
    )
    print(
        f"  sequential   p50 {ms(ratings, 50)}  p99 {ms(ratings, 99)}  "
        f"{len(ratings) / ratings.sum():.0f} calls/s"
    )
    print(
        f"  GET /healthz p50 {ms(health, 50)}  p99 {ms(health, 99)}  "
        f"{len(health) / health.sum():.0f} calls/s  (baseline, same server)"
    )
    print(f"  {args.clients} clients    {throughput:.0f} calls/s")
    print(
        f"  of which the tmdb-proxy batch ({len(ids)} ids) p50 {ms(batch, 50)}  "
        f"p99 {ms(batch, 99)}  (measured directly)"
    )
    items = len(body["items"])
    print(
        f"  model alone, {DEFAULT_PERSONA_MODEL} (default, noise on)  p50 {ms(alone, 50)}  "
        f"p99 {ms(alone, 99)}  {items * len(alone) / alone.sum():.0f} ratings/s  (no HTTP)"
    )
    print(
        f"  model alone, literature (no noise: the model before noise)  p50 {ms(before, 50)}  "
        f"p99 {ms(before, 99)}  {items * len(before) / before.sum():.0f} ratings/s  (baseline)"
    )
    slower = alone.sum() / before.sum() - 1
    print(f"  default vs literature: {slower:+.0%} time per rating (goal: no more than +20%)")
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    goal = np.percentile(ratings, 99) * 1000 < 20
    print(f"  goal p99 < 20 ms: {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
