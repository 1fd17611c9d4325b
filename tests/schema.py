"""One schemathesis harness for every service's OpenAPI schema, over real HTTP on loopback.

A service's ``test_schema.py`` subclasses :class:`SchemaContract` (as lenskit's component test
harness is subclassed) with the operations it must list, its API token and a class-scoped
``schema`` fixture that serves the app; the harness then checks that the schema lists exactly
those operations and drives each one with Hypothesis (``operation.as_strategy()`` — schemathesis's
``from_fixture`` does not work with this pytest version): every response conforms to the schema,
invalid input is refused with a declared status, nothing answers 500, and with a token set,
wrong or missing auth is refused.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

# CI (``.ci/run`` sets HYPOTHESIS_PROFILE=ci) draws the same examples on every run, so whether a
# submission lands depends on its code, not on the draw; without it every run explores new
# examples (how the arm-URL host that made a 500 was found). A failure found either way is kept
# as a plain test case where the bug was fixed.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: the checks deliberately not run, where and why: one list, also read by ``st run``
EXCLUSIONS = Path(__file__).resolve().parents[1] / "schemathesis.toml"


def _listed(value: str | list[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def documented_exclusions(method: str, path: str) -> list[schemathesis.CheckFunction]:
    """The checks ``schemathesis.toml`` turns off for one operation."""
    excluded = []
    for entry in tomllib.loads(EXCLUSIONS.read_text())["operations"]:
        if f"{method.upper()} {path}" in _listed(entry.get("include-name")):
            for name, check in entry.get("checks", {}).items():
                if check.get("enabled") is False:
                    excluded.append(getattr(schemathesis.checks, name))
    return excluded


class SchemaContract:
    """Subclass as ``Test<Service>Schema`` and define ``schema``, a class-scoped fixture (a
    classmethod) that serves the app on ``schema_database_url`` and yields its schema."""

    #: every operation of the schema, as "METHOD /path"
    operations: ClassVar[Sequence[str]]
    #: the bearer token the served app is configured with
    api_token: ClassVar[str]
    max_examples: ClassVar[int] = 60
    #: client timeout of one call (None: schemathesis's default)
    timeout: ClassVar[float | None] = None
    #: the fixture of the template database the served app's database is copied from
    database_template: ClassVar[str]

    @pytest.fixture(scope="class")
    @classmethod
    def schema_database_url(cls, request: pytest.FixtureRequest) -> str:
        """A fresh database for the served app, copied from ``database_template``."""
        factory = request.getfixturevalue("database_factory")
        return str(factory.new(template=request.getfixturevalue(cls.database_template)))

    def excluded_checks(self, method: str, path: str) -> list[schemathesis.CheckFunction]:
        """Checks that cannot hold for one operation: those of ``schemathesis.toml``."""
        return documented_exclusions(method, path)

    def check_response(self, method: str, path: str, response: schemathesis.Response) -> None:
        """Extra assertions on every response of one operation."""

    def examples(self, method: str, path: str) -> int:
        return self.max_examples

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "operation_label" in metafunc.fixturenames:
            metafunc.parametrize("operation_label", self.operations)

    def test_schema_lists_every_operation(self, schema: schemathesis.BaseSchema) -> None:
        found = {
            f"{result.ok().method.upper()} {result.ok().path}"
            for result in schema.get_all_operations()
        }
        assert found == set(self.operations)

    def test_operation_conforms_to_the_schema(
        self, schema: schemathesis.BaseSchema, operation_label: str
    ) -> None:
        method, path = operation_label.split(" ", 1)
        operation = schema[path][method]
        excluded = self.excluded_checks(method, path)
        options: dict[str, Any] = {} if self.timeout is None else {"timeout": self.timeout}
        headers = {"Authorization": f"Bearer {self.api_token}"}

        @given(case=operation.as_strategy())
        @settings(
            max_examples=self.examples(method, path),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, excluded_checks=excluded, **options)
            self.check_response(method, path, response)

        check()
