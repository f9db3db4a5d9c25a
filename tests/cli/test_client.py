"""The client library against both real services: attenuate-on-use, discharges, errors, service tokens.

The "captured narrowed token" acceptance item is here: a TraceConfig records the
Authorization header the client really sent, and the real store shows what that
bundle can and cannot do.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.harness import Harness, User, running_services
from vault.client import Client, Credentials, SyncClient, TokenBundle
from vault.errors import Conflict, InvalidToken, MissingDischarge, NotFound, Unauthenticated, Unauthorized
from vault.macaroon import parse_bundle
from vault.macaroon.caveats import ClientCIDR, IfPresent, Operations, Secrets, ValidityWindow, Vaults


class Recorder:
    """Every request the client sends: method, URL and Authorization header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._on_start)

    async def _on_start(self, session: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
        self.requests.append((params.method, str(params.url), params.headers.get("Authorization")))

    def to(self, fragment: str) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if fragment in r[1]]


class Org:
    def __init__(self, h: Harness, owner: User, org_id: int, root: str) -> None:
        self.h, self.owner, self.id, self.root = h, owner, org_id, root

    def client(
        self, *, store_token: str | None = None, auth: str | None = None, session: bool = True, **kw: Any
    ) -> Client:
        creds = Credentials.from_text(
            store_token=store_token or self.root, authority_token=auth, session=self.owner.session if session else None
        )
        return Client(store_url=self.h.store_url, authority_url=self.h.authority_url, credentials=creds, **kw)


@pytest.fixture
async def org(database_url: str) -> AsyncIterator[Org]:
    async with running_services(database_url) as h:
        owner = await h.new_user("owner@example.com")
        org_id = await h.create_org(owner, "acme")
        async with Client(
            store_url=h.store_url, authority_url=h.authority_url, credentials=Credentials(session=owner.session)
        ) as c:
            root = (await c.store.enroll(org_id, "acme")).token
        o = Org(h, owner, org_id, root)
        async with o.client() as c:
            await c.store.create_vault("prod")
            for name, value in (("db/url", "postgres://db"), ("api/key", "k-123"), ("db/url2", "other")):
                await c.store.write_secret("prod", name, value)
        yield o


async def test_secret_lifecycle_through_the_client(org: Org) -> None:
    async with org.client() as c:
        assert (await c.store.read_secret("prod", "db/url")).value == "postgres://db"
        w = await c.store.write_secret("prod", "db/url", "postgres://db2", cas=1)
        assert w.version == 2
        with pytest.raises(Conflict) as conflict:
            await c.store.write_secret("prod", "db/url", "late", cas=1)
        assert conflict.value.code == "conflict" and conflict.value.message  # the server's sentence
        await c.store.write_secret("prod", "db/url", "postgres://db3", pending=True)
        assert (await c.store.read_secret("prod", "db/url")).value == "postgres://db2"
        assert (await c.store.read_secret("prod", "db/url", pending=True)).value == "postgres://db3"
        promoted = await c.store.promote("prod", "db/url")
        assert promoted.current == 3
        assert (await c.store.read_secret("prod", "db/url")).value == "postgres://db3"
        meta = await c.store.metadata("prod", "db/url")
        assert [v.version for v in meta.versions] == [1, 2, 3]
        await c.store.delete_versions("prod", "db/url", [3])
        await c.store.undelete_versions("prod", "db/url", [3])
        await c.store.destroy_versions("prod", "db/url", [1])
        names = [s.name async for s in c.store.iter_secrets("prod", prefix="db/")]
        assert names == ["db/url", "db/url2"]
        batch = await c.store.batch_read("prod", names=["db/url", "api/key", "nope"])
        assert batch.secrets["api/key"].value == "k-123"
        assert batch.missing == ("nope",)
        with pytest.raises(NotFound):
            await c.store.read_secret("prod", "missing/name")
        await c.store.destroy_secret("prod", "db/url2")
        assert [v.name for v in await c.store.list_vaults()] == ["prod"]


async def test_captured_narrowed_token_opens_one_secret_for_at_most_60_seconds(org: Org) -> None:
    recorder = Recorder()
    async with org.client(trace_configs=[recorder.config]) as c:
        await c.store.read_secret("prod", "db/url")
        await c.store.batch_read("prod", names=["api/key"])
    reads = [r for r in recorder.to(org.h.store_url) if "/secrets/db/url" in r[1]]
    assert len(reads) == 1
    captured = reads[0][2]
    assert captured is not None and captured.startswith("Bearer ")
    bundle = captured.removeprefix("Bearer ")

    # The original store token never left the process: what was sent is an attenuated copy.
    sent = parse_bundle(bundle).permission_tokens
    assert len(sent) == 1
    original = TokenBundle.parse(org.root, what="root").token
    assert sent[0].token_id == original.token_id and sent[0].tail != original.tail
    assert org.root.split(",")[0] not in bundle
    caveats = sent[0].unverified_caveats[len(original.unverified_caveats) :]
    assert Operations(("secrets.read",)) in caveats
    assert Vaults((("prod", 1),)) in caveats
    assert Secrets((("db/url$", 1),)) in caveats
    [window] = [c for c in caveats if isinstance(c, ValidityWindow)]
    assert window.not_after - time.time() <= 60

    h = org.h
    base = f"/v1/orgs/{org.id}/vaults/prod"
    assert (await h.store("GET", f"{base}/secrets/db/url", bundle)).status == 200
    for method, path, body in (
        ("GET", f"{base}/secrets/api/key", None),
        ("GET", f"{base}/secrets/db/url2", None),  # a longer name with the same prefix
        ("POST", f"{base}/read", {"names": ["api/key"]}),
        ("POST", f"{base}/read", {}),
        ("PUT", f"{base}/secrets/db/url", {"value": "x"}),
        ("GET", f"{base}/metadata/db/url", None),
    ):
        r = await h.store(method, path, bundle, body)
        assert r.status == 403, (method, path, r)
        assert r.code == "unauthorized"

    # After its window, the captured copy opens nothing, not even the secret it was made for.
    h.store_clock.offset = 61
    r = await h.store("GET", f"{base}/secrets/db/url", bundle)
    assert r.status in (401, 403) and "expired" in r.body["error"]["message"]
    h.store_clock.offset = 0

    # A batch read narrows the names it asked for: the capture cannot read others.
    batch_bundle = next(r[2] for r in recorder.to("/read")).removeprefix("Bearer ")  # type: ignore[union-attr]
    assert any(isinstance(c, IfPresent) for c in parse_bundle(batch_bundle).permission_tokens[0].unverified_caveats)
    assert (await h.store("POST", f"{base}/read", batch_bundle, {"names": ["api/key"]})).status == 200
    # A name outside the narrowing is left out (reported missing, as if absent), never returned.
    other = await h.store("POST", f"{base}/read", batch_bundle, {"names": ["db/url"]})
    assert other.status == 200 and other.body == {"secrets": {}, "missing": ["db/url"]}
    everything = await h.store("POST", f"{base}/read", batch_bundle, {})
    assert everything.status == 200 and set(everything.body["secrets"]) <= {"api/key"}

    # `cvault tokens debug` on the captured bundle shows the discharge's time left.
    out = subprocess.run(
        cvault_command("tokens", "debug", bundle), env=cvault_env(), capture_output=True, text=True, check=True
    ).stdout
    assert "discharge token" in out and "expires in" in out


async def test_discharges_are_cached_bound_and_fetched_once(org: Org) -> None:
    recorder = Recorder()
    async with org.client(trace_configs=[recorder.config]) as c:
        await asyncio.gather(*(c.store.read_secret("prod", "api/key") for _ in range(5)))
        await c.store.read_secret("prod", "db/url")
        assert c.discharges.cached() == 2  # the login discharge and the org discharge
    org_posts = recorder.to("/org/.well-known/macfly/3p")
    login_posts = recorder.to("/login/.well-known/macfly/3p")
    assert len(org_posts) == 1 and len(login_posts) == 1
    # The login discharge went with the session; the org discharge with the authority bundle, never the session.
    assert login_posts[0][2] == f"Bearer {org.owner.session}"
    assert org.owner.session not in (org_posts[0][2] or "")
    # The store never saw the session or the authority bundle.
    assert all(org.owner.session not in (r[2] or "") for r in recorder.to(org.h.store_url))


async def test_discharge_cache_refreshes_before_expiry(org: Org) -> None:
    clock = SimpleNamespace(now=time.time())
    recorder = Recorder()
    async with org.client(trace_configs=[recorder.config], clock=lambda: clock.now) as c:
        await c.store.read_secret("prod", "api/key")
        assert len(recorder.to("/org/.well-known")) == 1
        # Within the window: cached. Past (expiry - 60 s): fetched again.
        _shift(org, clock, 200)
        await c.store.read_secret("prod", "api/key")
        assert len(recorder.to("/org/.well-known")) == 1
        _shift(org, clock, 60)
        await c.store.read_secret("prod", "api/key")
        assert len(recorder.to("/org/.well-known")) == 2


async def test_background_refresh_fetches_a_used_discharge_ahead_of_time(org: Org) -> None:
    clock = SimpleNamespace(now=time.time())
    recorder = Recorder()
    async with org.client(trace_configs=[recorder.config], clock=lambda: clock.now) as c:
        await c.store.read_secret("prod", "api/key")
        await c.store.read_secret("prod", "api/key")  # marks the cached discharges as used
        before = len(recorder.to("/org/.well-known"))
        # Jump to just before the refresh point, then let the refresher wake up.
        _shift(org, clock, 300 - 60 - 30)
        for entry in list(c.discharges._cache.values()):
            assert entry.refresher is not None
            entry.refresher.cancel()
            entry.refresher = asyncio.create_task(c.discharges._refresh_later(_key_of(c, entry), entry))
        await asyncio.sleep(0.5)
        assert len(recorder.to("/org/.well-known")) == before + 1


def _shift(org: Org, clock: SimpleNamespace, seconds: float) -> None:
    """Move the client's clock and both services' clocks together."""
    clock.now += seconds
    org.h.authority_clock.offset += seconds
    org.h.store_clock.offset += seconds


def _key_of(c: Client, entry: Any) -> Any:
    return next(k for k, v in c.discharges._cache.items() if v is entry)


async def test_service_token_with_cidr_and_revocation(org: Org) -> None:
    async with org.client() as c:
        permission = await c.authority.create_token(org.id, mask="r")
        service = await c.authority.strip(TokenBundle.parse(permission.token, what="permission"))
        workload_store = (await c.store.mint_token("r", vaults={"prod": "r"})).token
    bound = TokenBundle.parse(service.token, what="service")
    local = bound.token.attenuate([ClientCIDR(("127.0.0.1/32",))])
    remote = bound.token.attenuate([ClientCIDR(("10.9.9.0/24",))])

    async with org.client(store_token=workload_store, auth=TokenBundle(local).encode(), session=False) as w:
        assert (await w.store.batch_read("prod")).secrets["api/key"].value == "k-123"
        with pytest.raises(Unauthorized):
            await w.store.write_secret("prod", "api/key", "nope")
    async with org.client(store_token=workload_store, auth=TokenBundle(remote).encode(), session=False) as w:
        with pytest.raises(Unauthorized) as refused:
            await w.store.batch_read("prod")
        assert "127.0.0.1" in refused.value.message

    async with org.client() as c:
        revoked = await c.authority.revoke(service.id)
        assert service.id in revoked
    async with org.client(store_token=workload_store, auth=TokenBundle(local).encode(), session=False) as w:
        with pytest.raises((Unauthorized, Unauthenticated, InvalidToken)) as err:
            await w.store.batch_read("prod")
        assert "revoked" in err.value.message


async def test_client_refuses_to_send_credentials_to_a_foreign_third_party(org: Org) -> None:
    from vault.macaroon import add_third_party

    token = TokenBundle.parse(org.root, what="root").token
    foreign = add_third_party(token, "http://evil.example/org", b"k" * 32, b"p" * 32)
    recorder = Recorder()
    async with org.client(store_token=TokenBundle(foreign).encode(), trace_configs=[recorder.config]) as c:
        with pytest.raises(MissingDischarge) as err:
            await c.store.read_secret("prod", "db/url")
    assert "evil.example" in err.value.message
    assert not recorder.to("evil.example")


async def test_errors_without_credentials_are_clear(org: Org) -> None:
    async with Client(store_url=org.h.store_url, authority_url=org.h.authority_url) as c:
        with pytest.raises(Unauthenticated) as err:
            await c.store.read_secret("prod", "db/url")
        assert "CVAULT_STORE_TOKEN" in err.value.message
    async with org.client(session=False) as c:
        with pytest.raises(Unauthenticated) as err:
            await c.store.read_secret("prod", "db/url")
        assert "CVAULT_AUTH_TOKEN" in err.value.message


async def test_sync_client(org: Org) -> None:
    creds = Credentials.from_text(store_token=org.root, session=org.owner.session)

    def work() -> str:
        with SyncClient(store_url=org.h.store_url, authority_url=org.h.authority_url, credentials=creds) as c:
            value: str = c.store.read_secret("prod", "api/key").value
            with pytest.raises(NotFound):
                c.store.read_secret("prod", "nope")
            return value

    assert await asyncio.to_thread(work) == "k-123"


async def test_sync_client_from_env_lists_and_reads(org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    env = {
        "CVAULT_STORE_URL": org.h.store_url,
        "CVAULT_AUTHORITY_URL": org.h.authority_url,
        "CVAULT_STORE_TOKEN": org.root,
        "CVAULT_SESSION": org.owner.session,
    }

    def work() -> tuple[list[str], dict[str, str]]:
        with SyncClient.from_env(env) as c:
            names = [s.name for s in c.store.iter_secrets("prod", prefix="db/")]
            return names, c.store.batch_read("prod", names=names).values()

    names, values = await asyncio.to_thread(work)
    assert names == ["db/url", "db/url2"] and values == {"db/url": "postgres://db", "db/url2": "other"}
