"""Shared fixtures and helpers of the authority tests: real app over HTTP, real PostgreSQL.

The test client connects from 127.0.0.1, which the config trusts as a proxy, so
a test chooses the caller's address with ``X-Forwarded-For``.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vault.authority.bootstrap import bootstrap
from vault.authority.invitations import code_digest
from vault.config import Config, load_config
from vault.crypto.keyring import MasterKey
from vault.crypto.passwords import MINIMUM
from vault.crypto.ticket_keys import TicketKeyPair
from vault.macaroon import ALL, Macaroon, add_third_party, decode_token, encode_bundle
from vault.macaroon.caveats import ConfineOrganization, MaxValidity, Organization
from vault.storage.pool import Pool
from vault.web.authority.app import SERVICES_KEY, AuthorityServices, create_authority_app

AUTHORITY_URL = "http://authority.test"
LOGIN = f"{AUTHORITY_URL}/login"
ORG = f"{AUTHORITY_URL}/org"
STORE_URL = "http://store.test"
PASSWORD = "correct horse battery"

Client = TestClient[Any, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_config(database_url: str, master_key: MasterKey, **overrides: object) -> Config:
    return load_config(
        {},
        database_url=database_url,
        master_key=master_key.key,
        authority_url=AUTHORITY_URL,
        trusted_proxies=["127.0.0.1/32", "::1/128"],
        **overrides,
    )


@pytest.fixture
def config(database_url: str, master_key: MasterKey) -> Config:
    return make_config(database_url, master_key)


AppFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_client(config: Config, pool: Pool) -> AsyncIterator[AppFactory]:
    """Start an authority app (another node on the same database with each call)."""
    clients: list[Client] = []

    async def make(**options: Any) -> Client:
        options.setdefault("password_cost", MINIMUM)
        app = create_authority_app(options.pop("config", config), pool=pool, **options)
        app[_POOL] = pool
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def client(make_client: AppFactory) -> Client:
    return await make_client()


def authority_services(client: Client) -> AuthorityServices:
    return client.server.app[SERVICES_KEY]


# The pool the test handed the app: its handlers see services only, the tests look at the tables.
_POOL: web.AppKey[Pool] = web.AppKey("test_pool", Pool)


def pool_of(client: Client) -> Pool:
    return client.server.app[_POOL]


@dataclass
class Owner:
    user_id: int
    org_id: int
    session: str
    email: str


async def bootstrap_owner(client: Client, email: str = "owner@example.com", slug: str = "acme") -> Owner:
    svc = authority_services(client)
    done = await bootstrap(svc.account_store, svc.accounts, svc.sessions, email, PASSWORD, slug)
    return Owner(done.user.id, done.org.id, done.session_secret, email)


def bearer(credential: str, addr: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {credential}"}
    if addr:
        headers["X-Forwarded-For"] = addr
    return headers


async def call(client: Client, method: str, path: str, *, expect: int, **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    body = await response.json() if response.content_type == "application/json" else None
    assert response.status == expect, (response.status, body)
    return body


async def login(client: Client, email: str, password: str = PASSWORD) -> str:
    body = await call(client, "POST", "/v1/sessions", json={"email": email, "password": password}, expect=201)
    session: str = body["session"]
    return session


async def add_member(client: Client, owner: Owner, email: str, role: str) -> tuple[int, str]:
    """Invite ``email`` into the owner's org, create the user and accept with its session and the code;
    (user id, session)."""
    invitation = await call(
        client,
        "POST",
        f"/v1/orgs/{owner.org_id}/invitations",
        json={"email": email, "role": role},
        headers=bearer(owner.session),
        expect=201,
    )
    await authority_services(client).accounts.create_user(email, PASSWORD)
    session = await login(client, email)
    accepted = await call(
        client,
        "POST",
        f"/v1/invitations/{invitation['id']}/accept",
        json={"code": invitation["code"]},
        headers=bearer(session),
        expect=200,
    )
    return accepted["user_id"], session


async def mailed_verification(client: Client, invitation_id: str) -> str:
    """Give a pending invitation a verification code, as if mailed (tests without a relay); the code."""
    code = "cvm_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    await pool_of(client).execute(
        "UPDATE authority.invitations SET verification_digest = $2, verification_expires_at = now() + interval '1 hour'"
        " WHERE id = $1",
        invitation_id,
        code_digest(code),
    )
    return code


async def permission_token(client: Client, session: str, org_id: int, **body: Any) -> Macaroon:
    reply = await call(client, "POST", "/v1/tokens", json={"org": org_id, **body}, headers=bearer(session), expect=201)
    return decode_token(reply["token"])


async def login_discharge(client: Client, session: str, token: Macaroon) -> Macaroon:
    ticket = token.third_party_tickets(LOGIN)[0].ticket
    reply = await call(
        client,
        "POST",
        "/login/.well-known/macfly/3p",
        json={"ticket": b64(ticket), "binding_id": b64(token.binding_id())},
        headers=bearer(session),
        expect=201,
    )
    return decode_token(reply["discharge"])


async def strip(client: Client, token: Macaroon, discharge: Macaroon) -> Macaroon:
    reply = await call(
        client, "POST", "/v1/tokens/strip", headers=bearer(encode_bundle([token, discharge])), expect=201
    )
    return decode_token(reply["token"])


@dataclass
class Store:
    """A store-like first party: its own root key and X25519 key pair."""

    pair: TicketKeyPair
    root_key: bytes
    org_public_key: bytes

    @property
    def shared_key(self) -> bytes:
        return self.pair.shared_key(self.org_public_key)

    def token(self, org_id: int, max_validity: int = 300) -> Macaroon:
        token = Macaroon.mint(b"store-kid", STORE_URL, self.root_key, [Organization(org_id, ALL)])
        return add_third_party(
            token, ORG, self.shared_key, self.pair.public_key, [ConfineOrganization(org_id), MaxValidity(max_validity)]
        )


async def make_store(client: Client) -> Store:
    keys = await call(client, "GET", "/.well-known/cvault/keys", expect=200)
    assert keys["org"]["location"] == ORG
    return Store(TicketKeyPair.generate(), os.urandom(32), base64.b64decode(keys["org"]["public_key"]))


async def org_discharge(
    client: Client, store_token: Macaroon, bundle: str, *, expect: int = 201, addr: str | None = None
) -> Any:
    ticket = store_token.third_party_tickets(ORG)[0].ticket
    return await call(
        client,
        "POST",
        "/org/.well-known/macfly/3p",
        json={"ticket": b64(ticket), "binding_id": b64(store_token.binding_id())},
        headers=bearer(bundle, addr),
        expect=expect,
    )


def now() -> int:
    return int(time.time())
