"""A store with a history to review, and the audit console serving it (tests of ``cvault audit console``).

The scenario: owner ``owner@example.com`` writes two secrets; operator
``ops@example.com`` creates a permission token and strips a service token from
it; a workload reads with a read-only store token and that service token
(through the real client, which narrows the store token per call) and is
denied a write; the store token is then revoked. The reviewer
``auditor@example.com`` (role ``auditor``) holds a store token with ``a`` and
their login session, and the console runs with those, on a real port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestServer

from vault.client import Client, Credentials
from vault.errors import Unauthorized
from vault.web.console import create_console_app

from .enrolled_org import EnrolledOrg
from .harness import Harness, User

__all__ = ["Audited", "audited"]


@dataclass
class Audited:
    world: EnrolledOrg
    operator: User
    auditor: User
    permission_id: str  # the operator's permission token
    service_id: str  # stripped from it by the operator
    read_token_id: str  # the workload's store token (revoked at the end)
    console_url: str
    audit_token: str = field(repr=False)  # the reviewer's store token (mask a)

    @property
    def h(self) -> Harness:
        return self.world.h


def _client(h: Harness, **credentials: str) -> Client:
    return Client(
        store_url=h.store_url, authority_url=h.authority_url, credentials=Credentials.from_text(**credentials)
    )


@pytest.fixture
async def audited(world: EnrolledOrg, database_url: str) -> AsyncIterator[Audited]:
    h = world.h
    operator = await h.add_member(world.owner, world.org, "ops@example.com", "operator")
    auditor = await h.add_member(world.owner, world.org, "auditor@example.com", "auditor")
    for name, value in (("db/url", "postgres://app:v1@db/app"), ("db/url", "postgres://app:v2@db/app")):
        r = await h.store("PUT", world.secret(name), world.bundle, {"value": value})
        assert r.status == 200, r
    r = await h.store("PUT", world.secret("api/key"), world.bundle, {"value": "k-1"})
    assert r.status == 200, r

    permission = await h.authority_bundle(operator, world.org)
    r = await h.authority("POST", "/v1/tokens/strip", permission)
    assert r.status == 201, r
    service, service_id, permission_id = r.body["token"], r.body["id"], r.body["parent"]
    r = await h.store("POST", world.path("/tokens"), world.bundle, {"mask": "r"})
    assert r.status == 201, r
    read_token, read_token_id = r.body["token"], r.body["id"]
    async with _client(h, store_token=read_token, authority_token=service) as workload:
        await workload.store.read_secret("prod", "db/url")
        await workload.store.read_secret("prod", "db/url", version=1)
        await workload.store.read_secret("prod", "api/key")
        with pytest.raises(Unauthorized):
            await workload.store.write_secret("prod", "db/url", "stolen")
    r = await h.store("POST", world.path(f"/tokens/{read_token_id}/revoke"), world.bundle)
    assert r.status == 200, r

    r = await h.store("POST", world.path("/tokens"), world.bundle, {"mask": "a"})
    assert r.status == 201, r
    audit_token = r.body["token"]
    async with _client(h, store_token=audit_token, session=auditor.session) as reviewer:
        app = create_console_app(reviewer, database_url=database_url)
        async with TestServer(app, host="127.0.0.1") as server:
            yield Audited(
                world,
                operator,
                auditor,
                permission_id,
                service_id,
                read_token_id,
                str(server.make_url("/")),
                audit_token,
            )
