"""Console benchmark: time to first render of an experiment page with 150 users, beside the
orchestrator's ``GET /experiments/{id}/report`` for the same experiment (the JSON the page
draws from), with the four services and the console as processes on loopback and the page in
headless Chromium (Playwright).

Set-up: a fresh SQLite database with the seed cohort imported, and an experiment of its 150
users (a seeded sample) on the embedded persona with a small protocol (arms popularity,
random, control; 2 pages of 10; 20 test and 30 persona movies), run to completion.

Measured, ``--repeat`` times each (median, min, max):
  * baseline: the orchestrator's ``GET /experiments/{id}/report`` (JSON), over httpx;
  * the console's HTML of the experiment page (server-rendered, over httpx);
  * in Chromium: the first contentful paint (the server-rendered page: progress and runs
    table), DOMContentLoaded (after plotly.js, deferred, is parsed) and the moment every chart
    is drawn (the report fetched through the console and drawn by Plotly).

    uv run python benchmarks/console.py [--users 150] [--repeat 5] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # free_port lives with the tests

from service_stack import service_stack  # noqa: E402

from prefshift.stack import SERVICES  # noqa: E402
from prefshift_common.examples import DEMO_PROTOCOL  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DATASET = "seed-cohort"
PROTOCOL = DEMO_PROTOCOL  # the documented examples' small protocol
console = Console()
#: When the browser first painted the page's content, in ms since navigation began.
FIRST_PAINT = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def line(label: str, times: list[float]) -> str:
    return (
        f"{label:<58} median {statistics.median(times) * 1000:8.0f} ms"
        f"  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--chromium", default=os.environ.get("PREFSHIFT_CHROMIUM", "/usr/bin/chromium")
    )
    options = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    console.print(f"load average at start: {os.getloadavg()}")
    workdir = Path(tempfile.mkdtemp(prefix="prefshift-bench-console-"))
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(database_url)
    import_dataset(database_url, SHARED / DATASET, name=DATASET)
    stack, urls, _ = service_stack(
        database_url,
        workdir / "data",
        DATASET,
        {
            "PREFSHIFT_SIMULATOR_BACKEND": "embedded",
            "PREFSHIFT_RECOMMENDER_AUTOTRAIN": "popularity,random",
        },
        names=tuple(SERVICES),
    )
    stack.start()
    try:
        stack.wait_ready(timeout=600)
        orchestrator = httpx.Client(base_url=urls["orchestrator"], timeout=600)
        created = orchestrator.post(
            "/experiments",
            json={
                **PROTOCOL,
                "name": "console benchmark",
                "cohort": {"kind": "sample", "size": options.users, "min_ratings": 0, "seed": 0},
            },
        )
        created.raise_for_status()
        experiment_id = created.json()["experiment_id"]
        start = time.perf_counter()
        with Progress(console=console) as progress:
            task = progress.add_task(f"experiment of {options.users} users", total=1.0)
            while True:
                state = orchestrator.get(f"/experiments/{experiment_id}").json()
                progress.update(task, completed=state["progress"]["progress"])
                if state["status"] != "running":
                    break
                time.sleep(1)
        console.print(
            f"experiment {experiment_id}: {state['status']}, "
            f"{state['progress']['completed']} of {state['progress']['runs']} runs completed "
            f"in {time.perf_counter() - start:.0f} s"
        )

        report_path = f"/experiments/{experiment_id}/report"
        page_url = f"{urls['console']}/experiments/{experiment_id}"
        console.print(f"load average before measuring: {os.getloadavg()}")
        report = timed(lambda: orchestrator.get(report_path).raise_for_status(), options.repeat)
        with httpx.Client(timeout=600) as browserless:
            html = timed(lambda: browserless.get(page_url).raise_for_status(), options.repeat)
        first_render: list[float] = []
        first_paint: list[float] = []
        charts: list[float] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=options.chromium)
            for _ in range(options.repeat):
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                begin = time.perf_counter()
                page.goto(page_url, wait_until="domcontentloaded", timeout=600_000)
                first_render.append(time.perf_counter() - begin)
                paint = page.evaluate(FIRST_PAINT)
                if paint is not None:
                    first_paint.append(paint / 1000)
                page.wait_for_selector(
                    "#report[data-drawn=true]", state="attached", timeout=600_000
                )
                charts.append(time.perf_counter() - begin)
                page.close()
            browser.close()
        console.print(f"\nexperiment page of {options.users} users ({options.repeat} times each):")
        console.print(line("baseline: orchestrator GET /experiments/{id}/report", report))
        console.print(line("console: experiment page HTML (httpx)", html))
        if first_paint:
            console.print(line("console in Chromium: first contentful paint", first_paint))
        console.print(
            line("console in Chromium: DOMContentLoaded (plotly.js parsed)", first_render)
        )
        console.print(line("console in Chromium: every chart drawn", charts))
        console.print(f"load average at the end: {os.getloadavg()}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
