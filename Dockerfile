# syntax=docker/dockerfile:1
# One image for the three workers:  docker run IMAGE worker scheduler|notifier|survey
# Production installs the project exactly as `pip install .` does (no [embedded]/[test] extras).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: compilers live here only --------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN python -m pip wheel --no-deps --wheel-dir /wheels .
# The [rocksdb] extra brings the pinned RocksDB bindings for CYCLECARE_TABLE_STORE=rocksdb://.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install "$(ls /wheels/*.whl)[rocksdb]" \
 && /opt/venv/bin/cyclecare --help >/dev/null

# ---- final: the interpreter, the venv, nothing else ----------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CYCLECARE_DATA_DIR=/var/lib/cyclecare \
    CYCLECARE_HTTP_PORT=6066
RUN groupadd --system --gid 10001 cyclecare \
 && useradd --system --uid 10001 --gid cyclecare --home-dir /var/lib/cyclecare \
            --no-create-home --shell /usr/sbin/nologin cyclecare \
 && install -d -o cyclecare -g cyclecare -m 0750 /var/lib/cyclecare
COPY --from=builder /opt/venv /opt/venv
# Numeric user, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# Faust resolves relative data paths against the working directory: keep it on the data volume.
WORKDIR /var/lib/cyclecare
EXPOSE 6066
# slim has no curl: ask /healthz with the interpreter that is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CYCLECARE_HTTP_PORT', '6066'), timeout=4)"]
ENTRYPOINT ["cyclecare"]
CMD ["--help"]
