# skinctl serve: the analysis API, next to the product's database and image store.
#
#   docker build -t skinctl .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql://... \
#       -e SKINCTL_STORAGE_URL=gs://bucket/images skinctl
#
# Configuration comes from the environment only: DATABASE_URL (as Railway sets it) or
# SKINCTL_DATABASE_URL, SKINCTL_STORAGE_URL (gs://bucket/prefix; credentials from the platform's
# service account or GOOGLE_APPLICATION_CREDENTIALS), PORT (as Railway and Cloud Run set it).
# The schema must be at head: run `skinctl db upgrade` once (e.g. as a release command).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY skinctl ./skinctl
COPY migrations ./migrations
RUN python -m venv /opt/skinctl && /opt/skinctl/bin/pip install .

FROM python:3.11-slim
# libgomp: TensorFlow's and OpenCV's thread pools.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 skinctl
COPY --from=build /opt/skinctl /opt/skinctl
USER skinctl
WORKDIR /home/skinctl
ENV PATH=/opt/skinctl/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SKINCTL_HOME=/home/skinctl/data \
    SKINCTL_USER=skinctl-serve \
    PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
# A shell only to read $PORT; exec hands PID 1 (and SIGTERM) to skinctl.
CMD ["sh", "-c", "exec skinctl serve --host 0.0.0.0 --port \"$PORT\""]
