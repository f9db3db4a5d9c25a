"""The store's follower of the authority's published org keys (docs/keys.md, "Ticket keys").

Every ``interval`` seconds one task reads ``<authority>/.well-known/cvault/keys?first_party=<the
store's newest ticket public key>&nonce=<16 fresh random bytes, hex>`` and hands the org list
and its endorsements to :class:`~vault.store.ticket_sealing.TicketSealing`, which takes the
list only if a key it already trusts vouches for it, for that nonce. The endorsement, not the
transport, is what makes a key trusted, so plain HTTP can neither slip in a key nor replay an
older list; TLS (with the feed's CA file) still applies to https URLs. A failed read is logged
once per burst; the store keeps sealing with what it has, which the authority accepts until
that key is retired. The loop is a
:class:`~vault.storage.channel_follower.ChannelFollower` without a channel: a poll.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from vault.config import Config
from vault.crypto.ticket_keys import LIST_NONCE_SIZE, TicketKeyRing
from vault.storage.channel_follower import ChannelFollower
from vault.store.ticket_sealing import TicketSealing

from .revocation_follower import client_tls

__all__ = ["AuthorityKeyFollower", "follow_authority_keys"]

MAX_REPLY_BYTES = 64 * 1024


class AuthorityKeyFollower(ChannelFollower):
    """Reads the authority's key list every ``interval`` seconds (a poll only: no channel to LISTEN on)."""

    def __init__(
        self, *, url: str, sealing: TicketSealing, interval: float, ssl_context: ssl.SSLContext | bool
    ) -> None:
        super().__init__(None, "", interval=interval, listen=False, name="authority-keys")
        self._url = url
        self._sealing = sealing
        self._ssl = ssl_context
        self._http: aiohttp.ClientSession | None = None
        # One read at a time, so replies are taken in the order their reads were made.
        self._reading = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AuthorityKeyFollower(url={self._url!r}, interval={self._interval})"

    async def start(self, *, required: bool = False) -> None:
        """Start following; the first read happens at once, in the background (the configured key serves)."""
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10), connector=aiohttp.TCPConnector(ssl=self._ssl)
        )
        await super().start(required=required)

    async def close(self) -> None:
        await super().close()
        if self._http is not None:
            await self._http.close()

    def resync(self, ring: Callable[[], TicketKeyRing]) -> Callable[[], Awaitable[None]]:
        """A reload for the key watcher: take the store's current ticket pairs from ``ring()``."""

        async def reload() -> None:
            before = self._sealing.first_party
            self._sealing.install_ring(ring())
            if self._sealing.first_party != before:
                self.poke()  # endorsements are made for the newest pair: ask for them now

        return reload

    async def reconcile(self) -> None:
        await self.refresh()

    async def refresh(self) -> bool:
        """One read; True if the list was taken (endorsed by a trusted key)."""
        async with self._reading:
            return await self._read()

    async def _read(self) -> bool:
        assert self._http is not None
        first_party = base64.b64encode(self._sealing.first_party).decode()
        # Fresh for each read: the endorsements must cover it, so no earlier reply can be replayed.
        nonce = secrets.token_bytes(LIST_NONCE_SIZE)
        params = {"first_party": first_party, "nonce": nonce.hex()}
        async with self._http.get(self._url, params=params) as resp:
            body = await resp.content.read(MAX_REPLY_BYTES + 1)
            if resp.status != 200:
                raise KeyListError(f"HTTP {resp.status}")
        if len(body) > MAX_REPLY_BYTES:
            raise KeyListError("reply too large")
        keys, endorsements = _parse(json.loads(body))
        if not self._sealing.accept(keys, endorsements, nonce=nonce):
            raise KeyListError(
                "list refused: not endorsed for this read's nonce by a key this store trusts, or older than one taken"
            )
        return True


class KeyListError(Exception):
    """The authority answered something other than an endorsed key list."""


def _b64(value: Any, size: int) -> bytes:
    if not isinstance(value, str):
        raise KeyListError("not base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyListError("not base64") from None
    if len(raw) != size:
        raise KeyListError("wrong length")
    return raw


def _key_id(value: Any) -> int:
    if not isinstance(value, str) or len(value) != 16:
        raise KeyListError("bad key id")
    try:
        return int(value, 16)
    except ValueError:
        raise KeyListError("bad key id") from None


def _parse(reply: Any) -> tuple[list[tuple[int, bytes]], dict[int, bytes]]:
    org = reply.get("org") if isinstance(reply, dict) else None
    if (
        not isinstance(org, dict)
        or not isinstance(org.get("keys"), list)
        or not isinstance(org.get("endorsements"), list)
    ):
        raise KeyListError("no org key list")
    keys = [(_key_id(k.get("id")), _b64(k.get("public_key"), 32)) for k in org["keys"] if isinstance(k, dict)]
    endorsements = {_key_id(e.get("id")): _b64(e.get("mac"), 32) for e in org["endorsements"] if isinstance(e, dict)}
    return keys, endorsements


def follow_authority_keys(
    config: Config, ring: TicketKeyRing, org_location: str
) -> tuple[TicketSealing, AuthorityKeyFollower]:
    """The store's sealing keys, starting from the configured org key, and the follower that updates them."""
    assert config.authority_org_public_key is not None  # create_store_app refuses to start without one
    sealing = TicketSealing(org_location=org_location, ring=ring, authority_key=config.authority_org_public_key)
    follower = AuthorityKeyFollower(
        url=config.authority_keys_url or f"{config.authority_url}/.well-known/cvault/keys",
        sealing=sealing,
        interval=config.authority_keys_interval,
        ssl_context=client_tls(config.revocation_feed_ca_file),
    )
    return sealing, follower
