"""The client's public surface is what ``vault.client.__all__`` says (as httpx tests its exports)."""

from __future__ import annotations

import inspect
import json
import tomllib
import types
from pathlib import Path

import pytest

import vault.client
from tests.support.tokenkit import Setup
from vault import errors
from vault.cli.client_options import client_settings
from vault.client import AuthorityClient, Client, Secret, StoreClient, SyncAuthority, SyncClient, SyncStore
from vault.client import authority_models as am
from vault.client.models import to_json
from vault.macaroon import encode_bundle

ROOT = Path(__file__).resolve().parents[2]


def test_all_is_sorted_and_complete() -> None:
    names = vault.client.__all__
    assert names == sorted(names)
    # Each name is imported from its submodule on first use (vault/client/__init__.py).
    for name in names:
        assert getattr(vault.client, name).__module__.startswith("vault.client.")
    public = {n for n, v in vars(vault.client).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(names)
    assert {n for n in dir(vault.client) if not n.startswith("_")} >= set(names)
    with pytest.raises(AttributeError):
        vault.client.HTTP  # noqa: B018 - the access is the test


def test_internals_are_not_exported() -> None:
    for name in ("HTTP", "BlockingHTTP", "Discharges", "narrowing", "organization_of", "discharge_expiry"):
        assert name not in vault.client.__all__ and not hasattr(vault.client, name)


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "vault" / "client" / "py.typed").exists()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["vault.client"]


def _coroutine_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(cls).items()
        if not name.startswith("_") and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn))
    }


@pytest.mark.parametrize(
    ("async_cls", "sync_cls", "every"), [(StoreClient, SyncStore, True), (AuthorityClient, SyncAuthority, False)]
)
def test_the_sync_client_has_each_call_written_out_with_the_same_signature(
    async_cls: type, sync_cls: type, every: bool
) -> None:
    """Every store call has its blocking twin; each authority call the sync client has matches its async one."""
    assert "__getattr__" not in vars(sync_cls)
    for name, signature in _coroutine_methods(async_cls).items():
        if not hasattr(sync_cls, name):
            assert not every, f"SyncStore lacks {name}"
            continue
        mine = inspect.signature(getattr(sync_cls, name))
        assert list(mine.parameters) == list(signature.parameters), name
        assert [p.default for p in mine.parameters.values()] == [p.default for p in signature.parameters.values()]
    assert inspect.isgeneratorfunction(SyncStore.iter_secrets)
    assert {"login", "list_orgs", "invite", "accept", "create_token", "strip", "revoke"} <= set(vars(SyncAuthority))


@pytest.mark.parametrize("reply", [{"name": "db/url", "version": 3}, {"name": 7, "version": 3, "value": "v"}, [], None])
def test_a_reply_missing_a_field_is_a_bad_reply_where_it_is_read(reply: object) -> None:
    with pytest.raises(errors.BadReply) as err:
        Secret.from_json(reply)
    assert err.value.code == "bad_reply" and err.value.status == 502 and "secret" in err.value.message


def test_models_never_show_a_value() -> None:
    secret = Secret("db/url", 3, "postgres://app:hunter2@db/app")
    assert "hunter2" not in repr(secret) and "db/url" in repr(secret)


def test_from_env_reads_what_the_cli_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    s = Setup()
    token = encode_bundle([s.token()])
    token_file = tmp_path / "store.token"
    token_file.write_text(token + "\n")
    env = {
        "CVAULT_STORE_URL": "http://store.example:8201",
        "CVAULT_AUTHORITY_URL": "http://authority.example:8200",
        "CVAULT_STORE_TOKEN_FILE": str(token_file),
        "CVAULT_SESSION": "session-abc",
    }
    client = Client.from_env(env)
    cli = client_settings(types.SimpleNamespace(config=None, ca_cert=None), env)
    assert (client.store_url, client.authority_url) == (cli.store_url, cli.authority_url)
    assert client.store_url == "http://store.example:8201"
    assert client.credentials == cli.credentials and client.credentials.session == "session-abc"
    assert client.credentials.store_token is not None and client.credentials.store_token.encode() == token
    with SyncClient.from_env(env) as sync:
        assert sync.client.credentials == cli.credentials


def test_from_env_refuses_both_a_variable_and_its_file(tmp_path: Path) -> None:
    from vault.errors import ConfigError

    with pytest.raises(ConfigError, match="not both"):
        Client.from_env({"CVAULT_STORE_TOKEN": "x", "CVAULT_STORE_TOKEN_FILE": str(tmp_path / "t")})


# The authority's replies as its handlers write them (vault/web/authority/handlers.py).
AUTHORITY_REPLIES: list[tuple[type, dict[str, object]]] = [
    (am.Session, {"session": "cvs_secret-session", "user_id": 7, "expires_at": "2026-01-01T00:00:00Z"}),
    (am.Account, {"user_id": 7, "email": "a@x.dev", "orgs": [{"id": 1, "slug": "acme", "role": "owner"}]}),
    (am.Organization, {"id": 1, "slug": "acme"}),
    (am.Membership, {"id": 1, "slug": "acme", "role": "owner"}),
    (am.Member, {"user_id": 7, "email": "a@x.dev", "role": "admin"}),
    (
        am.Invitation,
        {
            "id": "inv-1",
            "org": 1,
            "slug": "acme",
            "email": "b@x.dev",
            "role": "member",
            "expires_at": "2026-01-01T00:00:00Z",
            "code": "secret-code",
        },
    ),
    (am.Accepted, {"org": 1, "slug": "acme", "role": "member", "user_id": 8}),
    (am.RoleChanged, {"user_id": 8, "role": "admin"}),
    (am.PermissionToken, {"token": "cv1_secret-token", "id": "t-1", "expires_at": "2026-01-01T00:00:00Z"}),
    (am.ServiceToken, {"token": "cv1_secret-token", "id": "t-2", "parent": "t-1", "expires_at": None}),
    (
        am.TokenInfo,
        {
            "id": "t-2",
            "org": 1,
            "kind": "service",
            "mask": "r",
            "parent": "t-1",
            "lineage": ["t-1"],
            "created_at": "2025-01-01T00:00:00Z",
            "expires_at": None,
            "revoked_at": None,
        },
    ),
    (am.Revocations, {"revocations": [{"token_id": "t-9", "seq": 3, "revoked_at": "2025-01-01T00:00:00Z"}], "next": 3}),
    (
        am.AuthorityKeys,
        {
            "location": "http://a",
            "login": {"location": "http://a/login", "public_key": "AAAA"},
            "org": {"location": "http://a/org", "public_key": "BBBB"},
        },
    ),
]


@pytest.mark.parametrize(("model", "reply"), AUTHORITY_REPLIES, ids=lambda v: getattr(v, "__name__", ""))
def test_authority_results_are_typed_and_print_as_the_reply(model: type, reply: dict[str, object]) -> None:
    value = model.from_json(reply)
    assert json.loads(json.dumps(to_json(value))) == reply  # what `--json` prints: the service's document
    assert not any(secret in repr(value) for secret in ("cvs_secret", "cv1_secret", "secret-code"))
    assert model.__name__ in vault.client.__all__ and getattr(vault.client, model.__name__) is model
    first = next(iter(reply))
    with pytest.raises(errors.BadReply):
        model.from_json({k: v for k, v in reply.items() if k != first})
    with pytest.raises(errors.BadReply):
        model.from_json({**reply, first: object()})
