# The two commands of the README, and a few more for developers.
DATASET ?= ml-latest-small
USER_ID ?=

.PHONY: demo test test-fast up lint format bench

demo:  ## set up, then simulate one user end to end on the embedded default
	@bash scripts/bootstrap.sh
	@PATH="$$HOME/.local/bin:$$PATH" uv run prefshift demo --dataset "$(DATASET)" $(if $(USER_ID),--user $(USER_ID),)

test:  ## set up, then lint, type-check and run the suite on SQLite and Postgres
	@bash scripts/test.sh

test-fast:  ## the inner loop: the tests that start no service (not e2e, not slow), on SQLite, no lint
	@bash scripts/bootstrap.sh
	@env -u PYTHONDONTWRITEBYTECODE PATH="$$HOME/.local/bin:$$PATH" PREFSHIFT_TEST_DATABASE=sqlite uv run pytest -n $${PREFSHIFT_TEST_WORKERS:-3} --dist loadgroup -m "not e2e and not slow" --durations=10

up:
	@bash scripts/bootstrap.sh
	@PATH="$$HOME/.local/bin:$$PATH" uv run prefshift up

format:
	uv run ruff format . && uv run ruff check --fix .
