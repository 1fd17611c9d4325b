"""The orchestrator's API without workers: idempotency, refusals that store nothing, cancel,
validation and the token."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from prefshift_common.db import sync_connection
from prefshift_orchestrator.schemas import SimulationRequest
from prefshift_simulator.main import create_app as create_simulator_app
from tests.fakes.live import LiveServer
from tests.orchestrator.conftest import USER, OrchestratorFactory
from tests.simulator.conftest import simulator_settings

SMALL = {"pages": 1, "page_size": 3, "test_size": 5, "persona_size": 5}


def _user_with_ratings(database_url: str, dataset: str, below: int) -> tuple[int, int]:
    with sync_connection(database_url) as connection:
        row = connection.execute(
            text(
                "SELECT u.user_id, u.n_ratings FROM dataset_users u JOIN datasets d "
                "ON d.id = u.dataset_id WHERE d.name = :name AND u.n_ratings < :below "
                "ORDER BY u.n_ratings DESC, u.user_id LIMIT 1"
            ),
            {"name": dataset, "below": below},
        ).one()
        return int(row[0]), int(row[1])


def test_post_is_idempotent_and_force_starts_a_new_run(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        first = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 3})
        assert first.status_code == 202
        run = first.json()
        assert run["status"] == "queued"
        assert run["params"]["arms"] is None and run["params"]["pages"] == 1
        assert run["links"]["shift"] == f"/runs/{run['run_id']}/shift"

        again = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 3})
        assert again.status_code == 200 and again.json()["run_id"] == run["run_id"]
        # Defaults written out or left implicit are the same protocol.
        explicit = client.post(
            f"/simulate/{USER}", json={**SMALL, "seed": 3, "dataset": "seed-cohort"}
        )
        assert explicit.json()["run_id"] == run["run_id"]
        other_seed = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 4})
        assert other_seed.status_code == 202 and other_seed.json()["run_id"] != run["run_id"]

        forced = client.post(f"/simulate/{USER}", params={"force": True}, json={**SMALL, "seed": 3})
        assert forced.status_code == 202
        assert forced.json()["run_id"] not in (run["run_id"], other_seed.json()["run_id"])
        # The forced run is now the current one for those parameters.
        after = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 3})
        assert after.status_code == 200 and after.json()["run_id"] == forced.json()["run_id"]

        latest = client.get(f"/simulate/{USER}").json()
        assert latest["run_id"] == forced.json()["run_id"]
        assert latest["shift_summary"] == []


def test_refusals_are_clear_and_store_nothing(
    both_datasets_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    user, n = _user_with_ratings(both_datasets_database_url, "ml-latest-small", 70)
    with orchestrator(
        both_datasets_database_url, orchestrator_workers=0, orchestrator_dataset=None
    ) as client:
        several = client.post(f"/simulate/{user}")
        assert several.status_code == 422
        assert "several datasets" in several.json()["detail"]

        too_few = client.post(f"/simulate/{user}", json={"dataset": "ml-latest-small"})
        assert too_few.status_code == 422, too_few.text
        body = too_few.json()
        assert body["error"] == "unprocessable"
        assert "needs 70" in body["detail"] and f"user {user} has" in body["detail"]
        assert client.get(f"/simulate/{user}").status_code == 404  # no run row was written
        # Smaller sets fit that user.
        fits = client.post(
            f"/simulate/{user}",
            json={"dataset": "ml-latest-small", "test_size": 5, "persona_size": n // 2},
        )
        assert fits.status_code == 202, fits.text

        unknown_user = client.post("/simulate/999999999", json={"dataset": "seed-cohort"})
        assert unknown_user.status_code == 404
        assert "user 999999999 is not in dataset 'seed-cohort'" in unknown_user.json()["detail"]
        unknown_dataset = client.post(f"/simulate/{USER}", json={"dataset": "nope"})
        assert unknown_dataset.status_code == 404
        assert "dataset 'nope' is not imported" in unknown_dataset.json()["detail"]
        assert client.get(f"/simulate/{USER}").status_code == 404


def test_concurrent_identical_submissions_share_one_run(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    """Two orchestrators take the same submissions at once: each user gets one run, which the
    single POSTs and both experiments share (the loser of an insert race answers with it)."""
    body = {**SMALL, "seed": 21}
    other, _ = _user_with_ratings(seed_cohort_database_url, "seed-cohort", below=10_000)
    experiment = {**body, "cohort": {"kind": "users", "user_ids": [USER, other]}}
    with (
        orchestrator(seed_cohort_database_url, orchestrator_workers=0) as one,
        orchestrator(seed_cohort_database_url, orchestrator_workers=0) as two,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):

        def post(client: httpx.Client, path: str, json: dict[str, object]) -> httpx.Response:
            return client.post(path, json=json)

        simulated = list(pool.map(post, [one, two] * 3, [f"/simulate/{USER}"] * 6, [body] * 6))
        experiments = list(pool.map(post, [one, two], ["/experiments"] * 2, [experiment] * 2))

    assert sorted(answer.status_code for answer in simulated) == [200] * 5 + [202]
    assert len({answer.json()["run_id"] for answer in simulated}) == 1
    assert [answer.status_code for answer in experiments] == [202, 202]
    runs = [{r["user_id"]: r["run_id"] for r in e.json()["runs"]} for e in experiments]
    assert runs[0] == runs[1] and runs[0][USER] == simulated[0].json()["run_id"]
    assert _runs_of(seed_cohort_database_url, other) == 1


def _runs_of(database_url: str, user_id: int) -> int:
    with sync_connection(database_url) as connection:
        return int(
            connection.execute(
                text("SELECT COUNT(*) FROM runs WHERE user_id = :user"), {"user": user_id}
            ).scalar_one()
        )


def test_cancel_a_queued_run(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        run = client.post(f"/simulate/{USER}", json=SMALL).json()
        cancelled = client.delete(f"/runs/{run['run_id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_at"] is not None
        again = client.delete(f"/runs/{run['run_id']}")
        assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
        assert client.delete("/runs/424242").status_code == 404
        assert client.get("/runs/424242").json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"dataset": "seed\x00cohort"}, "dataset"),
        ({"pages": 0}, "pages"),
        ({"page_size": 101}, "page_size"),
        ({"arms": ["als", "als"]}, "distinct"),
        ({"arms": ["baseline"]}, "baseline"),
        ({"arms": [{"name": "mine", "url": "ftp://x"}]}, "url"),
        ({"seed": -1}, "seed"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_requests_get_422(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory, body: dict, fragment: str
) -> None:
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        response = client.post(f"/simulate/{USER}", json=body)
        assert response.status_code == 422
        assert response.json()["error"] == "validation_error"
        assert fragment in response.text


def test_ids_are_ascii_digits_and_types_are_strict(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    """``/runs/+1`` is not run 1, ``true`` is not user 1 and ``false`` is not seed 0: pydantic's
    lax mode read them so."""
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        run_id = client.post(f"/simulate/{USER}", json=SMALL).json()["run_id"]
        experiment = {**SMALL, "cohort": {"user_ids": [USER]}}
        experiment_id = client.post("/experiments", json=experiment).json()["experiment_id"]
        assert client.get(f"/runs/{run_id}").status_code == 200
        for path in (
            f"/runs/+{run_id}",
            f"/runs/{run_id}.0",
            f"/runs/%20{run_id}",
            f"/runs/{run_id}_",
            "/runs/\u0661",  # Arabic-Indic one
            f"/runs/+{run_id}/ratings",
            f"/runs/+{run_id}/selection",
            f"/experiments/+{experiment_id}",
            f"/experiments/{experiment_id}.0/report",
            f"/simulate/+{USER}",
        ):
            response = client.get(path)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["error"] == "validation_error", path
        for query in ({"limit": "+1"}, {"offset": "0.0"}, {"limit": " 5"}):
            assert client.get("/runs", params=query).status_code == 422, query
            assert client.get("/experiments", params=query).status_code == 422, query
        assert client.get("/runs", params={"limit": "1", "offset": "0"}).status_code == 200
        assert client.delete(f"/runs/+{run_id}").status_code == 422
        assert client.post(f"/simulate/{USER}.0", json=SMALL).status_code == 422
        assert client.get(f"/runs/{run_id}").json()["status"] == "queued"  # not cancelled

        for body in (
            {**SMALL, "seed": False},
            {**SMALL, "seed": "1"},
            {**SMALL, "pages": True},
            {**SMALL, "pages": 1.0},
            {**SMALL, "arms": [{"name": "als", "shown_prediction": {"offset": "1"}}]},
            {**SMALL, "arms": [{"name": "llm", "recorded": {"run": True}}]},
        ):
            response = client.post(f"/simulate/{USER}", json=body)
            assert response.status_code == 422, (body, response.text)
        for cohort in (
            {"user_ids": [True]},
            {"user_ids": [f"{USER}"]},
            {"user_ids": [float(USER)]},
            {"kind": "sample", "size": True},
            {"kind": "seed-study", "seed": False},
        ):
            response = client.post("/experiments", json={**SMALL, "cohort": cohort})
            assert response.status_code == 422, (cohort, response.text)
            assert response.json()["error"] == "validation_error"
        # a whole number where a float is asked is still a float
        fine = {**SMALL, "arms": [{"name": "als", "shown_prediction": {"offset": 1}}]}
        assert client.post(f"/simulate/{USER}", json=fine).status_code == 202
        assert client.get("/runs").json()["total"] == 2


@pytest.mark.parametrize(
    "arm",
    [
        {"name": "control", "recommender": "als"},
        {"name": "control", "url": "http://127.0.0.1:9000"},
        {"name": "control", "recorded": {"run": 1}},
        {"name": "control", "shown_prediction": {"offset": 1}},
        {"name": "baseline", "recommender": "als"},
        "baseline",
    ],
)
def test_control_and_baseline_are_reserved_arm_names(arm: object) -> None:
    """``control`` is the noise floor every net shift is measured against: a recommender named
    so would make the net shifts meaningless."""
    with pytest.raises(ValidationError, match=r"'control' is the arm|'baseline' is"):
        SimulationRequest.model_validate({"arms": ["als", arm]})


def test_an_arm_named_control_that_recommends_is_a_422(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        arms = ["random", {"name": "control", "recommender": "als"}]
        response = client.post(f"/simulate/{USER}", json={**SMALL, "arms": arms})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_error"
        assert "'control' is the arm that shows nothing" in response.json()["detail"]
        assert client.get("/runs").json()["total"] == 0
        # the control arm itself, by name or as a bare spec, is of course fine
        for control in ("control", {"name": "control"}):
            body = {**SMALL, "arms": ["random", control]}
            assert client.post(f"/simulate/{USER}", json=body).status_code in (200, 202)


def test_requests_that_can_only_fail_are_refused_at_once(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    """The real simulator, with no LLM configured, says so on ``GET /backends``: a request for
    the llm backend or a persona model it does not have is a 422 at submission, not a run that
    holds a worker for minutes before it fails; so is a protocol of no arms."""
    settings = simulator_settings(seed_cohort_database_url, "http://127.0.0.1:9")
    with (
        LiveServer(create_simulator_app(settings)) as simulator,
        orchestrator(
            seed_cohort_database_url, simulator_url=simulator.url, orchestrator_workers=0
        ) as client,
    ):
        embedded = httpx.get(f"{simulator.url}/backends").json()["backends"]
        persona_models = [m["name"] for b in embedded for m in b["persona_models"]]
        assert persona_models  # the simulator ships its named parameter sets

        llm = client.post(f"/simulate/{USER}", json={**SMALL, "backend": "llm"})
        assert llm.status_code == 422, llm.text
        assert llm.json()["error"] == "unprocessable"
        assert "the simulator has no LLM configured" in llm.json()["detail"]
        cohort = {"user_ids": [USER]}
        llm_experiment = client.post(
            "/experiments", json={**SMALL, "backend": "llm", "cohort": cohort}
        )
        assert llm_experiment.status_code == 422, llm_experiment.text
        assert "no LLM configured" in llm_experiment.json()["detail"]

        unknown = client.post(f"/simulate/{USER}", json={**SMALL, "persona_model": "nonesuch"})
        assert unknown.status_code == 422, unknown.text
        assert "persona_model 'nonesuch' is not one of the simulator's" in unknown.json()["detail"]
        assert persona_models[0] in unknown.json()["detail"]
        unknown_experiment = client.post(
            "/experiments", json={**SMALL, "persona_model": "nonesuch", "cohort": cohort}
        )
        assert unknown_experiment.status_code == 422, unknown_experiment.text

        no_arms = client.post(f"/simulate/{USER}", json={**SMALL, "arms": []})
        assert no_arms.status_code == 422 and no_arms.json()["error"] == "validation_error"
        assert client.get("/runs").json()["total"] == 0  # refusals store nothing
        assert client.get("/experiments").json()["total"] == 0

        known = {**SMALL, "backend": "embedded", "persona_model": persona_models[0]}
        assert client.post(f"/simulate/{USER}", json=known).status_code == 202


def test_the_api_token_guards_every_route_but_health(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    with orchestrator(
        seed_cohort_database_url, orchestrator_workers=0, api_token=SecretStr("s3cret-token")
    ) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post(f"/simulate/{USER}").status_code == 401
        assert client.get("/runs/1").status_code == 401
        headers = {"authorization": "Bearer s3cret-token"}
        assert client.post(f"/simulate/{USER}", json=SMALL, headers=headers).status_code == 202
        assert client.get("/runs/1", headers=headers).status_code == 200
