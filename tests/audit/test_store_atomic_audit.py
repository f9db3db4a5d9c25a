"""At the store, a change's audit event commits in the change's own transaction, and a failing COMMIT
is a JSON error with an ``error`` event, never a ``500 internal`` with an ``ok`` event for a change that is not there.
"""

from __future__ import annotations

from tests.support.audit_rows import FAIL_AT_COMMIT, audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg
from vault.audit.query import AuditQueries
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import Pool


async def test_a_commit_that_fails_is_a_json_error_audited_as_error(world: EnrolledOrg, pool: Pool) -> None:
    await pool.execute(FAIL_AT_COMMIT)
    seq = await audit_head(pool)
    r = await world.h.store("PUT", world.secret("doomed"), world.bundle, {"value": "v"})
    assert r.status == 500 and r.code == "database_error", r
    assert "nothing was changed" in r.body["error"]["message"]
    assert await pool.fetchval("SELECT count(*) FROM store.secret_versions") == 0
    events = await audit_since(pool, seq)
    # No "ok" event for the version that never committed; one "error" event naming the code.
    assert summary(events) == [("secrets.write", "error", "doomed", None)]
    assert events[0]["detail"]["code"] == "database_error"
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok


async def test_writes_and_reads_interleave_in_one_chain(world: EnrolledOrg, pool: Pool) -> None:
    seq = await audit_head(pool)
    for i in range(3):
        r = await world.h.store("PUT", world.secret("a"), world.bundle, {"value": f"v{i}"})
        assert r.status == 200, r
        assert (await world.h.store("GET", world.secret("a"), world.bundle)).status == 200
    events = await audit_since(pool, seq)
    assert summary(events) == [
        item
        for version in (1, 2, 3)
        for item in (("secrets.write", "ok", "a", version), ("secrets.read", "ok", "a", version))
    ]
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok


async def test_a_change_that_rolls_back_leaves_no_ok_event(world: EnrolledOrg, pool: Pool) -> None:
    # Promote with nothing pending: the repository raises inside the transaction, after nothing was audited.
    r = await world.h.store("PUT", world.secret("b"), world.bundle, {"value": "v"})
    assert r.status == 200, r
    seq = await audit_head(pool)
    r = await world.h.store("POST", world.path("/vaults/prod/promote/b"), world.bundle, {})
    assert r.status == 409, r
    assert summary(await audit_since(pool, seq)) == [("secrets.promote", "error", "b", None)]
