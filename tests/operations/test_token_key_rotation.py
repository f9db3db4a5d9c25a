"""Token root keys: rotate (a new kid mints, old kids verify), retire (every node refuses within a second).

Two nodes are two app instances on one database, as in
tests/store/test_tokens.py::test_revoked_token_refused_on_every_node. They run with
``key_watch_interval = 300``, so within the test a change reaches a node only through
LISTEN/NOTIFY; the waits are bounded generously and the latencies printed (``-s``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.support.cvault_command import run_cvault
from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import Harness, attenuate, running_services
from tests.support.key_traffic import eventually, keys_env, report_latency, secret_reads_and_writes, traffic
from vault.crypto.passwords import MINIMUM
from vault.macaroon import decode_token, encode_bundle
from vault.macaroon.cvault_caveats import Secrets
from vault.web.authority import create_authority_app
from vault.web.store import create_store_app


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    # Overrides conftest's: the poll fallback is out of reach, only NOTIFY can deliver a key change.
    async with running_services(database_url, key_watch_interval=300) as h:
        yield h


def _kid(token: str) -> str:
    return decode_token(token).nonce.kid.hex()


async def _status(h: Harness, base: str, path: str, bundle: str) -> int:
    async with h.http.get(base + path, headers={"Authorization": f"Bearer {bundle}"}) as resp:
        return resp.status


async def _eventually_refused(h: Harness, bases: list[str], path: str, bundle: str) -> float:
    """Seconds until every node refuses ``bundle`` (docs/keys.md promises within a second; bounded at 30 s here)."""

    async def refused() -> bool:
        return all([await _status(h, base, path, bundle) == 401 for base in bases])

    return await eventually(refused, "the retired kid still verifies somewhere")


async def test_store_token_keys_rotate_and_retire_on_two_nodes(world: EnrolledOrg) -> None:
    h = world.h
    env = keys_env(h)
    path = world.secret("db/url")
    assert (await h.store("PUT", path, world.bundle, {"value": "v"})).status == 200
    old_kid = _kid(world.root)
    # An attenuated copy of the old root token, with its own discharge.
    narrowed = attenuate(world.root, [Secrets((("db/", 1),))])  # read only
    narrowed_bundle = await h.store_bundle(narrowed, world.auth)
    reader = await h.mint(world.bundle, world.org, mask="r")
    reader_bundle = await h.store_bundle(reader, world.auth)

    other = TestServer(create_store_app(h.store_config), host="127.0.0.1")
    await other.start_server()
    try:
        b = f"http://127.0.0.1:{other.port}"
        nodes = [h.store_url, b]
        async with traffic(secret_reads_and_writes(h, world.org, world.bundle, store_url=b)) as load:
            await load.wait_for(10)
            mark = load.mark()
            code, out, err = await run_cvault("keys", "rotate-tokens", "--service", "store", env=env)
            await load.wait_for(10)
            during = load.since(mark)
        assert code == 0, err
        assert load.failures == [] and during > 0
        new_kid = out.split("kid ")[1].split(";")[0]
        assert new_kid != old_kid

        async def every_node_mints_with_new_kid() -> bool:
            kids = set()
            for base in nodes:
                url = f"{base}/v1/orgs/{world.org}/tokens"
                headers = {"Authorization": f"Bearer {world.bundle}"}
                async with h.http.post(url, json={"mask": "r"}, headers=headers) as resp:
                    assert resp.status == 201, await resp.text()
                    kids.add(_kid((await resp.json())["token"]))
            return kids == {new_kid}

        report_latency(
            "store rotate-tokens, both nodes mint with the new kid",
            await eventually(every_node_mints_with_new_kid, "mint"),
        )

        # New tokens carry the new kid and work on the other node at once; old ones still verify.
        fresh = await h.mint(world.bundle, world.org, mask="r")
        assert _kid(fresh) == new_kid
        fresh_bundle = await h.store_bundle(fresh, world.auth)
        for base in nodes:
            assert await _status(h, base, path, fresh_bundle) == 200
            assert await _status(h, base, path, world.bundle) == 200
            assert await _status(h, base, path, narrowed_bundle) == 200
            assert await _status(h, base, path, reader_bundle) == 200

        code, out, err = await run_cvault("keys", "retire-tokens", old_kid, env=env)
        assert code == 1 and "nothing retired" in out
        # The enrolment's root token and the reader minted before the rotation (the fresh one is under the new kid).
        assert "would invalidate 2 live token(s)" in out and f"org {world.org}" in out
        assert await _status(h, h.store_url, path, world.bundle) == 200

        code, out, err = await run_cvault("keys", "retire-tokens", new_kid, "--yes", env=env)
        assert code == 4 and "the one that mints" in err  # refused (docs/client.md)

        code, out, err = await run_cvault("keys", "retire-tokens", f"store/store-root/{old_kid}", "--yes", env=env)
        assert code == 0, err
        assert "retired store kid" in out
        seconds = max(
            [await _eventually_refused(h, nodes, path, b) for b in (world.bundle, narrowed_bundle, reader_bundle)]
        )
        report_latency("store retire-tokens, both nodes refuse", seconds)
        for base in nodes:
            assert await _status(h, base, path, fresh_bundle) == 200
    finally:
        await other.close()


async def test_authority_token_keys_rotate_and_retire_on_two_nodes(world: EnrolledOrg) -> None:
    h = world.h
    env = keys_env(h)
    old_auth = world.auth
    old_token = decode_token(old_auth.split(",")[0])
    # A service token stripped from the old permission token.
    r = await h.authority("POST", "/v1/tokens/strip", old_auth)
    assert r.status == 201, r
    service_token = r.body["token"]

    other = TestServer(create_authority_app(h.authority_config, password_cost=MINIMUM), host="127.0.0.1")
    await other.start_server()
    try:
        b = f"http://127.0.0.1:{other.port}"

        async def discharge_status(base: str, credentials: str) -> int:
            store_token = decode_token(world.root)
            [caveat] = store_token.third_party_tickets(h.org_location)
            body = {
                "ticket": base64.b64encode(caveat.ticket).decode(),
                "binding_id": base64.b64encode(store_token.binding_id()).decode(),
            }
            headers = {"Authorization": f"Bearer {credentials}"}
            async with h.http.post(base + "/org/.well-known/macfly/3p", json=body, headers=headers) as resp:
                return resp.status

        async def discharge_op(worker: int, n: int) -> str | None:
            status = await discharge_status(b if worker % 2 else h.authority_url, old_auth)
            return None if status == 201 else f"discharge {status}"

        async with traffic(discharge_op) as load:
            await load.wait_for(10)
            mark = load.mark()
            code, out, err = await run_cvault("keys", "rotate-tokens", "--service", "authority", env=env)
            await load.wait_for(10)
            during = load.since(mark)
        assert code == 0, err
        assert load.failures == [] and during > 0
        new_kid = out.split("kid ")[1].split(";")[0]
        assert new_kid != old_token.nonce.kid.hex()

        async def every_node_mints_with_new_kid() -> bool:
            kids = set()
            for base in (h.authority_url, b):
                async with h.http.post(
                    base + "/v1/tokens",
                    json={"org": world.org},
                    headers={"Authorization": f"Bearer {world.owner.session}"},
                ) as resp:
                    assert resp.status == 201, await resp.text()
                    kids.add(decode_token((await resp.json())["token"]).nonce.kid.hex())
            return kids == {new_kid}

        report_latency(
            "authority rotate-tokens, both nodes mint with the new kid",
            await eventually(every_node_mints_with_new_kid, "mint"),
        )
        new_auth = await h.authority_bundle(world.owner, world.org)
        assert decode_token(new_auth.split(",")[0]).nonce.kid.hex() == new_kid
        for base in (h.authority_url, b):
            assert await discharge_status(base, new_auth) == 201
            assert await discharge_status(base, old_auth) == 201
            assert await discharge_status(base, service_token) == 201

        old_kid = old_token.nonce.kid.hex()
        code, out, err = await run_cvault("keys", "retire-tokens", old_kid, "--service", "authority", env=env)
        assert code == 1, err
        assert "would invalidate 2 live token(s), 1 of them service tokens" in out
        code, out, err = await run_cvault("keys", "retire-tokens", old_kid, "--service", "authority", "--yes", env=env)
        assert code == 0, err

        async def refused_everywhere() -> bool:
            return all(
                [
                    await discharge_status(base, c) == 401
                    for c in (old_auth, service_token)
                    for base in (h.authority_url, b)
                ]
            )

        report_latency(
            "authority retire-tokens, both nodes refuse", await eventually(refused_everywhere, "old kid verifies")
        )
        for base in (h.authority_url, b):
            assert await discharge_status(base, new_auth) == 201
    finally:
        await other.close()
    # The store token minted with an org discharge from the new authority token still works.
    bundle = await h.store_bundle(world.root, new_auth)
    assert (await h.store("GET", world.path("/vaults"), bundle)).status == 200
    assert encode_bundle  # keep the import honest for readers of the bundles above
