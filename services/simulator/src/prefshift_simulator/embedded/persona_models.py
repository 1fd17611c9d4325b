"""Named parameter sets of the embedded persona ("persona models"), with where they came from.

A set is a JSON file: ``name``, ``description``, ``source`` (what it was fitted to, or the
literature it is taken from), ``created`` (date), ``estimator``, ``parameters`` (fields of
:class:`~prefshift_simulator.embedded.model.ModelParams` and
:class:`~prefshift_simulator.embedded.dynamics.DynamicsParams`; absent ones keep their
defaults) and ``intervals`` (per parameter, ``[low, high]`` where the estimator gives one).
The sets shipped with the simulator live in ``persona_models/`` next to this module; more can
be read from a directory (``PREFSHIFT_SIMULATOR_PERSONA_DIR``; ``prefshift persona calibrate``
writes there).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from prefshift_simulator.embedded.dynamics import DynamicsParams
from prefshift_simulator.embedded.model import ModelParams

#: The set used when neither request, experiment nor setting names one.
DEFAULT_PERSONA_MODEL = "seed-gpt5-v2"
DYNAMICS_FIELDS = frozenset(f.name for f in dataclasses.fields(DynamicsParams))
MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelParams)) - {"dynamics"}


class PersonaModelError(ValueError):
    """A parameter set that cannot be read, or a name no set has."""


@dataclass(frozen=True)
class PersonaModel:
    """One named parameter set and its provenance."""

    name: str
    params: ModelParams
    description: str = ""
    source: str = ""
    created: str = ""
    estimator: str = ""
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "created": self.created,
            "estimator": self.estimator,
            "parameters": flat_parameters(self.params),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            **dict(self.extra),
        }


def flat_parameters(params: ModelParams) -> dict[str, float]:
    """The parameters of a set as one flat mapping (the JSON file's ``parameters``)."""
    values = {name: getattr(params, name) for name in sorted(MODEL_FIELDS)}
    values.update({name: getattr(params.dynamics, name) for name in sorted(DYNAMICS_FIELDS)})
    return values


def with_parameters(params: ModelParams, values: Mapping[str, float]) -> ModelParams:
    """``params`` with some flat parameters replaced (unknown names are an error)."""
    unknown = set(values) - MODEL_FIELDS - DYNAMICS_FIELDS
    if unknown:
        raise PersonaModelError(f"unknown persona parameters: {sorted(unknown)}")
    dynamics = dataclasses.replace(
        params.dynamics, **{k: float(v) for k, v in values.items() if k in DYNAMICS_FIELDS}
    )
    return dataclasses.replace(
        params,
        dynamics=dynamics,
        **{k: v for k, v in values.items() if k in MODEL_FIELDS},
    )


def parse_persona_model(payload: Mapping[str, Any], *, origin: str) -> PersonaModel:
    """A set from its JSON form; ``origin`` names the file in errors."""
    try:
        name = str(payload["name"])
        params = with_parameters(ModelParams(), dict(payload.get("parameters", {})))
        intervals = {
            str(k): (float(v[0]), float(v[1])) for k, v in payload.get("intervals", {}).items()
        }
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PersonaModelError(f"{origin}: not a persona parameter set ({exc})") from exc
    known = {"name", "description", "source", "created", "estimator", "parameters", "intervals"}
    return PersonaModel(
        name=name,
        params=params,
        description=str(payload.get("description", "")),
        source=str(payload.get("source", "")),
        created=str(payload.get("created", "")),
        estimator=str(payload.get("estimator", "")),
        intervals=intervals,
        extra={k: v for k, v in payload.items() if k not in known},
    )


def _read(texts: Iterable[tuple[str, str]]) -> dict[str, PersonaModel]:
    models: dict[str, PersonaModel] = {}
    for origin, text in texts:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PersonaModelError(f"{origin}: invalid JSON ({exc})") from exc
        model = parse_persona_model(payload, origin=origin)
        models[model.name] = model
    return models


def shipped_persona_models() -> dict[str, PersonaModel]:
    """The sets that ship inside the simulator package."""
    folder = resources.files("prefshift_simulator.embedded").joinpath("persona_models")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
    return _read((f"persona_models/{f.name}", f.read_text(encoding="utf-8")) for f in files)


def load_persona_models(directory: Path | None = None) -> dict[str, PersonaModel]:
    """The shipped sets, then those of ``directory`` (a set there replaces a shipped one of the
    same name)."""
    models = shipped_persona_models()
    if directory is not None and directory.is_dir():
        files = sorted(directory.glob("*.json"))
        models.update(_read((str(f), f.read_text(encoding="utf-8")) for f in files))
    return models


def save_persona_model(model: PersonaModel, directory: Path) -> Path:
    """Write a set as ``<directory>/<name>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{model.name}.json"
    path.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
    return path
