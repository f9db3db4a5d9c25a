"""Unbinding to refusal: how long after the authority's unbind reply the store refuses a workload's bundle.

Usage (PostgreSQL from ``CVAULT_TEST_DATABASE_URL``)::

    PYTHONPATH=$PWD python bench/workload_revocation.py [--unbinds 30]

What it does: creates and migrates a fresh database; starts the authority and the store (in this process, on real
ports, the store following the revocation feed: ``tests/support/harness.py``) and a real OIDC issuer over TLS
(``tests/support/oidc_issuer.py``); enrols an org and trusts the issuer; then ``--unbinds`` times binds a workload,
gets a
discharge with its Kubernetes-shaped JWT, reads a secret once (200), unbinds it, and from the moment the unbind reply
arrives polls the store with the same bundle until it refuses. Prints the median and maximum of that delay and, as the
baseline measured in the same run, the median round trip of one store read (the polling's resolution: a delay near it
means the store refused on its first or second try). docs/workload-identity.md quotes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from secret_read import admin_url, make_database

from tests.authority.test_workload_identity import bind, bundle_for, read_secret, start
from tests.support.harness import running_services
from tests.support.oidc_issuer import running_issuer
from vault.storage.database import drop_database


async def measure(dsn: str, unbinds: int, directory: Path) -> tuple[list[float], list[float]]:
    delays: list[float] = []
    reads: list[float] = []
    async with (
        running_issuer(directory, alg="ES256") as issuer,
        running_services(dsn, workload_jwks_ca_file=issuer.ca_file) as h,
    ):
        s = await start(h, issuer)
        for i in range(unbinds):
            claims = {"sub": f"system:serviceaccount:prod:w{i}"}
            r = await bind(
                h, s.world.owner.session, s.world.org, name=f"w{i}", issuer=issuer.url, claims=claims, mask="r"
            )
            assert r.status == 201, r
            bundle = await bundle_for(s, issuer.kubernetes_token(s.audience, account=f"w{i}"))
            started = time.perf_counter()
            assert (await read_secret(s, bundle)).status == 200
            reads.append((time.perf_counter() - started) * 1000)
            r = await h.authority("DELETE", f"/v1/orgs/{s.world.org}/workloads/w{i}", s.world.owner.session)
            assert r.status == 200, r
            started = time.perf_counter()
            while (await read_secret(s, bundle)).status == 200:
                pass
            delays.append((time.perf_counter() - started) * 1000)
    return delays, reads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--unbinds", type=int, default=30)
    args = parser.parse_args()
    admin = admin_url()
    name = f"cvault_bench_workload_revocation_{os.getpid()}"
    dsn = asyncio.run(make_database(admin, name))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            delays, reads = asyncio.run(measure(dsn, args.unbinds, Path(tmp)))
    finally:
        asyncio.run(drop_database(admin, name))
    median, read = statistics.median(delays), statistics.median(reads)
    print(f"{len(delays)} unbinds: unbind reply -> first refusal median {median:.1f} ms, max {max(delays):.1f} ms")
    print(f"baseline, one store read: median {read:.1f} ms; ratio {median / read:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
