"""The store counts the revocation feed as fresh again within a second of the feed's return.

Issue 25, item 2: after a failed poll the store's follower polled again with its
long poll and counted the feed as fresh only when that poll answered, which the
feed does only after the whole wait when nothing is revoked: after a database
freeze, old org discharges were refused for 10.8 s after the authority returned.
Here the follower (the store's own ``RevocationFollower``, with a 20 s long poll)
follows a real authority over HTTP; the authority is stopped past the feed's
bound (on an injected clock, so the store's state turns stale without waiting),
started again on the same port, and the first poll it gets must be one that does
not wait (so the follower is fresh within a retry pause, not a long poll); the time from the feed's return to the first
reply that makes old discharges acceptable again is printed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import unused_port
from aiohttp.typedefs import Handler

from tests.support.harness import Harness, ShiftedClock
from vault.crypto.passwords import MINIMUM
from vault.store.authority_revocations import AuthorityRevocations
from vault.web.authority import create_authority_app
from vault.web.store.revocation_follower import RevocationFollower

from .cluster import Cluster
from .services import fault_services

LONG_POLL = 20
MAX_LAG = 30.0
HANG = 60.0  # not a promise (that is a second): how long to wait before calling the feed stale for good


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _authority(h: Harness, port: int, waits: list[str]) -> web.AppRunner:
    """A second authority on the test's database, on ``port``: the feed the follower reads.

    ``waits`` gets the ``wait`` of each feed poll it is sent, in order.
    """

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.endswith("/revocations/feed"):
            waits.append(request.query.get("wait", ""))
        return await handler(request)

    app = create_authority_app(h.authority_config, clock=ShiftedClock(), password_cost=MINIMUM)
    app.middlewares.insert(0, record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    return runner


async def test_the_feed_is_fresh_within_a_second_of_its_return(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path
) -> None:
    async with fault_services(fault_database, tmp_path) as (h, _store):
        port = unused_port()
        runner = await _authority(h, port, [])
        clock = Clock()
        state = AuthorityRevocations(org_location=h.authority_url, max_lag=MAX_LAG, monotonic=clock)
        token = h.store_config.revocation_feed_token
        assert token is not None
        follower = RevocationFollower(
            feed_url=f"http://127.0.0.1:{port}/v1/revocations/feed", token=token, state=state, wait=LONG_POLL
        )
        await follower.start()
        try:
            assert state.synced_at == clock.now
            await asyncio.sleep(0.5)  # the follower is in its long poll now
            await runner.cleanup()  # the feed is gone (its long polls are answered as it stops)
            await asyncio.sleep(1.5)  # polls fail meanwhile
            clock.now += MAX_LAG + 1  # past the bound: old discharges are refused
            assert state.synced_at is not None and clock.now - state.synced_at > MAX_LAG
            waits: list[str] = []
            runner = await _authority(h, port, waits)
            returned = time.monotonic()
            while state.synced_at != clock.now:
                assert time.monotonic() - returned < HANG, "still stale"
                await asyncio.sleep(0.01)
            fresh = time.monotonic() - returned
            # What makes it prompt, whatever the machine's load: the first poll the returned feed gets does not
            # wait (before, it was a long poll, answered only after LONG_POLL seconds when nothing was revoked).
            assert waits[0] == "0", waits
        finally:
            await follower.close()
            await runner.cleanup()
    print(f"\nrevocation feed back: fresh again (old discharges accepted) {fresh:.2f} s after its return")
