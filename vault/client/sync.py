"""A blocking client: the async :class:`~vault.client.client.Client` on a private event loop.

The loop runs in a daemon thread so the client's background discharge refresh
keeps working between calls. ``SyncClient.store`` and ``SyncClient.authority``
have the same methods as the async ones, with the same arguments and typed
results, written out (not proxied) so type checkers and ``help()`` see them::

    with SyncClient.from_env() as c:
        print(c.store.read_secret("prod", "db/url").value)
        for item in c.store.iter_secrets("prod"):
            print(item.name, item.current_version)
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .authority import AuthorityClient
from .authority_models import (
    Accepted,
    Account,
    Invitation,
    Member,
    Membership,
    Organization,
    PermissionToken,
    RoleChanged,
    ServiceToken,
    Session,
    TokenInfo,
)
from .client import Client
from .credentials import TokenBundle
from .models import (
    BatchRead,
    CurrentVersions,
    MintedToken,
    Promoted,
    Secret,
    SecretMetadata,
    SecretPage,
    SecretSummary,
    Vault,
    Written,
)
from .store import StoreClient

__all__ = ["SyncAuthority", "SyncClient", "SyncStore"]

T = TypeVar("T")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cvault-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncStore:
    """Blocking :class:`~vault.client.store.StoreClient`."""

    def __init__(self, store: StoreClient, loop: _Loop) -> None:
        self._store = store
        self._run = loop.run

    def enroll(self, org: int, slug: str) -> MintedToken:
        return self._run(self._store.enroll(org, slug))

    def mint_token(
        self,
        mask: str,
        *,
        vaults: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        ttl: int | None = None,
        org: int | None = None,
    ) -> MintedToken:
        return self._run(self._store.mint_token(mask, vaults=vaults, secrets=secrets, ttl=ttl, org=org))

    def revoke_token(self, token_id: str, *, org: int | None = None) -> dict[str, Any]:
        return self._run(self._store.revoke_token(token_id, org=org))

    def list_vaults(self, *, org: int | None = None) -> list[Vault]:
        return self._run(self._store.list_vaults(org=org))

    def create_vault(self, name: str, *, org: int | None = None) -> Vault:
        return self._run(self._store.create_vault(name, org=org))

    def delete_vault(self, name: str, *, org: int | None = None) -> None:
        self._run(self._store.delete_vault(name, org=org))

    def list_secrets(
        self, vault: str, *, prefix: str = "", limit: int = 100, cursor: str | None = None, org: int | None = None
    ) -> SecretPage:
        return self._run(self._store.list_secrets(vault, prefix=prefix, limit=limit, cursor=cursor, org=org))

    def iter_secrets(self, vault: str, *, prefix: str = "", org: int | None = None) -> Iterator[SecretSummary]:
        cursor: str | None = None
        while True:
            page = self.list_secrets(vault, prefix=prefix, cursor=cursor, org=org)
            yield from page.secrets
            cursor = page.next_cursor
            if not cursor:
                return

    def write_secret(
        self,
        vault: str,
        name: str,
        value: str,
        *,
        cas: int | None = None,
        pending: bool = False,
        max_versions: int | None = None,
        org: int | None = None,
        idempotency_key: str | None = None,
    ) -> Written:
        return self._run(
            self._store.write_secret(
                vault,
                name,
                value,
                cas=cas,
                pending=pending,
                max_versions=max_versions,
                org=org,
                idempotency_key=idempotency_key,
            )
        )

    def read_secret(
        self, vault: str, name: str, *, version: int | None = None, pending: bool = False, org: int | None = None
    ) -> Secret:
        return self._run(self._store.read_secret(vault, name, version=version, pending=pending, org=org))

    def metadata(self, vault: str, name: str, *, org: int | None = None) -> SecretMetadata:
        return self._run(self._store.metadata(vault, name, org=org))

    def delete_versions(self, vault: str, name: str, versions: Sequence[int], *, org: int | None = None) -> list[int]:
        return self._run(self._store.delete_versions(vault, name, versions, org=org))

    def undelete_versions(self, vault: str, name: str, versions: Sequence[int], *, org: int | None = None) -> list[int]:
        return self._run(self._store.undelete_versions(vault, name, versions, org=org))

    def destroy_versions(self, vault: str, name: str, versions: Sequence[int], *, org: int | None = None) -> list[int]:
        return self._run(self._store.destroy_versions(vault, name, versions, org=org))

    def destroy_secret(self, vault: str, name: str, *, org: int | None = None) -> None:
        self._run(self._store.destroy_secret(vault, name, org=org))

    def promote(self, vault: str, name: str, *, org: int | None = None) -> Promoted:
        return self._run(self._store.promote(vault, name, org=org))

    def batch_read(
        self, vault: str, *, names: Sequence[str] | None = None, prefix: str | None = None, org: int | None = None
    ) -> BatchRead:
        return self._run(self._store.batch_read(vault, names=names, prefix=prefix, org=org))

    def current_versions(
        self, vault: str, *, names: Sequence[str] | None = None, prefix: str | None = None, org: int | None = None
    ) -> CurrentVersions:
        return self._run(self._store.current_versions(vault, names=names, prefix=prefix, org=org))

    def audit(
        self,
        *,
        vault: str | None = None,
        secret: str | None = None,
        actor: str | None = None,
        token: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: int | None = None,
        until: int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        org: int | None = None,
        newest_first: bool = False,
        hide_own: bool = False,
    ) -> dict[str, Any]:
        return self._run(
            self._store.audit(
                vault=vault,
                secret=secret,
                actor=actor,
                token=token,
                action=action,
                outcome=outcome,
                since=since,
                until=until,
                cursor=cursor,
                limit=limit,
                org=org,
                newest_first=newest_first,
                hide_own=hide_own,
            )
        )

    def audit_export(self, *, org: int | None = None) -> Iterator[str]:
        """The org's export file, line by line; each line is fetched when the caller asks for it."""
        lines = self._store.audit_export(org=org)
        try:
            while True:
                try:
                    yield self._run(_next_line(lines))
                except StopAsyncIteration:
                    return
        finally:
            self._run(lines.aclose())

    def audit_verify(self, *, org: int | None = None) -> dict[str, Any]:
        return self._run(self._store.audit_verify(org=org))


async def _next_line(lines: AsyncGenerator[str, None]) -> str:
    return await anext(lines)


class SyncAuthority:
    """Blocking :class:`~vault.client.authority.AuthorityClient`."""

    def __init__(self, authority: AuthorityClient, loop: _Loop) -> None:
        self._authority = authority
        self._run = loop.run

    def login(self, email: str, password: str) -> Session:
        return self._run(self._authority.login(email, password))

    def logout(self) -> None:
        self._run(self._authority.logout())

    def me(self) -> Account:
        return self._run(self._authority.me())

    def create_org(self, slug: str) -> Organization:
        return self._run(self._authority.create_org(slug))

    def list_orgs(self) -> list[Membership]:
        return self._run(self._authority.list_orgs())

    def list_members(self, org: int) -> list[Member]:
        return self._run(self._authority.list_members(org))

    def invite(self, org: int, email: str, role: str) -> Invitation:
        return self._run(self._authority.invite(org, email, role))

    def invitations(self) -> list[Invitation]:
        return self._run(self._authority.invitations())

    def accept(
        self, invitation_id: str, *, code: str, password: str | None = None, verification: str | None = None
    ) -> Accepted:
        return self._run(self._authority.accept(invitation_id, code=code, password=password, verification=verification))

    def send_verification(self, invitation_id: str, *, code: str) -> str:
        return self._run(self._authority.send_verification(invitation_id, code=code))

    def set_role(self, org: int, user_id: int, role: str) -> RoleChanged:
        return self._run(self._authority.set_role(org, user_id, role))

    def remove_member(self, org: int, user_id: int) -> None:
        self._run(self._authority.remove_member(org, user_id))

    def create_token(
        self, org: int, *, mask: str | None = None, ttl: int | None = None, bundle: TokenBundle | None = None
    ) -> PermissionToken:
        return self._run(self._authority.create_token(org, mask=mask, ttl=ttl, bundle=bundle))

    def list_tokens(self) -> list[TokenInfo]:
        return self._run(self._authority.list_tokens())

    def strip(self, permission: TokenBundle) -> ServiceToken:
        return self._run(self._authority.strip(permission))

    def revoke(self, token_id: str) -> list[str]:
        return self._run(self._authority.revoke(token_id))


class SyncClient:
    """Takes :class:`~vault.client.client.Client`'s arguments; close it (or use ``with``)."""

    def __init__(self, **kwargs: Any) -> None:
        self._loop = _Loop()

        async def build() -> Client:
            # aiohttp sessions belong to the loop they are created on.
            return Client(**kwargs)

        self.client = self._loop.run(build())
        self.store = SyncStore(self.client.store, self._loop)
        self.authority = SyncAuthority(self.client.authority, self._loop)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, config: Path | None = None, **kwargs: Any) -> SyncClient:
        """Set up from the ``CVAULT_*`` variables, as ``cvault`` and :meth:`Client.from_env` are."""
        from .environment import load_settings

        settings = load_settings(os.environ if env is None else env, config)
        return cls(**{**settings.client_arguments(), **kwargs})

    def close(self) -> None:
        try:
            self._loop.run(self.client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
