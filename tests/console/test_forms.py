"""The experiment form → request rule (the preview shows exactly what is sent)."""

from __future__ import annotations

import pytest

from prefshift_console.forms import FormErrors, experiment_request
from prefshift_orchestrator.schemas import ExperimentRequest


def test_a_full_form_becomes_a_valid_orchestrator_request() -> None:
    request = experiment_request(
        {
            "name": " demo ",
            "dataset": "ml-latest-small",
            "cohort_kind": "users",
            "user_ids": "1, 4;15\n  42",
            "external_name": "mine",
            "external_url": "http://127.0.0.1:9000",
            "backend": "embedded",
            "persona_model": "literature",
            "seed": "7",
            "pages": "2",
            "page_size": "10",
            "test_size": "",
            "persona_size": "20",
        },
        ["als", "control", "als", ""],
    )
    assert request == {
        "name": "demo",
        "dataset": "ml-latest-small",
        "cohort": {"kind": "users", "user_ids": [1, 4, 15, 42]},
        "arms": [{"name": "mine", "url": "http://127.0.0.1:9000"}, "als", "control"],
        "backend": "embedded",
        "persona_model": "literature",
        "seed": 7,
        "pages": 2,
        "page_size": 10,
        "persona_size": 20,
    }
    # what the console sends is what the orchestrator accepts
    ExperimentRequest.model_validate(request)


def test_rules_other_than_a_list_carry_size_and_seed() -> None:
    request = experiment_request(
        {"cohort_kind": "seed-study", "cohort_size": "150", "cohort_seed": "3"}, []
    )
    assert request == {"cohort": {"kind": "seed-study", "size": 150, "seed": 3}}
    ExperimentRequest.model_validate(request)
    assert experiment_request({"cohort_kind": "seed-study"}, [])["cohort"] == {"kind": "seed-study"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cohort_kind": "users", "user_ids": ""}, "user_ids"),
        ({"cohort_kind": "users", "user_ids": "1, x2"}, "user_ids"),
        ({"cohort_kind": "sample"}, "cohort_size"),
        ({"cohort_kind": "sample", "cohort_size": "ten"}, "cohort_size"),
        ({"cohort_kind": "nobody"}, "cohort_kind"),
        ({"user_ids": "1", "external_name": "mine"}, "external_url"),
        ({"user_ids": "1", "pages": "2.5"}, "pages"),
    ],
)
def test_malformed_fields_are_named(fields: dict[str, str], field: str) -> None:
    with pytest.raises(FormErrors) as caught:
        experiment_request(fields, [])
    assert field in caught.value.errors
