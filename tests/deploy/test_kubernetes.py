"""deploy/kubernetes: every manifest validates against the Kubernetes API schemas
(``kubernetes-validate``, which ships them: no network), and the base and the lab overlay,
rendered, hold what the services need — probes on each service's /healthz and /readyz,
resource requests, the migration Job, the workers' autoscaler on queue depth, secrets by
reference only, Postgres external in the base and one StatefulSet in the lab.

The overlays are rendered by ``kustomize_subset`` (no kustomize binary here; see its docstring
for the subset it renders faithfully and refuses to exceed), not by kustomize itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from prefshift.stack import SERVICES
from prefshift_common.settings import DEFAULT_PORTS
from prefshift_orchestrator.config import Settings as OrchestratorSettings
from tests.common.test_compose import _env_names, _interpolate
from tests.deploy.kustomize_subset import Unsupported, key, load_documents, render

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
LAB = KUBERNETES / "overlays" / "lab"
#: the oldest Kubernetes the manifests are held to, and the newest schemas the package ships
VERSIONS = ("1.28", kubernetes_validate.latest_version())
WORKER_PORT = 8105
QUEUE_METRIC = "prefshift_orchestrator_queue_depth"


def _manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(KUBERNETES)))
def test_every_manifest_validates(path: Path, version: str) -> None:
    documents = load_documents(path)
    assert documents, path
    for document in documents:
        # strict: a field the API does not have (a typo) is an error too
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("overlay", [BASE, LAB], ids=["base", "lab"])
def test_rendered_objects_validate(overlay: Path) -> None:
    for obj in render(overlay):
        kubernetes_validate.validate(obj, VERSIONS[-1], strict=True)


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {key(obj): obj for obj in objects}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env_from_secrets(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }


def test_every_service_and_the_workers_run_with_probes_and_requests() -> None:
    objects = _by_key(render(BASE))
    ports = {**DEFAULT_PORTS, "worker": WORKER_PORT}
    for name in [*SERVICES, "worker"]:
        deployment = objects["Deployment", name]
        container = _container(deployment)
        port = ports[name]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        image = "prefshift-cli" if name == "worker" else f"prefshift-{name}"
        assert container["image"] == image
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert (get["path"], get["port"]) == (path, port), (name, probe)
            # the services refuse a Host they do not know (the pod IP a kubelet sends)
            assert get["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
        requests = container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(requests), name
        assert "memory" in container["resources"]["limits"], name
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user
        if name != "worker":
            service = objects["Service", name]
            assert service["spec"]["ports"] == [
                {"name": "http", "port": port, "targetPort": "http"}
            ]
            assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert ("Service", "worker") not in objects  # workers serve nothing but their probes
    worker = _container(objects["Deployment", "worker"])
    assert worker["args"] == [
        "prefshift",
        "worker",
        "--host",
        "0.0.0.0",
        "--port",
        str(WORKER_PORT),
    ]


def test_configuration_matches_the_compose_file_and_the_settings() -> None:
    config = _by_key(render(BASE))["ConfigMap", "prefshift-config"]["data"]
    assert set(config) <= _env_names(OrchestratorSettings)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose_env = compose["services"]["orchestrator"]["environment"]
    for name, value in config.items():
        if name in compose_env and name != "PREFSHIFT_DATABASE_URL":
            assert _interpolate(compose_env[name]) == value, name


def test_migration_job_and_queue_depth_autoscaler() -> None:
    objects = _by_key(render(BASE))
    job = objects["Job", "prefshift-migrate"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["prefshift", "db", "upgrade"]
    assert container["image"] == "prefshift-cli"
    assert "PREFSHIFT_DATABASE_URL" in _env_from_secrets(container)
    hpa = objects["HorizontalPodAutoscaler", "worker"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "worker",
    }
    assert [m["external"]["metric"]["name"] for m in hpa["metrics"]] == [QUEUE_METRIC]
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]


def test_secrets_are_references_and_postgres_is_external_in_the_base() -> None:
    objects = render(BASE)
    kinds = {obj["kind"] for obj in objects}
    assert "Secret" not in kinds and "StatefulSet" not in kinds
    example_file = KUBERNETES / "secrets.example.yaml"
    example = _by_key(load_documents(example_file))
    for obj in objects:
        spec = obj["spec"]["template"]["spec"] if "template" in obj.get("spec", {}) else {}
        for container in spec.get("containers", []):
            for name, ref in _env_from_secrets(container).items():
                assert ("Secret", ref["name"]) in example  # documented in the example
                if ref["name"] == "prefshift-database":
                    assert ref == {"name": "prefshift-database", "key": "url"}
                else:  # a key left out stays unset
                    assert ref == {"name": "prefshift-secrets", "key": name, "optional": True}
                    assert name in example_file.read_text()


def test_the_lab_adds_one_postgres_and_keeps_everything_in_its_namespace() -> None:
    base = _by_key(render(BASE))
    lab = _by_key(render(LAB))
    assert set(lab) - set(base) == {
        ("Namespace", "prefshift-lab"),
        ("Secret", "prefshift-database"),
        ("Service", "postgres"),
        ("StatefulSet", "postgres"),
    }
    for (kind, _name), obj in lab.items():
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == "prefshift-lab"
    postgres = lab["StatefulSet", "postgres"]["spec"]
    assert postgres["replicas"] == 1
    url = lab["Secret", "prefshift-database"]["stringData"]["url"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url
    assert lab["Service", "postgres"]["spec"]["ports"][0]["port"] == 5432
    # the lab's patch: fewer workers at most, the same metric
    hpa = lab["HorizontalPodAutoscaler", "worker"]["spec"]
    assert hpa["maxReplicas"] < base["HorizontalPodAutoscaler", "worker"]["spec"]["maxReplicas"]
    assert hpa["metrics"] == base["HorizontalPodAutoscaler", "worker"]["spec"]["metrics"]


def test_the_renderer_refuses_what_it_would_not_render_as_kustomize_does(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tmp_path / "base" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1', b: '2'}\n"
    )
    (tmp_path / "kustomization.yaml").write_text("resources: [base]\npatches: [{path: p.yaml}]\n")
    # a partial object: kustomize would keep `b`, a replacement would drop it
    (tmp_path / "p.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '3'}\n"
    )
    with pytest.raises(Unsupported, match="not a whole ConfigMap"):
        render(tmp_path)
    (tmp_path / "p.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '3', b: '2'}\n"
    )
    assert render(tmp_path)[0]["data"] == {"a": "3", "b": "2"}
    (tmp_path / "kustomization.yaml").write_text("resources: [base]\nimages: [{name: x}]\n")
    with pytest.raises(Unsupported, match="images"):
        render(tmp_path)
