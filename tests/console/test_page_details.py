"""Details of the console's pages seen in Chromium (issue 22): a failed experiment's progress
bar is not the blue of a completed one, counts agree with their nouns ("1 page of 5"), and
hyphenated names do not break at their hyphens. The templates are rendered as the console
renders them; the stylesheet is the one it serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from prefshift_console import pages

STYLESHEET = Path(pages.__file__).parent / "static" / "console.css"


def _experiment(status: str, pages_: int) -> dict[str, Any]:
    return {
        "experiment_id": 7,
        "name": None,
        "dataset": "ml-latest-small",
        "seed": 0,
        "status": status,
        "messages": [],
        "params": {"pages": pages_, "page_size": 5, "test_size": 1, "persona_size": 20},
        "progress": {
            "progress": 1.0,
            "runs": 1,
            "completed": 0,
            "running": 0,
            "queued": 0,
            "failed": 1,
        },
        "runs": [],
    }


def _render(template: str, **context: Any) -> str:
    return pages.templates.get_template(template).render(
        poll_ms=1000, csrf_token="t" * 43, design="shift", **context
    )


def test_counts_agree_with_their_nouns() -> None:
    one = _render("experiment.html", experiment=_experiment("completed", 1))
    assert "1 page of 5" in one and "1 pages" not in one
    assert "1 test movie and 20 persona movies" in one
    many = _render("experiment.html", experiment=_experiment("completed", 10))
    assert "10 pages of 5" in many


@pytest.mark.parametrize("status", ["failed", "completed"])
def test_the_progress_bar_carries_the_experiments_status(status: str) -> None:
    page = _render("experiment.html", experiment=_experiment(status, 1))
    assert re.search(rf'<progress id="progress" class="{status}"', page)


def test_a_failed_bar_has_its_own_colour_and_names_do_not_break() -> None:
    css = STYLESHEET.read_text()
    failed = re.search(r"progress\.failed\s*\{([^}]*)\}", css)
    assert failed and "accent-color: var(--bad)" in failed.group(1)
    plain = re.search(r"(?m)^progress\s*\{([^}]*)\}", css)
    assert plain and "accent-color: var(--accent)" in plain.group(1)
    identifier = re.search(r"\.id\s*\{([^}]*)\}", css)
    assert identifier and "white-space: nowrap" in identifier.group(1)
    page = _render("experiment.html", experiment=_experiment("completed", 1))
    assert '<span class="id">ml-latest-small</span>' in page
