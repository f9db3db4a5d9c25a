#!/bin/sh
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
# One database, one schema per service, one login role per service owning only its schema:
# the store's role cannot read the authority's tables and the other way round.
set -eu
: "${CVAULT_AUTHORITY_DB_PASSWORD:?set CVAULT_AUTHORITY_DB_PASSWORD}"
: "${CVAULT_STORE_DB_PASSWORD:?set CVAULT_STORE_DB_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v authority_password="$CVAULT_AUTHORITY_DB_PASSWORD" \
  -v store_password="$CVAULT_STORE_DB_PASSWORD" <<'SQL'
CREATE ROLE cvault_authority LOGIN PASSWORD :'authority_password';
CREATE ROLE cvault_store LOGIN PASSWORD :'store_password';
CREATE DATABASE cvault;
REVOKE ALL ON DATABASE cvault FROM PUBLIC;
GRANT CONNECT ON DATABASE cvault TO cvault_authority, cvault_store;
\connect cvault
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA authority AUTHORIZATION cvault_authority;
CREATE SCHEMA store AUTHORIZATION cvault_store;
SQL
