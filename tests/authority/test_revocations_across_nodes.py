"""Revocations across nodes: two pools on one database play two nodes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from vault.errors import BadRequest, Unavailable
from vault.storage.pool import Pool, close_pool, create_pool
from vault.storage.revocations import RevocationWatcher

SCHEMA = "authority"
PROPAGATION_BOUND = 1.0  # seconds: "every node sees it within one second"


def new_id() -> str:
    return str(uuid.uuid4())


async def eventually(condition: Callable[[], bool], within: float = PROPAGATION_BOUND) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.fixture
async def other_pool(database_url: str) -> AsyncIterator[Pool]:
    created = await create_pool(database_url, max_size=4)
    try:
        yield created
    finally:
        await close_pool(created)


@pytest.fixture
async def node_a(pool: Pool) -> AsyncIterator[RevocationWatcher]:
    watcher = RevocationWatcher(pool, SCHEMA)
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.close()


async def test_another_node_sees_a_revocation_within_a_second(node_a: RevocationWatcher, other_pool: Pool) -> None:
    node_b = RevocationWatcher(other_pool, SCHEMA, reconcile_interval=30.0)  # only LISTEN can make it in time
    await node_b.start()
    try:
        assert node_b.listening
        parent, child = new_id(), new_id()
        assert await node_a.revoke([parent, child], "leaked") == [parent, child]
        assert node_a.is_revoked(parent), "the revoking node knows at once"
        assert await eventually(lambda: node_b.is_revoked(parent) and node_b.is_revoked(child))
        assert not node_b.is_revoked(new_id())
    finally:
        await node_b.close()


async def test_the_poll_alone_heals_a_missed_notification(node_a: RevocationWatcher, other_pool: Pool) -> None:
    node_b = RevocationWatcher(other_pool, SCHEMA, listen=False)
    await node_b.start()
    try:
        assert not node_b.listening
        token = new_id()
        await node_a.revoke([token], None)
        assert await eventually(lambda: node_b.is_revoked(token))
    finally:
        await node_b.close()


async def test_a_killed_listen_connection_is_reopened(node_a: RevocationWatcher, other_pool: Pool, pool: Pool) -> None:
    node_b = RevocationWatcher(other_pool, SCHEMA)
    await node_b.start()
    try:
        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
        assert killed == 2  # both nodes' listeners
        token = new_id()
        await node_a.revoke([token], None)
        assert await eventually(lambda: node_b.is_revoked(token))
        assert await eventually(lambda: node_b.listening, within=5.0)
    finally:
        await node_b.close()


async def test_a_new_node_loads_existing_revocations(node_a: RevocationWatcher, other_pool: Pool) -> None:
    tokens = [new_id() for _ in range(5)]
    await node_a.revoke(tokens, "test")
    node_b = RevocationWatcher(other_pool, SCHEMA, listen=False, reconcile_interval=30.0)
    await node_b.start()
    try:
        assert all(node_b.is_revoked(t) for t in tokens)
        assert node_b.last_seq == (await node_b.since(0, limit=10))[1]
    finally:
        await node_b.close()


async def test_revoke_is_idempotent_and_returns_only_new_ids(node_a: RevocationWatcher) -> None:
    first, second = new_id(), new_id()
    assert await node_a.revoke([first], None) == [first]
    assert await node_a.revoke([first, second, second], None) == [second]
    assert await node_a.revoke([], None) == []
    assert node_a.any_revoked([new_id(), second.upper()]) == second.upper()
    assert node_a.any_revoked([new_id()]) is None


async def test_revoke_refuses_ids_that_are_not_uuids(node_a: RevocationWatcher) -> None:
    with pytest.raises(BadRequest):
        await node_a.revoke(["not-a-uuid"], None)


async def test_since_pages_in_seq_order(node_a: RevocationWatcher) -> None:
    tokens = [new_id() for _ in range(7)]
    for token in tokens:
        await node_a.revoke([token], "secret reason")
    seen: list[str] = []
    cursor = 0
    while True:
        items, cursor_next = await node_a.since(cursor, limit=3)
        if not items:
            assert cursor_next == cursor
            break
        assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)
        assert all(set(i) == {"token_id", "seq", "revoked_at"} for i in items), "reasons stay private"
        seen += [i["token_id"] for i in items]
        cursor = cursor_next
    assert seen == tokens
    with pytest.raises(ValueError):
        await node_a.since(0, limit=0)


async def test_concurrent_revocations_are_all_seen(node_a: RevocationWatcher, other_pool: Pool) -> None:
    # Many writers at once: the table lock keeps seq order equal to commit order,
    # so "seq > last_seen" never skips a row that committed late.
    node_b = RevocationWatcher(other_pool, SCHEMA, listen=False, reconcile_interval=0.05)
    await node_b.start()
    try:
        tokens = [new_id() for _ in range(60)]
        await asyncio.gather(*(node_a.revoke([t], None) for t in tokens))
        assert await eventually(lambda: all(node_b.is_revoked(t) for t in tokens))
    finally:
        await node_b.close()


async def test_is_revoked_fails_closed_before_start_and_when_stale(database_url: str) -> None:
    now = [0.0]
    node_pool = await create_pool(database_url, max_size=2)
    watcher = RevocationWatcher(
        node_pool, SCHEMA, listen=False, reconcile_interval=0.05, max_staleness=30.0, clock=lambda: now[0]
    )
    with pytest.raises(Unavailable):
        watcher.is_revoked(new_id())
    await watcher.start()
    try:
        assert not watcher.is_revoked(new_id())
        node_pool.terminate()  # the database is gone for this node; polls now fail
        assert await eventually(lambda: watcher._poll_failures >= 2, within=5.0)  # the loop survives failures
        now[0] = 31.0
        with pytest.raises(Unavailable, match="out of date"):
            watcher.is_revoked(new_id())
        assert watcher._task is not None and not watcher._task.done(), "poll failures never crash the watcher"
    finally:
        await watcher.close()
