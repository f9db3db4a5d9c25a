"""What a warmed-up secret read sends to PostgreSQL: the secret's query and its audit event, nothing else.

Keys (org root keys, the ticket key, data keys' KEKs), revocations and the org table are held in memory and kept
current by LISTEN/NOTIFY (docs/keys.md, docs/revocation.md), so a request must not read them. Every connection the
services open (the pool's, the batch reader's, the audit writer's, the listeners') gets asyncpg's query logger
before the services start; the test then reads a secret and looks at every statement the store sent meanwhile.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Harness, running_services
from tests.support.nodes import notify_only
from vault.web.store.services import SERVICES_KEY

# The statement kinds a secret read may send: the batch reader's lookup (it joins the secret's wrapped data key,
# which is part of the secret's row), and the audit writer's append.
_SECRET_QUERY = re.compile(r"JOIN store\.secret_versions v ON")
_AUDIT = re.compile(r"\baudit_(events|head)\b")
# Tables a request must never read: keys, orgs and what enrolment or rotation changes.
_CACHED_TABLES = re.compile(r"\b(org_root_keys|orgs|revocations|kek_versions|token_keys)\b|FROM store\.wrapped_keys")


_STORE = "cvault-store-under-test"


class StatementLog:
    """The statements of the store's connections (the authority's, in the same process, are another name)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, record: Any) -> None:
        if (record.conn_params.server_settings or {}).get("application_name") == _STORE:
            self.statements.append(record.query)


@pytest.fixture
async def logged(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Harness, StatementLog]]:
    log = StatementLog()
    connect = asyncpg.connection.connect

    async def logging_connect(*args: Any, **kwargs: Any) -> Any:
        conn = await connect(*args, **kwargs)
        conn.add_query_logger(log)
        return conn

    # asyncpg.connect (dedicated connections) and the pools' connect are this one function.
    monkeypatch.setattr(asyncpg.connection, "connect", logging_connect)
    monkeypatch.setattr(asyncpg, "connect", logging_connect)
    # Followers poll once an hour: what runs during the read is the read's own doing.
    notify_only(monkeypatch)
    async with running_services(database_url, store_database_url=f"{database_url}?application_name={_STORE}") as h:
        yield h, log


async def _read(world: EnrolledOrg, name: str, api: str) -> None:
    # The Vault API resolves the mount's slug through the org table, the native API names the org by id.
    path = world.secret(name) if api == "native" else f"/vault/v1/acme/prod/data/{name}"
    r = await world.h.store("GET", path, world.bundle)
    assert r.status == 200, r


async def _settled(log: StatementLog) -> list[str]:
    # Query loggers are called soon after each statement; the audit append follows the reply by a batch.
    seen = -1
    while seen != len(log.statements):
        seen = len(log.statements)
        await asyncio.sleep(0.3)
    return list(log.statements)


@pytest.mark.parametrize("api", ["native", "vault"])
async def test_a_warm_secret_read_sends_only_its_query_and_its_audit_event(
    logged: tuple[Harness, StatementLog], api: str
) -> None:
    h, log = logged
    world = await world_of(h)
    r = await h.store("PUT", world.secret("app/db"), world.bundle, {"value": "s3cret"})
    assert r.status in (200, 201), r
    await _read(world, "app/db", api)  # warms the discharge cache, the data key cache, prepared statements
    await _settled(log)
    log.statements.clear()

    await _read(world, "app/db", api)
    statements = await _settled(log)

    assert statements, "the logger saw nothing: it no longer sees the services' connections"
    assert [s for s in statements if _CACHED_TABLES.search(s)] == []
    assert [s for s in statements if not (_SECRET_QUERY.search(s) or _AUDIT.search(s))] == []
    assert len([s for s in statements if _SECRET_QUERY.search(s)]) == 1


async def test_the_check_sees_a_key_read(logged: tuple[Harness, StatementLog]) -> None:
    # The check can fail: a statement on a cached table, sent on any of the services' connections, is seen.
    h, log = logged
    await world_of(h)
    log.statements.clear()
    await h.store_app[SERVICES_KEY].keys.reload()
    statements = await _settled(log)
    assert [s for s in statements if _CACHED_TABLES.search(s)] != []
