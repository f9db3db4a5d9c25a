"""One ``Authorization`` parser (``vault.web.common.credential``) for every route of both services.

The same header means the same thing at the authority, the store and the Vault API:
``Bearer`` and Fly's ``FlyV1`` schemes (any case), surrounding spaces ignored, any
other scheme or an empty credential a 401 ``unauthenticated`` with the same message.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.enrolled_org import EnrolledOrg
from tests.support.tokenkit import Setup
from vault.authorization import authorization_credential, pasted_credential, redact_credentials
from vault.cli.tokens import parse_bundle_text
from vault.errors import InvalidToken, Unauthenticated
from vault.macaroon import encode_bundle
from vault.web.common import credential, required_credential

VAULT = Path(__file__).resolve().parents[2] / "vault"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer cv1_abc", "cv1_abc"),
        ("bearer cv1_abc", "cv1_abc"),
        ("BEARER   cv1_abc  ", "cv1_abc"),
        ("FlyV1 cv1_a,cv1_b", "cv1_a,cv1_b"),
        ("  Bearer cvs_x", "cvs_x"),
    ],
)
def test_the_schemes_it_accepts(header: str, expected: str) -> None:
    assert credential({"Authorization": header}) == expected
    assert required_credential({"Authorization": header}) == expected


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "cv1_abc", "Token cv1_abc", "Bearer\tx"]
)
def test_the_headers_it_refuses(header: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        credential({"Authorization": header})
    assert "Authorization must be 'Bearer <credential>'" in caught.value.message
    assert "dXNlcjpwYXNz" not in caught.value.message and "cv1_abc" not in caught.value.message


def test_no_header_is_none_or_a_401() -> None:
    assert credential({}) is None
    assert credential({"Authorization": ""}) is None
    with pytest.raises(Unauthenticated, match="no token"):
        required_credential({})


def test_the_vault_token_header_comes_first_where_it_is_allowed() -> None:
    headers = {"X-Vault-Token": " cv1_v ", "Authorization": "Bearer cv1_a"}
    assert credential(headers, vault_token=True) == "cv1_v"
    assert credential(headers) == "cv1_a"
    assert required_credential({"Authorization": "Bearer cv1_a"}, vault_token=True) == "cv1_a"


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("cv1_abc", "cv1_abc"),
        ("  cv1_a,cv1_b\n", "cv1_a,cv1_b"),
        ("Bearer cv1_abc", "cv1_abc"),
        ("bearer   cv1_abc ", "cv1_abc"),
        ("FLYV1 cv1_a,cv1_b", "cv1_a,cv1_b"),
        ("Bearer", ""),
        ("", ""),
    ],
)
def test_a_pasted_credential_is_read_with_the_same_grammar(pasted: str, expected: str) -> None:
    assert pasted_credential(pasted) == expected
    if pasted.strip() and " " in pasted.strip():
        assert authorization_credential(pasted) == expected


def test_the_cli_reads_a_pasted_header_as_the_services_do() -> None:
    token = encode_bundle([Setup().token()])
    for pasted in (token, f"Bearer {token}", f"flyv1 {token}\n", f"  BEARER  {token}"):
        assert [t.encode() for t in parse_bundle_text(pasted)] == [t.encode() for t in parse_bundle_text(token)]
    for empty in ("Bearer", "  ", "FlyV1   "):
        with pytest.raises(InvalidToken, match="empty"):
            parse_bundle_text(empty)
    with pytest.raises(InvalidToken, match="truncated or corrupt"):
        parse_bundle_text(f"Basic {token}")


def _reads_header(node: ast.AST) -> bool:
    names = ("Authorization", "X-Vault-Token")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value in names
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return isinstance(node.slice, ast.Constant) and node.slice.value in names
    return False


def test_no_other_module_parses_authorization() -> None:
    # Only the one parser reads the header (and the metrics endpoint, which compares the
    # whole header with its configured value); clients that send it do not count.
    readers = {
        path.relative_to(VAULT).as_posix()
        for path in sorted(VAULT.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if _reads_header(node)
    }
    assert sorted(readers - {"web/common.py", "web/metrics.py"}) == []


@pytest.mark.parametrize("scheme", ["FlyV1", "bearer"])
async def test_every_service_reads_the_header_the_same_way(world: EnrolledOrg, scheme: str) -> None:
    w = world
    h = w.h
    assert (await h.store("PUT", w.secret("a"), w.bundle, {"value": "x"})).status == 200

    async def get(base: str, path: str, header: str) -> tuple[int, object]:
        async with h.http.get(base + path, headers={"Authorization": header}) as resp:
            return resp.status, await resp.json()

    assert (await get(h.authority_url, "/v1/me", f"{scheme} {w.owner.session}"))[0] == 200
    assert (await get(h.store_url, w.secret("a"), f"{scheme} {w.bundle}"))[0] == 200
    assert (await get(h.store_url, "/vault/v1/acme/prod/data/a", f"{scheme} {w.bundle}"))[0] == 200
    async with h.http.post(h.authority_url + "/v1/tokens/strip", headers={"Authorization": f"{scheme} {w.auth}"}) as r:
        assert r.status == 201


async def test_every_service_refuses_a_foreign_scheme_with_the_same_401(world: EnrolledOrg) -> None:
    w = world
    h = w.h
    messages = set()
    for base, path in [
        (h.authority_url, "/v1/me"),
        (h.authority_url, "/v1/tokens/strip"),
        (h.store_url, w.path("/vaults")),
    ]:
        method = "POST" if path.endswith("strip") else "GET"
        async with h.http.request(method, base + path, headers={"Authorization": "Basic dXNlcjpwYXNz"}) as resp:
            assert resp.status == 401, (path, resp.status)
            body = await resp.json()
            assert body["error"]["code"] == "unauthenticated"
            messages.add(body["error"]["message"])
    assert len(messages) == 1, messages


def test_credentials_are_replaced_for_logs() -> None:
    path = "/v1/orgs/7/tokens/cv1_ABC-def_123,cv1_X/revoke/cvs_s3cret?q=cvf_feed#cvm_code"
    redacted = redact_credentials(path)
    assert redacted == "/v1/orgs/7/tokens/[credential]/revoke/[credential]?q=[credential]#[credential]"
    assert (
        redact_credentials("/v1/orgs/7/vaults/prod/secrets/cvi_code") == "/v1/orgs/7/vaults/prod/secrets/[credential]"
    )
    assert redact_credentials("/v1/orgs/7/vaults/cvx_/secrets/cv") == "/v1/orgs/7/vaults/cvx_/secrets/cv"
    assert redact_credentials("/v1/x/fm2_abc/def+gh==/revoke") == "/v1/x/[credential]"


async def test_the_access_log_never_prints_a_credential_sent_in_a_path(
    world: EnrolledOrg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="cvault.access")
    path = world.path(f"/tokens/{world.bundle}/revoke")
    r = await world.h.store("POST", path, auth=world.bundle)
    assert r.status == 400
    lines = [record.getMessage() for record in caplog.records if record.name == "cvault.access"]
    assert any("/tokens/[credential]/revoke" in line for line in lines), lines
    assert not any(world.bundle[4:20] in line for line in lines), lines
