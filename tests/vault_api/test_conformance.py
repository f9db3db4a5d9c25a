"""One scenario table, run against the real OpenBao server (``bao server -dev``) and against the store.

Every expectation is OpenBao's actual answer: each step's reply from both is reduced to
what a client reads (status, data, keys, versions, capabilities...; not ids or times) and
compared. Where the store answers differently on purpose, the step is in ``DIFFERENCES``,
which ``docs/vault-compat.md`` ("Conformance") lists; the test checks that each listed
difference still is one, so the list stays true.

OpenBao gets a KV version 2 mount at ``acme/prod`` and two tokens whose policies say
what the store's tokens say: ``writer`` (a root store token: every KV capability, the
mount's config, ``sys/mounts``) and ``reader`` (a store token of mask ``r``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.bao import dev_server
from tests.support.enrolled_org import EnrolledOrg

MOUNT = "acme/prod"
MERGE = "application/merge-patch+json"

WRITER_POLICY = """
path "acme/prod/data/*" { capabilities = ["create", "read", "update", "delete", "patch"] }
path "acme/prod/metadata/*" { capabilities = ["create", "read", "update", "delete", "list", "patch"] }
path "acme/prod/metadata" { capabilities = ["list"] }
path "acme/prod/subkeys/*" { capabilities = ["read"] }
path "acme/prod/delete/*" { capabilities = ["update"] }
path "acme/prod/undelete/*" { capabilities = ["update"] }
path "acme/prod/destroy/*" { capabilities = ["update"] }
path "acme/prod/config" { capabilities = ["read", "update"] }
path "sys/mounts" { capabilities = ["read"] }
"""
READER_POLICY = """
path "acme/prod/data/*" { capabilities = ["read"] }
path "acme/prod/metadata/*" { capabilities = ["read", "list"] }
path "acme/prod/metadata" { capabilities = ["list"] }
path "acme/prod/subkeys/*" { capabilities = ["read"] }
"""


@dataclass(frozen=True)
class Step:
    name: str
    method: str
    path: str  # under /v1/
    body: Any = None
    who: str = "writer"
    content_type: str = "application/json"
    message: bool = False  # compare the error text too


def _put(data: dict[str, Any], cas: int | None = None) -> dict[str, Any]:
    return {"data": data, "options": {} if cas is None else {"cas": cas}}


D = f"{MOUNT}/data"
M = f"{MOUNT}/metadata"
SCENARIO = [
    Step("write v1", "PUT", f"{D}/db", _put({"a": "1"})),
    Step("write v2 with cas", "POST", f"{D}/db", _put({"a": "2"}, cas=1)),
    Step("write with a stale cas", "PUT", f"{D}/db", _put({"a": "x"}, cas=1), message=True),
    Step("read latest", "GET", f"{D}/db"),
    Step("read version 1", "GET", f"{D}/db?version=1"),
    Step("read a version never written", "GET", f"{D}/db?version=9"),
    Step("read a missing secret", "GET", f"{D}/missing"),
    Step("patch data", "PATCH", f"{D}/db", {"data": {"b": {"c": "3"}}}, content_type=MERGE),
    Step("patch data as plain JSON", "PATCH", f"{D}/db", {"data": {"b": "x"}}),
    Step("patch a missing secret", "PATCH", f"{D}/missing", {"data": {"b": "x"}}, content_type=MERGE),
    Step("subkeys", "GET", f"{MOUNT}/subkeys/db"),
    Step("subkeys depth 1", "GET", f"{MOUNT}/subkeys/db?depth=1"),
    Step("subkeys of a missing secret", "GET", f"{MOUNT}/subkeys/missing"),
    Step("write a nested secret", "PUT", f"{D}/app/api/key", _put({"k": "v"})),
    Step("list the root", "GET", f"{M}?list=true"),
    Step("list a folder with LIST", "LIST", f"{M}/app/"),
    Step("list a missing folder", "GET", f"{M}/nothing/?list=true"),
    Step("metadata", "GET", f"{M}/db"),
    Step("metadata write, max_versions as text", "PUT", f"{M}/db", {"max_versions": "7"}),
    Step("metadata patch", "PATCH", f"{M}/db", {"custom_metadata": {"team": "a"}}, content_type=MERGE),
    Step(
        "metadata patch merges custom_metadata", "PATCH", f"{M}/db", {"custom_metadata": {"o": "b"}}, content_type=MERGE
    ),
    Step("metadata after the writes", "GET", f"{M}/db"),
    Step("metadata of a missing secret", "GET", f"{M}/missing"),
    Step("config write, max_versions as text", "PUT", f"{MOUNT}/config", {"max_versions": "8"}),
    Step("config", "GET", f"{MOUNT}/config"),
    Step("require cas on the secret", "POST", f"{M}/db", {"cas_required": True}),
    Step("write without cas, cas required", "PUT", f"{D}/db", _put({"a": "4"}), message=True),
    Step("patch without cas, cas required", "PATCH", f"{D}/db", {"data": {"d": "4"}}, content_type=MERGE, message=True),
    Step(
        "patch with cas, cas required",
        "PATCH",
        f"{D}/db",
        {"data": {"d": "4"}, "options": {"cas": 3}},
        content_type=MERGE,
    ),
    Step("delete the latest version", "DELETE", f"{D}/db"),
    Step("read the deleted version", "GET", f"{D}/db"),
    Step("undelete it", "POST", f"{MOUNT}/undelete/db", {"versions": [4]}),
    Step("delete versions as text", "PUT", f"{MOUNT}/delete/db", {"versions": ["1", "2"]}),
    Step("destroy version 1", "PUT", f"{MOUNT}/destroy/db", {"versions": [1]}),
    Step("read the destroyed version", "GET", f"{D}/db?version=1"),
    Step("metadata after deletes", "GET", f"{M}/db"),
    Step("delete the latest of a missing secret", "DELETE", f"{D}/missing"),
    Step("delete the metadata of a missing secret", "DELETE", f"{M}/missing"),
    Step("reader reads", "GET", f"{D}/db", who="reader"),
    Step("reader lists", "GET", f"{M}?list=true", who="reader"),
    Step("reader writes", "PUT", f"{D}/db", _put({"a": "r"}), who="reader"),
    Step("reader deletes", "DELETE", f"{D}/db", who="reader"),
    Step("reader asks for sys/mounts", "GET", "sys/mounts", who="reader"),
    Step("writer asks for sys/mounts", "GET", "sys/mounts"),
    Step("capabilities of the writer", "POST", "sys/capabilities-self", {"paths": [f"{D}/db", f"{M}/db"]}),
    Step("capabilities of the reader", "POST", "sys/capabilities-self", {"paths": [f"{D}/db"]}, who="reader"),
    Step("capabilities elsewhere", "POST", "sys/capabilities-self", {"paths": ["other/x/data/y"]}),
    Step("the KV preflight", "GET", f"sys/internal/ui/mounts/{MOUNT}/db"),
    Step("the KV preflight of no mount", "GET", "sys/internal/ui/mounts/nope/x/y"),
    Step("an unknown vault", "GET", f"{MOUNT[:4]}/zzz/data/db"),
    Step("an unknown mount", "GET", "nope/x/data/db"),
    Step("the one-segment mount", "GET", "prod/data/db"),
    Step("no token", "GET", f"{D}/db", who="nobody"),
    Step("lookup-self", "GET", "auth/token/lookup-self"),
    Step("renew-self", "PUT", "auth/token/renew-self", {}),
    Step("destroy all versions", "DELETE", f"{M}/db"),
    Step("metadata after destroying all", "GET", f"{M}/db"),
]

# Steps where the store answers otherwise on purpose (docs/vault-compat.md, "Conformance").
DIFFERENCES = {
    "metadata": "max_versions: the secret's own limit (10 unless set), where OpenBao says 0 (unset)",
    "patch with cas, cas required": "a write's data.custom_metadata is null (reads stay one query)",
    "the one-segment mount": "prod is the token's org's vault prod, a mount OpenBao does not have",
    "renew-self": "a bundle is not renewable: 400, where OpenBao renews its token",
}


def shape(status: int, body: Any, step: Step) -> dict[str, Any]:
    """What a client reads of a reply: the status and the data's meaningful fields, never ids or times."""
    out: dict[str, Any] = {"status": status}
    if not isinstance(body, dict):
        return out
    data = body.get("data")
    if isinstance(data, dict):
        for key in ("data", "keys", "subkeys", "current_version", "max_versions", "cas_required", "custom_metadata",
                    "version", "delete_version_after", "destroyed", "path", "type", "options"):  # fmt: skip
            if key in data:
                out[key] = data[key]
        if isinstance(data.get("metadata"), dict):
            md = data["metadata"]
            out["metadata"] = {"version": md.get("version"), "destroyed": md.get("destroyed"),
                               "deleted": bool(md.get("deletion_time"))}  # fmt: skip
        if isinstance(data.get("versions"), dict):
            out["versions"] = {v: (bool(x["deletion_time"]), x["destroyed"]) for v, x in data["versions"].items()}
        if step.path == "sys/capabilities-self":
            out["capabilities"] = {k: v for k, v in data.items() if k != "capabilities"}
        if step.path == "sys/mounts":
            out = {"status": status, f"{MOUNT}/": data.get(f"{MOUNT}/", {}).get("type")}
    if step.message and "errors" in body:
        out["errors"] = body["errors"]
    return out


@dataclass
class Side:
    base: str  # ends in /v1/
    tokens: dict[str, str]


async def run(http: aiohttp.ClientSession, side: Side) -> list[dict[str, Any]]:
    replies = []
    for step in SCENARIO:
        headers = {"Content-Type": step.content_type}
        if step.who != "nobody":
            headers["X-Vault-Token"] = side.tokens[step.who]
        data = None if step.body is None else json.dumps(step.body)
        async with http.request(step.method, side.base + step.path, data=data, headers=headers) as resp:
            text = await resp.text()
            body = json.loads(text) if text.strip() else None
            replies.append(shape(resp.status, body, step))
    return replies


@pytest.fixture
async def openbao(tmp_path: Path) -> AsyncIterator[Side]:
    async with aiohttp.ClientSession() as http, dev_server(http, tmp_path) as addr:
        root = {"X-Vault-Token": "root"}

        async def call(method: str, path: str, body: Any) -> Any:
            async with http.request(method, f"{addr}/v1/{path}", json=body, headers=root) as resp:
                assert resp.status in (200, 204), (path, resp.status, await resp.text())
                return await resp.json() if resp.status == 200 else None

        await call("POST", f"sys/mounts/{MOUNT}", {"type": "kv", "options": {"version": "2"}})
        tokens = {}
        for name, policy in (("writer", WRITER_POLICY), ("reader", READER_POLICY)):
            await call("PUT", f"sys/policies/acl/{name}", {"policy": policy})
            # With OpenBao's default policy too: it grants lookup-self, renew-self and capabilities-self.
            created = await call("POST", "auth/token/create", {"policies": [name]})
            tokens[name] = created["auth"]["client_token"]
        yield Side(f"{addr}/v1/", tokens)


async def test_the_store_answers_as_openbao(world: EnrolledOrg, openbao: Side) -> None:
    reader = await world.h.store_bundle(await world.h.mint(world.bundle, world.org, mask="r"), world.auth)
    cvault = Side(world.h.store_url + "/vault/v1/", {"writer": world.bundle, "reader": reader})
    async with aiohttp.ClientSession() as http:
        expected = await run(http, openbao)
        got = await run(http, cvault)
    differ = {s.name: (e, g) for s, e, g in zip(SCENARIO, expected, got, strict=True) if e != g}
    unexplained = {name: pair for name, pair in differ.items() if name not in DIFFERENCES}
    assert not unexplained, json.dumps(unexplained, indent=1)
    assert set(DIFFERENCES) <= set(differ), set(DIFFERENCES) - set(differ)  # each listed difference still is one
    docs = (Path(__file__).resolve().parents[2] / "docs" / "vault-compat.md").read_text()
    assert all(f"| {name} |" in docs for name in DIFFERENCES)
