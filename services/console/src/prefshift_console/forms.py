"""The experiment form → the ``POST /experiments`` request it stands for.

One rule, used twice: to preview the request as the form is filled in (so the same run can be
scripted) and to send it. Only what the person set goes in; the orchestrator fills in its
defaults and validates the rest (its 422 details are shown beside the form).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

COHORT_KINDS = ("users", "sample", "seed-study")
PROTOCOL_FIELDS = ("pages", "page_size", "test_size", "persona_size")
_ID_SEPARATORS = re.compile(r"[\s,;]+")


class FormErrors(Exception):
    """What in the form cannot become a request, by field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


#: ASCII digits only: ``str.isdigit`` and ``int`` also take ``²``, ``⑤``, ``١٢٣`` and ``1_000``
_DIGITS = re.compile(r"[0-9]+")
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _integer(value: str, field: str, errors: dict[str, str]) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not _WHOLE_NUMBER.fullmatch(value):
        errors[field] = f"{value[:40]!r} is not a whole number"
        return None
    return int(value)


def experiment_request(fields: Mapping[str, str], arms: Sequence[str]) -> dict[str, Any]:
    """The request body for the form's ``fields`` (single values) and checked ``arms``.

    Raises :class:`FormErrors` for what is not even well-formed (a user id that is not a number,
    an external arm without a URL)."""
    errors: dict[str, str] = {}
    request: dict[str, Any] = {}
    name = fields.get("name", "").strip()
    if name:
        request["name"] = name
    dataset = fields.get("dataset", "").strip()
    if dataset:
        request["dataset"] = dataset

    kind = fields.get("cohort_kind", "users")
    if kind not in COHORT_KINDS:
        errors["cohort_kind"] = f"one of {', '.join(COHORT_KINDS)}"
    cohort: dict[str, Any] = {"kind": kind}
    if kind == "users":
        tokens = [t for t in _ID_SEPARATORS.split(fields.get("user_ids", "")) if t]
        if not tokens:
            errors["user_ids"] = "give at least one user id"
        bad = [t for t in tokens if not _DIGITS.fullmatch(t)]
        if bad:
            errors["user_ids"] = f"not user ids: {', '.join(t[:20] for t in bad[:5])}"
        cohort["user_ids"] = [int(t) for t in tokens if _DIGITS.fullmatch(t)]
    else:
        size = _integer(fields.get("cohort_size", ""), "cohort_size", errors)
        if size is not None:
            cohort["size"] = size
        elif kind == "sample" and "cohort_size" not in errors:
            errors["cohort_size"] = "a sample needs a size"
        cohort_seed = _integer(fields.get("cohort_seed", ""), "cohort_seed", errors)
        if cohort_seed is not None:
            cohort["seed"] = cohort_seed
    request["cohort"] = cohort

    chosen: list[Any] = list(dict.fromkeys(arm for arm in arms if arm))
    external_name = fields.get("external_name", "").strip()
    external_url = fields.get("external_url", "").strip()
    if external_url:
        chosen.insert(0, {"name": external_name or "external", "url": external_url})
    elif external_name:
        errors["external_url"] = "an external arm needs the URL of its service"
    if chosen:
        request["arms"] = chosen

    backend = fields.get("backend", "").strip()
    if backend:
        request["backend"] = backend
    persona_model = fields.get("persona_model", "").strip()
    if persona_model:
        request["persona_model"] = persona_model
    seed = _integer(fields.get("seed", ""), "seed", errors)
    if seed is not None:
        request["seed"] = seed
    for field in PROTOCOL_FIELDS:
        value = _integer(fields.get(field, ""), field, errors)
        if value is not None:
            request[field] = value
    if errors:
        raise FormErrors(errors)
    return request
