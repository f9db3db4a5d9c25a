"""The operator's and the workload's journey on deployed services (docs/operations.md), shared by the tests that
deploy them: with docker-compose (tests/operations/test_compose_engine.py) and without containers
(tests/operations/test_deployment_without_containers.py). Every step is the real ``cvault`` from this host over TLS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp

from vault.client import Client

__all__ = ["SECRET", "Cvault", "Journey", "assert_private", "journey"]

SECRET = "postgres://app:s3cret@db/app"
REVOKED_WITHIN = 30.0  # seconds; the feed is a long poll, docs/revocation.md has the measured delay


class Cvault(Protocol):
    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str: ...


@dataclass(frozen=True)
class Journey:
    operator: dict[str, str]  # the owner's environment: session and root store token
    workload: dict[str, str]  # the workload's: its two token files


def assert_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"{path} is mode {oct(mode)}"


def journey(cvault: Cvault, env: dict[str, str], workdir: Path, session: str, store_url: str) -> Journey:
    """From a bootstrapped owner's session: enrol, write a secret, give a workload its tokens, read it with
    ``cvault run``, and see a revocation at the authority refuse an already discharged bundle at the store."""
    operator = {**env, "CVAULT_SESSION": session}
    root_token = cvault("store", "enroll", "acme", env=operator).strip()
    operator["CVAULT_STORE_TOKEN"] = root_token
    cvault("vaults", "create", "prod", env=operator)
    assert "version 1 written" in cvault("secrets", "set", "db/url", "--vault", "prod", input=SECRET, env=operator)

    # The workload's two credentials, written by cvault itself readable by the owner only.
    store_file, auth_file = workdir / "workload.store-token", workdir / "workload.auth-token"
    cvault("store", "tokens", "mint", "--mask", "r", "--vault", "prod", "--output", str(store_file), env=operator)
    cvault("tokens", "create", "--org", "acme", "--mask", "r", "--service", "--output", str(auth_file), env=operator)
    for path in (store_file, auth_file):
        assert_private(path)
    workload = {**env, "CVAULT_STORE_TOKEN_FILE": str(store_file), "CVAULT_AUTH_TOKEN_FILE": str(auth_file)}
    out = cvault("run", "--vault", "prod", "--", "sh", "-c", 'echo "DB_URL=$DB_URL"', env=workload)
    assert out.strip() == f"DB_URL={SECRET}"

    # A revocation at the authority reaches the store through the feed: a bundle discharged before it stops.
    created = json.loads(
        cvault("tokens", "create", "--org", "acme", "--mask", "r", "--service", "--json", env=operator)
    )
    doomed = {**env, "CVAULT_STORE_TOKEN": root_token, "CVAULT_AUTH_TOKEN": created["token"]}
    status = asyncio.run(_revoked_at_the_store(cvault, doomed, operator, created["id"], store_url))
    assert status == (401, "discharge_required")
    return Journey(operator, workload)


async def _revoked_at_the_store(
    cvault: Cvault, env: dict[str, str], operator: dict[str, str], token_id: str, store_url: str
) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=env["CVAULT_CACERT"])
    async with Client.from_env(env, ca_cert=env["CVAULT_CACERT"]) as client, aiohttp.ClientSession() as http:
        bundle = await client.store_bundle([])
        url = f"{store_url}/v1/orgs/{client.store_org()}/vaults"
        headers = {"Authorization": f"Bearer {bundle}"}
        async with http.get(url, headers=headers, ssl=context) as reply:
            assert reply.status == 200, await reply.text()
        await asyncio.to_thread(cvault, "tokens", "revoke", token_id, env=operator)
        deadline = time.monotonic() + REVOKED_WITHIN
        while True:
            async with http.get(url, headers=headers, ssl=context) as reply:
                body = await reply.json()
            if reply.status != 200 or time.monotonic() > deadline:
                return reply.status, body.get("error", {}).get("code", "")
            await asyncio.sleep(0.2)
