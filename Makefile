# The two commands of the README, and a few more for developers.
DATASET ?= ml-latest-small
USER_ID ?=

.PHONY: demo test up lint format bench

demo:  ## set up, then simulate one user end to end on the embedded default
	@bash scripts/bootstrap.sh
	@PATH="$$HOME/.local/bin:$$PATH" uv run prefshift demo --dataset "$(DATASET)" $(if $(USER_ID),--user $(USER_ID),)

test:  ## set up, then lint, type-check and run the suite on SQLite and Postgres
	@bash scripts/test.sh

up:
	@bash scripts/bootstrap.sh
	@PATH="$$HOME/.local/bin:$$PATH" uv run prefshift up

format:
	uv run ruff format . && uv run ruff check --fix .
