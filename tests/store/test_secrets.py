"""Secrets through the real HTTP app: versions, check-and-set, delete/undelete/destroy, staged rotation,
batch reads, listing, encryption at rest. Each test asserts the audit events it leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.audit_rows import audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg
from vault.audit.log import AuditLog
from vault.errors import Unavailable
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import Pool
from vault.storage.store_reads import BatchReader
from vault.store.caller import Caller
from vault.store.models import SecretLookup
from vault.store.read_batcher import ReadBatcher
from vault.types import RequestContext


async def _put(w: EnrolledOrg, name: str, value: str, **extra: Any) -> Any:
    r = await w.h.store("PUT", w.secret(name), w.bundle, {"value": value, **extra})
    assert r.status == 200, r
    return r.body


async def _get(w: EnrolledOrg, name: str, query: str = "") -> Any:
    return await w.h.store("GET", w.secret(name) + query, w.bundle)


async def test_cas_conflict_409(world: EnrolledOrg, pool: Pool) -> None:
    seq = await audit_head(pool)
    assert (await _put(world, "api/key", "one", cas=0))["version"] == 1
    r = await world.h.store("PUT", world.secret("api/key"), world.bundle, {"value": "two", "cas": 0})
    assert r.status == 409 and r.code == "conflict", r
    assert (await _put(world, "api/key", "two", cas=1))["version"] == 2
    assert (await _get(world, "api/key")).body["value"] == "two"
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.write", "ok", "api/key", 1),
        ("secrets.write", "error", "api/key", None),
        ("secrets.write", "ok", "api/key", 2),
        ("secrets.read", "ok", "api/key", 2),
    ]


async def test_pinned_version_read(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "api/key", "one")
    await _put(world, "api/key", "two")
    seq = await audit_head(pool)
    r = await _get(world, "api/key", "?version=1")
    assert r.status == 200 and r.body["value"] == "one" and r.body["version"] == 1
    r = await _get(world, "api/key")
    assert r.body["value"] == "two" and r.body["version"] == 2 and r.body["stage"] == "current"
    r = await _get(world, "api/key", "?version=3")
    assert r.status == 404
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.read", "ok", "api/key", 1),
        ("secrets.read", "ok", "api/key", 2),
        ("secrets.read", "error", "api/key", None),
    ]


async def test_soft_delete_then_undelete(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "api/key", "one")
    await _put(world, "api/key", "two")
    seq = await audit_head(pool)
    r = await h.store("POST", world.path("/vaults/prod/delete/api/key"), world.bundle, {"versions": [1, 99]})
    assert r.status == 200 and r.body == {"changed": [1]}, r
    assert (await _get(world, "api/key", "?version=1")).status == 404
    meta = await h.store("GET", world.path("/vaults/prod/metadata/api/key"), world.bundle)
    assert [(v["version"], v["state"]) for v in meta.body["versions"]] == [(1, "deleted"), (2, "active")]
    r = await h.store("POST", world.path("/vaults/prod/undelete/api/key"), world.bundle, {"versions": [1]})
    assert r.status == 200 and r.body == {"changed": [1]}
    assert (await _get(world, "api/key", "?version=1")).body["value"] == "one"
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.delete", "ok", "api/key", None),
        ("secrets.read", "error", "api/key", None),
        ("secrets.metadata", "ok", "api/key", None),
        ("secrets.undelete", "ok", "api/key", None),
        ("secrets.read", "ok", "api/key", 1),
    ]


async def test_destroy_leaves_no_ciphertext(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "api/key", "one")
    await _put(world, "api/key", "two")
    key_id = await pool.fetchval(
        "SELECT v.data_key_id FROM store.secret_versions v JOIN store.secrets s ON s.id = v.secret_id "
        "WHERE s.name = 'api/key' AND v.version = 1"
    )
    seq = await audit_head(pool)
    r = await h.store("POST", world.path("/vaults/prod/destroy/api/key"), world.bundle, {"versions": [1]})
    assert r.status == 200 and r.body == {"changed": [1]}, r
    row = await pool.fetchrow(
        "SELECT v.state, v.ciphertext, v.data_key_id FROM store.secret_versions v "
        "JOIN store.secrets s ON s.id = v.secret_id WHERE s.name = 'api/key' AND v.version = 1"
    )
    assert row["state"] == "destroyed" and row["ciphertext"] is None and row["data_key_id"] is None
    assert await pool.fetchval("SELECT count(*) FROM store.wrapped_keys WHERE id = $1", key_id) == 0
    assert (await _get(world, "api/key", "?version=1")).status == 404
    assert (await _get(world, "api/key")).body["value"] == "two"
    # Destroying the whole secret removes every version and data key.
    r = await h.store("DELETE", world.path("/vaults/prod/metadata/api/key"), world.bundle)
    assert r.status == 204
    assert await pool.fetchval("SELECT count(*) FROM store.secret_versions") == 0
    assert await pool.fetchval("SELECT count(*) FROM store.wrapped_keys WHERE purpose = 'store-dek'") == 0
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.destroy", "ok", "api/key", None),
        ("secrets.read", "error", "api/key", None),
        ("secrets.read", "ok", "api/key", 2),
        ("secrets.destroy", "ok", "api/key", None),
    ]


async def test_staged_rotation_end_to_end(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "db/password", "old")
    seq = await audit_head(pool)
    assert (await _put(world, "db/password", "new", stage="pending")) == {
        "name": "db/password",
        "version": 2,
        "stage": "pending",
    }
    assert (await _get(world, "db/password")).body["value"] == "old"
    pending = await _get(world, "db/password", "?stage=pending")
    assert pending.body["value"] == "new" and pending.body["version"] == 2
    r = await h.store("POST", world.path("/vaults/prod/promote/db/password"), world.bundle)
    assert r.status == 200 and r.body == {"name": "db/password", "current": 2, "previous": 1}
    assert (await _get(world, "db/password")).body["value"] == "new"
    previous = await _get(world, "db/password", "?stage=previous")
    assert previous.body["value"] == "old" and previous.body["stage"] == "previous"
    r = await h.store("POST", world.path("/vaults/prod/promote/db/password"), world.bundle)
    assert r.status == 409
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.write", "ok", "db/password", 2),
        ("secrets.read", "ok", "db/password", 1),
        ("secrets.read", "ok", "db/password", 2),
        ("secrets.promote", "ok", "db/password", 2),
        ("secrets.read", "ok", "db/password", 2),
        ("secrets.read", "ok", "db/password", 1),
        ("secrets.promote", "error", "db/password", None),
    ]


async def test_a_version_and_a_stage_read_that_version_if_it_holds_that_stage(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/password", "old")
    await _put(world, "db/password", "new", stage="pending")
    seq = await audit_head(pool)
    both = await _get(world, "db/password", "?version=2&stage=pending")
    assert both.status == 200 and both.body["value"] == "new" and both.body["stage"] == "pending"
    assert (await _get(world, "db/password", "?version=1&stage=current")).body["value"] == "old"
    for query in ("?version=2&stage=current", "?version=2&stage=previous", "?version=3&stage=pending"):
        r = await _get(world, "db/password", query)
        assert r.status == 404 and "new" not in str(r.body) and "old" not in str(r.body), (query, r)
    r = await _get(world, "db/password", "?version=1&stage=pending")
    assert r.status == 404 and "version 1 as the pending version of secret 'db/password'" in r.body["error"]["message"]
    # A refused combination reveals nothing: no read is audited as done.
    assert [e[:2] for e in summary(await audit_since(pool, seq))] == [("secrets.read", "ok")] * 2 + [
        ("secrets.read", "error")
    ] * 4


async def test_ciphertext_copied_to_another_row_fails_to_decrypt(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "a", "secret A")
    await _put(world, "b", "secret B")
    # Copy a's ciphertext, and even its data key reference, into b's row.
    await pool.execute(
        "UPDATE store.secret_versions v SET ciphertext = src.ciphertext, data_key_id = src.data_key_id "
        "FROM (SELECT v2.ciphertext, v2.data_key_id FROM store.secret_versions v2 "
        "      JOIN store.secrets s2 ON s2.id = v2.secret_id WHERE s2.name = 'a') src, store.secrets s "
        "WHERE s.id = v.secret_id AND s.name = 'b'"
    )
    seq = await audit_head(pool)
    r = await _get(world, "b")
    assert r.status == 500 and r.code == "decryption_failed", r
    assert "'b'" in r.body["error"]["message"] and "secret A" not in str(r.body)
    # Only the ciphertext moved (b's own data key): same clear error.
    await _put(world, "c", "secret C")
    await pool.execute(
        "UPDATE store.secret_versions v SET ciphertext = (SELECT v2.ciphertext FROM store.secret_versions v2 "
        "JOIN store.secrets s2 ON s2.id = v2.secret_id WHERE s2.name = 'a') "
        "FROM store.secrets s WHERE s.id = v.secret_id AND s.name = 'c'"
    )
    r = await _get(world, "c")
    assert r.status == 500 and r.code == "decryption_failed"
    assert (await _get(world, "a")).body["value"] == "secret A"
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.read", "error", "b", None),
        ("secrets.write", "ok", "c", 1),
        ("secrets.read", "error", "c", None),
        ("secrets.read", "ok", "a", 1),
    ]


async def test_values_are_encrypted_at_rest(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/url", "postgres://very-secret-value")
    raw = await pool.fetchval("SELECT ciphertext FROM store.secret_versions")
    assert b"very-secret-value" not in raw
    dump = await pool.fetchval("SELECT string_agg(t::text, '') FROM store.secret_versions t")
    assert "very-secret-value" not in dump


async def test_batch_read(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    for name in ("app/a", "app/b", "other/c"):
        await _put(world, name, f"value {name}")
    seq = await audit_head(pool)
    r = await h.store("POST", world.path("/vaults/prod/read"), world.bundle, {"names": ["app/a", "app/b", "nope"]})
    assert r.status == 200, r
    assert r.body == {
        "secrets": {"app/a": {"version": 1, "value": "value app/a"}, "app/b": {"version": 1, "value": "value app/b"}},
        "missing": ["nope"],
    }
    r = await h.store("POST", world.path("/vaults/prod/read"), world.bundle, {"prefix": "app/"})
    assert sorted(r.body["secrets"]) == ["app/a", "app/b"]
    events = await audit_since(pool, seq)
    assert summary(events) == [
        ("secrets.read", "ok", "app/a", 1),
        ("secrets.read", "ok", "app/b", 1),
        ("secrets.read", "ok", "app/a", 1),
        ("secrets.read", "ok", "app/b", 1),
    ]
    # One audit batch per request: the events of one request are one committed group.
    assert events[0]["request_id"] == events[1]["request_id"] != events[2]["request_id"]


async def test_names_and_a_prefix_are_the_names_under_the_prefix(world: EnrolledOrg) -> None:
    h = world.h
    for name in ("app/a", "other/c"):
        await _put(world, name, f"value {name}")
    body = {"names": ["app/a", "app/nope", "other/c"], "prefix": "app/"}
    r = await h.store("POST", world.path("/vaults/prod/read"), world.bundle, body)
    assert r.status == 200 and r.body == {
        "secrets": {"app/a": {"version": 1, "value": "value app/a"}},
        "missing": ["app/nope"],
    }
    r = await h.store("POST", world.path("/vaults/prod/versions"), world.bundle, body)
    assert r.status == 200 and r.body == {"versions": {"app/a": 1}, "missing": ["app/nope"]}
    r = await h.store("POST", world.path("/vaults/prod/read"), world.bundle, {"names": ["other/c"], "prefix": "app/"})
    assert r.status == 200 and r.body == {"secrets": {}, "missing": []}


async def test_list_with_prefix_and_pagination(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    for name in ("app/a", "app/b", "app/c", "zzz"):
        await _put(world, name, "v")
    r = await h.store("GET", world.path("/vaults/prod/secrets?prefix=app/&limit=2"), world.bundle)
    assert [s["name"] for s in r.body["secrets"]] == ["app/a", "app/b"]
    assert "value" not in str(r.body["secrets"])
    cursor = r.body["next_cursor"]
    r = await h.store("GET", world.path(f"/vaults/prod/secrets?prefix=app/&limit=2&cursor={cursor}"), world.bundle)
    assert [s["name"] for s in r.body["secrets"]] == ["app/c"] and r.body["next_cursor"] is None


async def test_any_cursor_of_the_alphabet_is_a_position(world: EnrolledOrg) -> None:
    for name in ("app/a", "app/b", "app/c"):
        await _put(world, name, "v")

    async def listed(cursor: str) -> Any:
        return await world.h.store("GET", world.path(f"/vaults/prod/secrets?cursor={cursor}"), world.bundle)

    # "app/a" unpadded, "app/b" with a last character that completes no byte, "\xff\xff\xff" (no text: U+FFFD,
    # after every name), "\x00\x00\x00" (NUL: the same).
    for cursor, names in (("YXBwL2E", ["app/b", "app/c"]), ("YXBwL2IA_", ["app/c"]), ("____", []), ("AAAA", [])):
        r = await listed(cursor)
        assert r.status == 200 and [s["name"] for s in r.body["secrets"]] == names, (cursor, r)
    for cursor in ("YXBwL2E=", "a*b", "a%2Fb"):
        r = await listed(cursor)
        assert r.status == 400 and "cursor" in r.body["error"]["message"], (cursor, r)


async def test_max_versions_trims_oldest(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "k", "1", max_versions=2)
    await _put(world, "k", "2")
    seq = await audit_head(pool)
    await _put(world, "k", "3")
    meta = await world.h.store("GET", world.path("/vaults/prod/metadata/k"), world.bundle)
    assert [v["version"] for v in meta.body["versions"]] == [2, 3]
    assert meta.body["max_versions"] == 2
    event, _metadata_read = await audit_since(pool, seq)
    assert event["detail"]["trimmed"] == [1]
    assert await pool.fetchval("SELECT count(*) FROM store.wrapped_keys WHERE purpose = 'store-dek'") == 2


async def test_value_too_large_is_413(world: EnrolledOrg) -> None:
    r = await world.h.store("PUT", world.secret("big"), world.bundle, {"value": "x" * (64 * 1024 + 1)})
    assert r.status == 413


async def test_vault_lifecycle(world: EnrolledOrg) -> None:
    h = world.h
    r = await h.store("POST", world.path("/vaults"), world.bundle, {"name": "prod"})
    assert r.status == 409
    await _put(world, "k", "v")
    assert (await h.store("DELETE", world.path("/vaults/prod"), world.bundle)).status == 409
    assert (await h.store("DELETE", world.path("/vaults/prod/metadata/k"), world.bundle)).status == 204
    assert (await h.store("DELETE", world.path("/vaults/prod"), world.bundle)).status == 204
    r = await h.store("GET", world.path("/vaults"), world.bundle)
    assert r.body == {"vaults": []}
    r = await h.store("PUT", world.secret("k"), world.bundle, {"value": "v"})
    assert r.status == 404


async def test_concurrent_reads_are_batched_and_each_audited(world: EnrolledOrg, pool: Pool) -> None:
    """Reads arriving together share queries and audit commits; each gets its own value and its own event."""
    await _put(world, "a", "value-a")
    await _put(world, "b", "value-b")
    await _put(world, "b", "value-b2")
    seq = await audit_head(pool)
    names = ["a", "b", "missing", "a", "b"] * 8
    queries = {"a": "", "b": "?version=1", "missing": ""}
    replies = await asyncio.gather(*(_get(world, n, queries[n]) for n in names))
    for name, r in zip(names, replies, strict=True):
        if name == "missing":
            assert r.status == 404 and r.code == "not_found", r
        else:
            assert r.status == 200 and r.body["value"] == ("value-a" if name == "a" else "value-b"), r
    events = summary(await audit_since(pool, seq))
    assert sorted(events, key=str) == sorted(
        [("secrets.read", "ok", "a", 1)] * 16
        + [("secrets.read", "ok", "b", 1)] * 16
        + [("secrets.read", "error", "missing", None)] * 8,
        key=str,
    )
    rows = await pool.fetch(
        "SELECT count(DISTINCT xmin::text) AS transactions FROM store.audit_events WHERE seq > $1", seq
    )
    assert rows[0]["transactions"] < len(names)  # at least some reads shared a commit


async def test_a_batcher_that_is_not_running_refuses_reads_at_once(pool: Pool) -> None:
    """Before start and after close, a read fails when it is asked (no future to wait on)."""
    reader = BatchReader(pool)

    async def reveal(ctx: RequestContext[Caller], lookup: SecretLookup, stored: Any) -> tuple[Any, Any]:
        raise AssertionError("nothing is read")

    batcher = ReadBatcher(reader.fetch, reveal, AuditLog(PgAuditRepository(pool, "store")))
    ctx, lookup = RequestContext(org_id=1, operation="secrets.read"), SecretLookup(1, "prod", "db/url", None, None)
    with pytest.raises(Unavailable):
        batcher.read(ctx, lookup)
    await batcher.start()
    await batcher.close()
    with pytest.raises(Unavailable):
        batcher.read(ctx, lookup)
    await reader.close()
