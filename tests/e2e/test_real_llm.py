"""A real model: the four services against a real llama.cpp OpenAI-compatible server
(``llama-cpp-python[server]``) serving Gemma 3 270M, through a small protocol — 4 test and 6
persona movies, one page of 3, the arms ``llm`` and ``control``, the LLM
persona — to a completed run with every item rated; then a small ``rerate`` experiment (one
user, 4 held-out movies, re-rated beside shown predictions) to completion. Every call costs
10–45 s of one core here (about 60 prompt tokens a second under load), so the protocol is as
small as what it checks allows: a second rerate user added two calls and nothing to check.

The model's taste does not matter here; the real server's behaviour does: it refuses the
``json_schema`` response format (with a 500), so the client settles on ``json_object`` with the
schema, and llama.cpp's constrained decoding then keeps every rating on the 0.5 grid and every
pick of a candidate round among the offered movies (the titles a 270M model names freely rarely
name a real movie).

The server is installed by ``scripts/install-llama-server.sh`` (outside the repository; about 4
minutes to build on 2 cores), found through ``PREFSHIFT_TEST_LLAMA_SERVER`` (the venv's python
that the script prints) or at the script's default place. Where it is not installed the test is
skipped, saying so; with ``PREFSHIFT_REQUIRE_LLAMA=1`` (CI) it fails instead.
It runs in the SQLite pass only (like the browser tests): it takes minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, select

from prefshift_common.db import sync_url
from prefshift_common.llm.models import LlmCall, LlmFormatDecision
from prefshift_orchestrator.models import RunPage
from tests.conftest import TEST_DATABASE
from tests.e2e.conftest import DATASET, USER, Services
from tests.fakes.live import free_port
from tests.polling import wait_for_run

MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
PROTOCOL = {
    "pages": 1,
    "page_size": 3,
    "test_size": 4,
    "persona_size": 6,
    # llm-persuasive is the same machinery with another prompt (tests/recommender/test_llm.py):
    # left out here, where every call costs seconds of CPU
    "arms": ["llm", "control"],
    "backend": "llm",
    "dataset": DATASET,
    "seed": 5,
}


RERATE = {
    "design": "rerate",
    "test_size": 4,
    "persona_size": 6,
    "backend": "llm",
    "dataset": DATASET,
    "seed": 5,
    "cohort": {"kind": "users", "user_ids": [USER]},
}


def _rerate_experiment(
    client: httpx.Client,
) -> tuple[dict[str, Any], dict[str, Any], list[pd.DataFrame]]:
    """A small rerate experiment to its end: its state, report and each run's ratings."""
    created = client.post("/experiments", json=RERATE)
    assert created.status_code == 202, created.text
    experiment_id = created.json()["experiment_id"]
    deadline = time.monotonic() + 1500
    while (state := client.get(f"/experiments/{experiment_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(1.0)
    report = client.get(f"/experiments/{experiment_id}/report").json()
    rerated = [
        pd.DataFrame(client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"])
        for run in state["runs"]
    ]
    return state, report, rerated


def _installed() -> tuple[Path, Path] | str:
    """The server's python and the model file, or why they cannot be used."""
    given = os.environ.get("PREFSHIFT_TEST_LLAMA_SERVER")
    if given:
        python = Path(given)
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        home = Path(
            os.environ.get("PREFSHIFT_LLAMA_SERVER_HOME") or cache / "prefshift/llama-server"
        )
        python = home / "bin" / "python"
    model = python.parent.parent / "models" / MODEL_FILE
    if not python.is_file() or not (python.parent.parent / ".installed").is_file():
        return f"no llama.cpp server installed at {python.parent.parent}"
    if not model.is_file():
        return f"the Gemma 3 270M model is missing ({model})"
    return python, model


def _server_or_skip() -> tuple[Path, Path]:
    found = _installed()
    if isinstance(found, str):
        reason = f"{found}: run `bash scripts/install-llama-server.sh` (about 4 minutes)"
        if os.environ.get("PREFSHIFT_REQUIRE_LLAMA") == "1":
            pytest.fail(f"PREFSHIFT_REQUIRE_LLAMA=1 but {reason}")
        pytest.skip(reason)
    return found


@contextmanager
def llama_server(python: Path, model: Path, log: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free loopback port (its base URL); its
    output goes to ``log`` (a pipe nobody reads would fill up and stall it)."""
    port = free_port()
    command = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        "gemma-3-270m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "8192",
        # One thread: llama.cpp's threads wait for each other at every step, so on a shared
        # 2-core machine one descheduled thread stalls them all (measured: 0.5 s a token with
        # 2 threads under load, 45 ms with 1).
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
        # The GGUF carries no chat template (llama-cpp-python would fall back to Llama 2's
        # [INST] format); Gemma's turn format drops system messages, which the task survives:
        # every prompt's user message holds the movies and the answer's shape.
        "--chat_format",
        "gemma",
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the llama.cpp server exited: {tail}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the llama.cpp server did not start in 180 s"
            time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Minutes per run on 2 cores, and nothing in it depends on the database (the LLM client's storage
# runs on Postgres in test_llm_endpoints.py): the SQLite pass only.
@pytest.mark.sqlite_only
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_run_against_a_real_llama_cpp_server_completes_with_every_item_rated(
    services: Services, tmp_path: Path
) -> None:
    python, model = _server_or_skip()
    started = time.perf_counter()
    with llama_server(python, model, tmp_path / "llama-server.log") as base_url:
        env = {
            "OPENAI_BASE_URL": base_url,
            "PREFSHIFT_SIMULATOR_BACKEND": "llm",
            "PREFSHIFT_SIMULATOR_MODEL": "gemma-3-270m",
            "PREFSHIFT_RECOMMENDER_MODEL": "gemma-3-270m",
            # one request at a time on 2 cores: slow, but it must answer, not time out
            "PREFSHIFT_SIMULATOR_TIMEOUT": "600",
            "PREFSHIFT_RECOMMENDER_LLM_TIMEOUT": "600",
            "PREFSHIFT_SIMULATOR_MAX_OUTPUT_TOKENS": "512",
        }
        with services.start(**env), services.client() as client:
            response = client.post(f"/simulate/{USER}", json=PROTOCOL)
            assert response.status_code == 202, response.text
            run = wait_for_run(client, response.json()["run_id"], timeout=1500)
            ratings = client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"]
            run_wall = time.perf_counter() - started
            rerate = _rerate_experiment(client)
    wall = time.perf_counter() - started
    assert run["status"] == "completed", run
    # every item rated: nothing left unrated, no page empty
    assert not [m for m in run["messages"] if "unrated" in m or "showed no movies" in m], run
    cells = pd.DataFrame(ratings).groupby(["arm", "page", "phase"]).size().to_dict()
    assert cells == {
        ("baseline", 0, "test"): 4,
        **{(arm, 1, "test"): 4 for arm in ("llm", "control")},
        ("llm", 1, "experience"): 3,
    }, cells
    assert all(r["rating"] * 2 == int(r["rating"] * 2) and 0.5 <= r["rating"] <= 5 for r in ratings)

    engine = create_engine(sync_url(services.env["PREFSHIFT_DATABASE_URL"]))
    try:
        with engine.connect() as connection:
            decisions = connection.execute(select(LlmFormatDecision)).all()
            calls = connection.execute(select(LlmCall)).all()
            pages = connection.execute(
                select(RunPage).where(RunPage.run_id == run["run_id"], RunPage.arm == "llm")
            ).all()
    finally:
        engine.dispose()
    # the real server refused json_schema (500) and the client settled on json_object + schema
    assert [d.response_format for d in decisions] == ["json_object"], decisions
    # the rerate experiment: the user re-rated every held-out movie, the predictions in the
    # prompts of session 2
    state, report, rerated = rerate
    assert state["status"] == "completed", state
    assert report["design"] == "rerate" and report["rerating"]["n_users"] == 1
    for ratings_of_user in rerated:
        cells = ratings_of_user.groupby(["arm", "phase"]).size().to_dict()
        assert cells == {("baseline", "test"): 4, ("rerate", "test"): 4}, cells
        second = ratings_of_user[ratings_of_user["arm"] == "rerate"]
        assert second["condition"].notna().all()
        assert second["shown"].notna().sum() == (second["condition"] != "none").sum()
    assert any(
        "Predicted for you" in str(c.prompt) for c in calls if c.purpose == "persona_ratings"
    )
    assert any(c.status == "unsupported" and c.response_format == "json_schema" for c in calls)
    assert len(pages) == 1
    for page in pages:
        assert len(page.recommended) == 3 and not page.recommender_info.get("empty"), page
    made = [c for c in calls if c.status != "unsupported"]
    candidates = [c for c in made if c.purpose.endswith("/candidates")]
    print(
        f"\nreal llama.cpp server ({TEST_DATABASE}): run completed in {run_wall:.0f} s with the "
        f"server's start, the rerate experiment by {wall:.0f} s; {len(made)} LLM calls "
        f"({len(candidates)} candidate rounds), "
        f"{sum(c.prompt_tokens for c in made)} prompt and "
        f"{sum(c.completion_tokens for c in made)} answer tokens; load average "
        f"{os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
