"""The Vault API's pure parts: the KV data mapping, listings, the mount cache; and the LIST method on the wire."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from vault.errors import BadRequest, Unauthorized
from vault.names import check_versions
from vault.store.kv import kv_keys, kv_value, stored_value
from vault.store.kv_fields import check_custom_metadata, format_duration, merge_patch, parse_duration
from vault.store.mounts import mount_org, own_mount
from vault.web.app_runner import VaultAppRunner


@pytest.mark.parametrize(
    "data",
    [
        {"value": "x"},
        {"value": ""},
        {"value": '{"a":1}'},
        {"value": "[1, 2]"},
        {"value": "x", "y": "z"},
        {"value": None},
        {},
        {"a": {"b": [1, 2.5, True, None]}, "ü": "ß"},
    ],
)
def test_every_object_round_trips(data: dict[str, Any]) -> None:
    assert kv_value(stored_value(data)) == data


def test_stored_values_read_as_objects_or_value() -> None:
    assert kv_value("hunter2") == {"value": "hunter2"}
    assert kv_value('{"user": "u"}') == {"user": "u"}
    assert kv_value("[1]") == {"value": "[1]"}
    assert kv_value("{not json") == {"value": "{not json"}
    assert stored_value({"value": "hunter2"}) == "hunter2"
    assert json.loads(stored_value({"a": 1})) == {"a": 1}
    with pytest.raises(BadRequest):
        stored_value(["not", "an", "object"])


def test_kv_keys_are_direct_children() -> None:
    names = ["a/b/c", "a/b/d", "a/e", "f", "g/h"]
    assert kv_keys(names, "") == ["a/", "f", "g/"]
    assert kv_keys(names, "a/") == ["b/", "e"]
    assert kv_keys(names, "a/b/") == ["c", "d"]
    assert kv_keys(names, "zz/") == []


def test_a_mount_picks_the_tokens_org_among_those_with_its_slug() -> None:
    assert mount_org("acme", None, (7,)) == 7  # no token: the guard refuses it and audits the attempt in org 7
    assert mount_org("dup", 9, (3, 9)) == 9
    # Everything else is one refusal: a token of another org, a slug no enrolment recorded.
    for slug, org, ids in (("acme", 99, (7,)), ("dup", 4, (3, 9)), ("new", None, ()), ("new", 7, ())):
        with pytest.raises(Unauthorized) as refused:
            mount_org(slug, org, ids)
        assert refused.value.status == 403
    assert own_mount("acme", 7, (7,)) == 7
    for org in (None, 99):
        with pytest.raises(Unauthorized):
            own_mount("acme", org, (7,))


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ([2, 1, 2], [1, 2]),
        (["1"], [1]),  # the Vault CLI's -versions=1
        ("1,2", [1, 2]),
        (["1,3", 2], [1, 2, 3]),
        (" 4 , 5 ,", [4, 5]),
        (7, [7]),
    ],
)
def test_versions_take_vaults_comma_separated_ints(given: object, parsed: list[int]) -> None:
    assert check_versions(given) == parsed


@pytest.mark.parametrize(
    "bad", [[], "", ",", None, [True], [1.0], ["x"], ["-1"], [0], ["1e3"], "1;2", [2**31], list(range(1, 1002)), {}]
)
def test_bad_version_lists_are_refused(bad: object) -> None:
    with pytest.raises(BadRequest, match="versions must be"):
        check_versions(bad)


@pytest.mark.parametrize(
    ("given", "seconds", "shown"),
    [
        (0, 0, "0s"),
        ("0s", 0, "0s"),
        ("90s", 90, "1m30s"),
        ("1h", 3600, "1h0m0s"),
        ("1h30m", 5400, "1h30m0s"),
        ("120", 120, "2m0s"),
        (59, 59, "59s"),
    ],
)
def test_durations_parse_and_print_as_go_does(given: object, seconds: int, shown: str) -> None:
    assert parse_duration(given) == seconds
    assert format_duration(seconds) == shown


@pytest.mark.parametrize("bad", ["", "1d", "h", "-5", -1, True, "1.5h", "5s1m", None, "1h\n"])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(BadRequest):
        parse_duration(bad)


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "k": [1]}
    patch = {"a": "z", "c": {"f": None, "h": {"i": None}}, "k": None, "new": [None]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e", "h": {}}, "new": [None]}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}, "k": [1]}  # not modified
    deep: dict[str, object] = {}
    for _ in range(40):
        deep = {"x": deep}
    with pytest.raises(BadRequest):
        merge_patch({}, deep)


def test_custom_metadata_limits() -> None:
    assert check_custom_metadata({"owner": "a"}) == {"owner": "a"}
    for bad in ([], {"k": 1}, {"": "v"}, {"k" * 129: "v"}, {"k": "v" * 513}, {"k\x00": "v"}):
        with pytest.raises(BadRequest):
            check_custom_metadata(bad)


# -- LIST on the wire ---------------------------------------------------------------------------


async def _serve() -> tuple[VaultAppRunner, int]:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(text=f"{request.method} {request.path} {len(body)}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = VaultAppRunner(app, access_log=None)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def _exchange(port: int, chunks: list[bytes]) -> list[str]:
    """Send each chunk as its own write; return the status line and body of every response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.05)  # separate reads on the server side
        replies: list[str] = []
        while True:
            status = await asyncio.wait_for(reader.readline(), 5)
            if not status:
                return replies
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            replies.append(f"{status.decode().split(' ', 2)[1]} {body.decode()}".strip())
            if replies[-1].startswith("400") or (
                replies and chunks[-1].endswith(b"close\r\n\r\n") and len(replies) >= 4
            ):
                return replies
    finally:
        writer.close()


H = b"Host: x\r\n"


async def test_list_method_on_a_keep_alive_connection_after_get_and_post() -> None:
    runner, port = await _serve()
    try:
        replies = await _exchange(
            port,
            [
                b"GET /a HTTP/1.1\r\n" + H + b"\r\n",
                b"POST /b HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc",
                b"LIST /c HTTP/1.1\r\n" + H + b"\r\n",
                b"GET /d HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
            ],
        )
        assert replies == ["200 GET /a 0", "200 POST /b 3", "200 LIST /c 0", "200 GET /d 0"]
    finally:
        await runner.cleanup()


def test_every_vault_route_is_in_the_generated_document() -> None:
    from vault.web.common import UNADVERTISED_METHODS
    from vault.web.contract import add_operations
    from vault.web.store.vault_kv import VAULT_OPERATIONS, vault_document

    paths = vault_document("http://store")["paths"]
    app = web.Application()
    add_operations(app.router, VAULT_OPERATIONS)
    routes = [route for route in app.router.routes() if route.method not in UNADVERTISED_METHODS]
    assert len(routes) == len(VAULT_OPERATIONS) > 50
    for route in routes:
        info = route.resource.get_info() if route.resource else {}
        path = re.sub(r"\{(\w+):(?:[^{}]|\{[^{}]*\})+\}", r"{\1}", info.get("path") or info.get("formatter", ""))
        assert route.method.lower() in paths[path], (path, route.method)


async def test_list_reaches_the_listing_but_allow_names_only_documented_methods() -> None:
    from aiohttp.test_utils import make_mocked_request

    from vault.web.common import UNADVERTISED_METHODS
    from vault.web.contract import add_operations
    from vault.web.store.vault_kv import VAULT_OPERATIONS

    app = web.Application()
    add_operations(app.router, VAULT_OPERATIONS)
    for path in ("/vault/v1/acme/prod/metadata/db/", "/vault/v1/prod/metadata", "/vault/v1/acme/prod/metadata/"):
        listing = await app.router.resolve(make_mocked_request("LIST", path))
        get = await app.router.resolve(make_mocked_request("GET", path))
        assert listing.http_exception is None and listing.handler is get.handler, path
    for method, path, allowed in (
        ("TRACE", "/vault/v1/acme/prod/metadata/db", {"GET", "POST", "PUT", "PATCH", "DELETE"}),
        ("OPTIONS", "/vault/v1/prod/metadata/", {"GET"}),
        ("LIST", "/vault/v1/acme/prod/data/db", {"GET", "POST", "PUT", "PATCH", "DELETE"}),
        ("DELETE", "/vault/v1/acme/prod/subkeys/db", {"GET"}),
        ("TRACE", "/vault/v1/sys/health", {"GET", "HEAD"}),
    ):
        match = await app.router.resolve(make_mocked_request(method, path))
        assert isinstance(match.http_exception, web.HTTPMethodNotAllowed), (method, path)
        # The error middleware's Allow: the router's methods but the unadvertised aliases.
        assert match.http_exception.allowed_methods - UNADVERTISED_METHODS == allowed, (method, path)


def test_kv_paths_under_both_mounts() -> None:
    from vault.store.mounts import KVPath, kv_path

    assert kv_path("acme/prod/data/db/creds", "acme") == KVPath("prod", "data", "db/creds")
    assert kv_path("prod/data/db/creds", "acme") == KVPath("prod", "data", "db/creds")
    assert kv_path("/prod/metadata/", "acme") == KVPath("prod", "metadata", "")
    assert kv_path("acme/prod/config", "acme") == KVPath("prod", "config", "")
    # Another org's slug is not this token's: read as a one-segment vault "other", with no KV kind after it.
    assert kv_path("other/prod/data/x", "acme") is None
    assert kv_path("sys/data/x", "acme") is None and kv_path("prod", "acme") is None
    assert kv_path("prod/config/x", None) is None


def test_subkeys_keep_keys_not_values() -> None:
    from vault.store.kv_fields import subkeys

    value = {"a": "1", "b": {"c": {"d": "x"}, "e": []}, "f": {}}
    assert subkeys(value) == {"a": None, "b": {"c": {"d": None}, "e": None}, "f": None}
    assert subkeys(value, 1) == {"a": None, "b": None, "f": None}
    assert subkeys(value, 2) == {"a": None, "b": {"c": None, "e": None}, "f": None}


def test_max_versions_as_text() -> None:
    from vault.errors import BadRequest
    from vault.store.kv_fields import check_max_versions

    assert check_max_versions("7") == 7 and check_max_versions(0) == 0
    for bad in ("7x", "1001", "-1", "", True, 1.5):
        with pytest.raises(BadRequest):
            check_max_versions(bad)


def test_the_read_reply_is_the_envelope() -> None:
    from aiohttp.test_utils import make_mocked_request

    from vault.web.store.vault_messages import KVRead, VersionMetadata
    from vault.web.store.vault_reply import envelope, vault_json

    request = make_mocked_request("GET", "/vault/v1/acme/prod/data/x")
    data = {"password": 'a"b\\c\u00e9', "n": {"k": [1, None]}}
    metadata = VersionMetadata(created_time="2026-01-02T03:04:05Z", deletion_time="", destroyed=False, version=7)
    reply = vault_json(envelope(request, KVRead(data=data, metadata=metadata)))
    assert reply.content_type == "application/json" and reply.headers["Cache-Control"] == "no-store"
    assert reply.body is not None
    assert json.loads(bytes(reply.body)) == {
        "request_id": "",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": {
            "data": data,
            "metadata": {
                "created_time": "2026-01-02T03:04:05Z",
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": 7,
            },
        },
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


def test_bodies_decode_as_the_document_reads_them() -> None:
    from vault.web.contract import decode_json
    from vault.web.store.vault_messages import MetadataWrite, Versions

    # JSON Schema reads 2.0 as an integer; so does the decoder.
    assert decode_json(b'{"versions": [2.0, "3,4"]}', Versions).versions == [2, "3,4"]
    for bad in (b'{"versions": [2.5]}', b'{"versions": ["0"]}', b'{"versions": []}', b'{"versions": true}'):
        with pytest.raises(BadRequest):
            decode_json(bad, Versions)
    body = decode_json(b'{"max_versions": "7", "cas_required": "true", "delete_version_after": "1h30m"}', MetadataWrite)
    assert (body.max_versions, body.cas_required, body.delete_version_after) == ("7", "true", "1h30m")
    # Each spelling the model admits, the parser behind it takes; what it does not admit never reaches the parser.
    for bad in (b'{"max_versions": "1001"}', b'{"cas_required": 1}', b'{"delete_version_after": "100000h"}'):
        with pytest.raises(BadRequest):
            decode_json(bad, MetadataWrite)
