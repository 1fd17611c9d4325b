"""The console's pages, rendered on the server from the services' public APIs."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from prefshift_common.contracts import AsciiDigits
from prefshift_common.examples import DEMO_DATASET, DEMO_USERS
from prefshift_console.csrf import CSRF_FIELD, check_csrf, csrf_token, keep_csrf_cookie
from prefshift_console.forms import FormErrors, experiment_request
from prefshift_console.sessions import COOKIE, CallerDep, Sessions, safe_next
from prefshift_console.story import build_story, movie_ids
from prefshift_console.upstream import ServiceCallError, Upstream

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=FilePath(__file__).parent / "templates")


def counted(count: int, noun: str) -> str:
    """``1 page``, ``5 pages``: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else noun + 's'}"


templates.env.filters["counted"] = counted
Id = Annotated[int, Path(ge=1, le=2_147_483_647), AsciiDigits]
PLOTS = ("shift_by_page", "genre_shift", "fidelity")
TABLES = ("statistics", "users", "fidelity")
#: The rerate and retest designs' tables (their measures, every re-rating).
RERATING_TABLES = ("rerating", "rerating_ratings")


def get_upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


UpstreamDep = Annotated[Upstream, Depends(get_upstream)]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    settings = request.app.state.settings
    response = templates.TemplateResponse(
        request,
        template,
        {
            "poll_ms": int(settings.console_poll_seconds * 1000),
            "csrf_token": csrf_token(request),
            **context,
        },
        status_code=status_code,
    )
    keep_csrf_cookie(request, response)
    return response


async def _optional(call: Any, default: Any) -> Any:
    """A listing that may fail without taking the page down (its error is shown instead)."""
    try:
        return await call, None
    except ServiceCallError as exc:
        if exc.status == 401:
            raise
        return default, f"{exc.service}: {exc.detail}"


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    caller: CallerDep,
    upstream: UpstreamDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Health of the services, the datasets, the recommenders and the persona backends."""
    token = caller.token
    health, (datasets, datasets_error), (backends, backends_error) = await asyncio.gather(
        upstream.health(),
        _optional(upstream.json("orchestrator", "/datasets", token=token), []),
        _optional(upstream.json("simulator", "/backends", token=token), {"backends": []}),
    )
    chosen = dataset or (datasets[0]["name"] if datasets else None)
    params = {"dataset": chosen} if chosen else {}
    recommenders, recommenders_error = await _optional(
        upstream.json("recommender", "/recommenders", token=token, params=params), []
    )
    return render(
        request,
        "overview.html",
        health=health,
        datasets=datasets,
        dataset=chosen,
        recommenders=recommenders,
        backends=backends["backends"],
        errors=[e for e in (datasets_error, backends_error, recommenders_error) if e],
    )


@router.post("/recommenders/{name}/train", dependencies=[Depends(check_csrf)])
async def train(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")],
    caller: CallerDep,
    upstream: UpstreamDep,
    dataset: Annotated[str, Form()],
) -> Response:
    """Ask the recommender service to train ``name`` on ``dataset``; back to the overview."""
    await upstream.json(
        "recommender", f"/recommenders/{name}/train", token=caller.token, json={"dataset": dataset}
    )
    return RedirectResponse(f"/?dataset={dataset}", status_code=303)


async def _form_choices(upstream: Upstream, token: str | None) -> dict[str, Any]:
    datasets, backends = await asyncio.gather(
        upstream.json("orchestrator", "/datasets", token=token),
        upstream.json("simulator", "/backends", token=token),
    )
    recommenders, _ = await _optional(
        upstream.json("recommender", "/recommenders", token=token), []
    )
    arms = [r["name"] for r in recommenders if r.get("status") != "unavailable"] + ["control"]
    return {"datasets": datasets, "backends": backends["backends"], "arms": arms}


@router.get("/experiments/new", response_class=HTMLResponse)
async def new_experiment(request: Request, caller: CallerDep, upstream: UpstreamDep) -> Response:
    """The form that starts an experiment, with the request it will send."""
    choices = await _form_choices(upstream, caller.token)
    names = [d["name"] for d in choices["datasets"]]
    dataset = DEMO_DATASET if DEMO_DATASET in names else (names[0] if names else "")
    # the demo's users where the demo's data is, so that the form works as it stands
    users = ", ".join(map(str, DEMO_USERS)) if dataset == DEMO_DATASET else ""
    fields = {"dataset": dataset, "cohort_kind": "users", "user_ids": users, "seed": "0"}
    checked = [arm for arm in ("als", "random", "control") if arm in choices["arms"]]
    try:
        preview: dict[str, Any] | None = experiment_request(fields, checked)
    except FormErrors:
        preview = None
    return render(
        request,
        "new.html",
        **choices,
        fields=fields,
        checked=checked,
        preview=preview,
        errors={},
        service_error=None,
    )


@router.post("/experiments", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def start_experiment(request: Request, caller: CallerDep, upstream: UpstreamDep) -> Response:
    """Send the form's request to the orchestrator and open the experiment's page."""
    form = await request.form()
    fields = {key: str(value) for key, value in form.items() if key not in ("arms", CSRF_FIELD)}
    checked = [str(arm) for arm in form.getlist("arms")]
    errors: dict[str, str] = {}
    service_error: str | None = None
    preview: dict[str, Any] | None = None
    try:
        preview = experiment_request(fields, checked)
        created = await upstream.json(
            "orchestrator", "/experiments", token=caller.token, json=preview
        )
        return RedirectResponse(f"/experiments/{created['experiment_id']}", status_code=303)
    except FormErrors as exc:
        errors = exc.errors
    except ServiceCallError as exc:
        if exc.status == 401:
            raise
        service_error = f"{exc.service} answered {exc.status}: {exc.detail}"
    choices = await _form_choices(upstream, caller.token)
    return render(
        request,
        "new.html",
        status_code=422,
        **choices,
        fields=fields,
        checked=checked,
        preview=preview,
        errors=errors,
        service_error=service_error,
    )


Offset = Annotated[int, Query(ge=0, le=2_147_483_647), AsciiDigits]
PAGE = 50


async def _listing(
    request: Request, caller: CallerDep, upstream: Upstream, kind: str, offset: int
) -> Response:
    """One page of the orchestrator's ``GET /{kind}`` (newest first) as ``{kind}.html``."""
    params = {"limit": PAGE, "offset": offset}
    listed = await upstream.json("orchestrator", f"/{kind}", token=caller.token, params=params)
    return render(request, f"{kind}.html", listed=listed, offset=offset)


@router.get("/experiments", response_class=HTMLResponse)
async def experiments(
    request: Request, caller: CallerDep, upstream: UpstreamDep, offset: Offset = 0
) -> Response:
    """The experiments, newest first."""
    return await _listing(request, caller, upstream, "experiments", offset)


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
async def experiment(
    request: Request, experiment_id: Id, caller: CallerDep, upstream: UpstreamDep
) -> Response:
    """Progress (live) and the report as charts once runs have completed; a rerate or retest
    design's measures as a table."""
    state = await upstream.json("orchestrator", f"/experiments/{experiment_id}", token=caller.token)
    design = (state.get("params") or {}).get("design", "shift")
    rerating = None
    if design != "shift" and state["progress"]["completed"]:
        report = await upstream.json(
            "orchestrator", f"/experiments/{experiment_id}/report", token=caller.token
        )
        rerating = report.get("rerating")
    tables = TABLES + (RERATING_TABLES if design != "shift" else ())
    return render(
        request,
        "experiment.html",
        experiment=state,
        design=design,
        rerating=rerating,
        plots=PLOTS,
        tables=tables,
    )


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/experiments/{experiment_id}/report.{fmt}")
async def report_download(
    experiment_id: Id,
    fmt: Literal["json", "csv"],
    caller: CallerDep,
    upstream: UpstreamDep,
    table: Annotated[
        Literal["statistics", "users", "fidelity", "rerating", "rerating_ratings"], Query()
    ] = "statistics",
) -> Response:
    """The orchestrator's report as a file: JSON, or one of its CSV tables."""
    params: dict[str, Any] = {"format": fmt} | ({"table": table} if fmt == "csv" else {})
    download = await upstream.download(
        "orchestrator", f"/experiments/{experiment_id}/report", token=caller.token, params=params
    )
    name = f"experiment-{experiment_id}" + (f"-{table}" if fmt == "csv" else "") + f".{fmt}"
    return _attachment(download.content, download.media_type, name)


@router.get("/experiments/{experiment_id}/plots/{plot}.{fmt}")
async def plot_download(
    experiment_id: Id,
    plot: Literal["shift_by_page", "genre_shift", "fidelity"],
    fmt: Literal["png", "svg"],
    caller: CallerDep,
    upstream: UpstreamDep,
) -> Response:
    """One of the orchestrator's report plots as PNG or SVG."""
    download = await upstream.download(
        "orchestrator",
        f"/experiments/{experiment_id}/report",
        token=caller.token,
        params={"format": fmt, "plot": plot},
    )
    return _attachment(
        download.content, download.media_type, f"experiment-{experiment_id}-{plot}.{fmt}"
    )


@router.get("/runs", response_class=HTMLResponse)
async def runs(
    request: Request, caller: CallerDep, upstream: UpstreamDep, offset: Offset = 0
) -> Response:
    """The work queue (runs by status) and the runs, newest first (single simulations, such
    as `make demo`'s, and experiments')."""
    params = {"limit": PAGE, "offset": offset}
    listed, (queue, queue_error) = await asyncio.gather(
        upstream.json("orchestrator", "/runs", token=caller.token, params=params),
        _optional(upstream.queue(token=caller.token), {}),
    )
    return render(
        request,
        "runs.html",
        listed=listed,
        offset=offset,
        queue=queue,
        errors=[queue_error] if queue_error else [],
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request, run_id: Id, caller: CallerDep, upstream: UpstreamDep
) -> Response:
    """One persona's story."""
    token = caller.token
    run, selection, ratings = await asyncio.gather(
        upstream.json("orchestrator", f"/runs/{run_id}", token=token),
        upstream.json("orchestrator", f"/runs/{run_id}/selection", token=token),
        upstream.json("orchestrator", f"/runs/{run_id}/ratings", token=token),
    )
    ids = movie_ids(selection, ratings["ratings"])
    records, records_error = (
        await _optional(upstream.movies(ids, token=token), {}) if ids else ({}, None)
    )
    story = build_story(run=run, selection=selection, ratings=ratings["ratings"], records=records)
    return render(request, "run.html", run=run, story=story, records_error=records_error)


@router.post("/runs/{run_id}/again", dependencies=[Depends(check_csrf)])
async def simulate_again(run_id: Id, caller: CallerDep, upstream: UpstreamDep) -> Response:
    """Simulate the run's user again with the same dataset, protocol and seed (a new run)."""
    run = await upstream.json("orchestrator", f"/runs/{run_id}", token=caller.token)
    body = {key: value for key, value in run["params"].items() if value is not None}
    body |= {"dataset": run["dataset"], "seed": run["seed"]}
    again = await upstream.call(
        "orchestrator",
        "POST",
        f"/simulate/{run['user_id']}",
        token=caller.token,
        json=body,
        params={"force": "true"},
    )
    return RedirectResponse(f"/runs/{again.json()['run_id']}", status_code=303)


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    """Ask for the API token."""
    return render(request, "signin.html", next=safe_next(next), error=None)


@router.post("/signin", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def signin(
    request: Request,
    upstream: UpstreamDep,
    token: Annotated[str, Form(max_length=4096)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the token (against the console's own setting, else with the orchestrator) and
    remember it for this browser."""
    expected = request.app.state.settings.api_token
    if expected is not None:
        accepted = secrets.compare_digest(token.encode(), expected.get_secret_value().encode())
    else:
        try:
            await upstream.json("orchestrator", "/experiments", token=token, params={"limit": 1})
            accepted = True
        except ServiceCallError as exc:
            if exc.status != 401:
                raise
            accepted = False
    if not accepted:
        return render(
            request, "signin.html", status_code=401, next=safe_next(next), error="wrong token"
        )
    sessions: Sessions = request.app.state.sessions
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        sessions.open(token),
        httponly=True,
        samesite="strict",
        max_age=int(sessions.lifetime),
    )
    return response


@router.post("/signout", dependencies=[Depends(check_csrf)])
async def signout(request: Request) -> Response:
    sessions: Sessions = request.app.state.sessions
    sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE)
    return response
