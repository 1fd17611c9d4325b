"""Every service's OpenAPI schema says what its server does (issue 22, item 11: each of these was
a schemathesis failure): the 422 of every route is the error envelope, operations with a body
declare the 400 of a body that is not UTF-8 JSON, a 405's ``Allow`` lists every method of the
path, bearer auth is declared only when a token is set, and a cohort the server refuses is
invalid in the schema. Most need no started app: they happen before a route's logic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.common.test_api_docs import APPS
from tests.orchestrator.conftest import running_orchestrator

SERVICES = ("orchestrator", "recommender", "simulator", "tmdb-proxy")
METHODS = ("get", "put", "post", "delete", "patch")
TOKEN = "agreement-token"


def _app(name: str, tmp_path: Path, api_token: str | None = None) -> FastAPI:
    factory, settings = APPS[name]
    url = f"sqlite:///{tmp_path / 'x.db'}"
    return factory(settings(_env_file=None, database_url=url, api_token=api_token))


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    app = _app(request.param, tmp_path)
    # a loopback Host: the Host allowlist refuses TestClient's default "testserver"
    with_client = TestClient(app, base_url="http://127.0.0.1")
    yield with_client, app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_422_is_the_error_envelope(service: tuple[TestClient, Any]) -> None:
    _client, document = service
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in _operations(document):
        declared = operation["responses"].get("422")
        if declared is None:
            continue
        schema = declared["content"]["application/json"]["schema"]
        # the proxy's TMDB paths answer TMDB's own error shape, on purpose
        assert schema["$ref"].rsplit("/", 1)[1] in ("ErrorEnvelope", "TmdbStatus"), (method, path)


def test_listings_answer_the_declared_422(database_url: str) -> None:
    with running_orchestrator(database_url) as client:
        document = client.get("/openapi.json").json()
        _listings_answer_their_422(client, document)


def _listings_answer_their_422(client: httpx.Client, document: dict[str, Any]) -> None:
    for path in ("/experiments", "/runs"):
        response = client.get(path, params={"limit": 0})
        assert response.status_code == 422
        declared = document["paths"][path]["get"]["responses"]["422"]
        _validate(document, declared["content"]["application/json"]["schema"], response.json())


def test_a_body_that_is_not_utf8_gets_the_declared_400(service: tuple[TestClient, Any]) -> None:
    client, document = service
    bodies = [(p, m, o) for p, m, o in _operations(document) if "requestBody" in o]
    assert bodies
    for path, method, operation in bodies:
        response = client.request(
            method,
            _concrete(path),
            content=b'{"a": "\xff\xfe"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, (method, path, response.text)
        declared = operation["responses"]["400"]["content"]["application/json"]["schema"]
        _validate(document, declared, response.json())


def test_a_405_allows_every_method_of_its_path(service: tuple[TestClient, Any]) -> None:
    client, document = service
    for path, item in document["paths"].items():
        served = {method.upper() for method in item if method in METHODS}
        unserved = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in served)
        response = client.request(unserved, _concrete(path))
        assert response.status_code == 405, (unserved, path)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == served, (path, response.headers["allow"])


@pytest.mark.parametrize("name", SERVICES)
def test_bearer_auth_is_declared_only_with_a_token(name: str, tmp_path: Path) -> None:
    without = _app(name, tmp_path).openapi()
    assert "securitySchemes" not in without.get("components", {})
    for path, method, operation in _operations(without):
        assert "security" not in operation, (method, path)
        assert "401" not in operation["responses"], (method, path)
    with_token = _app(name, tmp_path, api_token=TOKEN).openapi()
    assert with_token["components"]["securitySchemes"]
    for path, method, operation in _operations(with_token):
        if path not in ("/healthz", "/readyz"):
            assert operation.get("security"), (method, path)
            assert "401" in operation["responses"], (method, path)


def test_a_cohort_is_valid_in_the_schema_exactly_when_the_server_takes_it(
    database_url: str,
) -> None:
    with running_orchestrator(database_url) as client:
        _cohorts_agree(client, client.get("/openapi.json").json())


def _cohorts_agree(client: httpx.Client, document: dict[str, Any]) -> None:
    request_schema = {"$ref": "#/components/schemas/ExperimentRequest"}
    # a cohort without ``kind`` is a list of users: {} and {"size": 3} lack its user_ids
    for refused in ({}, {"size": 3}, {"seed": 1}):
        response = client.post("/experiments", json={"cohort": refused})
        assert response.status_code == 422, refused
        with pytest.raises(jsonschema_rs.ValidationError):
            _validate(document, request_schema, {"cohort": refused})
    for taken in ({"user_ids": [1]}, {"kind": "seed-study"}, {"kind": "sample", "size": 3}):
        _validate(document, request_schema, {"cohort": taken})


def _validate(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    rooted = {**schema, "components": document["components"]}
    jsonschema_rs.Draft202012Validator(rooted).validate(instance)
