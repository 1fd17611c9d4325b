# One image recipe for every prefshift service, picked by build arguments. From the workspace root:
#   docker build --build-arg SERVICE=orchestrator --build-arg PORT=8100 -t prefshift-orchestrator .
#   docker build --target cli -t prefshift-cli .
# Only the chosen service's workspace package and its dependencies are installed (uv.lock, frozen).
#
# BASE_IMAGE: any image with Python 3.11+ (python3 -m venv and pip) and useradd, e.g. one built
# from Debian's own packages where no registry can be reached. uv comes from PyPI, pinned.
# No secret is a build argument or in a layer: keys reach the containers at run time only.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS deps
ARG UV_VERSION=0.13.10
# uv into a venv of its own (not the system Python: Debian's refuses pip installs, PEP 668)
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}" \
    && ln -s /opt/uv/bin/uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PREFSHIFT_DATA_DIR=/data
RUN useradd --system --create-home --uid 10001 prefshift \
    && mkdir -p /data && chown prefshift /data
WORKDIR /app
# Manifests first: the dependency layer is rebuilt only when uv.lock or a pyproject changes.
COPY pyproject.toml uv.lock README.md ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/datasets/pyproject.toml libs/datasets/
COPY services/recommender/pyproject.toml services/recommender/
COPY services/simulator/pyproject.toml services/simulator/
COPY services/tmdb-proxy/pyproject.toml services/tmdb-proxy/
COPY services/orchestrator/pyproject.toml services/orchestrator/
COPY services/console/pyproject.toml services/console/

# --- cli: the whole workspace and the `prefshift` command (docker-compose's `migrate` step,
# `prefshift data import`, the `worker` role); built with `--target cli`.
FROM deps AS cli
RUN uv sync --frozen --no-dev --no-install-workspace
COPY src src
COPY libs libs
COPY services services
COPY migrations migrations
COPY alembic.ini ./
RUN uv sync --frozen --no-dev
USER prefshift
ENTRYPOINT []
# The image runs one-shot commands (migrate, import) and `prefshift worker`, whose health
# endpoints listen where --port says: compose and Kubernetes give the worker its own check.
HEALTHCHECK NONE
CMD ["prefshift", "--help"]

# --- service: one of services/<SERVICE>, served by its `prefshift-<SERVICE>` command
# (prefshift_common.app.serve) on PORT.
FROM deps AS service
ARG SERVICE=orchestrator
ARG PORT=8100
ENV PREFSHIFT_IMAGE_SERVICE=${SERVICE} \
    PREFSHIFT_IMAGE_PORT=${PORT}
RUN uv sync --frozen --no-dev --package prefshift-${SERVICE} --no-install-workspace
COPY libs libs
COPY services/${SERVICE} services/${SERVICE}
RUN uv sync --frozen --no-dev --package prefshift-${SERVICE}
USER prefshift
VOLUME ["/data"]
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PREFSHIFT_IMAGE_PORT}/healthz', timeout=2)"
CMD ["sh", "-c", "exec prefshift-${PREFSHIFT_IMAGE_SERVICE} --host 0.0.0.0 --port ${PREFSHIFT_IMAGE_PORT}"]
