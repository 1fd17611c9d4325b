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

# The real-model test (tests/e2e/test_real_llm.py) needs llama-cpp-python's server, installed
# outside the repository by scripts/install-llama-server.sh; PREFSHIFT_REQUIRE_LLAMA=1 makes it
# mandatory. -rs lists every skipped test with its reason.
llama="${PREFSHIFT_TEST_LLAMA_SERVER:-${XDG_CACHE_HOME:-$HOME/.cache}/prefshift/llama-server/bin/python}"
if [ -x "$llama" ]; then
  echo "== the real-model test runs against llama.cpp's server at $llama (SQLite pass only)"
elif [ "${PREFSHIFT_REQUIRE_LLAMA:-0}" = "1" ]; then
  echo "PREFSHIFT_REQUIRE_LLAMA=1 but no llama-server at $llama: run scripts/install-llama-server.sh" >&2
  exit 1
else
  echo "== SKIPPING the real-model test: no llama-server at $llama (run scripts/install-llama-server.sh)"
fi

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
