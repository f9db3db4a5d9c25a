"""storage's ChannelFollower while its database cannot be reached: short retries, one warning per outage."""

from __future__ import annotations

import asyncio
import logging

import pytest

from vault.storage.channel_follower import ChannelFollower
from vault.storage.pool import close_pool, create_pool

PASSES = 6  # the short retries (RETRY_DELAYS) take about two seconds for these


class Counting(ChannelFollower):
    def __init__(self, pool: object) -> None:
        super().__init__(pool, "test_channel", interval=3600, name="test")
        self.passes = 0
        self.done = asyncio.Event()

    async def reconcile(self) -> None:
        self.passes += 1
        if self.passes >= PASSES:
            self.done.set()


async def test_a_follower_that_cannot_listen_retries_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 1: every LISTEN attempt is refused at once (min_size 0: the pool opens nothing).
    pool = await create_pool("postgresql://cvault@127.0.0.1:1/none", min_size=0, timeout=5)
    follower = Counting(pool)
    try:
        with caplog.at_level(logging.INFO, logger="cvault.follow"):
            await follower.start()
            # Not listening: the loop retries after short pauses, never an interval (3600 s here).
            await asyncio.wait_for(follower.done.wait(), 120)
    finally:
        await follower.close()
        await close_pool(pool)
    assert not follower.listening
    warnings = [r for r in caplog.records if "cannot LISTEN" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
