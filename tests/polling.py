"""Waiting on a live orchestrator: the one poll loop the tests share."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINISHED = ("completed", "failed", "cancelled")


def wait_for_run(
    client: httpx.Client, run_id: int, *, timeout: float = 300, until: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Poll ``GET /runs/{id}`` until the run finishes (or reaches a status in ``until``)."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if run["status"] in (*FINISHED, *until):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"run {run_id} still {run['status']} ({run['progress']:.2f}, "
                f"{run['pages_done']} pages)"
            )
        time.sleep(0.1)
