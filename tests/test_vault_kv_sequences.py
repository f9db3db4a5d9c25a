"""The exact request sequences of the Vault CLI, Vault Agent, consul-template and External Secrets Operator.

Nothing here runs those Go programs; each test replays, request by request, what
their source sends (method, path, query, body, the Go API client's headers) and
checks the replies the way that source reads them. The source files are named in
docs/vault-compat.md ("Request sequences"); the comments say which step is which.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .store_fixtures import World

MOUNT = "acme/prod"


class GoClient:
    """Requests as hashicorp/vault's Go API client (``api/``) sends them."""

    def __init__(self, w: World, token: str) -> None:
        self.w = w
        self.token = token

    async def __call__(
        self, method: str, path: str, body: Any = None, *, query: str = "", content_type: str | None = None
    ) -> tuple[int, Any]:
        headers = {
            "X-Vault-Token": self.token,
            "X-Vault-Request": "true",
            "User-Agent": "Vault/v1.18.0 (+https://www.vaultproject.io/; go1.22.0)",
        }
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = f"{self.w.h.store_url}/vault/v1/{path}" + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        async with self.w.h.http.request(method, url, data=data, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)


async def test_vault_cli(world: World) -> None:
    go = GoClient(world, world.bundle)
    # `vault status` (command/status.go, command/format.go): seal status, then the leader.
    status, seal = await go("GET", "sys/seal-status")
    assert status == 200 and seal["sealed"] is False and seal["initialized"] is True
    status, leader = await go("GET", "sys/leader")
    assert status == 200 and leader["ha_enabled"] is False
    # `vault token lookup`: GET auth/token/lookup-self.
    status, me = await go("GET", "auth/token/lookup-self")
    assert status == 200 and me["data"]["id"] == world.bundle
    # `vault kv put -mount=acme/prod db/creds password=one` (command/kv_put.go, kv_helpers.go): the
    # preflight on the mount, then PUT <mount>/data/<path> with an empty options object.
    status, pre = await go("GET", f"sys/internal/ui/mounts/{MOUNT}")
    assert status == 200 and pre["data"]["options"]["version"] == "2" and pre["data"]["path"] == "acme/prod/"
    assert (await go("PUT", f"{MOUNT}/data/db/creds", {"data": {"password": "one"}, "options": {}}))[0] == 200
    # `vault kv put acme/prod/db/creds ...` (no -mount): the preflight names the whole path.
    status, pre = await go("GET", f"sys/internal/ui/mounts/{MOUNT}/db/creds")
    assert status == 200 and pre["data"]["path"] == "acme/prod/"
    status, put = await go("PUT", f"{MOUNT}/data/db/creds", {"data": {"password": "two"}, "options": {"cas": 1}})
    assert status == 200 and put["data"]["version"] == 2
    # `vault kv get [-version=1]`: GET data, the version as a query parameter.
    status, got = await go("GET", f"{MOUNT}/data/db/creds")
    assert status == 200 and got["data"]["data"] == {"password": "two"}
    status, got = await go("GET", f"{MOUNT}/data/db/creds", query="version=1")
    assert status == 200 and got["data"]["data"] == {"password": "one"}
    # `vault kv patch -mount=acme/prod db/creds user=app` (command/kv_patch.go): JSON merge patch.
    status, patched = await go(
        "PATCH",
        f"{MOUNT}/data/db/creds",
        {"data": {"user": "app"}, "options": {}},
        content_type="application/merge-patch+json",
    )
    assert status == 200 and patched["data"]["version"] == 3
    # `vault kv list -mount=acme/prod db`: the Go client lists with GET ?list=true.
    status, listed = await go("GET", f"{MOUNT}/metadata/db", query="list=true")
    assert status == 200 and listed["data"]["keys"] == ["creds"]
    # `vault kv delete -mount=... db/creds` (command/kv_delete.go): DELETE data/, the latest version.
    assert (await go("DELETE", f"{MOUNT}/data/db/creds"))[0] == 204
    # `vault kv get` of it now: kvReadRequest parses the 404's body and prints the deletion time.
    status, deleted = await go("GET", f"{MOUNT}/data/db/creds")
    assert status == 404 and deleted["data"]["metadata"]["deletion_time"] and deleted["data"]["data"] is None
    # `vault kv undelete -versions=3`, `kv delete -versions=1,2`, `kv destroy -versions=1`: versions as
    # strings, PUT (kvParseVersionsFlags splits "1,2"; older CLIs send the flag's text as is).
    assert (await go("PUT", f"{MOUNT}/undelete/db/creds", {"versions": ["3"]}))[0] == 204
    assert (await go("PUT", f"{MOUNT}/delete/db/creds", {"versions": ["1", "2"]}))[0] == 204
    assert (await go("PUT", f"{MOUNT}/undelete/db/creds", {"versions": ["1,2"]}))[0] == 204
    assert (await go("PUT", f"{MOUNT}/destroy/db/creds", {"versions": ["1"]}))[0] == 204
    # `vault kv metadata put -max-versions=5 -cas-required -delete-version-after=1h -custom-metadata=team=a`
    # (command/kv_metadata_put.go): the duration as Go prints it.
    body = {"max_versions": 5, "cas_required": True, "delete_version_after": "1h0m0s", "custom_metadata": {"team": "a"}}
    assert (await go("PUT", f"{MOUNT}/metadata/db/creds", body))[0] == 204
    # `vault kv metadata get`: GET metadata.
    status, meta = await go("GET", f"{MOUNT}/metadata/db/creds")
    assert status == 200 and meta["data"]["delete_version_after"] == "1h0m0s"
    assert meta["data"]["versions"]["1"]["destroyed"] is True and meta["data"]["current_version"] == 3
    # cas_required: a put without -cas is refused as Vault refuses it.
    status, refused = await go("PUT", f"{MOUNT}/data/db/creds", {"data": {"x": "y"}, "options": {}})
    assert (status, refused) == (400, {"errors": ["check-and-set parameter required for this call"]})
    # `vault kv metadata delete`: DELETE metadata.
    assert (await go("DELETE", f"{MOUNT}/metadata/db/creds"))[0] == 204
    assert (await go("GET", f"{MOUNT}/metadata/db/creds")) == (404, {"errors": []})


async def test_vault_agent_token_file_auto_auth_with_a_template(world: World) -> None:
    h = world.h
    assert (await GoClient(world, world.bundle)("PUT", f"{MOUNT}/data/db/creds", {"data": {"password": "pw"}}))[
        0
    ] == 200
    # The sink has written a bundle; the agent's token_file method reads it
    # (command/agentproxyshared/auth/token-file/token_file.go) and the auth handler looks it up
    # (command/agentproxyshared/auth/auth.go): GET auth/token/lookup-self with the file's token.
    for _round in range(2):  # a second round: the sink rewrote the file, the watcher ended, re-auth
        file_token = await h.store_bundle(world.root, world.auth)
        status, me = await GoClient(world, file_token)("GET", "auth/token/lookup-self")
        assert status == 200
        data = me["data"]
        # auth.go reads data.id (a string: the client token from now on), data.ttl (a number),
        # data.renewable and data.type (type assertions: a missing one would panic the agent).
        assert isinstance(data["id"], str) and data["id"] == file_token
        assert isinstance(data["ttl"], int) and 0 < data["ttl"] <= h.authority_config.org_discharge_ttl
        assert data["renewable"] is False and data["type"] == "service" and data["policies"] != ["root"]
        # Not renewable: the lifetime watcher (api/lifetime_watcher.go) sends no renew-self; it ends
        # before ttl runs out and the handler authenticates again, re-reading the file.
        agent = GoClient(world, data["id"])
        # The template `{{ with secret "acme/prod/data/db/creds" }}` (consul-template inside the agent):
        # the KV preflight on the whole path, then GET data/ (path already has data/, so unchanged).
        status, pre = await agent("GET", f"sys/internal/ui/mounts/{MOUNT}/data/db/creds")
        assert status == 200 and pre["data"]["type"] == "kv" and pre["data"]["options"]["version"] == "2"
        status, secret = await agent("GET", f"{MOUNT}/data/db/creds")
        assert status == 200 and secret["data"]["data"]["password"] == "pw"
        assert secret["data"]["metadata"]["deletion_time"] == ""  # deletedKVv2: not deleted
        assert secret["lease_duration"] == 0 and secret["renewable"] is False  # re-read after the default lease


async def test_consul_template_with_vault_agent_token_file(world: World) -> None:
    # config: vault { address = ".../vault"; vault_agent_token_file = "/run/cvault/bundle" } -- with a token
    # file, renew_token defaults to false (config/vault.go), so no renew-self is sent.
    first = GoClient(world, world.bundle)
    assert (await first("PUT", f"{MOUNT}/data/app/key", {"data": {"k": "v1"}}))[0] == 200
    assert (await first("PUT", f"{MOUNT}/data/app/key", {"data": {"k": "v2"}}))[0] == 200
    # watch/vault_token.go: unpackToken tries the file as JSON wrap info (a bundle is not), trims it.
    # dependency/vault_read.go: `{{ with secret "acme/prod/app/key" }}` -- preflight, then the path with data/
    # inserted after the mount the preflight named (shimKVv2Path).
    status, pre = await first("GET", f"sys/internal/ui/mounts/{MOUNT}/app/key")
    assert status == 200 and pre["data"]["path"] == "acme/prod/"
    status, secret = await first("GET", f"{MOUNT}/data/app/key")
    assert status == 200 and secret["data"]["data"] == {"k": "v2"}
    # `secret "acme/prod/app/key?version=1"`: the query is passed through.
    status, secret = await first("GET", f"{MOUNT}/data/app/key", query="version=1")
    assert status == 200 and secret["data"]["data"] == {"k": "v1"}
    # The file changes (dependency/vault_agent_token.go stats it every 15 s): the new token is used.
    second = GoClient(world, await world.h.store_bundle(world.root, world.auth))
    assert (await second("GET", f"{MOUNT}/data/app/key"))[0] == 200
    # A deleted version: the Go client returns the 404's body as a secret, and deletedKVv2 compares its
    # metadata.deletion_time (RFC 3339) with now, so the template sees "no secret".
    assert (await second("DELETE", f"{MOUNT}/data/app/key"))[0] == 204
    status, deleted = await second("GET", f"{MOUNT}/data/app/key")
    when = dt.datetime.fromisoformat(deleted["data"]["metadata"]["deletion_time"])
    assert status == 404 and when <= dt.datetime.now(dt.UTC)
    # With renew_token = true (a plain VAULT_TOKEN), dependency/vault_token.go renews through a
    # LifetimeWatcher: PUT auth/token/renew-self {"increment": 1}; the bundle is not renewable.
    status, renew = await second("PUT", "auth/token/renew-self", {"increment": 1})
    assert (status, renew) == (400, {"errors": ["lease is not renewable"]})


async def test_external_secrets_operator_push_and_delete(world: World) -> None:
    # pkg/provider/vault/client_push.go (PushSecret, DeleteSecret) with a SecretStore of
    # path "acme/prod", version "v2", token auth from a Kubernetes secret the sink keeps fresh.
    eso = GoClient(world, world.bundle)
    status, me = await eso("GET", "auth/token/lookup-self")  # the store's validation looks the token up
    assert status == 200 and me["data"]["type"] == "service"
    # PushSecret of a new secret: read it (404: NoSecretError), write the metadata label, then the data.
    assert (await eso("GET", f"{MOUNT}/data/pushed"))[0] == 404
    label = {"custom_metadata": {"managed-by": "external-secrets"}}
    assert (await eso("PUT", f"{MOUNT}/metadata/pushed", label))[0] == 204
    assert (await eso("PUT", f"{MOUNT}/data/pushed", {"data": {"token": "t1"}}))[0] == 200
    # The next reconcile: the secret exists, so its metadata must say it is managed by external-secrets.
    status, got = await eso("GET", f"{MOUNT}/data/pushed")
    assert status == 200 and got["data"]["data"] == {"token": "t1"}
    status, meta = await eso("GET", f"{MOUNT}/metadata/pushed")
    assert status == 200 and meta["data"]["custom_metadata"]["managed-by"] == "external-secrets"
    # CheckAndSet.Required: cas = current_version from the metadata.
    cas = meta["data"]["current_version"]
    assert (await eso("PUT", f"{MOUNT}/metadata/pushed", label))[0] == 204
    body = {"data": {"token": "t2"}, "options": {"cas": cas}}
    assert (await eso("PUT", f"{MOUNT}/data/pushed", body))[0] == 200
    # DeleteSecret: read, check the label, DELETE data/ then DELETE metadata/.
    assert (await eso("DELETE", f"{MOUNT}/data/pushed"))[0] == 204
    assert (await eso("DELETE", f"{MOUNT}/metadata/pushed"))[0] == 204
    assert (await eso("GET", f"{MOUNT}/metadata/pushed")) == (404, {"errors": []})
