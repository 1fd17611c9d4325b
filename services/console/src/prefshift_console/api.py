"""JSON for the console's own script (progress, the report, the form's preview): the services'
answers passed through with the signed-in browser's token, so the token stays on the server."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from prefshift_common.contracts import AsciiDigits
from prefshift_console.csrf import CSRF_FIELD, check_csrf
from prefshift_console.forms import FormErrors, experiment_request
from prefshift_console.pages import UpstreamDep
from prefshift_console.sessions import CallerDep

router = APIRouter(prefix="/api", tags=["console"])
Id = Annotated[int, Path(ge=1, le=2_147_483_647), AsciiDigits]


@router.get("/experiments/{experiment_id}")
async def experiment_state(experiment_id: Id, caller: CallerDep, upstream: UpstreamDep) -> Any:
    """The orchestrator's ``GET /experiments/{id}``: status, progress and each user's run."""
    return await upstream.json("orchestrator", f"/experiments/{experiment_id}", token=caller.token)


@router.get("/experiments/{experiment_id}/progress")
async def experiment_progress(experiment_id: Id, caller: CallerDep, upstream: UpstreamDep) -> Any:
    """The orchestrator's ``GET /experiments/{id}/progress``: status and progress alone, a poll
    whose cost does not grow with the number of runs."""
    return await upstream.json(
        "orchestrator", f"/experiments/{experiment_id}/progress", token=caller.token
    )


@router.get("/experiments/{experiment_id}/report")
async def experiment_report(experiment_id: Id, caller: CallerDep, upstream: UpstreamDep) -> Any:
    """The report (``GET /experiments/{id}/report``) and the baseline's (predicted, real) pairs
    of every test movie (its ``table=fidelity`` CSV), for the charts."""
    path = f"/experiments/{experiment_id}/report"
    report = await upstream.json("orchestrator", path, token=caller.token)
    pairs = await upstream.download(
        "orchestrator", path, token=caller.token, params={"format": "csv", "table": "fidelity"}
    )
    rows = csv.DictReader(io.StringIO(pairs.content.decode()))
    fidelity = [
        {
            "predicted": float(row["predicted"]),
            "real": float(row["real"]),
            "user_id": int(float(row["user_id"])),
        }
        for row in rows
    ]
    return {"report": report, "fidelity": fidelity}


@router.get("/recommenders")
async def recommenders(
    caller: CallerDep,
    upstream: UpstreamDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """The recommender service's ``GET /recommenders`` (training status and progress)."""
    params = {"dataset": dataset} if dataset else {}
    return await upstream.json("recommender", "/recommenders", token=caller.token, params=params)


@router.get("/runs/{run_id}")
async def run_state(run_id: Id, caller: CallerDep, upstream: UpstreamDep) -> Any:
    """The orchestrator's ``GET /runs/{id}``."""
    return await upstream.json("orchestrator", f"/runs/{run_id}", token=caller.token)


@router.post("/experiments/preview", dependencies=[Depends(check_csrf)])
async def preview(request: Request, caller: CallerDep) -> dict[str, Any]:
    """The request the experiment form (sent as form data) stands for, or what is wrong."""
    form = await request.form()
    fields = {key: str(value) for key, value in form.items() if key not in ("arms", CSRF_FIELD)}
    try:
        return {"request": experiment_request(fields, [str(a) for a in form.getlist("arms")])}
    except FormErrors as exc:
        return {"errors": exc.errors}
