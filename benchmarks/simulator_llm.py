"""LLM persona figures: the simulator's own overhead per LLM call, and prompt size.

    uv run python benchmarks/simulator_llm.py
    uv run python benchmarks/simulator_llm.py --requests 40 --clients 8

The seed cohort is imported into a fresh SQLite database; tmdb-proxy (offline) and the simulator
run as uvicorn workers in their own processes; the LLM is the fake OpenAI-compatible server of
the tests (in this process, on loopback), answering every call after a fixed 1 s, with valid
JSON for the numbered movies it was asked about. Replay is off so every request calls the fake.

- overhead per call: wall time of ``POST /ratings`` (30 movies, 40 history, 120 experiences)
  minus the fake's 1 s — prompt building, the metadata batch, the openai client, parsing,
  validation and the call record in the database; sequential and with N concurrent clients;
- a replayed identical request (replay on): its full latency;
- prompt tokens per call for the same persona and page: the simulator's prompt as sent, next to
  the seed study's prompt format reconstructed below (full overviews, one field per line, the
  ``MOVIE: …; RATING: …; FEELING: …;`` answer lines). Both are counted the same way: tiktoken
  cannot load its encodings offline, so tokens are approximated as in OpenAI's guidance for
  English, ``Σ ceil(len(word)/4)`` over words plus one per punctuation mark (the fake server's
  own ``usage`` uses characters/4; both are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake LLM lives with the tests
sys.path.insert(0, str(ROOT / "benchmarks"))

from simulator_embedded import SHARED, free_port, persona_body, start, wait_ready  # noqa: E402

from tests.fakes.openai_server import FakeOpenAI, Reply  # noqa: E402

LATENCY_S = 1.0
ITEM_LINE = re.compile(r"^\[(\d+)\] ", re.MULTILINE)
PIECES = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """``Σ ceil(len(word)/4)`` over words plus one per punctuation mark."""
    return sum(math.ceil(len(p) / 4) if p[0].isalnum() else 1 for p in PIECES.findall(text))


def answer(body: dict[str, Any]) -> Reply:
    last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    numbers = [int(n) for n in ITEM_LINE.findall(last)]
    ratings = [
        {"item": n, "rating": 0.5 + (n * 7 % 10) * 0.5, "feeling": "A fine evening's film."}
        for n in numbers
    ]
    import json

    return Reply(content=json.dumps({"ratings": ratings}), delay=LATENCY_S)


def seed_prompt(database_url: str, body: dict[str, Any]) -> str:
    """The seed study's persona prompt format, reconstructed for the same persona and page."""
    from prefshift_simulator.evaluation import read_dataset

    facts = read_dataset(database_url, "seed-cohort").facts
    persona = body["persona"]

    def block(tmdb_id: int) -> list[str]:
        movie = facts[tmdb_id]
        return [
            f"Movie: {movie.label}",
            f"Genres: {list(movie.genres)}",
            f"Overview: {movie.overview}",
        ]

    lines = [
        "You are a person with the following movie preferences, shown as movies you have "
        "rated on a scale from 0.5 to 5.0 with their genres and overviews.",
        "",
    ]
    for rated in persona["history"]:
        lines += [*block(rated["tmdb_id"]), f"Your rating: {rated['rating']}", ""]
    lines += ["Movies you have been recommended and watched since, with how you felt:", ""]
    for experience in persona["experiences"]:
        lines += [
            *block(experience["tmdb_id"]),
            f"Your rating: {experience['rating']}",
            f"Feeling: {experience['feeling']}",
            "",
        ]
    lines += [
        "Now rate each of the following movies as this person would, on a scale from 0.5 to "
        "5.0 in steps of 0.5, and describe in one sentence how you feel about it. Answer "
        "with one line per movie in exactly this format:",
        "MOVIE: <title>; RATING: <rating>; FEELING: <feeling>;",
        "",
    ]
    for tmdb_id in body["items"]:
        lines += [*block(tmdb_id), ""]
    return "\n".join(lines)


async def load(
    url: str, body: dict[str, Any], clients: int, n: int, first_seed: int
) -> list[float]:
    latencies: list[float] = []
    seeds = iter(range(first_seed, first_seed + n))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker() -> None:
            for seed in seeds:
                started = time.perf_counter()
                response = await client.post("/ratings", json={**body, "seed": seed})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    workdir = tempfile.mkdtemp(prefix="prefshift-bench-")
    database_url = f"sqlite:///{workdir}/bench.db"
    migrate.upgrade(database_url)
    import_dataset(database_url, SHARED / "seed-cohort", name="seed-cohort")
    body = persona_body(database_url, 120)

    fake = FakeOpenAI(responder=answer, api_key="sk-bench")
    with fake.serve() as llm_url:
        proxy_port, simulator_port, replay_port = free_port(), free_port(), free_port()
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        env = {
            "PREFSHIFT_DATABASE_URL": database_url,
            "PREFSHIFT_TMDB_PROXY_URL": proxy_url,
            "PREFSHIFT_LOG_LEVEL": "WARNING",
            "TMDB_API_KEY": "",
            "TMDB_READ_TOKEN": "",
            "OPENAI_BASE_URL": llm_url,
            "OPENAI_API_KEY": "sk-bench",
            "PREFSHIFT_SIMULATOR_BACKEND": "llm",
            "PREFSHIFT_SIMULATOR_MODEL": "bench-model",
            "PREFSHIFT_SIMULATOR_CONCURRENCY": str(max(8, args.clients)),
        }
        processes = [
            start("prefshift_tmdb_proxy.main:create_app", proxy_port, env),
            start(
                "prefshift_simulator.main:create_app",
                simulator_port,
                {**env, "PREFSHIFT_SIMULATOR_REPLAY": "false"},
            ),
            start("prefshift_simulator.main:create_app", replay_port, env),
        ]
        url = f"http://127.0.0.1:{simulator_port}"
        replay_url = f"http://127.0.0.1:{replay_port}"
        try:
            for service in (proxy_url, url, replay_url):
                wait_ready(service)
            asyncio.run(load(url, body, 1, 2, 10_000))  # warm-up
            sequential = asyncio.run(load(url, body, 1, args.requests, 0))
            concurrent_started = time.perf_counter()
            concurrent = asyncio.run(load(url, body, args.clients, args.requests * 2, 1_000))
            concurrent_elapsed = time.perf_counter() - concurrent_started
            asyncio.run(load(replay_url, body, 1, 1, 5_000))  # recorded
            replayed = asyncio.run(load(replay_url, body, 1, 1, 5_000))
            calls_before_replay = fake.calls
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)

    ours = "\n".join(m["content"] for m in fake.requests[0]["messages"])
    seeds = seed_prompt(database_url, body)
    overhead = (np.array(sequential) - LATENCY_S) * 1000
    overhead_concurrent = (np.array(concurrent) - LATENCY_S) * 1000
    print(
        f"POST /ratings via the llm backend: 30 items, 40 history, 120 experiences; "
        f"fake LLM answering after {LATENCY_S:g} s"
    )
    print(
        f"  overhead per call, sequential ({len(sequential)}): "
        f"p50 {np.percentile(overhead, 50):.1f} ms  p99 {np.percentile(overhead, 99):.1f} ms"
    )
    print(
        f"  overhead per call, {args.clients} clients ({len(concurrent)}): "
        f"p50 {np.percentile(overhead_concurrent, 50):.1f} ms  "
        f"p99 {np.percentile(overhead_concurrent, 99):.1f} ms  "
        f"{len(concurrent) / concurrent_elapsed:.2f} calls/s"
    )
    print(
        f"  replayed identical request: {replayed[0] * 1000:.1f} ms "
        f"(LLM calls made for it: {fake.calls - calls_before_replay})"
    )
    print(
        f"  prompt tokens per call (approx.): simulator {approx_tokens(ours)}, "
        f"seed format {approx_tokens(seeds)} "
        f"({approx_tokens(ours) / approx_tokens(seeds):.0%} of the seed's)"
    )
    print(
        f"  prompt size in characters: simulator {len(ours)}, seed format {len(seeds)} "
        f"(characters/4: {len(ours) // 4} vs {len(seeds) // 4})"
    )
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
