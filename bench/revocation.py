"""Revocation to refusal: how long after the authority's revoke reply the store refuses the bundle it served.

Usage (PostgreSQL from ``CVAULT_TEST_DATABASE_URL``)::

    PYTHONPATH=$PWD python bench/revocation.py [--revocations 100]

What it does:

1. creates a fresh database on that server, migrates it, and bootstraps an
   owner and an org (in-process, as ``cvault bootstrap`` does);
2. starts ``cvault serve authority`` and ``cvault serve store`` in their own
   processes, the store following the authority's revocation feed with a feed
   token (docs/revocation.md);
3. logs in, enrols the org at the store, and then, ``--revocations`` times:
   strips a service token from the owner's permission token, gets an org
   discharge for the root store token with it, reads the vault list once (200),
   revokes the service token at the authority, and from the moment the revoke
   reply arrives polls the store with the same bundle until it answers 401;
4. prints the median and maximum of that delay, and, as the baseline measured
   in the same run, the median round trip of one store read (the resolution of
   the polling: a delay near it means the store refused on its first try).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

# The script's own directory is on sys.path: the helpers of the read benchmark.
from secret_read import admin_url, free_port, make_database, wait_ready

from vault.authority.revocation_feed import new_feed_token
from vault.cli.bootstrap import run_bootstrap
from vault.config import load_config
from vault.crypto.keyring import generate_key
from vault.macaroon import decode_token, encode_bundle
from vault.storage.database import drop_database

PASSWORD = "benchmark password, not a secret"
POLL_CAP = 10.0  # seconds; a revocation that takes longer fails the run


class Services:
    def __init__(self, http: aiohttp.ClientSession, authority: str, store: str) -> None:
        self.http, self.authority, self.store = http, authority, store

    async def call(self, method: str, url: str, auth: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        async with self.http.request(method, url, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def discharge(self, location: str, token_text: str, credentials: str) -> str:
        token = decode_token(token_text)
        [caveat] = token.third_party_tickets(location)
        body = {
            "ticket": base64.b64encode(caveat.ticket).decode(),
            "binding_id": base64.b64encode(token.binding_id()).decode(),
        }
        path = location.removeprefix(self.authority) + "/.well-known/macfly/3p"
        status, reply = await self.call("POST", self.authority + path, credentials, body)
        assert status == 201, reply
        return encode_bundle([token, decode_token(reply["discharge"])])


async def measure(services: Services, org: int, session: str, count: int) -> tuple[list[float], list[float]]:
    s = services
    status, minted = await s.call("POST", f"{s.authority}/v1/tokens", session, {"org": org})
    assert status == 201, minted
    auth = await s.discharge(f"{s.authority}/login", minted["token"], session)
    status, challenge = await s.call("GET", f"{s.store}/v1/orgs/{org}/enroll")
    assert status == 200, challenge
    enroll_bundle = await s.discharge(f"{s.authority}/org", challenge["challenge"], auth)
    status, enrolled = await s.call("POST", f"{s.store}/v1/orgs/{org}/enroll", enroll_bundle, {"slug": "bench"})
    assert status == 201, enrolled
    root = enrolled["token"]
    vaults = f"{s.store}/v1/orgs/{org}/vaults"

    delays: list[float] = []
    round_trips: list[float] = []
    for _ in range(count):
        status, stripped = await s.call("POST", f"{s.authority}/v1/tokens/strip", auth)
        assert status == 201, stripped
        bundle = await s.discharge(f"{s.authority}/org", root, stripped["token"])
        started = time.perf_counter()
        status, _ = await s.call("GET", vaults, bundle)
        round_trips.append(time.perf_counter() - started)
        assert status == 200
        status, _ = await s.call("POST", f"{s.authority}/v1/tokens/{stripped['id']}/revoke", session)
        assert status == 200
        replied = time.perf_counter()
        while (status := (await s.call("GET", vaults, bundle))[0]) == 200:
            if time.perf_counter() - replied > POLL_CAP:
                raise SystemExit(f"the store still served a revoked token's bundle after {POLL_CAP} s")
        assert status == 401, status
        delays.append(time.perf_counter() - replied)
    return delays, round_trips


def services_env(dsn: str, authority_port: int, store_port: int) -> dict[str, str]:
    """The environment of ``cvault serve authority`` and ``store`` on loopback ports, one fresh master key."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    return {
        **base,
        "CVAULT_DATABASE_URL": dsn,
        "CVAULT_MASTER_KEY": base64.b64encode(generate_key()).decode(),
        "CVAULT_AUTHORITY_URL": f"http://127.0.0.1:{authority_port}",
        "CVAULT_STORE_URL": f"http://127.0.0.1:{store_port}",
        "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{authority_port}",
        "CVAULT_STORE_LISTEN": f"127.0.0.1:{store_port}",
        "CVAULT_LOG_LEVEL": "WARNING",
    }


def start(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", command], env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revocations", type=int, default=100)
    args = parser.parse_args()
    admin = admin_url()

    name = f"cvault_bench_revocation_{os.getpid()}"
    dsn = asyncio.run(make_database(admin, name))
    authority_port, store_port = free_port(), free_port()
    authority_url, store_url = f"http://127.0.0.1:{authority_port}", f"http://127.0.0.1:{store_port}"
    feed_token, feed_digest = new_feed_token()
    env = services_env(dsn, authority_port, store_port)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        done = asyncio.run(run_bootstrap(load_config(env), "owner@bench.test", "bench", PASSWORD))
        procs.append(start("authority", {**env, "CVAULT_REVOCATION_FEED_TOKEN_SHA256": feed_digest}))
        wait_ready(authority_url + "/readyz")
        keys = asyncio.run(_keys(authority_url))
        store_env = {**env, "CVAULT_REVOCATION_FEED_TOKEN": feed_token, "CVAULT_AUTHORITY_ORG_PUBLIC_KEY": keys}
        procs.append(start("store", store_env))
        wait_ready(store_url + "/readyz")
        delays, round_trips = asyncio.run(_run(authority_url, store_url, done.org.id, done.session_secret, args))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        asyncio.run(drop_database(admin, name))

    ms = [d * 1000 for d in delays]
    baseline = statistics.median(round_trips) * 1000
    print(f"revocations: {len(ms)}")
    print(f"revoke reply -> first refusal at the store: median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms")
    print(f"baseline, one store read (same run): median {baseline:.1f} ms")
    print(f"ratio median delay / one store read: {statistics.median(ms) / baseline:.1f}x")
    return 0


async def _keys(authority_url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(authority_url + "/.well-known/cvault/keys") as resp:
        key: str = (await resp.json())["org"]["public_key"]
        return key


async def _run(
    authority_url: str, store_url: str, org: int, session: str, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    async with aiohttp.ClientSession() as http:
        return await measure(Services(http, authority_url, store_url), org, session, args.revocations)


if __name__ == "__main__":
    raise SystemExit(main())
