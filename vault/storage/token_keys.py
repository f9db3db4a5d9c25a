"""Token root keys by kid: rotating (a new kid mints) and retiring (every token under a kid stops verifying).

* Authority: ``authority-root`` keys; the newest unretired one mints, every unretired
  one verifies.
* Store: one ``store-root`` key per org minting (``store.orgs.root_key_id``); every
  unretired key in ``store.org_root_keys`` verifies the org's tokens.

Both commit with :func:`~vault.storage.key_watch.announce_key_change`, so every node's
:class:`~vault.storage.key_watch.KeyWatcher` reloads at once. Tokens record the key
that signed them (``tokens.root_key_id``), so retiring a kid can say first how many
live tokens it kills. The key that mints cannot be retired: rotate first.

Each rotation and retirement records its audit event (``keys.rotate_tokens``,
``keys.retire_tokens``, with the key ids in hex) in the same transaction, in the
service's chain; a store org's carry the org, so the org's ``cvault audit query`` shows them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg

from vault.errors import Conflict, NotFound

from .authority_keys import ROOT_PURPOSE as AUTHORITY_ROOT
from .key_rotation import record_key_change
from .key_watch import announce_key_change
from .keys import PgKeyRepository
from .pool import database_errors
from .store_keys import ROOT_KEY_PURPOSE as STORE_ROOT

__all__ = ["SERVICES", "Retirement", "find_root_key", "retire_token_key", "rotate_token_keys"]

SERVICES = ("store", "authority")
_ROOT_PURPOSE = {"store": STORE_ROOT, "authority": AUTHORITY_ROOT}


def _lock_key(service: str) -> int:
    digest = hashlib.sha256(f"cvault.keys.tokens.{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _authority_lock() -> int:
    # The lock ensure_key takes for the authority's root key (authority_keys._lock_key).
    return int.from_bytes(hashlib.sha256(b"cvault.key:" + AUTHORITY_ROOT.encode()).digest()[:8], "big", signed=True)


def _kid(key_id: int) -> str:
    return f"{key_id:016x}"  # as `cvault keys status` prints it


async def rotate_token_keys(
    pool: asyncpg.Pool, keys: PgKeyRepository, service: str, *, actor: str | None = None
) -> tuple[int, ...]:
    """A new root key that mints from now on (one per enrolled org for the store); returns the new key ids."""
    new: list[int] = []
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            if service == "authority":
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _authority_lock())
                key_id, _key = await keys.generate(AUTHORITY_ROOT, conn=conn)
                new.append(key_id)
                await record_key_change(conn, service, "keys.rotate_tokens", actor, key_id=_kid(key_id))
            elif service == "store":
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(service))
                for row in await conn.fetch("SELECT id, root_key_id FROM store.orgs ORDER BY id FOR UPDATE"):
                    key_id, _key = await keys.generate(STORE_ROOT, conn=conn)
                    # The trigger of sql/store/0070 records the key in store.org_root_keys.
                    await conn.execute("UPDATE store.orgs SET root_key_id = $2 WHERE id = $1", row["id"], key_id)
                    new.append(key_id)
                    replaced = _kid(row["root_key_id"])
                    await record_key_change(
                        conn,
                        service,
                        "keys.rotate_tokens",
                        actor,
                        org=row["id"],
                        key_id=_kid(key_id),
                        replaced=replaced,
                    )
            else:
                raise ValueError(f"service must be one of {SERVICES}")
            await announce_key_change(conn, service)
    return tuple(new)


@dataclass(frozen=True)
class Retirement:
    """What retiring a kid kills: live (unrevoked, unexpired) tokens signed with it."""

    service: str
    key_id: int
    org_id: int | None  # the org of a store root key
    live_tokens: int
    service_tokens: int  # of live_tokens, the authority's service tokens (no expiry of their own)
    retired: bool


_MINTING = {
    "authority": ("SELECT max(id) FROM authority.wrapped_keys WHERE purpose = 'authority-root' AND retired_at IS NULL"),
    "store": "SELECT root_key_id FROM store.orgs WHERE id = $1",
}
_COUNT = {
    "authority": (
        "SELECT count(*) AS live, count(*) FILTER (WHERE kind = 'service') AS service FROM authority.tokens "
        "WHERE root_key_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
    ),
    "store": (
        "SELECT count(*) AS live, 0 AS service FROM store.tokens "
        "WHERE root_key_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
    ),
}
_FIND = {
    "authority": (
        "SELECT k.id, NULL::bigint AS org_id, k.retired_at FROM authority.wrapped_keys AS k "
        "WHERE k.id = $1 AND k.purpose = 'authority-root'"
    ),
    "store": (
        "SELECT k.id, r.org_id, k.retired_at FROM store.wrapped_keys AS k "
        "JOIN store.org_root_keys AS r ON r.key_id = k.id WHERE k.id = $1 AND k.purpose = 'store-root'"
    ),
}


async def find_root_key(pool: asyncpg.Pool, service: str, key_id: int) -> bool:
    """True if ``key_id`` is a token root key of ``service``."""
    with database_errors():
        return await pool.fetchrow(_FIND[service], key_id) is not None


async def retire_token_key(
    pool: asyncpg.Pool, service: str, key_id: int, *, confirm: bool, actor: str | None = None
) -> Retirement:
    """Count what retiring ``key_id`` kills and, with ``confirm``, retire it and tell every node."""
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_FIND[service] + " FOR UPDATE OF k", key_id)
            if row is None:
                raise NotFound(f"{service} has no token root key {key_id:016x}; `cvault keys status` lists them")
            if row["retired_at"] is not None:
                raise Conflict(f"{service} key {key_id:016x} is already retired")
            minting = await conn.fetchval(_MINTING[service], *([row["org_id"]] if service == "store" else []))
            if minting == key_id:
                raise Conflict(
                    f"{service} key {key_id:016x} is the one that mints new tokens; "
                    f"run `cvault keys rotate-tokens --service {service}` first"
                )
            counts = await conn.fetchrow(_COUNT[service], key_id)
            if confirm:
                await conn.execute(f"UPDATE {service}.wrapped_keys SET retired_at = now() WHERE id = $1", key_id)  # noqa: S608
                await announce_key_change(conn, service)
                await record_key_change(
                    conn,
                    service,
                    "keys.retire_tokens",
                    actor,
                    org=row["org_id"],
                    key_id=_kid(key_id),
                    live_tokens=counts["live"],
                    service_tokens=counts["service"] if service == "authority" else None,
                )
    return Retirement(service, key_id, row["org_id"], counts["live"], counts["service"], confirm)
