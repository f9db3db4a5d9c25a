"""Storage: the asyncpg pool, migrations and repositories; the only package that imports asyncpg.

Conventions every repository module follows:

- SQL lives next to the function that runs it, as module-level constants with
  ``$1`` parameters; migrations are plain files under ``sql/<schema>/``.
- Table names are always schema-qualified (``store.wrapped_keys``): one pool can
  serve both schemas, and no code depends on a connection's ``search_path``.
- asyncpg errors never leave this package: connection failures become
  :class:`~vault.errors.Unavailable` (see :func:`vault.storage.pool.database_errors`),
  and a repository maps the SQLSTATEs it expects (unique violation, ...) to
  the error its callers understand.
"""
