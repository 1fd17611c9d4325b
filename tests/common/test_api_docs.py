"""Every service's API docs work offline and start from examples that fit the demo data.

``/docs`` (Swagger UI) and ``/redoc`` reference only assets served by the service itself, and
those assets are served; every request body in every OpenAPI document has an example, every
path parameter has one, and each body example is valid for its model. (That the services accept
the examples on ml-latest-small is checked against the running stack in
``tests/e2e/test_console.py``.)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from prefshift_common.contracts import MovieBatchRequest, RatingsRequest
from prefshift_common.examples import BODY_EXAMPLES
from prefshift_console.config import Settings as ConsoleSettings
from prefshift_console.main import create_app as console_app
from prefshift_orchestrator.config import Settings as OrchestratorSettings
from prefshift_orchestrator.main import create_app as orchestrator_app
from prefshift_orchestrator.schemas import ExperimentRequest, SimulationRequest
from prefshift_recommender.config import Settings as RecommenderSettings
from prefshift_recommender.main import create_app as recommender_app
from prefshift_recommender.schemas import TrainRequest
from prefshift_simulator.config import Settings as SimulatorSettings
from prefshift_simulator.main import create_app as simulator_app
from prefshift_tmdb_proxy.config import Settings as TmdbProxySettings
from prefshift_tmdb_proxy.main import create_app as tmdb_proxy_app

APPS: dict[str, tuple[Callable[[Any], FastAPI], type[Any]]] = {
    "orchestrator": (orchestrator_app, OrchestratorSettings),
    "recommender": (recommender_app, RecommenderSettings),
    "simulator": (simulator_app, SimulatorSettings),
    "tmdb-proxy": (tmdb_proxy_app, TmdbProxySettings),
    "console": (console_app, ConsoleSettings),
}
MODELS: dict[str, type[BaseModel]] = {
    "SimulationRequest": SimulationRequest,
    "ExperimentRequest": ExperimentRequest,
    "TrainRequest": TrainRequest,
    "RatingsRequest": RatingsRequest,
    "MovieBatchRequest": MovieBatchRequest,
}
ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.fixture(params=sorted(APPS))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, TestClient]]:
    """A service's app, not started (the docs need no database)."""
    factory, settings = APPS[request.param]
    app = factory(
        settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'x.db'}", api_token=None)
    )
    yield request.param, TestClient(app)


def _assets(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_only_local_assets(service: tuple[str, TestClient], page: str) -> None:
    name, client = service
    response = client.get(page)
    assert response.status_code == 200, f"{name}{page}: {response.status_code}"
    assets = _assets(response.text)
    assert any(asset.endswith(".js") for asset in assets), assets
    assert "/openapi.json" in assets
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), f"{name}{page}: {asset}"
        served = client.get(asset)
        assert served.status_code == 200 and served.content, f"{name}{page}: {asset}"
        # nor do the bundles fetch anything from elsewhere (ReDoc's logo is served here)
        assert b"cdn.redoc.ly" not in served.content, asset
    assert "cdn." not in response.text and "fonts.googleapis" not in response.text


def test_every_request_body_and_path_parameter_has_an_example(
    service: tuple[str, TestClient],
) -> None:
    name, client = service
    document = client.get("/openapi.json").json()
    bodies = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{name}: {method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "example" in parameter or "examples" in parameter, where
            body = operation.get("requestBody")
            if body is None:
                continue
            bodies += 1
            for media_type, media in body["content"].items():
                if media_type != "application/json":
                    continue
                assert media.get("examples") or "example" in media, f"{where}: no example"
    if name in ("orchestrator", "recommender", "simulator", "tmdb-proxy"):
        assert bodies >= 1


def test_body_examples_are_valid_requests() -> None:
    assert set(BODY_EXAMPLES) == set(MODELS)
    for schema, (summary, value) in BODY_EXAMPLES.items():
        assert summary
        MODELS[schema].model_validate(value)
