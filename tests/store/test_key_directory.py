"""The store's key directory: unknown key ids cannot drive a database query per request."""

from __future__ import annotations

import asyncio
import os
import random

from vault.crypto.keyring import MasterKey, generate_key
from vault.storage.keys import PgKeyRepository
from vault.storage.pool import Pool
from vault.storage.store_keys import ROOT_KEY_PURPOSE, StoreKeyDirectory


async def test_made_up_key_ids_share_one_reload(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    directory = await StoreKeyDirectory.open(pool, keys)
    made_up = [random.randrange(1 << 40, 1 << 62) for _ in range(200)]
    found = await asyncio.gather(*(directory.load(k) for k in made_up))
    assert found == [None] * 200
    assert directory.reloads == 1
    # A second wave within the interval waits for the next reload instead of querying per id.
    await asyncio.gather(*(directory.load(k + 1) for k in made_up))
    assert directory.reloads == 2


async def test_an_org_enrolled_elsewhere_is_found_within_the_interval(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    directory = await StoreKeyDirectory.open(pool, keys)
    assert await directory.load(1 << 50) is None  # a miss just reloaded the table
    # Another node enrols an org: a new root key row and an org row.
    other = await PgKeyRepository.open(pool, "store", master_key)
    key_id = await other.add(ROOT_KEY_PURPOSE, generate_key())
    org_id = int.from_bytes(os.urandom(7), "big")
    await pool.execute("INSERT INTO store.orgs (id, slug, root_key_id) VALUES ($1, 'elsewhere', $2)", org_id, key_id)
    # Found by the next reload (at most RELOAD_INTERVAL later), without a query of its own.
    root = await directory.load(key_id)
    assert root is not None and root.org_id == org_id
    assert directory.reloads == 2
