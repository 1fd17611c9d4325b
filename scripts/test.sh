#!/usr/bin/env bash
# The test command: lint, type-check, then the suite on SQLite and (where reachable) Postgres.
# PREFSHIFT_REQUIRE_POSTGRES=1 turns an unreachable Postgres into a failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export PATH="$HOME/.local/bin:$PATH"

echo "== ruff"
uv run --locked ruff check .
uv run --locked ruff format --check .
echo "== mypy"
uv run --locked mypy

echo "== pytest on SQLite"
PREFSHIFT_TEST_DATABASE=sqlite uv run --locked pytest "$@"

pg_url="${PREFSHIFT_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
if uv run --locked python -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$pg_url" 2>/dev/null; then
  echo "== pytest on Postgres"
  PREFSHIFT_TEST_DATABASE=postgres PREFSHIFT_TEST_POSTGRES_URL="$pg_url" uv run --locked pytest "$@"
elif [ "${PREFSHIFT_REQUIRE_POSTGRES:-0}" = "1" ]; then
  echo "Postgres is required but not reachable at $pg_url" >&2
  exit 1
else
  echo "== Postgres not reachable at $pg_url: the suite ran on SQLite only"
fi
