"""docker-compose.yml, the Dockerfile and .env.example agree with the code.

No Docker engine runs here, so the compose file is parsed and checked against the settings
classes: every variable it sets is a setting of the service that receives it, and the values it
gives (defaults of the ``${VAR:-default}`` interpolations) validate. Its structure is held to
what both Compose v2 and Debian's docker-compose 1.29 accept (no top-level ``name``, no
``env_file`` with ``path``/``required``); no JSON schema of the Compose file format ships in a
well-kept PyPI package, so the file is not validated against one here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from prefshift.stack import SERVICES
from prefshift_common.settings import DEFAULT_PORTS
from prefshift_console.config import Settings as ConsoleSettings
from prefshift_datasets.config import DatasetSettings
from prefshift_orchestrator.config import Settings as OrchestratorSettings
from prefshift_recommender.config import Settings as RecommenderSettings
from prefshift_simulator.config import Settings as SimulatorSettings
from prefshift_tmdb_proxy.config import Settings as TmdbProxySettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS: dict[str, type[BaseSettings]] = {
    "migrate": DatasetSettings,
    "orchestrator": OrchestratorSettings,
    "worker": OrchestratorSettings,
    "recommender": RecommenderSettings,
    "simulator": SimulatorSettings,
    "tmdb-proxy": TmdbProxySettings,
    "console": ConsoleSettings,
}
#: The console keeps no data: it gets neither the database nor the data volume.
STATELESS = {"console"}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")
# variables only docker compose itself reads (interpolation), never a service
COMPOSE_ONLY = {
    "POSTGRES_PASSWORD",
    "PREFSHIFT_DATASETS_HOST_DIR",
    "BASE_IMAGE",
    "POSTGRES_IMAGE",
    "PREFSHIFT_WORKER_RUNS",
}
#: Secrets never have a value in the file: they are passed through by name (YAML null).
SECRETS = {"PREFSHIFT_API_TOKEN", "OPENAI_API_KEY", "TMDB_API_KEY", "TMDB_READ_TOKEN"}
#: Read by a service from the shell or .env like a secret (no default in the file).
PASSED_THROUGH = SECRETS | {"OPENAI_BASE_URL"}
WORKER_PORT = 8105


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
    assert set(services) == {"postgres", "migrate", "worker", *SERVICES}
    text = DOCKERFILE.read_text()
    assert text.startswith("#")
    assert "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE} AS deps" in text
    service_stage = text.split("FROM deps AS service")[1]
    # one recipe, parameterised: the package, the port and the command all follow the arguments
    assert "uv sync --frozen --no-dev --package prefshift-${SERVICE}" in service_stage
    assert "COPY services/${SERVICE} services/${SERVICE}" in service_stage
    assert "EXPOSE ${PORT}" in service_stage
    assert "exec prefshift-${PREFSHIFT_IMAGE_SERVICE} --host 0.0.0.0" in service_stage
    assert "http://127.0.0.1:${PREFSHIFT_IMAGE_PORT}/healthz" in service_stage
    for name in SERVICES:
        service = services[name]
        port = DEFAULT_PORTS[name]
        assert service["ports"] == [f"{port}:{port}"]
        build = service["build"]
        assert build["context"] == "." and "dockerfile" not in build  # the root Dockerfile
        assert build["target"] == "service"
        assert build["args"] == {
            "BASE_IMAGE": "${BASE_IMAGE:-python:3.11-slim}",
            "SERVICE": name,
            "PORT": str(port),
        }
        # the image runs `prefshift-<SERVICE>` of the package `prefshift-<SERVICE>`
        project = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())
        assert project["project"]["name"] == f"prefshift-{name}"
        assert project["project"]["scripts"][f"prefshift-{name}"] == f"{SERVICES[name][0]}.main:run"


def test_images_build_from_any_base_with_uv_from_pypi_as_a_user() -> None:
    text = DOCKERFILE.read_text()
    assert "ghcr.io" not in text and "COPY --from=" not in text  # no other registry
    pin = re.search(r"^ARG UV_VERSION=(\S+)$", text, re.MULTILINE)
    assert pin is not None and re.fullmatch(r"\d+\.\d+\.\d+", pin.group(1)), "uv pinned exactly"
    assert 'pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"' in text
    for stage in ("FROM deps AS cli", "FROM deps AS service"):
        body = text.split(stage)[1].split("\nFROM ")[0]
        assert "\nUSER prefshift\n" in body, f"{stage}: runs as root"
        assert "HEALTHCHECK" in body, stage
    # nothing secret is a build argument, and the context leaves the developer's .env out
    arguments = re.findall(r"^ARG (\w+)", text, re.MULTILINE)
    assert not [a for a in arguments if re.search("KEY|TOKEN|SECRET|PASSWORD", a)], arguments
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".git"} <= set(ignored)


def test_compose_file_is_one_both_compose_tools_read(compose: dict[str, Any]) -> None:
    # docker-compose 1.29's schema allows only these top-level keys (and x- extensions)
    assert set(compose) - {"services", "volumes", "networks", "secrets", "configs"} == {
        key for key in compose if key.startswith("x-")
    }
    for name, service in compose["services"].items():
        assert "env_file" not in service, f"{name}: env_file path/required is Compose 2.24+"
        health = service["healthcheck"]
        if name == "migrate":  # one-shot: done when it exits 0
            assert health == {"disable": True}
        else:
            assert health["test"][0] in ("CMD", "CMD-SHELL") and health["retries"] >= 3, name


def test_workers_scale_out(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = services["worker"]
    assert "ports" not in worker and "container_name" not in worker  # --scale worker=N
    assert worker["build"] == {
        "context": ".",
        "target": "cli",
        "args": {"BASE_IMAGE": "${BASE_IMAGE:-python:3.11-slim}"},
    }
    assert worker["image"] == services["migrate"]["image"] == "prefshift-cli"
    assert worker["command"] == [
        "prefshift", "worker", "--host", "0.0.0.0", "--port", str(WORKER_PORT)
    ]  # fmt: skip
    assert f"http://127.0.0.1:{WORKER_PORT}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert _interpolate(worker["environment"]["PREFSHIFT_ORCHESTRATOR_WORKERS"]) == "4"
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert {"recommender", "simulator", "tmdb-proxy"} <= set(worker["depends_on"])


def test_postgres_and_migration_step(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"] == "${POSTGRES_IMAGE:-postgres:16}"
    assert _interpolate(postgres["image"]) == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    migrate = services["migrate"]
    assert migrate["command"] == ["prefshift", "db", "upgrade"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["build"]["target"] == "cli"
    cli_stage = DOCKERFILE.read_text().split("FROM deps AS cli")[1]
    assert "COPY migrations migrations" in cli_stage and "COPY alembic.ini" in cli_stage
    for name in {*SERVICES, "worker"} - STATELESS:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["postgres"] == {"condition": "service_healthy"}
    console = services["console"]
    assert set(console["depends_on"]) == {"orchestrator", "recommender", "simulator", "tmdb-proxy"}
    assert "volumes" not in console
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
            if value is not None  # passed through from the shell: unset here
        }
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            loaded: Any = settings()
        if name in STATELESS:
            assert "PREFSHIFT_DATABASE_URL" not in environment
        else:
            assert loaded.resolved_database_url.startswith(
                "postgresql://prefshift:prefshift@postgres:"
            )
            assert str(loaded.data_dir) == "/data"
        for service, (_factory, url_field) in SERVICES.items():
            assert getattr(loaded, url_field) == f"http://{service}:{DEFAULT_PORTS[service]}"
    postgres = compose["services"]["postgres"]["environment"]
    assert _interpolate(postgres["POSTGRES_PASSWORD"]) == "prefshift"


def test_secrets_are_passed_through_by_name_to_the_services_that_read_them(
    compose: dict[str, Any],
) -> None:
    for name, settings in SETTINGS.items():
        environment = compose["services"][name]["environment"]
        passed = {key for key, value in environment.items() if value is None}
        assert passed == PASSED_THROUGH & _env_names(settings), name
        # no secret has a value (not even an empty one) anywhere in the file
        assert not {key for key in SECRETS & set(environment) if environment[key] is not None}


def test_env_example_names_only_real_settings() -> None:
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert {"PREFSHIFT_DATABASE_URL", "OPENAI_API_KEY", "TMDB_API_KEY"} <= names
    known = set().union(*(_env_names(settings) for settings in SETTINGS.values())) | COMPOSE_ONLY
    assert not names - known, sorted(names - known)
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for variable in COMPOSE_ONLY:
        assert f"${{{variable}" in compose_text
