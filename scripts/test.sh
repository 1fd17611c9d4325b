#!/usr/bin/env bash
# The test command: lint, type-check, then the suite on SQLite and (where reachable) Postgres.
# PREFSHIFT_REQUIRE_POSTGRES=1 turns an unreachable Postgres into a failure (CI sets it),
# PREFSHIFT_REQUIRE_BROWSER=1 a missing Chromium (the console's browser tests), and
# PREFSHIFT_REQUIRE_LLAMA=1 a missing llama.cpp server (the real-model test; CI installs it with
# scripts/install-llama-server.sh and passes its python as PREFSHIFT_TEST_LLAMA_SERVER).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export PATH="$HOME/.local/bin:$PATH"
# Our own modules' and pytest's (assertion-rewritten) bytecode caches are written even where the
# machine sets PYTHONDONTWRITEBYTECODE: without them every test worker and every process a test
# starts compiles the project and the test modules again (__pycache__/ is ignored by git).
unset PYTHONDONTWRITEBYTECODE

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

llama_home="${PREFSHIFT_LLAMA_SERVER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/prefshift/llama-server}"
llama_python="${PREFSHIFT_TEST_LLAMA_SERVER:-$llama_home/bin/python}"
if [ -x "$llama_python" ] && [ -f "$(dirname "$(dirname "$llama_python")")/.installed" ]; then
  # One small run through a real model takes about 4 minutes on 2 cores (measured 3.8 min at
  # load average 4: ~8,000 prompt tokens through a 270M model on one thread), and what it
  # checks -- the real server's answers -- does not depend on the database, which the LLM
  # client's storage is tested on in tests/e2e/test_llm_endpoints.py on both passes.
  echo "== real-model test (tests/e2e/test_real_llm.py) with $llama_python, in the SQLite pass only"
  export PREFSHIFT_TEST_LLAMA_SERVER="$llama_python"
elif [ "${PREFSHIFT_REQUIRE_LLAMA:-0}" = "1" ]; then
  echo "the llama.cpp server is required but not installed at $llama_python (bash scripts/install-llama-server.sh)" >&2
  exit 1
else
  echo "== no llama.cpp server at $llama_python: the real-model test is SKIPPED (bash scripts/install-llama-server.sh, about 4 minutes)"
fi

# Parallel workers (pytest-xdist): PREFSHIFT_TEST_WORKERS sets both passes' (0: one process).
# Defaults, measured on the 2-core CI machine (docs/development.md): 3 for the SQLite pass (the
# tests wait on their services often enough that a third worker keeps both cores busy) and 2
# for the Postgres pass (3 workers' connection pools can exceed Postgres's default 100
# connections). Tests that share a module's stack carry an xdist_group, so --dist loadgroup
# keeps them on one worker.
xdist_args() {
  local workers="${PREFSHIFT_TEST_WORKERS:-$1}"
  if [ "$workers" != "0" ]; then
    echo "-n $workers --dist loadgroup"
  fi
}

# One pass: -rs lists every skipped test with its reason, --durations the slowest tests. Exit 5
# (no test selected: arguments that pick only tests of the other pass) is not a failure of this
# pass; the two passes together must run something.
# After each pass, the worker time per folder of tests/ (scripts/test_times.py).
ran=0
reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
run_pass() {
  local rc=0 started=$SECONDS
  # shellcheck disable=SC2046  # the xdist arguments are words
  PREFSHIFT_TEST_DATABASE="$1" uv run --locked pytest -rs --durations=15 \
    --junitxml="$reports/$1.xml" $(xdist_args "$2") "${@:3}" || rc=$?
  if [ "$rc" = 5 ]; then
    echo "== no test of the $1 pass was selected"
    return 0
  fi
  if [ -f "$reports/$1.xml" ]; then
    uv run --locked python scripts/test_times.py "$reports/$1.xml"
  fi
  echo "== the $1 pass took $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
  [ "$rc" = 0 ] && ran=1
  return "$rc"
}

echo "== pytest on SQLite: every test but those marked postgres_only"
run_pass sqlite 3 "$@"

pg_url="${PREFSHIFT_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
if uv run --locked python -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$pg_url" 2>/dev/null; then
  echo "== pytest on Postgres: the tests that touch the database, less those marked sqlite_only"
  echo "   (the browser, real-model and protocol-over-HTTP tests are sqlite_only: they ran in the SQLite pass)"
  PREFSHIFT_TEST_POSTGRES_URL="$pg_url" run_pass postgres 2 "$@"
elif [ "${PREFSHIFT_REQUIRE_POSTGRES:-0}" = "1" ]; then
  echo "Postgres is required but not reachable at $pg_url" >&2
  exit 1
else
  echo "== Postgres not reachable at $pg_url: the suite ran on SQLite only"
fi

if [ "$ran" = 0 ]; then
  echo "no test was selected in either pass" >&2
  exit 5
fi
