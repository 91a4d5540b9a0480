# syntax=docker/dockerfile:1
# Image of sync-stream (MXP-Sync). Build: docker build -t sync-stream:0.1.0 .
# Run:   docker run --rm -e SYNC_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 sync-stream:0.1.0 run --role processor

# Stage 1: build the sync-stream wheel and a wheel of every dependency.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sync_stream ./sync_stream
RUN pip wheel --wheel-dir /wheels .

# Stage 2: the runtime, installed from those wheels only. No compiler, and pip,
# setuptools and wheel are removed once the service is installed.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYNC_SCHEMAS_DIR=/app/schemas \
    SYNC_API__HOST=0.0.0.0 \
    SYNC_API__PORT=8080

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels sync-stream \
    && pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 sync \
    && useradd --system --uid 10001 --gid sync --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin sync

# The Avro schemas are read at run time from SYNC_SCHEMAS_DIR.
COPY schemas /app/schemas

WORKDIR /app
USER 10001:10001

# 8080: HTTP API (role api or all). Processors serve metrics on SYNC_METRICS_PORT.
EXPOSE 8080

ENTRYPOINT ["sync-stream"]
CMD ["run"]
