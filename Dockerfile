# One image for both services; docker-compose.yml picks the service with the command.
# PYTHON_IMAGE: a Debian-based image with Python >= 3.11 and its venv module. Hosts that cannot pull from
# Docker Hub build one from Debian's packages with deploy/base-images/build (docs/operations.md).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/cvault/bin:$PATH
WORKDIR /app
# The dependencies first, in their own layer: a change to the code does not download them again.
# Editable, so the migrations in /app/sql ship with the code (vault.config.default_sql_dir).
COPY pyproject.toml README.md ./
RUN python3 -m venv /opt/cvault \
    && mkdir vault && touch vault/__init__.py \
    && pip install -q -e . \
    && rm -r vault
COPY vault ./vault
COPY sql ./sql
COPY deploy/docker-entrypoint.sh deploy/pin-authority-key.py ./deploy/
# uid/gid 10001: the user the services run as; deploy/docker-entrypoint.sh gives it its secrets. Its home is
# its state directory (the store's volume), so nothing it runs looks into root's home.
RUN groupadd --system --gid 10001 cvault \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cvault --shell /usr/sbin/nologin cvault \
    && mkdir -p /var/lib/cvault && chown 10001:10001 /var/lib/cvault \
    && python -m compileall -q vault
USER cvault
ENTRYPOINT ["cvault"]
