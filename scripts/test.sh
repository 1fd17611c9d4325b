#!/usr/bin/env bash
# The test command: lint, type-check, then the suite on SQLite and (where reachable) Postgres.
# PREFSHIFT_REQUIRE_POSTGRES=1 turns an unreachable Postgres into a failure (CI sets it), and
# PREFSHIFT_REQUIRE_BROWSER=1 a missing Chromium (the console's browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export PATH="$HOME/.local/bin:$PATH"

echo "== ruff"
uv run --locked ruff check .
uv run --locked ruff format --check .
echo "== mypy"
uv run --locked mypy

chromium="${PREFSHIFT_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
  echo "== browser tests (tests/e2e/test_console.py) with $chromium, in the SQLite pass only"
elif [ "${PREFSHIFT_REQUIRE_BROWSER:-0}" = "1" ]; then
  echo "Chromium is required but not installed at $chromium (apt-get install chromium)" >&2
  exit 1
else
  echo "== Chromium not installed at $chromium: the browser tests are SKIPPED (apt-get install chromium)"
fi

# -rs lists every skipped test with its reason.
echo "== pytest on SQLite"
PREFSHIFT_TEST_DATABASE=sqlite uv run --locked pytest -rs "$@"

pg_url="${PREFSHIFT_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
if uv run --locked python -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$pg_url" 2>/dev/null; then
  echo "== pytest on Postgres (the browser tests run in the SQLite pass only)"
  PREFSHIFT_TEST_DATABASE=postgres PREFSHIFT_TEST_POSTGRES_URL="$pg_url" uv run --locked pytest -rs "$@"
elif [ "${PREFSHIFT_REQUIRE_POSTGRES:-0}" = "1" ]; then
  echo "Postgres is required but not reachable at $pg_url" >&2
  exit 1
else
  echo "== Postgres not reachable at $pg_url: the suite ran on SQLite only"
fi
