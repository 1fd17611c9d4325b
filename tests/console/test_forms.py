"""The experiment form → request rule (the preview shows exactly what is sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefshift_console.csrf import CSRF_COOKIE
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
        # issue 22: digits that str.isdigit or int take but that are no user id
        ({"cohort_kind": "users", "user_ids": "²"}, "user_ids"),
        ({"cohort_kind": "users", "user_ids": "5, ⑤"}, "user_ids"),
        ({"cohort_kind": "users", "user_ids": "١٢٣"}, "user_ids"),
        ({"cohort_kind": "users", "user_ids": "1_000"}, "user_ids"),
        ({"cohort_kind": "sample", "cohort_size": "١٠"}, "cohort_size"),
        ({"user_ids": "1", "pages": "1_0"}, "pages"),
    ],
)
def test_malformed_fields_are_named(fields: dict[str, str], field: str) -> None:
    with pytest.raises(FormErrors) as caught:
        experiment_request(fields, [])
    assert field in caught.value.errors


def test_a_superscript_user_id_is_a_form_error_not_a_500(tmp_path: Path) -> None:
    """Through the console: ``²`` was taken by ``isdigit`` and then refused by ``int`` (500)."""
    from tests.console.test_app import _client

    with _client(tmp_path) as client:
        client.get("/signin")
        preview = client.post(
            "/api/experiments/preview",
            data={"user_ids": "1 ² ١٢٣", "csrf_token": client.cookies[CSRF_COOKIE]},
        )
        assert preview.status_code == 200
        assert preview.json() == {"errors": {"user_ids": "not user ids: ², ١٢٣"}}
