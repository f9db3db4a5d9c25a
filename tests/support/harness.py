"""Both services on real ports against one real database, and the steps every end-to-end test repeats.

Usage::

    async with running_services(database_url) as h:
        owner = await h.new_user("owner@example.com")
        org = await h.create_org(owner, "acme")
        auth = await h.authority_bundle(owner, org)          # permission token + login discharge
        root = await h.enroll(auth, org, "acme")              # root store token (rwcdCa)
        bundle = await h.store_bundle(root, auth)             # store token + bound org discharge
        r = await h.store("GET", f"/v1/orgs/{org}/vaults", bundle)

The authority starts first (its org public key goes into the store's
configuration, as an operator would copy it); each service gets its own pool
and the same database (separate schemas). ``h.authority_clock`` shifts the
authority's time, e.g. to mint an already expired discharge.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from vault.authority.revocation_feed import new_feed_token
from vault.config import Config, load_config
from vault.crypto.keyring import generate_key
from vault.crypto.passwords import MINIMUM
from vault.macaroon import Caveat, Macaroon, decode_token, encode_bundle, encode_token, start_discharge, ticket_sender
from vault.macaroon import bind as bind_discharge
from vault.web.app_runner import VaultAppRunner
from vault.web.authority import create_authority_app
from vault.web.authority.services import SERVICES_KEY as AUTHORITY_SERVICES
from vault.web.store import create_store_app

__all__ = ["PASSWORD", "Harness", "Reply", "ShiftedClock", "User", "attenuate", "harness", "running_services"]

PASSWORD = "correct horse battery staple"


class ShiftedClock:
    """Wall-clock time plus an adjustable offset (seconds)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class ServedApp:
    """An app served as ``cvault serve`` serves it (``LIST``, header limits, parser errors as JSON), until closed.

    On ``sock`` (a :func:`reserved_socket`) or on ``port``; built on aiohttp's public runner and site classes.
    """

    def __init__(self, app: web.Application, *, sock: socket.socket | None = None, port: int = 0) -> None:
        self.app = app
        self._sock = sock
        self._port = port
        self._runner: VaultAppRunner | None = None

    async def __aenter__(self) -> ServedApp:
        # As aiohttp's TestServer does: a request's handler is cancelled when its client goes away.
        self._runner = VaultAppRunner(self.app, handler_cancellation=True)
        await self._runner.setup()
        site = (
            web.SockSite(self._runner, self._sock)
            if self._sock is not None
            else web.TCPSite(self._runner, "127.0.0.1", self._port)
        )
        await site.start()
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def reserved_socket(port: int = 0) -> socket.socket:
    """A listening-to-be socket bound to a free local port, held until a server takes it.

    A port number found free and bound later can be taken in between (by another test's
    server, or as the local end of an outgoing connection); a socket held from the start cannot.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def shared_settings(database_url: str, authority_port: int, store_port: int) -> tuple[dict[str, Any], str, str]:
    """What both services are configured with (database, one master key, both URLs), and a feed token and its digest."""
    feed_token, feed_digest = new_feed_token()
    common: dict[str, Any] = {
        "database_url": database_url,
        "master_key": base64.b64encode(generate_key()).decode(),
        "authority_url": f"http://127.0.0.1:{authority_port}",
        "store_url": f"http://127.0.0.1:{store_port}",
        "database_pool_size": 4,
    }
    return common, feed_token, feed_digest


@dataclass(frozen=True)
class User:
    id: int
    email: str
    session: str = field(repr=False)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code: str = self.body["error"]["code"]
            return code
        return None


@dataclass
class Harness:
    authority_url: str
    store_url: str
    authority_config: Config
    store_config: Config
    http: aiohttp.ClientSession
    authority_app: Any
    authority_clock: ShiftedClock
    store_clock: ShiftedClock
    store_app: Any = None
    feed_token: str = field(default="", repr=False)  # the store's credential for the revocation feed
    authority_server: Any = None  # close it to take the authority away (its port stays reserved)

    @property
    def org_location(self) -> str:
        return f"{self.authority_url}/org"

    # -- raw HTTP ----------------------------------------------------------------

    async def _call(self, base: str, method: str, path: str, auth: str | None, body: Any) -> Reply:
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        async with self.http.request(method, base + path, json=body, headers=headers) as resp:
            payload = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return Reply(resp.status, payload)

    async def authority(self, method: str, path: str, auth: str | None = None, body: Any = None) -> Reply:
        return await self._call(self.authority_url, method, path, auth, body)

    async def store(self, method: str, path: str, auth: str | None = None, body: Any = None) -> Reply:
        return await self._call(self.store_url, method, path, auth, body)

    # -- authority steps -----------------------------------------------------------

    async def new_user(self, email: str) -> User:
        """Create a user directly in the authority (there is no sign-up route) and log in."""
        services = self.authority_app[AUTHORITY_SERVICES]
        user = await services.accounts.create_user(email, PASSWORD)
        return await self.login(email, user.id)

    async def login(self, email: str, user_id: int | None = None) -> User:
        r = await self.authority("POST", "/v1/sessions", body={"email": email, "password": PASSWORD})
        assert r.status == 201, r
        return User(r.body["user_id"] if user_id is None else user_id, email, r.body["session"])

    async def create_org(self, owner: User, slug: str) -> int:
        r = await self.authority("POST", "/v1/orgs", owner.session, {"slug": slug})
        assert r.status == 201, r
        org_id: int = r.body["id"]
        return org_id

    async def add_member(self, owner: User, org: int, email: str, role: str) -> User:
        """Invite ``email`` into ``org`` and accept as that user (created, as by :meth:`new_user`, if new)."""
        r = await self.authority("POST", f"/v1/orgs/{org}/invitations", owner.session, {"email": email, "role": role})
        assert r.status == 201, r
        invitation, code = r.body["id"], r.body["code"]
        services = self.authority_app[AUTHORITY_SERVICES]
        existing = await services.account_store.user_by_email(email)
        user = await self.login(email) if existing else await self.new_user(email)
        r = await self.authority("POST", f"/v1/invitations/{invitation}/accept", user.session, {"code": code})
        assert r.status == 200, r
        return user

    async def remove_member(self, owner: User, org: int, user: User) -> None:
        r = await self.authority("DELETE", f"/v1/orgs/{org}/members/{user.id}", owner.session)
        assert r.status == 204, r

    async def discharge(
        self, location: str, token: Macaroon, credentials: str, *, binding_id: bytes | None = None
    ) -> Reply:
        """Ask ``location`` to discharge ``token``'s 3P caveat there, bound to ``token`` (or ``binding_id``)."""
        [caveat] = token.third_party_tickets(location)
        body = {
            "ticket": base64.b64encode(caveat.ticket).decode(),
            "binding_id": base64.b64encode(binding_id or token.binding_id()).decode(),
        }
        path = location.removeprefix(self.authority_url) + "/.well-known/macfly/3p"
        return await self.authority("POST", path, credentials, body)

    async def authority_bundle(self, user: User, org: int, mask: str | None = None) -> str:
        """A permission token for ``org`` plus its bound login discharge."""
        body: dict[str, Any] = {"org": org}
        if mask is not None:
            body["mask"] = mask
        r = await self.authority("POST", "/v1/tokens", user.session, body)
        assert r.status == 201, r
        token = decode_token(r.body["token"])
        d = await self.discharge(f"{self.authority_url}/login", token, user.session)
        assert d.status == 201, d
        return encode_bundle([token, decode_token(d.body["discharge"])])

    async def org_discharge(
        self, store_token: str | Macaroon, authority_bundle: str, *, binding_id: bytes | None = None
    ) -> Reply:
        token = decode_token(store_token) if isinstance(store_token, str) else store_token
        return await self.discharge(self.org_location, token, authority_bundle, binding_id=binding_id)

    def forge_org_discharge(self, store_token: str, caveats: list[Caveat], *, bind: bool) -> Macaroon:
        """An org discharge made with the authority's own key, bypassing its checks (for negative tests)."""
        token = decode_token(store_token)
        [caveat] = token.third_party_tickets(self.org_location)
        keys = self.authority_app[AUTHORITY_SERVICES].keys.org
        shared = keys.shared_key(ticket_sender(caveat.ticket))
        _ticket, discharge = start_discharge(caveat.ticket, shared, self.org_location)
        discharge = discharge.attenuate(caveats)
        if bind:
            discharge = bind_discharge(discharge, token.binding_id())
        return discharge.finalize()

    # -- store steps -------------------------------------------------------------------

    async def store_bundle(self, store_token: str | Macaroon, authority_bundle: str) -> str:
        """The store token with a fresh org discharge bound to it."""
        token = decode_token(store_token) if isinstance(store_token, str) else store_token
        d = await self.org_discharge(token, authority_bundle)
        assert d.status == 201, d
        return encode_bundle([token, decode_token(d.body["discharge"])])

    async def enroll(self, authority_bundle: str, org: int, slug: str) -> str:
        """Enrol ``org`` at the store; returns its root store token."""
        r = await self.store("GET", f"/v1/orgs/{org}/enroll")
        assert r.status == 200, r
        bundle = await self.store_bundle(r.body["challenge"], authority_bundle)
        r = await self.store("POST", f"/v1/orgs/{org}/enroll", bundle, {"slug": slug})
        assert r.status == 201, r
        token: str = r.body["token"]
        return token

    async def enrolled_vault(self, email: str, slug: str, vault: str = "prod") -> tuple[User, int, str, str, str]:
        """A new owner of org ``slug``, enrolled at the store, with ``vault``.

        Returns ``(owner, org, authority bundle, root store token, store bundle)``.
        """
        owner = await self.new_user(email)
        org = await self.create_org(owner, slug)
        auth = await self.authority_bundle(owner, org)
        root = await self.enroll(auth, org, slug)
        bundle = await self.store_bundle(root, auth)
        r = await self.store("POST", f"/v1/orgs/{org}/vaults", bundle, {"name": vault})
        assert r.status == 201, r
        return owner, org, auth, root, bundle

    async def mint(self, bundle: str, org: int, **body: Any) -> str:
        r = await self.store("POST", f"/v1/orgs/{org}/tokens", bundle, body)
        assert r.status == 201, r
        token: str = r.body["token"]
        return token


def attenuate(token: str, caveats: list[Any]) -> str:
    """Offline attenuation of a store token (the holder needs no key)."""
    return encode_token(decode_token(token).attenuate(caveats))


@asynccontextmanager
async def running_services(
    database_url: str,
    *,
    store_database_url: str | None = None,
    sockets: tuple[socket.socket, socket.socket] | None = None,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """Start the authority, then the store, on free local ports; tear both down after.

    ``store_database_url`` lets the store connect as another role (e.g. one
    whose privileges a test takes away); ``sockets`` (authority, store: each a
    :func:`reserved_socket` the caller holds) serves on those, for a test that
    starts the services again at the same addresses: held between the runs,
    their ports cannot be taken by another test meanwhile; ``settings``
    override configuration.
    """
    if sockets is not None:
        # Each server closes the duplicate it was given; the caller's sockets stay bound.
        authority_socket, store_socket = sockets[0].dup(), sockets[1].dup()
    else:
        authority_socket, store_socket = reserved_socket(), reserved_socket()
    with authority_socket, store_socket:  # closed even where a server never took them
        authority_port, store_port = authority_socket.getsockname()[1], store_socket.getsockname()[1]
        common, feed_token, feed_digest = shared_settings(database_url, authority_port, store_port)
        authority_url, store_url = common["authority_url"], common["store_url"]
        common.update(settings)
        authority_config = load_config({}, **{"revocation_feed_token_sha256": [feed_digest], **common})
        authority_clock, store_clock = ShiftedClock(), ShiftedClock()
        authority_app = create_authority_app(authority_config, clock=authority_clock, password_cost=MINIMUM)
        async with (
            ServedApp(authority_app, sock=authority_socket) as authority_server,
            aiohttp.ClientSession() as http,
        ):
            async with http.get(authority_url + "/.well-known/cvault/keys") as resp:
                keys = await resp.json()
            store_settings = {
                "revocation_feed_token": feed_token,
                **common,
                "authority_org_public_key": keys["org"]["public_key"],
            }
            if store_database_url is not None:
                store_settings["database_url"] = store_database_url
            store_config = load_config({}, **store_settings)
            store_app = create_store_app(store_config, clock=store_clock)
            async with ServedApp(store_app, sock=store_socket):
                yield Harness(
                    authority_url,
                    store_url,
                    authority_config,
                    store_config,
                    http,
                    authority_app,
                    authority_clock,
                    store_clock,
                    store_app,
                    feed_token,
                    authority_server,
                )


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    """Both services on free ports against the test's database, with the default settings."""
    async with running_services(database_url) as h:
        yield h
