"""What Swagger UI and ReDoc show first (issue 22): each service's description says what the
service does for its user, not how its module is built ("The simulator app: factory and
lifespan." opened the simulator's)."""

from __future__ import annotations

import re

import pytest

from tests.common.test_request_limits import SERVICES

#: words of a developer's module docstring, not of a service's description
DEVELOPER_WORDS = re.compile(r"\b(app|factory|lifespan|module)\b", re.IGNORECASE)


@pytest.mark.parametrize("name", list(SERVICES))
def test_the_description_opens_with_what_the_service_does(name: str) -> None:
    build, _ = SERVICES[name]
    description = build().openapi()["info"]["description"]
    first_sentence = description.split(".")[0]
    assert not DEVELOPER_WORDS.search(first_sentence), first_sentence
    assert len(first_sentence.split()) >= 5, first_sentence
