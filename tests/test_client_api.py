"""The client's public surface is what ``vault.client.__all__`` says (as httpx tests its exports)."""

from __future__ import annotations

import inspect
import tomllib
import types
from pathlib import Path

import pytest

import vault.client
from tests.tokenkit import Setup
from vault.cli.client_options import client_settings
from vault.client import AuthorityClient, Client, Secret, StoreClient, SyncAuthority, SyncClient, SyncStore
from vault.macaroon import encode_bundle

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_sorted_and_complete() -> None:
    names = vault.client.__all__
    assert names == sorted(names)
    public = {n for n, v in vars(vault.client).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(names)
    for name in names:
        assert getattr(vault.client, name).__module__.startswith("vault.client.")


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
