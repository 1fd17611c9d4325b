"""The embedded persona through POST /ratings: complete and valid answers, determinism, and
preferences that move with experience by the documented amounts (and only then)."""

from __future__ import annotations

from typing import Any

import httpx

from prefshift_simulator.evaluation import DatasetSnapshot
from tests.simulator.conftest import PersonaCase, SimulatorFactory


def _by_genres(
    snapshot: DatasetSnapshot, genres: tuple[str, ...], exclude: set[int], n: int
) -> list[int]:
    found = [
        t
        for t, movie in sorted(snapshot.facts.items())
        if movie.genres == genres and t not in exclude
    ]
    assert len(found) >= n, f"the seed cohort has too few {genres} movies"
    return found[:n]


async def _rate(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[int, float]:
    response = await client.post("/ratings", json=body)
    assert response.status_code == 200, response.text
    return {r["tmdb_id"]: r["rating"] for r in response.json()["ratings"]}


async def test_every_item_gets_one_valid_rating_and_a_feeling(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    items = [*case.test, case.test[0], 999_999_999]  # a duplicate and a movie TMDB lacks
    async with simulator() as client:
        response = await client.post("/ratings", json={"persona": case.persona(), "items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "embedded" and body["usage"]["cached"] is False
    rated = [r["tmdb_id"] for r in body["ratings"]]
    assert sorted(rated) == sorted({*case.test, 999_999_999})
    for rating in body["ratings"]:
        assert 0.5 <= rating["rating"] <= 5.0 and (rating["rating"] * 2).is_integer()
        assert rating["feeling"].endswith(".") and len(rating["feeling"]) > 10
    # the persona discriminates: it is not one constant rating
    assert len({r["rating"] for r in body["ratings"]}) >= 3


async def test_ratings_track_the_real_ones(simulator: SimulatorFactory, case: PersonaCase) -> None:
    async with simulator() as client:
        rated = await _rate(client, {"persona": case.persona(), "items": case.test})
    errors = [rated[t] - case.real[t] for t in case.test]
    rmse = (sum(e * e for e in errors) / len(errors)) ** 0.5
    mean = sum(m.rating for m in case.history) / len(case.history)
    mean_rmse = (sum((mean - case.real[t]) ** 2 for t in case.test) / len(case.test)) ** 0.5
    assert rmse < mean_rmse


async def test_same_seed_same_ratings_and_noise_follows_the_seed(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    body = {"persona": case.persona(), "items": case.test, "seed": 7}
    async with simulator(simulator_persona="literature") as client:
        first = await _rate(client, body)
        assert await _rate(client, body) == first
    async with simulator(simulator_persona="literature", simulator_occasion_noise=0.6) as client:
        noisy = await _rate(client, body)
        assert await _rate(client, body) == noisy
        other_seed = await _rate(client, {**body, "seed": 8})
    assert noisy != first
    assert other_seed != noisy


async def test_re_rating_on_another_occasion_can_differ_but_replays_exactly(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    """The default set has response noise: the same request (seed, occasion) gets the same
    answer; the next page (occasion) re-rates some movies differently; the lasting part alone
    never changes with the occasion."""
    body = {"persona": case.persona(), "items": case.test, "seed": 7}
    async with simulator() as client:
        page_1 = await _rate(client, {**body, "occasion": 1})
        assert await _rate(client, {**body, "occasion": 1}) == page_1
        page_2 = await _rate(client, {**body, "occasion": 2})
    changed = sum(page_1[t] != page_2[t] for t in case.test)
    assert 0 < changed < len(case.test)
    lasting = {"simulator_persona": "literature", "simulator_lasting_noise": 0.5}
    async with simulator(simulator_persona="literature") as client:
        quiet = await _rate(client, body)
    async with simulator(**lasting) as client:
        first = await _rate(client, {**body, "occasion": 1})
        assert await _rate(client, {**body, "occasion": 2, "seed": 8}) == first
    assert first != quiet


async def test_a_request_picks_a_named_parameter_set_and_the_answer_says_which(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    body = {"persona": case.persona(), "items": case.test, "seed": 3, "occasion": 1}
    async with simulator() as client:
        default = await client.post("/ratings", json=body)
        literature = await client.post("/ratings", json={**body, "persona_model": "literature"})
        unknown = await client.post("/ratings", json={**body, "persona_model": "no-such-set"})
    assert default.status_code == 200 and default.json()["persona_model"] == "seed-gpt5-v2"
    assert literature.status_code == 200 and literature.json()["persona_model"] == "literature"
    assert unknown.status_code == 400 and "no-such-set" in unknown.json()["detail"]
    async with simulator(simulator_persona="literature") as client:
        chosen = await client.post("/ratings", json=body)
    assert chosen.json()["persona_model"] == "literature"
    assert chosen.json()["ratings"] == literature.json()["ratings"]


async def test_exposure_raises_the_exposed_genre_by_the_documented_amount(
    simulator: SimulatorFactory, case: PersonaCase, seed_snapshot: DatasetSnapshot
) -> None:
    """α_E = 0.05, no reinforcement or satiation: 20 Documentary experiences give
    δ_Documentary = 20 · 0.05 = 1.0 — one star on a Documentary, half on a two-genre one."""
    seen = {m.tmdb_id for m in case.history}
    documentaries = _by_genres(seed_snapshot, ("Documentary",), seen, 30)
    experienced, unseen = documentaries[:20], documentaries[20:]
    mixed = _by_genres(seed_snapshot, ("Documentary", "Music"), seen, 4)
    others = _by_genres(seed_snapshot, ("Comedy",), seen, 5)
    experiences = [{"tmdb_id": t, "rating": 5.0, "feeling": "Loved it."} for t in experienced]
    items = unseen + mixed + others
    settings = {
        "simulator_persona": "literature",
        "simulator_exposure_rate": 0.05,
        "simulator_reinforcement_rate": 0.0,
        "simulator_satiation_rate": 0.0,
    }
    async with simulator(**settings) as client:
        before = await _rate(client, {"persona": case.persona(), "items": items})
        after = await _rate(
            client, {"persona": case.persona(experiences=experiences), "items": items}
        )
        # no experiences, no move: the same persona asked again is where it was
        assert await _rate(client, {"persona": case.persona(), "items": items}) == before
    for t in unseen:
        assert after[t] == min(5.0, before[t] + 1.0), t
    for t in mixed:
        assert after[t] == min(5.0, before[t] + 0.5), t
    for t in others:
        assert after[t] == before[t], t


async def test_default_dynamics_move_by_the_documented_equations(
    simulator: SimulatorFactory, case: PersonaCase, seed_snapshot: DatasetSnapshot
) -> None:
    """Defaults α_E = 0.02, α_R = 0.04, α_S = 0.05, ρ = 0.9, Δmax = 1.5 (docs/simulator.md)."""
    seen = {m.tmdb_id for m in case.history}
    documentaries = _by_genres(seed_snapshot, ("Documentary",), seen, 20)
    experienced, unseen = documentaries[:10], documentaries[10:]
    mean = sum(m.rating for m in case.history) / len(case.history)
    n = len(experienced)
    offset = min(1.5, n * (0.02 + 0.04 * (5.0 - mean)))
    satiation = 0.05 * (1 - 0.9**n) / (1 - 0.9)
    expected = offset - satiation
    experiences = [{"tmdb_id": t, "rating": 5.0} for t in experienced]
    async with simulator(simulator_persona="literature") as client:
        before = await _rate(client, {"persona": case.persona(), "items": unseen})
        after = await _rate(
            client, {"persona": case.persona(experiences=experiences), "items": unseen}
        )
    moves = [after[t] - before[t] for t in unseen if before[t] + expected <= 4.75]
    assert len(moves) >= 5
    for move in moves:  # each rating is rounded to 0.5: within a rounding step of the amount
        assert abs(move - expected) <= 0.5
    assert abs(sum(moves) / len(moves) - expected) <= 0.3


async def test_satiation_lowers_a_genre_seen_over_and_over(
    simulator: SimulatorFactory, case: PersonaCase, seed_snapshot: DatasetSnapshot
) -> None:
    """α_S = 0.1 and no decay (ρ = 1): 10 Documentaries → s = 10, shift −1.0."""
    seen = {m.tmdb_id for m in case.history}
    documentaries = _by_genres(seed_snapshot, ("Documentary",), seen, 20)
    experiences = [{"tmdb_id": t, "rating": 3.0} for t in documentaries[:10]]
    settings = {
        "simulator_persona": "literature",
        "simulator_exposure_rate": 0.0,
        "simulator_reinforcement_rate": 0.0,
        "simulator_satiation_rate": 0.1,
        "simulator_satiation_decay": 1.0,
    }
    async with simulator(**settings) as client:
        before = await _rate(client, {"persona": case.persona(), "items": documentaries[10:]})
        after = await _rate(
            client,
            {"persona": case.persona(experiences=experiences), "items": documentaries[10:]},
        )
    for t in documentaries[10:]:
        assert after[t] == max(0.5, before[t] - 1.0)


async def test_persona_without_dataset_uses_content_only(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    persona = case.persona()
    persona.pop("dataset")
    async with simulator() as client:
        rated = await _rate(client, {"persona": persona, "items": case.test})
    assert sorted(rated) == sorted(case.test)


async def test_unknown_dataset_is_404_and_bad_input_is_422(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    async with simulator() as client:
        missing = await client.post(
            "/ratings", json={"persona": case.persona(dataset="no-such"), "items": case.test}
        )
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found" and "no-such" in missing.json()["detail"]
        nul = await client.post(
            "/ratings",
            json={
                "persona": case.persona(
                    experiences=[{"tmdb_id": 1, "rating": 3, "feeling": "\x00"}]
                ),
                "items": case.test,
            },
        )
        assert nul.status_code == 422 and nul.json()["error"] == "validation_error"
        off_step = await client.post(
            "/ratings",
            json={
                "persona": case.persona(history=[{"tmdb_id": 1, "rating": 3.3}]),
                "items": [1],
            },
        )
        assert off_step.status_code == 422
        empty = await client.post("/ratings", json={"persona": case.persona(), "items": []})
        assert empty.status_code == 422


async def test_backends_lists_embedded_as_default_without_an_llm(
    simulator: SimulatorFactory,
) -> None:
    async with simulator() as client:
        response = await client.get("/backends")
    assert response.status_code == 200
    backends = {b["name"]: b for b in response.json()["backends"]}
    assert backends["embedded"]["available"] and backends["embedded"]["default"]
    sets = {m["name"]: m for m in backends["embedded"]["persona_models"]}
    assert {"literature", "seed-gpt5", "seed-gpt5-v2", "seed-gpt5-spread"} <= set(sets)
    assert [name for name, m in sets.items() if m["default"]] == ["seed-gpt5-v2"]
    assert sets["seed-gpt5-v2"]["source"] and sets["seed-gpt5-v2"]["estimator"]
    assert sets["seed-gpt5-v2"]["parameters"]["satiation_rate"] == 0.0
    assert sets["literature"]["parameters"]["exposure_rate"] == 0.02
    # a set written before the spread existed keeps its ratings (spread 1); the one fitted
    # to GPT-5's rating behaviour widens them
    assert sets["seed-gpt5-v2"]["parameters"]["spread"] == 1.0
    assert sets["seed-gpt5-spread"]["parameters"]["spread"] > 1.5
    assert "spread" in sets["seed-gpt5-spread"]["intervals"]
    assert not backends["llm"]["available"] and not backends["llm"]["default"]
    assert "OPENAI_BASE_URL" in backends["llm"]["detail"]


async def test_the_llm_backend_without_an_llm_is_a_400(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    """Asked of a simulator without an LLM, ``backend: llm`` can only fail: a 400 that says so
    (a 503 invited retries, and schemathesis counts any 5xx as a server error)."""
    body = {"persona": case.persona(), "items": case.test[:2], "backend": "llm"}
    async with simulator() as client:
        response = await client.post("/ratings", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    assert "GET /backends" in response.json()["detail"]


async def test_proxy_down_is_a_clear_503(seed_cohort_database_url: str, case: PersonaCase) -> None:
    from prefshift_simulator.main import create_app
    from tests.fakes.live import free_port
    from tests.simulator.conftest import simulator_settings

    app = create_app(
        simulator_settings(seed_cohort_database_url, f"http://127.0.0.1:{free_port()}")
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://simulator"
        ) as client,
    ):
        response = await client.post(
            "/ratings", json={"persona": case.persona(), "items": case.test}
        )
    assert response.status_code == 503
    assert "tmdb-proxy" in response.json()["detail"]


async def test_a_ratings_body_of_another_json_type_is_refused(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    """``POST /ratings`` is as strict as the orchestrator's API (``StrictContract``): lax
    pydantic read ``"user_id": true`` as user 1, ``"seed": false`` as 0 and ``2.0`` as 2."""
    body = {"persona": case.persona(), "items": case.test[:3], "seed": 1, "occasion": 2}
    persona = body["persona"]
    first = persona["history"][0]
    wrong = [
        {**body, "persona": {**persona, "user_id": True}},
        {**body, "persona": {**persona, "user_id": float(case.user_id)}},
        {**body, "persona": {**persona, "history": [{**first, "tmdb_id": str(first["tmdb_id"])}]}},
        {**body, "items": [True]},
        {**body, "items": [float(case.test[0])]},
        {**body, "seed": False},
        {**body, "occasion": "2"},
        {**body, "shown": [{"tmdb_id": case.test[0], "stars": "4.5"}]},
    ]
    async with simulator() as client:
        assert (await client.post("/ratings", json=body)).status_code == 200
        for refused in wrong:
            response = await client.post("/ratings", json=refused)
            assert response.status_code == 422, (refused, response.text)
            assert response.json()["error"] == "validation_error"
        # a whole number where a rating (a float) is asked is still a rating
        whole = {**persona, "history": [{**first, "rating": 4}]}
        assert (await client.post("/ratings", json={**body, "persona": whole})).status_code == 200
