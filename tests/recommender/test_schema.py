"""schemathesis against the recommender's OpenAPI schema (the harness in ``tests/schema.py``):
trained models on ml-latest-small, a fake LLM behind the LLM recommenders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from pydantic import SecretStr

from prefshift_recommender.main import create_app
from tests.fakes.live import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content
from tests.recommender.conftest import make_settings
from tests.schema import SchemaContract

TITLES = [("The Matrix", 1999), ("Se7en", 1995), ("Heat", 1995), ("Fargo", 1996)]


def answer(_body: object) -> Reply:
    return Reply(
        content=json_content({"recommendations": [{"title": t, "year": y} for t, y in TITLES]})
    )


class TestRecommenderSchema(SchemaContract):
    api_token = "schemathesis-recommender-token"
    operations = (
        "GET /recommenders",
        "POST /recommendations",
        "POST /recommenders/{name}/train",
        "DELETE /recommenders/{name}/train",
        "GET /healthz",
        "GET /readyz",
    )

    database_template = "ml_small_template"

    @pytest.fixture(scope="class")
    @classmethod
    def schema(
        cls,
        schema_database_url: str,
        trained_data_dir: Path,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[schemathesis.BaseSchema]:
        url = schema_database_url
        data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
        shutil.copytree(trained_data_dir, data_dir)
        fake = FakeOpenAI(responder=answer)
        with fake.serve() as llm_url:
            app = create_app(
                make_settings(
                    url,
                    data_dir,
                    openai_base_url=llm_url,
                    openai_api_key=SecretStr("sk-schemathesis"),
                    recommender_llm_rounds=2,
                    api_token=SecretStr(cls.api_token),
                    log_level="WARNING",
                )
            )
            with LiveServer(app) as server:
                yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
