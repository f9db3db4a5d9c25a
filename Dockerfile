# One image for both services; docker-compose.yml picks the service with the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY vault ./vault
COPY sql ./sql
# Editable, so the migrations in /app/sql ship with the code (vault.config.default_sql_dir).
RUN pip install -e . && useradd --system --uid 10001 --home-dir /nonexistent cvault
USER cvault
ENTRYPOINT ["cvault"]
