# syntax=docker/dockerfile:1
#
# cast-gatekeeper: one image for both processes.
#   API (default):  CMD ["cast-api"]          (uvicorn on $CAST_API_PORT, default 8080)
#   operator:       command: ["cast-operator"] (kopf; the Helm chart sets it)
#
# NOTE: the project's machines and CI have no Docker engine, so this file is not built there.
# What it installs is exactly what the tests install: `pip install .` of this project (the
# build stage runs it into a virtualenv, which PEP 517 does by building the project's wheel and
# installing it with its dependencies), then the runtime stage copies that virtualenv.
#
#   docker build -t cast-gatekeeper:0.1.0 .
#   docker run --rm -p 8080:8080 -e CAST_STORE=memory -e CAST_LINK_SIGNING_KEY=... cast-gatekeeper:0.1.0

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the distribution needs (see .dockerignore): metadata, README (pyproject's readme)
# and the three packages.
COPY pyproject.toml README.md ./
COPY cast_core/ cast_core/
COPY api/ api/
COPY operator/ operator/
RUN python -m venv /opt/cast \
 && /opt/cast/bin/pip install . \
 && test -x /opt/cast/bin/cast-api \
 && test -x /opt/cast/bin/cast-operator

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cast-gatekeeper" \
      org.opencontainers.image.description="Kubernetes-native Cast 2.0 gatekeeper (API + kopf operator)" \
      org.opencontainers.image.licenses="Apache-2.0"
# Fixed non-root UID/GID 10001 (the chart's runAsUser/runAsGroup); no home, no login shell.
RUN groupadd --gid 10001 cast \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cast
COPY --from=build /opt/cast /opt/cast
# Read-only root filesystem in the chart: no .pyc writes; /tmp is an emptyDir.
ENV PATH=/opt/cast/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CAST_API_HOST=0.0.0.0 \
    CAST_API_PORT=8080
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081 9090
CMD ["cast-api"]
