"""Key rotations' audit: each records its audit event in its own transaction, in the schema's chain,
with key ids and versions only; the chain verifies afterwards, and a rotation that does not commit leaves no event.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from tests.operations.test_token_key_rotation import _kid
from tests.support.cvault_command import run_cvault
from tests.support.enrolled_org import EnrolledOrg
from tests.support.key_traffic import keys_env
from vault.audit.query import AuditQueries
from vault.crypto.keyring import MasterKey, MasterKeys, generate_key
from vault.storage.audit import PgAuditRepository
from vault.storage.key_rotation import rotate_keys, rotate_master_key
from vault.storage.keys import PgKeyRepository
from vault.storage.pool import Pool


async def _events(pool: Pool, schema: str, action_prefix: str = "keys.") -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT service, action, outcome, org, actor, client_addr, detail::text AS detail "
        f"FROM {schema}.audit_events WHERE action LIKE $1 ORDER BY seq",
        action_prefix + "%",
    )
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


async def test_a_kek_rotation_records_its_activation_and_its_end(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    for _ in range(3):
        await keys.generate("data-key")
    report = await rotate_keys(pool, "store", master_key, batch_size=2, actor="local:rotator")
    events = await _events(pool, "store")
    assert [(e["service"], e["action"], e["outcome"], e["actor"], e["client_addr"]) for e in events] == [
        ("store", "keys.rotate", "ok", "local:rotator", "local")
    ] * 2
    assert [e["detail"] for e in events] == [
        {"phase": "activated", "kek_version": 2, "draining": [1]},
        {"phase": "finished", "kek_version": 2, "rewrapped": report.rewrapped, "retired": [1]},
    ]
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok


async def test_a_rotation_that_does_not_commit_leaves_no_event(pool: Pool, master_key: MasterKey) -> None:
    await PgKeyRepository.open(pool, "authority", master_key)
    # Deferred: it refuses the activation's COMMIT, after its statements and its audit event went through.
    await pool.execute(
        """
        CREATE FUNCTION authority.refuse_kek() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
        CREATE CONSTRAINT TRIGGER refuse_kek AFTER INSERT ON authority.kek_versions
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION authority.refuse_kek();
        """
    )
    head = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM authority.audit_events")
    with pytest.raises(asyncpg.RaiseError):
        await rotate_keys(pool, "authority", master_key, actor="local:rotator")
    assert await pool.fetchval("SELECT max(version) FROM authority.kek_versions") == 1
    assert await pool.fetchval("SELECT coalesce(max(seq), 0) FROM authority.audit_events") == head
    assert await _events(pool, "authority") == []
    assert (await AuditQueries(PgAuditRepository(pool, "authority")).verify()).ok


async def test_a_master_key_rotation_names_the_versions_it_moved(pool: Pool, master_key: MasterKey) -> None:
    await PgKeyRepository.open(pool, "store", master_key)
    await rotate_keys(pool, "store", master_key)
    new = MasterKey(generate_key())
    both = MasterKeys(new, (master_key,))
    await rotate_master_key(pool, "store", both, actor="local:rotator")
    await rotate_master_key(pool, "store", both, actor="local:rotator")  # a rerun moves nothing, and says so
    events = [e for e in await _events(pool, "store") if e["action"] == "keys.rotate_master"]
    assert [e["detail"] for e in events] == [{"rewrapped": [1, 2], "already": []}, {"rewrapped": [], "already": [1, 2]}]
    texts = json.dumps([e["detail"] for e in await _events(pool, "store")])
    assert master_key.key.hex() not in texts and new.key.hex() not in texts
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok


async def test_token_key_rotations_and_retirements_are_in_the_org_audit_query(world: EnrolledOrg, pool: Pool) -> None:
    """``cvault keys rotate-tokens`` / ``retire-tokens`` record who ran them; the org's audit route lists them."""
    h = world.h
    env = {**keys_env(h), "LOGNAME": "rotator", "USER": "rotator"}
    old_kid = _kid(world.root)
    code, out, err = await run_cvault("keys", "rotate-tokens", "--service", "store", env=env)
    assert code == 0, err
    new_kid = out.split("kid ")[1].split(";")[0]
    # A token under the new kid, to read the log once the old one is retired.
    auditor = await h.store_bundle(await h.mint(world.bundle, world.org, mask="a"), world.auth)
    code, out, err = await run_cvault("keys", "retire-tokens", old_kid, env=env)
    assert code == 1  # counting only: no change, no event
    live = int(out.split("would invalidate ")[1].split(" live")[0])
    code, out, err = await run_cvault("keys", "retire-tokens", old_kid, "--yes", env=env)
    assert code == 0, err
    code, out, err = await run_cvault("keys", "rotate-tokens", "--service", "authority", env=env)
    assert code == 0, err
    authority_kid = out.split("kid ")[1].split(";")[0]

    r = await h.store("GET", world.path("/audit?action=keys.rotate_tokens"), auditor)
    assert r.status == 200, r
    assert [(e["org"], e["actor"], e["detail"]) for e in r.body["events"]] == [
        (world.org, "local:rotator", {"key_id": new_kid, "replaced": old_kid})
    ]
    r = await h.store("GET", world.path("/audit?action=keys.retire_tokens"), auditor)
    assert [(e["org"], e["actor"], e["detail"]) for e in r.body["events"]] == [
        (world.org, "local:rotator", {"key_id": old_kid, "live_tokens": live})
    ]
    assert [(e["actor"], e["detail"]) for e in await _events(pool, "authority")] == [
        ("local:rotator", {"key_id": authority_kid})
    ]
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok
    assert (await AuditQueries(PgAuditRepository(pool, "authority")).verify()).ok
