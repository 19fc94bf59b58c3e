# syntax=docker/dockerfile:1
#
# enrollment-classifier worker image.
#   docker build -t enrollment-classifier:0.1.0 .
#   docker run --rm -p 9108:9108 -e KAFKA_BOOTSTRAP_SERVERS=... enrollment-classifier:0.1.0
#
# Base image: pinned by version tag, the same in both stages (the virtualenv copied into the
# final stage links to the base image's /usr/local/bin/python3.11). For reproducible
# releases also pin the digest, e.g.
#   FROM python:3.11.11-slim-bookworm@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.11-slim-bookworm` prints it) and let a bot
# (Renovate/Dependabot) bump tag and digest together in both FROM lines.

# ---------------------------------------------------------------------------------------------
# Builder: build wheels for the project and all dependencies, install them into a venv.
# confluent-kafka, orjson and pydantic-core ship manylinux wheels (librdkafka is bundled in the
# confluent-kafka wheel). The project's own wheel compiles the classifier core with mypyc
# (setup.py, CLASSIFIER_COMPILE=1; ~1.2x the events/s of plain Python), which needs gcc and
# mypy here, in a throwaway build venv - never in the final stage.
FROM python:3.11.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install --yes --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .dockerignore is an allow-list: only pyproject.toml, setup.py, README/LICENSE and worker/
# arrive here.
COPY . .

# mypyc type-checks what it compiles, so the build venv also gets the runtime dependencies.
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install "setuptools>=69" wheel "mypy==2.4.1" . \
 && CLASSIFIER_COMPILE=1 /opt/build/bin/pip wheel --no-build-isolation --no-deps \
        --wheel-dir /wheels . \
 && /opt/build/bin/pip wheel --wheel-dir /wheels /wheels/enrollment_classifier-*.whl \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels enrollment-classifier \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && /opt/venv/bin/python -P -m worker --version \
 && /opt/venv/bin/python -P -c "import worker; assert worker.core_build() == 'mypyc'"

# ---------------------------------------------------------------------------------------------
# Runtime: the base image plus the venv. No compiler, no wheels, no pip cache, no pip.
FROM python:3.11.11-slim-bookworm AS runtime

ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" classifier \
 && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin classifier

COPY --from=builder /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes (bytecode was
# compiled at build time). Only /tmp needs to be writable.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLASSIFIER_METRICS_ADDRESS=0.0.0.0 \
    CLASSIFIER_METRICS_PORT=9108

LABEL org.opencontainers.image.title="enrollment-classifier" \
      org.opencontainers.image.description="Classifies Intune device-enrollment failures from Kafka into Graph deviceEnrollmentFailureReason"

# `python -m` puts the working directory first on sys.path: use an empty root-owned
# directory (created before switching user), not the writable /tmp.
WORKDIR /app

# Numeric UID:GID so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 9108

# Docker/compose only (Kubernetes uses its own probes). Exec form, stdlib only.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CLASSIFIER_METRICS_PORT', '9108'), timeout=4)"]

# Exec form: Python is PID 1 and receives SIGTERM directly for a graceful shutdown.
ENTRYPOINT ["python", "-m", "worker"]
CMD ["run"]
