"""Ticket key pairs (X25519) by id: loading every unretired pair, rotating (a new pair seals), retiring.

* Authority: ``authority-login-x25519``, ``authority-org-x25519`` and
  ``authority-issuer-x25519``; ``rotate-tickets --service authority`` adds one of each.
* Store: ``store-ticket``, the store as first party of every store token's org caveat.

Every unretired pair opens tickets; the newest seals new ones. A rotation or a
retirement commits with :func:`~vault.storage.key_watch.announce_key_change`, so every
node's :class:`~vault.storage.key_watch.KeyWatcher` reloads its rings at once. The pair
that seals cannot be retired (rotate first), and a purpose holds at most
:data:`~vault.crypto.ticket_keys.MAX_TICKET_KEYS` unretired pairs, because a third party
tries each of them on a ticket. Each change records its audit event in its own
transaction (:func:`~vault.storage.key_rotation.record_key_change`).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from vault.crypto.ticket_keys import MAX_TICKET_KEYS, TicketKeyPair
from vault.errors import Conflict, NotFound

from .authority_keys import ISSUER_PURPOSE, LOGIN_PURPOSE, ORG_PURPOSE, purpose_lock
from .key_rotation import record_key_change
from .key_watch import announce_key_change
from .keys import PgKeyRepository
from .pool import database_errors
from .store_keys import TICKET_KEY_PURPOSE

__all__ = ["TICKET_PURPOSES", "TicketRetirement", "find_ticket_key", "retire_ticket_key", "rotate_ticket_keys"]

TICKET_PURPOSES: dict[str, tuple[str, ...]] = {
    "authority": (LOGIN_PURPOSE, ORG_PURPOSE, ISSUER_PURPOSE),
    "store": (TICKET_KEY_PURPOSE,),
}
_UNRETIRED = "SELECT id FROM {schema}.wrapped_keys WHERE purpose = $1 AND retired_at IS NULL ORDER BY id"


async def rotate_ticket_keys(
    pool: asyncpg.Pool, keys: PgKeyRepository, service: str, *, actor: str | None = None
) -> tuple[tuple[str, int], ...]:
    """A new pair of each of ``service``'s ticket purposes, sealing from now on; returns (purpose, id) of each."""
    purposes = TICKET_PURPOSES[service]
    new: list[tuple[str, int]] = []
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            for purpose in purposes:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", purpose_lock(purpose))
                live = await conn.fetch(_UNRETIRED.format(schema=service), purpose)
                if len(live) >= MAX_TICKET_KEYS:
                    raise Conflict(
                        f"{service} already has {len(live)} unretired {purpose} keys (at most {MAX_TICKET_KEYS}): "
                        "retire an old one first (`cvault keys retire-tickets ID --yes`)"
                    )
                key_id = await keys.add(purpose, TicketKeyPair.generate().private_key_bytes, conn=conn)
                new.append((purpose, key_id))
                await record_key_change(
                    conn, service, "keys.rotate_tickets", actor, purpose=purpose, key_id=f"{key_id:016x}"
                )
            await announce_key_change(conn, service)
    return tuple(new)


@dataclass(frozen=True)
class TicketRetirement:
    service: str
    purpose: str
    key_id: int
    retired: bool


async def find_ticket_key(pool: asyncpg.Pool, service: str, key_id: int) -> str | None:
    """The purpose of ``key_id`` if it is one of ``service``'s ticket keys."""
    with database_errors():
        purpose: str | None = await pool.fetchval(
            f"SELECT purpose FROM {service}.wrapped_keys WHERE id = $1 AND purpose = ANY($2::text[])",  # noqa: S608
            key_id,
            list(TICKET_PURPOSES[service]),
        )
    return purpose


async def retire_ticket_key(
    pool: asyncpg.Pool, service: str, key_id: int, *, confirm: bool, actor: str | None = None
) -> TicketRetirement:
    """Check that ``key_id`` may be retired and, with ``confirm``, retire it and tell every node."""
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT purpose, retired_at FROM {service}.wrapped_keys "  # noqa: S608
                "WHERE id = $1 AND purpose = ANY($2::text[]) FOR UPDATE",
                key_id,
                list(TICKET_PURPOSES[service]),
            )
            if row is None:
                raise NotFound(f"{service} has no ticket key {key_id:016x}; `cvault keys status` lists them")
            purpose = row["purpose"]
            if row["retired_at"] is not None:
                raise Conflict(f"{service} ticket key {key_id:016x} is already retired")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", purpose_lock(purpose))
            live = [r["id"] for r in await conn.fetch(_UNRETIRED.format(schema=service), purpose)]
            if live[-1] == key_id:
                raise Conflict(
                    f"{service} ticket key {key_id:016x} is the one that seals new tickets; "
                    f"run `cvault keys rotate-tickets --service {service}` first"
                )
            if confirm:
                await conn.execute(f"UPDATE {service}.wrapped_keys SET retired_at = now() WHERE id = $1", key_id)  # noqa: S608
                await record_key_change(
                    conn, service, "keys.retire_tickets", actor, purpose=purpose, key_id=f"{key_id:016x}"
                )
                await announce_key_change(conn, service)
    return TicketRetirement(service, purpose, key_id, confirm)
