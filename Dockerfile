# One image for both services; docker-compose.yml picks the service with the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY vault ./vault
COPY sql ./sql
COPY deploy/docker-entrypoint.sh deploy/pin-authority-key.py ./deploy/
# Editable, so the migrations in /app/sql ship with the code (vault.config.default_sql_dir).
# uid/gid 10001: the user the services run as; deploy/docker-entrypoint.sh gives it its secrets.
RUN pip install -e . \
    && groupadd --system --gid 10001 cvault \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent cvault \
    && mkdir -p /var/lib/cvault && chown 10001:10001 /var/lib/cvault
USER cvault
ENTRYPOINT ["cvault"]
