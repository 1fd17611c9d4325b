"""The four services as the benchmarks start them (the console has no part in a run): free
loopback ports, the benchmark's own database and data folder, no LLM or TMDB key taken from the
caller's environment, logs at WARNING. Used by orchestrator_run.py (and through it by
llm_arms.py and replication.py), throughput.py, hostile_clients.py and console.py (which adds
the console)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fakes and free_port live with the tests

from prefshift.stack import SERVICES, Stack  # noqa: E402
from prefshift_common.settings import CommonSettings  # noqa: E402
from tests.fakes.live import free_port  # noqa: E402

NAMES = tuple(name for name in SERVICES if name != "console")


def service_stack(
    database_url: str,
    data_dir: Path,
    dataset: str,
    env: Mapping[str, str] | None = None,
    names: Sequence[str] = NAMES,
) -> tuple[Stack, dict[str, str], dict[str, str]]:
    """The four services (or ``names``: the console too), not started yet: the stack, each
    service's URL by name, and the environment they get (``env`` last, over the defaults)."""
    fields = {name: SERVICES[name][1] for name in names}
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in names}
    settings = CommonSettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        **{fields[name]: urls[name] for name in names},
        api_token=None,
    )
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TMDB_API_KEY", "TMDB_READ_TOKEN"):
        os.environ.pop(name, None)
    environment = {
        "PREFSHIFT_DATABASE_URL": database_url,
        "PREFSHIFT_DATA_DIR": str(data_dir),
        **{f"PREFSHIFT_{fields[name].upper()}": urls[name] for name in names},
        "PREFSHIFT_SIMULATOR_DATASET": dataset,
        "PREFSHIFT_RECOMMENDER_DATASET": dataset,
        "PREFSHIFT_ORCHESTRATOR_DATASET": dataset,
        "PREFSHIFT_ORCHESTRATOR_POLL_SECONDS": "0.2",
        "PREFSHIFT_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    return Stack(settings, env=environment, services=tuple(names)), urls, environment
