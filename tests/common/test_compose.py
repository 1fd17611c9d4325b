"""docker-compose.yml, the Dockerfiles and .env.example agree with the code.

No Docker engine runs here, so the compose file is parsed and checked against the settings
classes: every variable it sets is a setting of the service that receives it, and the values it
gives (defaults of the ``${VAR:-default}`` interpolations) validate.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from prefshift.stack import SERVICES
from prefshift_common.settings import DEFAULT_PORTS
from prefshift_datasets.config import DatasetSettings
from prefshift_orchestrator.config import Settings as OrchestratorSettings
from prefshift_recommender.config import Settings as RecommenderSettings
from prefshift_simulator.config import Settings as SimulatorSettings
from prefshift_tmdb_proxy.config import Settings as TmdbProxySettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[BaseSettings]] = {
    "migrate": DatasetSettings,
    "orchestrator": OrchestratorSettings,
    "recommender": RecommenderSettings,
    "simulator": SimulatorSettings,
    "tmdb-proxy": TmdbProxySettings,
}
PACKAGES = {
    "orchestrator": "prefshift-orchestrator",
    "recommender": "prefshift-recommender",
    "simulator": "prefshift-simulator",
    "tmdb-proxy": "prefshift-tmdb-proxy",
}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")
# variables only docker compose itself reads (interpolation), never a service
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "PREFSHIFT_DATASETS_HOST_DIR"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _interpolate(value: object) -> str:
    """A compose value with every ``${VAR:-default}`` replaced by its default."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", str(value))


def _env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variable names a settings class reads."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        names.add(f"{prefix}{field_name}".upper())
        alias = field.validation_alias
        if alias is not None:
            choices = getattr(alias, "choices", [alias])
            names.update(str(choice).upper() for choice in choices if isinstance(choice, str))
    return names


def test_services_ports_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", *SERVICES}
    for name in SERVICES:
        service = services[name]
        port = DEFAULT_PORTS[name]
        assert service["ports"] == [f"{port}:{port}"]
        dockerfile = ROOT / service["build"]["dockerfile"]
        assert dockerfile == ROOT / "services" / name / "Dockerfile"
        assert service["build"]["context"] == "."
        text = dockerfile.read_text()
        assert text.startswith("#") and "FROM python:3.11-slim AS deps" in text
        stage = service["build"]["target"]
        assert re.search(rf"^FROM deps AS {stage}$", text, re.MULTILINE)
        service_stage = text.split(f"FROM deps AS {stage}")[1]
        assert f"uv sync --frozen --no-dev --package {PACKAGES[name]}" in service_stage
        assert f"EXPOSE {port}" in service_stage
        factory = SERVICES[name][0]
        assert f'"--factory", "{factory}", "--host", "0.0.0.0", "--port", "{port}"' in service_stage
        assert f"http://127.0.0.1:{port}/healthz" in service_stage


def test_postgres_and_migration_step(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    migrate = services["migrate"]
    assert migrate["command"] == ["prefshift", "db", "upgrade"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["build"]["target"] == "cli"
    cli_stage = (ROOT / migrate["build"]["dockerfile"]).read_text().split("FROM deps AS cli")[1]
    assert "COPY migrations migrations" in cli_stage and "COPY alembic.ini" in cli_stage
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["postgres"] == {"condition": "service_healthy"}
    orchestrator_needs = set(services["orchestrator"]["depends_on"])
    assert {"recommender", "simulator", "tmdb-proxy"} <= orchestrator_needs


def test_every_variable_is_a_setting_of_its_service(compose: dict[str, Any]) -> None:
    for name, settings in SETTINGS.items():
        environment = compose["services"][name]["environment"]
        unknown = set(environment) - _env_names(settings)
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_the_values_validate_and_point_at_the_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name, settings in SETTINGS.items():
        environment = {
            key: _interpolate(value)
            for key, value in compose["services"][name]["environment"].items()
        }
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            loaded: Any = settings()
        assert loaded.resolved_database_url.startswith("postgresql://prefshift:prefshift@postgres:")
        assert str(loaded.data_dir) == "/data"
        for service, (_factory, url_field) in SERVICES.items():
            assert getattr(loaded, url_field) == f"http://{service}:{DEFAULT_PORTS[service]}"
    postgres = compose["services"]["postgres"]["environment"]
    assert _interpolate(postgres["POSTGRES_PASSWORD"]) == "prefshift"


def test_secrets_come_only_from_the_env_file(compose: dict[str, Any]) -> None:
    secrets = {"PREFSHIFT_API_TOKEN", "OPENAI_API_KEY", "TMDB_API_KEY", "TMDB_READ_TOKEN"}
    for name in SETTINGS:
        service = compose["services"][name]
        assert not secrets & set(service["environment"])
        assert service["env_file"] == [{"path": ".env", "required": False}]


def test_env_example_names_only_real_settings() -> None:
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert {"PREFSHIFT_DATABASE_URL", "OPENAI_API_KEY", "TMDB_API_KEY"} <= names
    known = set().union(*(_env_names(settings) for settings in SETTINGS.values())) | COMPOSE_ONLY
    assert not names - known, sorted(names - known)
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for variable in COMPOSE_ONLY:
        assert f"${{{variable}" in compose_text
