"""A run completes when TMDB rate-limits or is slow for the whole run (issue case 2): the four
services as processes, tmdb-proxy online against the fake TMDB, ``prefshift simulate --wait`` on
a seed-cohort user. The movies come from fallbacks (the dataset's own titles), the report says
how many, and the proxy never exceeds its rate limit."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from tests.e2e.conftest import USER, Services
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.test_upstream_failures import arrival_bound, max_in_any_window

# SQLite pass only: the proxy's fallbacks under a struggling TMDB; its cache is checked on both
# databases in tests/tmdb_proxy/.
pytestmark = pytest.mark.sqlite_only

KEY = "tmdb-e2e-key-5d1c0a9b7e"
RATE = 5.0


@pytest.mark.parametrize("mode", ["429", "slow"])
def test_a_run_completes_from_fallbacks_while_tmdb_struggles(
    services: Services, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTmdb(api_key=KEY)
    if mode == "429":
        fake.fail(429, retry_after=2)  # every request, for the whole run
    else:
        fake.delay = 20.0  # far past the proxy's 1 s deadline
    with (
        fake.serve(),
        services.start(
            TMDB_API_KEY=KEY,
            TMDB_API_BASE_URL=fake.base_url,
            PREFSHIFT_TMDB_PROXY_RATE_LIMIT=str(RATE),
            PREFSHIFT_TMDB_PROXY_REQUEST_DEADLINE_S="1",
        ),
    ):
        monkeypatch.setenv("PREFSHIFT_TMDB_PROXY_URL", services.urls["tmdb-proxy"])
        monkeypatch.setenv("PREFSHIFT_API_TOKEN", "")
        monkeypatch.delenv("PREFSHIFT_API_TOKEN")
        arguments = ["simulate", str(USER), "--arm", "random", "--arm", "control", "--pages", "2"]
        arguments += ["--wait", "--url", services.urls["orchestrator"]]
        result = CliRunner().invoke(app, arguments)
        times = fake.times()
    assert result.exit_code == 0, result.output
    assert "Preference shift" in result.output
    served = re.search(r"(\d+) movies served stale, (\d+) from fallbacks", result.output)
    assert served is not None, result.output
    assert int(served.group(2)) > 0
    assert max_in_any_window(times) <= arrival_bound(RATE)
