"""The least privilege the docs grant is enough, and a missing privilege is a config_error that says what to GRANT.

The roles come from ``deploy/postgres/10-cvault-roles.sh`` itself: its SQL runs here with fresh role and
database names (roles are global to the server the tests share). Each service's role has CONNECT on the
database and owns its schema, nothing more; the commands run as the real ``cvault``.
"""

from __future__ import annotations

import asyncpg

from tests.support.cvault_command import cvault_env, run_cvault
from tests.support.database_roles import Roles, roles
from vault.storage.database import with_database

__all__ = ["roles"]


async def _cvault(url: str, *args: str) -> tuple[int, str, str]:
    return await run_cvault(*args, env=cvault_env({"CVAULT_DATABASE_URL": url}))


async def test_each_service_role_migrates_its_own_schema(roles: Roles) -> None:
    for url, schema in ((roles.authority_url, "authority"), (roles.store_url, "store")):
        status, out, err = await _cvault(url, "migrate", "--schema", schema)
        assert status == 0, err
        assert "the database is up to date" in out
        status, out, err = await _cvault(url, "migrate", "--schema", schema)  # again: nothing to do
        assert (status, "0 migration(s) applied" in out) == (0, True), err


async def test_migrating_the_other_schema_names_the_role_the_object_and_the_fix(roles: Roles) -> None:
    assert (await _cvault(roles.authority_url, "migrate", "--schema", "authority"))[0] == 0
    status, _, err = await _cvault(roles.store_url, "migrate", "--schema", "authority")
    assert status == 1
    assert "(config_error)" in err and "internal" not in err, err
    assert roles.store in err and "schema authority" in err, err
    assert f'ALTER SCHEMA "authority" OWNER TO "{roles.store}"' in err, err


async def test_a_missing_schema_the_role_cannot_create_says_how_to_make_it(roles: Roles, admin_dsn: str) -> None:
    admin = await asyncpg.connect(with_database(admin_dsn, roles.database))
    try:
        await admin.execute("DROP SCHEMA store")
    finally:
        await admin.close()
    status, _, err = await _cvault(roles.store_url, "migrate", "--schema", "store")
    assert status == 1
    assert "(config_error)" in err, err
    assert f'CREATE SCHEMA "store" AUTHORIZATION "{roles.store}"' in err, err
    assert f'GRANT CREATE ON DATABASE "{roles.database}" TO "{roles.store}"' in err, err


async def test_operator_commands_on_a_schema_the_role_cannot_read_are_config_errors(roles: Roles) -> None:
    assert (await _cvault(roles.authority_url, "migrate", "--schema", "authority"))[0] == 0
    assert (await _cvault(roles.store_url, "migrate", "--schema", "store"))[0] == 0
    for command in (("keys", "status"), ("audit", "verify", "--schema", "authority")):
        status, _, err = await _cvault(roles.store_url, *command)
        assert status == 1, (command, err)
        assert "(config_error)" in err and "internal" not in err, (command, err)
        assert roles.store in err and "schema authority" in err, (command, err)
        assert f'GRANT USAGE ON SCHEMA "authority" TO "{roles.store}"' in err, (command, err)
    for command in (("keys", "status", "--schema", "store"), ("audit", "verify", "--schema", "store")):
        status, _, err = await _cvault(roles.store_url, *command)
        assert status == 0, (command, err)
