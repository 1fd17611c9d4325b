"""The recommender's routes: listing, training and persistence, and every error status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.recommender.conftest import MODEL_BACKED, ServiceFactory, registry_of


async def wait_ready(client: httpx.AsyncClient, name: str, timeout: float = 120.0) -> dict:
    """Poll GET /recommenders until ``name`` is ready (or failed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        listing = (await client.get("/recommenders")).json()
        info = next(entry for entry in listing if entry["name"] == name)
        if info["status"] in ("ready", "failed"):
            return info
        assert asyncio.get_running_loop().time() < deadline, info
        await asyncio.sleep(0.05)


async def test_listing_reports_every_implementation(trained_service: ServiceFactory) -> None:
    async with trained_service() as client:
        response = await client.get("/recommenders")
    assert response.status_code == 200
    listing = {entry["name"]: entry for entry in response.json()}
    assert set(listing) == {*MODEL_BACKED, "llm", "llm-persuasive"}
    for name in MODEL_BACKED:
        assert listing[name]["status"] == "ready"
        assert listing[name]["trained"] is True
        assert listing[name]["dataset"] == "ml-latest-small"
        assert listing[name]["model_version"].startswith(f"{name}@ml-latest-small:")
    assert listing["als"]["kind"] == "collaborative"
    assert listing["popularity"]["kind"] == "baseline"
    # No OpenAI-compatible endpoint configured: the orchestrator leaves these arms out.
    for name in ("llm", "llm-persuasive"):
        assert listing[name]["kind"] == "llm"
        assert listing[name]["status"] == "unavailable"
        assert "OPENAI_API_KEY" in listing[name]["detail"]


async def test_train_persist_and_reload_without_retraining(
    untrained_service: ServiceFactory, tmp_path: Path
) -> None:
    history = [{"tmdb_id": 603, "rating": 5.0}, {"tmdb_id": 680, "rating": 4.5}]
    async with untrained_service() as client:
        before = (await client.get("/recommenders")).json()
        als = next(entry for entry in before if entry["name"] == "als")
        assert (als["status"], als["trained"]) == ("untrained", False)
        assert "POST /recommenders/als/train" in als["detail"]

        untrained = await client.post("/recommendations", json={"recommender": "als"})
        assert untrained.status_code == 409
        assert untrained.json()["error"] == "conflict"
        assert "POST /recommenders/als/train" in untrained.json()["detail"]

        accepted = await client.post(
            "/recommenders/als/train", json={"params": {"factors": 16, "iterations": 5}}
        )
        assert accepted.status_code == 202, accepted.text
        version = accepted.json()["model_version"]
        assert accepted.json()["dataset"] == "ml-latest-small"
        assert version.startswith("als@ml-latest-small:")
        info = await wait_ready(client, "als")
        assert info["status"] == "ready", info
        assert info["model_version"] == version
        assert info["progress"] == 1.0
        first = await client.post(
            "/recommendations", json={"recommender": "als", "history": history, "n": 10}
        )
        assert first.status_code == 200, first.text
        assert first.json()["model_version"] == version

    saved = list((tmp_path / "data" / "models" / "recommender" / "ml-latest-small").rglob("*"))
    npz = [path for path in saved if path.suffix == ".npz"]
    assert len(npz) == 1
    mtime = npz[0].stat().st_mtime_ns

    # A fresh app on the same data directory serves the same model at once, without training.
    async with untrained_service(recommender_autotrain="als") as client:
        info = next(e for e in (await client.get("/recommenders")).json() if e["name"] == "als")
        assert (info["status"], info["model_version"]) == ("ready", version)
        assert registry_of(client)._tasks == set()
        again = await client.post(
            "/recommendations", json={"recommender": "als", "history": history, "n": 10}
        )
        assert again.json()["items"] == first.json()["items"]
    assert npz[0].stat().st_mtime_ns == mtime


async def test_different_parameters_make_a_different_version(
    untrained_service: ServiceFactory,
) -> None:
    async with untrained_service() as client:
        one = await client.post("/recommenders/popularity/train", json={})
        await wait_ready(client, "popularity")
        two = await client.post("/recommenders/item-knn/train", json={"params": {"k": 10}})
        three = await client.post("/recommenders/item-knn/train", json={"params": {"k": 20}})
        await registry_of(client).wait_idle()
    assert one.status_code == two.status_code == 202
    # The second item-knn request arrived while the first trained: it returns the running job.
    assert three.json()["model_version"] == two.json()["model_version"]
    assert two.json()["model_version"] != one.json()["model_version"]


async def test_autotrain_trains_the_configured_implementations(
    untrained_service: ServiceFactory,
) -> None:
    async with untrained_service(recommender_autotrain="popularity,random,llm") as client:
        await registry_of(client).wait_idle()
        listing = {e["name"]: e for e in (await client.get("/recommenders")).json()}
    assert listing["popularity"]["status"] == "ready"
    assert listing["random"]["status"] == "ready"
    assert listing["als"]["status"] == "untrained"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"recommender": "svd"}, 404, "not_found"),
        ({"recommender": "als", "dataset": "ml-1m"}, 404, "not_found"),
        ({"recommender": "als", "user_id": 999999}, 404, "not_found"),
        ({"recommender": "als", "n": 0}, 422, "validation_error"),
        ({"recommender": "als", "n": 501}, 422, "validation_error"),
        (
            {"recommender": "als", "history": [{"tmdb_id": 0, "rating": 4.0}]},
            422,
            "validation_error",
        ),
        (
            {"recommender": "als", "history": [{"tmdb_id": 5, "rating": 4.2}]},
            422,
            "validation_error",
        ),
        ({"recommender": "als", "exclude": [-3]}, 422, "validation_error"),
        ({"recommender": "als", "exclude": ["x"]}, 422, "validation_error"),
        ({"recommender": "al\x00s"}, 422, "validation_error"),
        ({"recommender": "als", "dataset": "ml\x00small"}, 422, "validation_error"),
        ({"recommender": "als", "surprise": 1}, 422, "validation_error"),
        ({"recommender": "llm"}, 503, "unavailable"),
        ({"recommender": "llm-persuasive"}, 503, "unavailable"),
    ],
)
async def test_recommendation_errors(
    trained_service: ServiceFactory, body: dict, status: int, error: str
) -> None:
    async with trained_service() as client:
        response = await client.post("/recommendations", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("svd", {}, 404),
        ("als", {"dataset": "ml-1m"}, 404),
        ("als", {"params": {"factorz": 8}}, 422),
        ("als", {"params": {"factors": 8.5}}, 422),
        ("als", {"params": {"factors": 1e9}}, 422),
        ("als", {"params": {"num_threads": 64}}, 422),
        ("als", {"params": {"k": 10}}, 422),
        ("bpr", {"params": {"learning_rate": 0}}, 422),
        # strict types: 0 is no boolean, true no number of factors
        ("item-knn", {"activate": 0}, 422),
        ("item-knn", {"activate": "true"}, 422),
        ("als", {"params": {"factors": True}}, 422),
        ("als", {"params": {"factors": "8"}}, 422),
        ("llm", {}, 422),
    ],
)
async def test_training_errors(
    untrained_service: ServiceFactory, name: str, body: dict, status: int
) -> None:
    async with untrained_service() as client:
        response = await client.post(f"/recommenders/{name}/train", json=body)
        assert response.status_code == status, response.text
        assert registry_of(client)._tasks == set()


async def test_no_dataset_imported_is_a_conflict(database_url: str, tmp_path: Path) -> None:
    from tests.recommender.conftest import service_factory

    async with service_factory(database_url, tmp_path)() as client:
        listing = (await client.get("/recommenders")).json()
        response = await client.post("/recommendations", json={"recommender": "popularity"})
        train = await client.post("/recommenders/als/train", json={})
    assert all(entry["status"] in ("untrained", "unavailable") for entry in listing)
    assert response.status_code == 409
    assert "prefshift data import" in response.json()["detail"]
    assert train.status_code == 409


async def test_token_is_required_when_configured(trained_service: ServiceFactory) -> None:
    async with trained_service(api_token="s3cret-token-for-tests") as client:
        refused = await client.get("/recommenders")
        allowed = await client.get(
            "/recommenders", headers={"authorization": "Bearer s3cret-token-for-tests"}
        )
    assert refused.status_code == 401
    assert allowed.status_code == 200


# SQLite pass only: what it checks (BLAS threads in a fresh process) does not depend on the
# database; training from both databases is checked by the other tests here.
@pytest.mark.slow
@pytest.mark.sqlite_only
def test_a_fresh_process_trains_in_its_worker_thread_without_blas_warnings(
    ml_small_database_url: str, tmp_path: Path
) -> None:
    """The service trains in a worker thread; BLAS must already be held to one thread there, or
    implicit warns (an error under ``-W error``) and runs many times slower. Checked in a fresh
    interpreter, because in this one an earlier test may already have set the limit."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import asyncio
        from tests.recommender.conftest import make_settings
        from prefshift_recommender.main import create_app

        async def main():
            settings = make_settings(
                {ml_small_database_url!r}, {str(tmp_path)!r}, recommender_autotrain="als,bpr"
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                await app.state.registry.wait_idle()
                states = app.state.registry._states
                print(sorted((name, s.status, s.detail) for (name, _), s in states.items()))

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "('als', 'ready', None)" in result.stdout, result.stdout + result.stderr[-2000:]
    assert "('bpr', 'ready', None)" in result.stdout, result.stdout + result.stderr[-2000:]


async def test_a_recommendations_body_of_another_json_type_is_refused(
    untrained_service: ServiceFactory,
) -> None:
    """``POST /recommendations`` is as strict as the orchestrator's API (``StrictContract``):
    lax pydantic read ``"n": true`` as 1, ``"seed": false`` as 0 and ``"n": 2.0`` as 2. Nothing
    is trained here: a valid body passes validation and meets the logic's 409."""
    body = {"recommender": "random", "history": [{"tmdb_id": 603, "rating": 5.0}], "n": 3}
    wrong = [
        {**body, "n": True},
        {**body, "n": 3.0},
        {**body, "n": "3"},
        {**body, "seed": False},
        {**body, "user_id": True},
        {**body, "exclude": [True]},
        {**body, "history": [{"tmdb_id": "603", "rating": 5.0}]},
        {**body, "history": [{"tmdb_id": 603, "rating": "5"}]},
    ]
    async with untrained_service() as client:
        answered = await client.post("/recommendations", json=body)
        assert answered.status_code == 409, answered.text
        for refused in wrong:
            response = await client.post("/recommendations", json=refused)
            assert response.status_code == 422, (refused, response.text)
            assert response.json()["error"] == "validation_error"
        assert (
            await client.post("/recommenders/als/train", json={"activate": 0})
        ).status_code == 422
