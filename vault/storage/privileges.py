"""A privilege the database role lacks, told as a ``config_error`` naming the role, the object and the GRANT.

Each service connects with its own role, owning only its own schema (``deploy/postgres/10-cvault-roles.sh``).
An operator command run with a role that may not do what it needs (``cvault migrate`` of the other schema,
``cvault keys status`` or ``cvault audit verify`` of a schema the role cannot read) gets PostgreSQL's
``permission denied for <kind> <name>``: a deployment error, not a bug in cvault. ``privilege_errors`` turns it
into a :class:`ConfigError` that says which GRANT (or ownership) would fix it.
"""

from __future__ import annotations

import re

import asyncpg

from vault.errors import ConfigError

from .pool import Connection
from .schema import quote_identifier

__all__ = ["missing_privilege", "privilege_errors"]

# Applied with fullmatch (tests/store/test_bad_input_audited.py): the message may carry a prefix.
_DENIED = re.compile(r".*?permission denied for (?P<kind>[a-z ]+?) (?P<name>\S+)", re.S)


def missing_privilege(message: str, role: str, schema: str, *, migrating: bool) -> str:
    """The operator's sentence for PostgreSQL's permission error ``message`` of ``role`` working on ``schema``."""
    who, where = quote_identifier(role), quote_identifier(schema)
    found = _DENIED.fullmatch(message)
    kind, name = (found["kind"], found["name"]) if found else ("object", "")
    if kind == "database":
        grant = (
            f"create the schema owned by the role (CREATE SCHEMA {where} AUTHORIZATION {who}, "
            f"as deploy/postgres/10-cvault-roles.sh does) or GRANT CREATE ON DATABASE {quote_identifier(name)} TO {who}"
        )
    elif kind == "schema" and migrating:
        grant = f"migrations create tables in it: ALTER SCHEMA {quote_identifier(name)} OWNER TO {who}"
    elif kind == "schema":
        grant = (
            f"GRANT USAGE ON SCHEMA {quote_identifier(name)} TO {who}; "
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote_identifier(name)} TO {who}"
        )
    elif kind == "table" and migrating:
        grant = f"ALTER TABLE {where}.{quote_identifier(name)} OWNER TO {who}"
    elif kind == "table":
        grant = f"GRANT SELECT ON ALL TABLES IN SCHEMA {where} TO {who}"
    else:
        grant = f"grant {who} the privilege PostgreSQL names"
    fix = f"{grant}, or run it as the role that owns schema {schema}"
    if migrating:
        fix += f" (each service's role migrates its own schema: `cvault migrate --schema {schema}` as that role)"
    return f"database role {role} lacks a privilege on schema {schema} ({message}): {fix}"


class privilege_errors:  # lower case: used like contextlib.suppress
    """``async with privilege_errors(conn, schema):`` turns a permission error inside into a :class:`ConfigError`.

    ``conn`` is a pool or a connection that is free when the error leaves the block (it asks for the role's
    name); ``migrating`` says the block changes the schema, so the fix is ownership rather than a read grant.
    """

    __slots__ = ("_conn", "_migrating", "_schema")

    def __init__(self, conn: Connection, schema: str, *, migrating: bool = False) -> None:
        self._conn, self._schema, self._migrating = conn, schema, migrating

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, asyncpg.exceptions.InsufficientPrivilegeError):
            return
        try:
            role = str(await self._conn.fetchval("SELECT current_user"))
        except (asyncpg.PostgresError, OSError):
            role = "(the configured one)"
        message = str(getattr(exc, "message", "") or "permission denied")
        raise ConfigError(missing_privilege(message, role, self._schema, migrating=self._migrating)) from None
