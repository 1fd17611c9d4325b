"""The console and the API docs in a real browser: Playwright driving Debian's Chromium
(headless) against the whole stack — the four services and the console as processes on
loopback, on ml-latest-small with the embedded persona, as after ``make demo``.

A researcher's path: the overview, an experiment started from the form, its progress until it
completes, the report's charts and downloads, one persona's story and "simulate again"; then
every service's ``/docs`` and ``/redoc`` with no network, and "Try it out" on a documented
example. Screenshots go to ``tmp/artifacts/`` (not committed).

Browser tests run in the SQLite pass only (they test pages, not the database). Without
Chromium at ``/usr/bin/chromium`` (``PREFSHIFT_CHROMIUM``) they are skipped, and they fail
instead when ``PREFSHIFT_REQUIRE_BROWSER=1`` (CI sets it). The examples check needs no browser.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from prefshift.stack import Stack
from tests.e2e.conftest import ALL_SERVICES, Services

# The browser tests run in the SQLite pass only, on one stack for the module (so on one worker).
pytestmark = [pytest.mark.sqlite_only, pytest.mark.xdist_group("console")]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tmp" / "artifacts"
CHROMIUM = Path(os.environ.get("PREFSHIFT_CHROMIUM", "/usr/bin/chromium"))
DATASET = "ml-latest-small"
DEMO = {
    f"PREFSHIFT_{name}_DATASET": DATASET for name in ("SIMULATOR", "RECOMMENDER", "ORCHESTRATOR")
}
TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def stack(
    database_factory: Any, ml_small_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The four services and the console on ml-latest-small (one stack for the module)."""
    url = database_factory.new(template=ml_small_template)
    services = Services(url, tmp_path_factory.mktemp("data"), **DEMO)
    with services.start((*ALL_SERVICES, "console")) as running:
        yield running
    database_factory.release(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("PREFSHIFT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and PREFSHIFT_REQUIRE_BROWSER=1")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


class Watched:
    """A page and what went wrong on it: console errors, uncaught exceptions, and requests
    that left the machine (there must be none: the pages work offline)."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 860}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", self._request)

    def _request(self, request: Any) -> None:
        host = urlsplit(request.url).hostname
        if request.url.startswith(("http:", "https:")) and host not in ("127.0.0.1", "localhost"):
            self.outside.append(request.url)

    def shot(self, name: str, *, full_page: bool = False) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=full_page)

    def check(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    watched = Watched(browser)
    yield watched
    watched.context.close()


def test_an_experiment_from_the_form_to_its_report_and_a_run(
    stack: Stack, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    console = stack.url("console")
    page.goto(console)
    expect(page.locator("#health tbody tr")).to_have_count(4)
    expect(page.locator("#health .state.ok")).to_have_count(4)
    expect(page.locator("#datasets")).to_contain_text(DATASET)
    expect(page.locator("#recommenders")).to_contain_text("popularity")
    expect(page.locator("#backends")).to_contain_text("embedded")
    watched.shot("console-overview")

    page.get_by_role("link", name="New experiment").click()
    page.get_by_label("Name (optional)").fill("browser test")
    page.get_by_label("User ids").fill("1, 4")
    page.get_by_role("checkbox", name="als").uncheck()
    page.get_by_role("checkbox", name="popularity").check()
    page.get_by_label("Persona backend").select_option("embedded")
    page.get_by_label("Pages per arm").fill("2")
    page.get_by_label("Movies per page").fill("8")
    page.get_by_label("Test movies").fill("15")
    page.get_by_label("Persona history movies").fill("25")
    # the preview follows the form: it is the request that will be sent
    expect(page.locator("#request-preview")).to_contain_text('"persona_size": 25')
    request = json.loads(page.locator("#request-preview").inner_text())
    assert request == {
        "name": "browser test",
        "dataset": DATASET,
        "cohort": {"kind": "users", "user_ids": [1, 4]},
        "arms": ["popularity", "random", "control"],
        "backend": "embedded",
        "seed": 0,
        "pages": 2,
        "page_size": 8,
        "test_size": 15,
        "persona_size": 25,
    }
    watched.shot("console-new-experiment")
    # keyboard alone: focus the submit button and press Enter
    page.get_by_role("button", name="Start the experiment").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    experiment_url = page.url

    # live progress without reloads: the same document sees the experiment complete
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#report")).to_have_attribute("data-drawn", "true", timeout=TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#progress-text")).to_contain_text("completed — 2 of 2 runs completed")
    for chart in ("chart-shift", "chart-genres", "chart-fidelity"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    # two arms against control, each a band and a line
    assert page.locator("#chart-shift .scatterlayer .trace").count() == 4
    expect(page.locator("#chart-genres .hm")).to_have_count(1)
    expect(page.locator("#summary tbody tr")).to_have_count(2)
    expect(page.locator("#chart-archetypes")).to_be_hidden()  # ml-latest-small has none
    watched.shot("console-experiment", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="report (JSON)").click()
    report = json.loads(Path(download.value.path()).read_text())
    assert report["n_completed"] == 2
    with page.expect_download() as download:
        page.locator("a[href$='/plots/shift_by_page.png']").click()
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")
    with page.expect_download() as download:
        page.locator("a[href$='/plots/genre_shift.svg']").click()
    assert b"<svg" in Path(download.value.path()).read_bytes()
    with page.expect_download() as download:
        page.get_by_role("link", name="fidelity (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == 2 * 15 and {"tmdb_id", "predicted", "real", "user_id"} <= set(rows[0])

    page.locator("#runs a").first.click()
    expect(page.locator("h1")).to_contain_text("user 1 of ml-latest-small")
    # the form left the parameter set to the simulator: the run says which one rated
    expect(page.locator("#rated-by")).to_contain_text("parameter set seed-gpt5-v2")
    expect(page.locator("#baseline tbody tr")).to_have_count(15)
    expect(page.locator("section.arm")).to_have_count(3)
    expect(page.locator("section.arm table.page").first).to_be_visible()
    first_page = page.locator("section.arm table.page").first.locator("tbody tr")
    expect(first_page).to_have_count(8)
    expect(page.locator("section.arm table.tests").first.locator("tbody tr")).to_have_count(15)
    watched.shot("console-run", full_page=True)
    run_url = page.url
    page.get_by_role("button", name="Simulate this user again").click()
    page.wait_for_url(lambda url: url != run_url and "/runs/" in url)
    expect(page.locator("#run-status")).to_contain_text("completed", timeout=TIMEOUT_MS)
    expect(page.locator("section.arm")).to_have_count(3)

    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page.locator("#run-list tbody tr")).to_have_count(3)  # two users, one again
    # the work queue, from the orchestrator's /metrics: all three done, nothing waiting
    expect(page.locator('#queue [data-status="completed"] dd')).to_have_text("3")
    expect(page.locator('#queue [data-status="queued"] dd')).to_have_text("0")
    page.goto(f"{console}/experiments")
    expect(page.locator("#experiments tbody tr")).to_have_count(1)
    assert experiment_url.endswith(page.locator("#experiments tbody a").first.get_attribute("href"))
    watched.check()


def test_every_services_docs_render_offline_and_try_it_out_works(
    stack: Stack, watched: Watched
) -> None:
    from playwright.sync_api import expect

    page = watched.page
    for service in (*ALL_SERVICES, "console"):
        base = stack.url(service)
        page.goto(f"{base}/docs")
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
        page.goto(f"{base}/redoc")
        expect(page.locator(".api-content").first).to_be_visible()
    watched.shot("docs-redoc")

    # "Try it out" on the simulator's POST /ratings, unchanged: the embedded persona answers
    page.goto(f"{stack.url('simulator')}/docs")
    operation = page.locator("#operations-simulator-post_ratings_ratings_post")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    body = json.loads(operation.locator("textarea.body-param__text").input_value())
    assert body["persona"]["dataset"] == DATASET
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    expect(status).to_have_text("200", timeout=60_000)
    watched.shot("docs-try-it-out")
    watched.check()


def wait_until(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_the_documented_examples_work_on_the_demo_data(stack: Stack) -> None:
    """Every operation, called with its documented examples and nothing else, succeeds on
    ml-latest-small — as "Try it out" would (writes first, so that the reads find something)."""
    with httpx.Client(base_url=stack.url("recommender"), timeout=60) as recommender:
        # as after `make demo`, whose als arm trained the model the examples use
        assert recommender.post("/recommenders/als/train", json={"dataset": DATASET}).is_success
        wait_until(
            lambda: any(
                r["name"] == "als" and r["status"] == "ready"
                for r in recommender.get("/recommenders", params={"dataset": DATASET}).json()
            ),
            timeout=300,
        )
    for service in ALL_SERVICES:
        base = stack.url(service)
        with httpx.Client(base_url=base, timeout=120) as client:
            document = client.get("/openapi.json").json()
            calls = [
                (method, path, operation)
                for path, operations in document["paths"].items()
                for method, operation in operations.items()
                if method != "delete"  # cancelling the example run is not a demo
            ]
            calls.sort(key=lambda call: call[0] != "post")
            for method, path, operation in calls:
                url = path
                params: dict[str, Any] = {}
                for parameter in operation.get("parameters", []):
                    if "example" not in parameter:
                        continue
                    if parameter["in"] == "path":
                        url = url.replace(f"{{{parameter['name']}}}", str(parameter["example"]))
                    elif parameter["in"] == "query" and parameter.get("required"):
                        params[parameter["name"]] = parameter["example"]
                body = None
                if "requestBody" in operation:
                    examples = operation["requestBody"]["content"]["application/json"]["examples"]
                    body = next(iter(examples.values()))["value"]
                response = client.request(method, url, params=params, json=body)
                assert response.status_code < 400, (
                    f"{service} {method.upper()} {url}: {response.status_code} "
                    f"{response.text[:300]}"
                )
