"""A writer's first chain claim, hung on a database that does not answer, holds no other append past its timeout."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from vault.errors import Unavailable
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import close_pool, create_pool


async def test_an_append_behind_a_hung_claim_fails_within_its_own_timeout() -> None:
    connected = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered: a frozen database
        connected.set()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = await create_pool(f"postgresql://cvault@127.0.0.1:{port}/frozen", min_size=0, timeout=60)
    repo = PgAuditRepository(pool, "store")

    def place(*_: object) -> list[object]:
        raise AssertionError("nothing is appended without a chain")

    first = asyncio.create_task(repo.append(place, expected_head=None, timeout=60))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(connected.wait(), 30)  # the first claim hangs on the frozen database now
        with pytest.raises(Unavailable):
            # Before, it waited for the first claim to end (60 s here), then took its own timeout again.
            await asyncio.wait_for(repo.append(place, expected_head=None, timeout=0.2), 30)  # type: ignore[arg-type]
        assert not first.done()
    finally:
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError, Unavailable):
            await first
        for writer in held:
            writer.close()
        server.close()
        await close_pool(pool)
