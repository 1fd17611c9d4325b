"""Training cannot replace what runs use by accident (issue case 4): other parameters make a
candidate version beside the active model, `"activate": true` (with the token when one is set)
serves it, also after a restart; parameters are bounded; trainings are cancellable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.recommender.conftest import ServiceFactory, registry_of

HISTORY = [{"tmdb_id": 603, "rating": 5.0}, {"tmdb_id": 680, "rating": 4.5}]


async def _served(client: httpx.AsyncClient, name: str = "item-knn") -> str:
    response = await client.post(
        "/recommendations", json={"recommender": name, "history": HISTORY, "n": 5}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


@pytest.mark.slow
async def test_other_parameters_make_a_candidate_until_activated(
    trained_service: ServiceFactory, tmp_path: Path
) -> None:
    async with trained_service() as client:
        active = await _served(client)
        candidate = await client.post("/recommenders/item-knn/train", json={"params": {"k": 7}})
        assert candidate.status_code == 202, candidate.text
        await registry_of(client).wait_idle()
        # the candidate is trained and saved, but what runs use is unchanged
        assert candidate.json()["model_version"] != active
        assert await _served(client) == active
        listing = {e["name"]: e for e in (await client.get("/recommenders")).json()}
        assert listing["item-knn"]["model_version"] == active
    async with trained_service() as client:  # and after a restart on the same models
        assert await _served(client) == active
        chosen = await client.post(
            "/recommenders/item-knn/train", json={"params": {"k": 7}, "activate": True}
        )
        await registry_of(client).wait_idle()
        assert await _served(client) == chosen.json()["model_version"] != active


async def test_activating_needs_the_token_when_one_is_set(
    trained_service: ServiceFactory,
) -> None:
    async with trained_service(api_token="t0ken-for-the-test") as client:
        body = {"params": {"k": 9}, "activate": True}
        refused = await client.post("/recommenders/item-knn/train", json=body)
        assert refused.status_code == 401
        headers = {"authorization": "Bearer t0ken-for-the-test"}
        active = (
            await client.post(
                "/recommendations",
                json={"recommender": "item-knn", "history": HISTORY, "n": 5},
                headers=headers,
            )
        ).json()["model_version"]
        assert registry_of(client)._tasks == set()
        assert active


async def test_parameters_are_bounded_and_a_training_is_cancellable(
    trained_service: ServiceFactory,
) -> None:
    async with trained_service() as client:
        for params in ({"factors": 512}, {"iterations": 500}):
            too_big = await client.post("/recommenders/als/train", json={"params": params})
            assert too_big.status_code == 422, too_big.text
        active = await _served(client, "als")
        started = await client.post(
            "/recommenders/als/train", json={"params": {"factors": 64, "iterations": 100}}
        )
        assert started.status_code == 202
        cancelled = await client.delete("/recommenders/als/train")
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json()["status"] == "cancelling"
        registry = registry_of(client)
        await registry.wait_idle()
        # the fit stopped: its version was never written, and the listing says why
        stem = str(cancelled.json()["model_version"]).rsplit(":", 1)[1]
        assert stem and not list(registry.models_dir.rglob(f"*{stem}*"))
        listing = {e["name"]: e for e in (await client.get("/recommenders")).json()}
        assert listing["als"]["model_version"] == active
        assert (await client.delete("/recommenders/als/train")).status_code == 409
        assert await _served(client, "als") == active
        assert (await client.get("/healthz")).status_code == 200
