"""Renders this repository's kustomizations, without kustomize.

No kustomize binary is available here (no Go module proxy, no Debian package, no ``kubectl``),
and PyPI has no maintained renderer, so this is a renderer of the small subset of kustomize that
``deploy/kubernetes`` uses — not kustomize, and it refuses anything beyond the subset rather than
ignore it:

- ``resources``: YAML files (every document) and directories holding a ``kustomization.yaml``
  (rendered first, recursively), in order;
- ``patches``: entries ``{path: FILE}`` only, where FILE holds whole objects: each replaces the
  object of the same ``kind`` and ``metadata.name``. Replacing is what kustomize's strategic
  merge gives only when the patch sets every field of the object it patches, so a patch whose
  shape (the paths of its fields, the lengths of its lists) differs from its target's is
  refused;
- ``namespace``: set on every object but a Namespace, whose name becomes it (kustomize's
  namespace transformer does both).

Every other field of a kustomization (``images``, ``labels``, generators, …) is an error here.
``kubectl apply -k`` (kustomize) remains what renders the manifests for a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "namespace"}
#: cluster-scoped kinds the manifests use (kustomize leaves their namespace unset)
CLUSTER_SCOPED = {"Namespace"}


class Unsupported(ValueError):
    """A kustomization uses more than this renderer does faithfully."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build DIRECTORY`` gives, within the subset above."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise Unsupported(f"{directory}: {sorted(unknown)} is beyond this renderer")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects.extend(render(path) if path.is_dir() else load_documents(path))
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise Unsupported(f"{directory}: a patch is {{path: FILE}} here, not {patch}")
        for replacement in load_documents(directory / patch["path"]):
            index = _find(objects, replacement)
            if shape(objects[index]) != shape(replacement):
                raise Unsupported(
                    f"{patch['path']}: not a whole {replacement['kind']} (its fields differ from "
                    "the base's), which a replacement would not merge as kustomize does"
                )
            objects[index] = replacement
    if "namespace" in kustomization:
        namespace = kustomization["namespace"]
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = namespace
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    keys = [key(obj) for obj in objects]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise Unsupported(f"{directory}: objects defined twice: {duplicates}")
    return objects


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _find(objects: list[dict[str, Any]], patch: dict[str, Any]) -> int:
    for index, obj in enumerate(objects):
        if key(obj) == key(patch):
            return index
    raise Unsupported(f"a patch for {key(patch)}, which no resource defines")


def shape(value: Any, path: str = "") -> set[str]:
    """The paths of every field of ``value`` (list items by index)."""
    if isinstance(value, dict):
        paths = {path}
        for name, item in value.items():
            paths |= shape(item, f"{path}/{name}")
        return paths
    if isinstance(value, list):
        paths = {f"{path}[{len(value)}]"}
        for index, item in enumerate(value):
            paths |= shape(item, f"{path}[{index}]")
        return paths
    return {path}
