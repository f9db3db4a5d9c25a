"""The exact request sequences of consul-template and External Secrets Operator.

Nothing here runs those Go programs; each test replays, request by request, what
their source sends (method, path, query, body, the Go API client's headers) and
checks the replies the way that source reads them. The source files are named in
docs/vault-compat.md ("Request sequences"); the comments say which step is which.
The Vault CLI, Vault Agent and Vault Proxy are not emulated: the real OpenBao programs
run in tests/vault_api/test_bao_cli.py and tests/vault_api/test_bao_agent.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from tests.support.enrolled_org import EnrolledOrg

MOUNT = "acme/prod"


class GoClient:
    """Requests as hashicorp/vault's Go API client (``api/``) sends them."""

    def __init__(self, w: EnrolledOrg, token: str) -> None:
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


async def test_consul_template_with_vault_agent_token_file(world: EnrolledOrg) -> None:
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


async def test_external_secrets_operator_push_and_delete(world: EnrolledOrg) -> None:
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
