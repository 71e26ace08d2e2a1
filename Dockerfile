# The Doki backend image: only `doki/` and its locked runtime dependencies, run as a non-root user on $PORT.
# BASE_IMAGE is replaceable so tests can build this very file on a stand-in base where no registry is reachable.
# Pinned to the multi-platform index of python:3.11-slim-bookworm (3.11.16) as Docker Hub published it in
# September 2026, so a rebuild never silently picks up a new base. Refresh with
# `docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'`.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Poetry lives in the build stage only: it reads poetry.lock, the final image never sees it.
RUN python3 -m venv /opt/poetry && /opt/poetry/bin/pip install "poetry==2.5.1"
WORKDIR /src
# Dependencies before code: a code-only change reuses this layer.
COPY pyproject.toml poetry.lock README.md ./
# No pip in the runtime venv: nothing installs packages at run time. The bytecode is compiled here, once, for
# every module (Poetry's own leftovers removed first): a container runs with PYTHONDONTWRITEBYTECODE as a non-root
# user, so without it every cold start compiles all of FastAPI and pydantic again, which doubles the time to the
# first answer. unchecked-hash: no start spends time checking them, as they never change here (a derived image
# that patches one must compile it again).
RUN python3 -m venv --without-pip /opt/venv \
    && VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH /opt/poetry/bin/poetry install --only main --no-root --no-interaction \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib

FROM ${BASE_IMAGE}
# DOKI_STATE_DIR: development in a container keeps its generated keys somewhere the non-root user may write.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8080 \
    DOKI_STATE_DIR=/tmp/doki
RUN useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin appuser
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY doki ./doki
# Bytecode for doki/ (checked-hash: a cheap check per module, so a derived image that edits doki/ never runs it
# stale), and for the standard library modules a server loads, which the official base ships without.
RUN python -m compileall -q --invalidation-mode checked-hash doki && python -m doki.precompile
USER 1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('PORT', '8080'), timeout=5)"]
# JSON form: python is PID 1 and gets Cloud Run's SIGTERM itself; uvicorn then finishes requests and exits.
CMD ["python", "-m", "doki"]
