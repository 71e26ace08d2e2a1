# The image as the deployment guide builds it: one stage, Poetry installed in the runtime image. Only for the bench.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=8080
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install "poetry==2.5.1"
WORKDIR /app
COPY pyproject.toml poetry.lock README.md ./
RUN VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH /opt/venv/bin/poetry install --only main --no-root --no-interaction
COPY doki ./doki
CMD ["/opt/venv/bin/python", "-m", "doki"]
