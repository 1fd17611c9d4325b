#!/usr/bin/env bash
# Make sure uv is available and the workspace environment is in sync with uv.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
# An earlier bootstrap's uv is in ~/.local/bin, which need not be on PATH: use it, don't reinstall.
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
fi
# Installed packages compiled to bytecode once, here: where PYTHONDONTWRITEBYTECODE is set (it is
# on some machines) Python never writes the caches, and every process (each command, each service,
# each test worker) compiled pandas, SQLAlchemy, FastAPI… from source again: about 2 s of CPU each.
uv sync --locked --quiet --compile-bytecode
