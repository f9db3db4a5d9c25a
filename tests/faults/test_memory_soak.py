"""A bounded soak of ``cvault serve store --workers 2``: each worker's memory levels off (opt-in: ``--soak-seconds``).

Issue 25, item 6: RSS per worker rose through a 180 s soak (49.6 to 67.9 MB and
50.2 to 70.7 MB) and one levelled off at 88 MB only after 300 s. Clients
attenuate their token on every call (``vault.client.Client.store_bundle``: the
operation, the vault, the secret and a validity window from this second), so a
store sees a new bundle per secret, operation and second; each was kept in the
verification cache until 4096 of them were, long after they could be used (an
entry is good for ``VERIFIED_CACHE_SECONDS``). Here 16 clients write and read 64
secrets the way the client does for ``--soak-seconds`` seconds (skipped at 0, the
default; ``pytest tests/faults/test_memory_soak.py --soak-seconds 300 -s``), the
RSS of each worker is sampled every few seconds and printed, and after a warm-up
(a fifth of the run) it must grow by less than ``GROWTH_MB`` and be level over
the last third.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import pytest

from vault.client.client import CLOCK_SKEW
from vault.client.store import narrowing
from vault.macaroon import Bundle, parse_bundle
from vault.macaroon.access import CREATE, READ, WRITE
from vault.macaroon.caveats import ValidityWindow

from .cluster import Cluster
from .services import StoreProcess, fault_services

CLIENTS = 16
SECRETS = [f"app/s{i}" for i in range(64)]
GROWTH_MB = 12.0
LEVEL_MB = 4.0
SAMPLE_EVERY = 5.0
REFRESH_EVERY = 120.0  # the org discharge lives 5 minutes


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def _workers(store: StoreProcess) -> list[int]:
    deadline = time.monotonic() + 60
    while len(pids := store.workers()) != 2 or not all(store.listening(p) for p in pids):
        assert time.monotonic() < deadline, store.log_tail()
        await asyncio.sleep(0.1)
    return sorted(pids)


async def test_worker_memory_levels_off(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    seconds: float = pytestconfig.getoption("--soak-seconds")
    if seconds <= 0:
        pytest.skip("opt-in: --soak-seconds N")
    async with fault_services(fault_database, tmp_path, store_args=("--workers", "2"), log_level="INFO") as (h, store):
        _owner, org, auth, root, _bundle = await h.enrolled_vault("owner@example.com", "acme", "v")
        pids = await _workers(store)
        held = {"bundle": parse_bundle(await h.store_bundle(root, auth)), "at": time.monotonic()}
        counts = {"ok": 0, "other": 0}
        stop = asyncio.Event()

        def bundle(operation: str, action: int, secret: str) -> str:
            parsed = held["bundle"]
            assert isinstance(parsed, Bundle)
            token, discharges = parsed.permission_tokens[0], parsed.discharges
            now = int(time.time())
            caveats = [
                *narrowing(operation, action, vault="v", secret=secret),
                ValidityWindow(now - CLOCK_SKEW, now + 60),
            ]
            return Bundle((token.attenuate(caveats), *discharges)).encode()

        async def client(http: aiohttp.ClientSession, seed: int) -> None:
            rng = random.Random(seed)
            base = f"{h.store_url}/v1/orgs/{org}/vaults/v/secrets/"
            while not stop.is_set():
                secret = rng.choice(SECRETS)
                if rng.random() < 0.3:
                    credential = bundle("secrets.write", WRITE | CREATE, secret)
                    request = http.put(
                        base + secret,
                        json={"value": "x" * 64, "max_versions": 5},
                        headers={"Authorization": f"Bearer {credential}"},
                    )
                else:
                    credential = bundle("secrets.read", READ, secret)
                    request = http.get(base + secret, headers={"Authorization": f"Bearer {credential}"})
                async with request as resp:
                    await resp.read()
                    counts["ok" if resp.status in (200, 404) else "other"] += 1

        samples: list[tuple[float, list[float]]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            clients = [asyncio.create_task(client(http, n)) for n in range(CLIENTS)]
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                samples.append((elapsed, [_rss_mb(pid) for pid in pids]))
                if time.monotonic() - float(held["at"]) > REFRESH_EVERY:  # type: ignore[arg-type]
                    held["bundle"] = parse_bundle(await h.store_bundle(root, auth))
                    held["at"] = time.monotonic()
                await asyncio.sleep(SAMPLE_EVERY)
            samples.append((time.monotonic() - started, [_rss_mb(pid) for pid in pids]))
            stop.set()
            await asyncio.gather(*clients)
        assert store.workers() == set(pids), "a worker died during the soak"
    print(f"\nsoak of {seconds:g} s, {CLIENTS} clients, {counts}; RSS (MB) of the 2 workers:")
    for at, rss in samples:
        print(f"  {at:6.1f} s  " + "  ".join(f"{r:6.1f}" for r in rss))
    assert counts["other"] == 0 and counts["ok"] > 0
    warm = next(s for s in samples if s[0] >= seconds / 5)
    last_third = next(s for s in samples if s[0] >= 2 * seconds / 3)
    final = samples[-1]
    for i in range(2):
        assert final[1][i] - warm[1][i] < GROWTH_MB, (i, warm, final)
        assert final[1][i] - last_third[1][i] < LEVEL_MB, (i, last_third, final)
