"""`prefshift validity`'s LLM column for real: the simulator and the offline tmdb-proxy started
as processes (forked, on free ports), the simulator's ``llm`` backend pointed at a fake
OpenAI-compatible server whose persona moves halfway toward any prediction it is shown; the
command asks the simulator for both designs (three ``POST /ratings`` per user) and prints the
``llm`` column beside the embedded sets."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift.stack import Stack
from prefshift_common.settings import CommonSettings
from tests.fakes.live import free_port
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content, prompt_text

KEY = "sk-validity-llm"
TOKEN = "validity-llm-token-3f9a"  # the services ask for it, as behind `prefshift up`
USERS = 2
ITEM = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
PREDICTED = re.compile(r"Predicted for you: ★ ([0-9.]+)")


def _own(number: int, seed: int) -> float:
    """The fake persona's own rating of the movie listed as ``number``: read off the number, a
    half star up or down on some calls (drawn from the call's seed, as a sampled answer)."""
    wobble = random.Random(f"{seed}:{number}").choice((-0.5, 0.0, 0.5))
    return min(5.0, max(0.5, 0.5 + (number * 3 % 9) * 0.5 + wobble))


def halfway_persona(body: dict[str, Any]) -> Reply:
    """Rates each listed movie at its own rating, or halfway (to the half star) toward the
    prediction shown beside it."""
    last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    ratings = {}
    for number, line in ITEM.findall(str(last)):
        own = _own(int(number), body.get("seed", 0))
        predicted = PREDICTED.search(line)
        ratings[number] = round(own + float(predicted.group(1))) / 2 if predicted else own
    return Reply(
        content=json_content(
            {"ratings": {n: {"rating": r, "feeling": f"F{n}."} for n, r in ratings.items()}}
        )
    )


@pytest.fixture
def simulator(
    seed_cohort_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FakeOpenAI]]:
    """The simulator (llm backend on the fake) and the offline tmdb-proxy, as processes."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "TMDB_API_KEY",
        "TMDB_READ_TOKEN",
        "PREFSHIFT_API_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    fake = FakeOpenAI(responder=halfway_persona, api_key=KEY)
    proxy_url, simulator_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    with fake.serve() as openai_url:
        env = {
            "PREFSHIFT_DATABASE_URL": seed_cohort_database_url,
            "PREFSHIFT_DATA_DIR": str(tmp_path / "data"),
            "PREFSHIFT_TMDB_PROXY_URL": proxy_url,
            "PREFSHIFT_SIMULATOR_URL": simulator_url,
            "PREFSHIFT_SIMULATOR_BACKEND": "llm",
            "PREFSHIFT_LOG_LEVEL": "WARNING",
            "PREFSHIFT_API_TOKEN": TOKEN,
            "OPENAI_BASE_URL": openai_url,
            "OPENAI_API_KEY": KEY,
        }
        settings = CommonSettings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=seed_cohort_database_url,
            tmdb_proxy_url=proxy_url,
            simulator_url=simulator_url,
            api_token=TOKEN,
        )
        stack = Stack(settings, env=env, services=("tmdb-proxy", "simulator"), launcher="fork")
        stack.start()
        try:
            stack.wait_ready(timeout=300)
            yield simulator_url, fake
        finally:
            stack.stop()


# SQLite pass only: the LLM path of the command; the LLM client's storage is checked on both
# databases in tests/simulator/test_llm.py, the command from a fresh database in test_validity.py.
@pytest.mark.sqlite_only
@pytest.mark.slow
def test_validity_holds_the_llm_persona_against_people(
    simulator: tuple[str, FakeOpenAI], seed_cohort_database_url: str, shared_data: Path
) -> None:
    simulator_url, fake = simulator
    env = {
        "PREFSHIFT_DATABASE_URL": seed_cohort_database_url,
        "PREFSHIFT_SIMULATOR_URL": simulator_url,
        "PREFSHIFT_API_TOKEN": TOKEN,
        "COLUMNS": "300",
    }
    args = [
        *("validity", "--seed-cohort", str(shared_data / "seed-cohort")),
        *("--seed-results", str(shared_data / "seed-results")),
        *("--users", str(USERS), "--resamples", "50"),
    ]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"LLM persona (gpt-4o-mini): rated through the simulator at {simulator_url}" in (
        result.output
    )
    table = [line.split("┃" if "┃" in line else "│") for line in result.output.splitlines()]
    header = next(cells for cells in table if len(cells) > 1 and "measure" in cells[1])
    assert header[-2].strip() == "llm"
    rows = {cells[1].strip(): cells for cells in table if len(cells) > 1}
    # the retest is asked again (its own seed), not answered from the first call's recording
    retest = float(rows["retest_rmse"][-2].split()[0])
    assert 0.1 < retest < 0.7, rows["retest_rmse"]
    # and moves halfway toward a shown prediction (to the half star)
    slope = float(rows["anchoring_slope"][-2].split()[0])
    assert 0.3 < slope < 0.7, rows["anchoring_slope"]

    # three ratings requests per user, one LLM call each: first, retest, with predictions
    bodies = fake.requests
    assert len(bodies) == 3 * USERS, len(bodies)
    shown = [b for b in bodies if "Predicted for you" in prompt_text(b)]
    assert len(shown) == USERS
    for body in shown:
        lines = ITEM.findall(prompt_text(body))
        predicted = [float(m.group(1)) for _, line in lines if (m := PREDICTED.search(line))]
        # three of the four balanced conditions show one (accurate, up, down): a real rating,
        # or it ± 1 star, clipped to the scale
        assert abs(len(predicted) - 3 * len(lines) / 4) <= 1, (len(predicted), len(lines))
        assert all(0.5 <= p <= 5.0 and (2 * p).is_integer() for p in predicted)
