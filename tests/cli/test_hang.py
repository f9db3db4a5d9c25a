"""No client call waits without a bound; swapped credentials are named as such (issue 16)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from tests.support.dev_world import DevWorld, make_dev_world
from vault.client.blocking_http import BlockingHTTP, run_blocking
from vault.client.discharges import _FETCHING, Discharges
from vault.client.http import HTTP
from vault.errors import InvalidToken
from vault.macaroon import Macaroon
from vault.macaroon.caveats import ThirdParty

SWAPPED = "CVAULT_AUTH_TOKEN holds a store token; the two may be swapped"


@pytest.fixture(scope="module")
def journey(
    postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


@pytest.mark.parametrize("args", [("secrets", "list", "--vault", "prod"), ("run", "--vault", "prod", "--", "env")])
def test_swapped_credentials_are_named_not_a_hang(journey: DevWorld, args: tuple[str, ...]) -> None:
    swapped = {
        **journey.wl,
        "CVAULT_STORE_TOKEN": journey.service["token"],
        "CVAULT_AUTH_TOKEN": journey.workload_store["token"],
    }
    started = time.monotonic()
    r = journey.cvault(*args, env=swapped)  # bounded: a hang raises TimeoutExpired
    assert time.monotonic() - started < 30
    assert r.status != 0 and "CVAULT_STORE_TOKEN holds an authority token" in r.err, r
    assert "swapped" in r.err and r.out == ""


@pytest.mark.parametrize("args", [("secrets", "list", "--vault", "prod"), ("run", "--vault", "prod", "--", "env")])
def test_a_store_token_as_the_authority_credential_is_named(journey: DevWorld, args: tuple[str, ...]) -> None:
    both_store = {**journey.wl, "CVAULT_AUTH_TOKEN": journey.workload_store["token"]}
    r = journey.cvault(*args, env=both_store)
    assert r.status != 0 and SWAPPED in r.err, r
    assert journey.workload_store["token"] not in r.err


def _fetch_needing_itself(discharges: Discharges) -> Coroutine[Any, Any, Macaroon]:
    """A discharge fetch whose credential needs the same discharge: the swapped-token cycle."""
    caveat = ThirdParty("http://authority.invalid/org", b"verifier-key", b"ticket")

    async def authorization(location: str) -> str:
        await discharges.get(caveat, b"binding", authorization)
        return "Bearer x"

    return discharges.get(caveat, b"binding", authorization)


async def test_a_discharge_that_needs_itself_fails_at_once() -> None:
    discharges = Discharges(HTTP(), wait=5.0)
    started = time.monotonic()
    with pytest.raises(InvalidToken, match="needs that same discharge"):
        await asyncio.wait_for(_fetch_needing_itself(discharges), 10)
    assert time.monotonic() - started < 5
    await discharges.close()


def test_a_discharge_that_needs_itself_fails_at_once_without_an_event_loop() -> None:
    """The CLI's path: the blocking transport, driven by run_blocking (no loop that could wait)."""
    discharges = Discharges(BlockingHTTP(timeout=5.0))
    started = time.monotonic()
    with pytest.raises(InvalidToken, match="needs that same discharge"):
        run_blocking(_fetch_needing_itself(discharges))
    assert time.monotonic() - started < 5
    # The cycle mark does not outlive the failed fetch: a later fetch is not refused for it.
    assert discharges.cached() == 0 and not _FETCHING.get()


def test_run_blocking_refuses_a_coroutine_that_waits_on_a_loop() -> None:
    async def waits() -> None:
        await asyncio.sleep(0.01)

    with pytest.raises(RuntimeError, match="event loop"):
        run_blocking(waits())
