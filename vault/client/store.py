"""Typed calls for every store route in docs/api.md, each attenuated on use.

Each call names its operation, and the vault and secret it touches; the store
token is narrowed with ``Operations[op]``, ``Vaults{vault: action}`` and
``Secrets{"<name>$": action}`` (only for what the route itself names, because a
caveat about a resource the request does not name refuses it) plus a short
validity window. A batch read names its secrets in the body, so it narrows them
with ``IfPresent{Secrets{...}}``: the store's per-secret checks apply them,
while its route check (which names no secret) takes the ``else`` branch.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from vault.errors import BadRequest, InvalidToken
from vault.macaroon import READ, Caveat, decode_token, mask_from_string
from vault.macaroon.access import AUDIT, CONTROL, CREATE, DELETE, WRITE
from vault.macaroon.caveats import IfPresent, Operations, Secrets, Vaults
from vault.names import check_secret_name, check_vault_name

from .credentials import TokenBundle
from .http import HTTP
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

__all__ = ["StoreClient", "narrowing"]


class _Owner(Protocol):
    def store_org(self) -> int: ...

    async def store_bundle(self, caveats: Sequence[Caveat], token: TokenBundle | None = None) -> str: ...


def _check_name(name: str) -> str:
    # The store's own rule, checked before anything is sent: a name with a space or `%`
    # would otherwise reach a route that does not exist ("Not Found"), and `$` (which
    # anchors a Secrets pattern) could widen the narrowing.
    try:
        return check_secret_name(name)
    except BadRequest as exc:
        raise BadRequest(f"{name!r} is not a secret name: {exc.message}") from None


def narrowing(
    operation: str,
    action: int,
    *,
    vault: str | None = None,
    secret: str | None = None,
    body_secrets: Sequence[str] | None = None,
    body_prefix: str | None = None,
) -> list[Caveat]:
    """The caveats that confine a store token to one call (without the validity window)."""
    caveats: list[Caveat] = [Operations((operation,))]
    if vault is not None:
        caveats.append(Vaults(((check_vault_name(vault), action),)))
    if secret is not None:
        caveats.append(Secrets(((f"{_check_name(secret)}$", action),)))
    if body_secrets:
        patterns = tuple(sorted({(f"{_check_name(n)}$", action) for n in body_secrets}))
        caveats.append(IfPresent((Secrets(patterns),), action))
    elif body_prefix:
        caveats.append(IfPresent((Secrets(((body_prefix, action),)),), action))
    return caveats


def _path(*parts: str | int) -> str:
    """``_path("/v1/orgs", 7, "vaults", v)``: the first part is literal, the others are quoted as one segment each."""
    return "/".join([str(parts[0]), *(quote(str(p), safe="") for p in parts[1:])])


class StoreClient:
    def __init__(self, http: HTTP, url: str, owner: _Owner) -> None:
        self._http = http
        self.url = url
        self._owner = owner

    async def _call(
        self,
        method: str,
        path: str,
        caveats: Sequence[Caveat],
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        token: TokenBundle | None = None,
        idempotency_key: str | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        bundle = await self._owner.store_bundle(caveats, token)
        return await self._http.request(
            method,
            self.url + path,
            authorization=f"Bearer {bundle}",
            body=body,
            params=params,
            idempotent=idempotent,
            idempotency_key=idempotency_key,
        )

    def _org(self, org: int | None) -> int:
        return self._owner.store_org() if org is None else org

    # -- enrolment and store tokens ------------------------------------------------

    async def enroll(self, org: int, slug: str) -> MintedToken:
        """Enrol ``org`` at the store: fetch the challenge, discharge it, answer. Returns ``{token, id}``."""
        challenge = await self._http.request("GET", f"{self.url}/v1/orgs/{org}/enroll")
        text = challenge.get("challenge") if isinstance(challenge, dict) else None
        if not isinstance(text, str):
            raise InvalidToken("the store answered the enrolment request without a challenge")
        held = TokenBundle(decode_token(text))
        reply = await self._call(
            "POST", f"/v1/orgs/{org}/enroll", narrowing("enroll", CONTROL), body={"slug": slug}, token=held
        )
        return MintedToken.from_json(reply)

    async def mint_token(
        self,
        mask: str,
        *,
        vaults: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        ttl: int | None = None,
        org: int | None = None,
    ) -> MintedToken:
        mask_from_string(mask)
        body: dict[str, Any] = {"mask": mask}
        if vaults:
            body["vaults"] = dict(vaults)
        if secrets:
            body["secrets"] = dict(secrets)
        if ttl is not None:
            body["ttl"] = ttl
        o = self._org(org)
        reply = await self._call("POST", f"/v1/orgs/{o}/tokens", narrowing("tokens.mint", CONTROL), body=body)
        return MintedToken.from_json(reply)

    async def revoke_token(self, token_id: str, *, org: int | None = None) -> dict[str, Any]:
        o = self._org(org)
        reply: dict[str, Any] = await self._call(
            "POST", _path("/v1/orgs", o, "tokens", token_id, "revoke"), narrowing("tokens.revoke", CONTROL)
        )
        return reply

    # -- vaults -------------------------------------------------------------------

    async def list_vaults(self, *, org: int | None = None) -> list[Vault]:
        reply = await self._call("GET", f"/v1/orgs/{self._org(org)}/vaults", narrowing("vaults.list", READ))
        return Vault.list_from_json(reply)

    async def create_vault(self, name: str, *, org: int | None = None) -> Vault:
        reply = await self._call(
            "POST", f"/v1/orgs/{self._org(org)}/vaults", narrowing("vaults.create", CONTROL), body={"name": name}
        )
        return Vault.from_json(reply)

    async def delete_vault(self, name: str, *, org: int | None = None) -> None:
        await self._call(
            "DELETE",
            _path("/v1/orgs", self._org(org), "vaults", name),
            narrowing("vaults.delete", CONTROL, vault=name),
        )

    # -- secrets ------------------------------------------------------------------

    def _secret_path(self, org: int | None, vault: str, kind: str, name: str) -> str:
        # Secret names are paths (`db/url`); their slashes stay slashes.
        base = _path("/v1/orgs", self._org(org), "vaults", vault, kind)
        return f"{base}/{quote(_check_name(name), safe='/')}"

    async def list_secrets(
        self, vault: str, *, prefix: str = "", limit: int = 100, cursor: str | None = None, org: int | None = None
    ) -> SecretPage:
        """One page of names (never values); ``next_cursor`` asks for the next."""
        params = {"prefix": prefix, "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        reply = await self._call(
            "GET",
            _path("/v1/orgs", self._org(org), "vaults", vault, "secrets"),
            narrowing("secrets.list", READ, vault=vault),
            params=params,
        )
        return SecretPage.from_json(reply)

    async def iter_secrets(
        self, vault: str, *, prefix: str = "", org: int | None = None
    ) -> AsyncIterator[SecretSummary]:
        """Every secret of ``vault`` (under ``prefix``), page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_secrets(vault, prefix=prefix, cursor=cursor, org=org)
            for item in page.secrets:
                yield item
            cursor = page.next_cursor
            if not cursor:
                return

    async def write_secret(
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
        """Write a new version; ``idempotency_key``: the key of an earlier call whose outcome was unknown
        (:class:`~vault.errors.OutcomeUnknown` carries it), to retry that write; default a fresh one."""
        body: dict[str, Any] = {"value": value}
        if cas is not None:
            body["cas"] = cas
        if pending:
            body["stage"] = "pending"
        if max_versions is not None:
            body["max_versions"] = max_versions
        # `c` as well as `w`: a new secret needs both, and the narrowing never widens the token.
        # One key for this logical write, the same on every retry: the store answers a retry
        # whose first attempt committed with that attempt's outcome instead of a second version.
        reply = await self._call(
            "PUT",
            self._secret_path(org, vault, "secrets", name),
            narrowing("secrets.write", WRITE | CREATE, vault=vault, secret=name),
            body=body,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )
        return Written.from_json(reply)

    async def read_secret(
        self, vault: str, name: str, *, version: int | None = None, pending: bool = False, org: int | None = None
    ) -> Secret:
        params = {}
        if version is not None:
            params["version"] = str(version)
        if pending:
            params["stage"] = "pending"
        reply = await self._call(
            "GET",
            self._secret_path(org, vault, "secrets", name),
            narrowing("secrets.read", READ, vault=vault, secret=name),
            params=params,
        )
        return Secret.from_json(reply)

    async def metadata(self, vault: str, name: str, *, org: int | None = None) -> SecretMetadata:
        reply = await self._call(
            "GET",
            self._secret_path(org, vault, "metadata", name),
            narrowing("secrets.metadata", READ, vault=vault, secret=name),
        )
        return SecretMetadata.from_json(reply)

    async def _versions_call(
        self, kind: str, vault: str, name: str, versions: Sequence[int], org: int | None
    ) -> list[int]:
        reply = await self._call(
            "POST",
            self._secret_path(org, vault, kind, name),
            narrowing(f"secrets.{kind}", DELETE, vault=vault, secret=name),
            body={"versions": list(versions)},
        )
        # An older store answers 204 without saying; then every requested version is assumed changed.
        if isinstance(reply, dict) and isinstance(reply.get("changed"), list):
            return [int(v) for v in reply["changed"]]
        return sorted(set(versions))

    async def delete_versions(
        self, vault: str, name: str, versions: Sequence[int], *, org: int | None = None
    ) -> list[int]:
        """Soft-delete ``versions``; the ones that changed (not those missing or already deleted)."""
        return await self._versions_call("delete", vault, name, versions, org)

    async def undelete_versions(
        self, vault: str, name: str, versions: Sequence[int], *, org: int | None = None
    ) -> list[int]:
        """Restore soft-deleted ``versions``; the ones that changed."""
        return await self._versions_call("undelete", vault, name, versions, org)

    async def destroy_versions(
        self, vault: str, name: str, versions: Sequence[int], *, org: int | None = None
    ) -> list[int]:
        """Remove ``versions``' ciphertext for good; the ones that changed."""
        return await self._versions_call("destroy", vault, name, versions, org)

    async def destroy_secret(self, vault: str, name: str, *, org: int | None = None) -> None:
        await self._call(
            "DELETE",
            self._secret_path(org, vault, "metadata", name),
            narrowing("secrets.destroy", DELETE, vault=vault, secret=name),
        )

    async def promote(self, vault: str, name: str, *, org: int | None = None) -> Promoted:
        reply = await self._call(
            "POST",
            self._secret_path(org, vault, "promote", name),
            narrowing("secrets.promote", WRITE, vault=vault, secret=name),
        )
        return Promoted.from_json(reply)

    async def batch_read(
        self,
        vault: str,
        *,
        names: Sequence[str] | None = None,
        prefix: str | None = None,
        org: int | None = None,
    ) -> BatchRead:
        """The current version of every secret named (or under ``prefix``, or all), in one request."""
        reply = await self._batch_call("read", "secrets.batch_read", vault, names, prefix, org)
        return BatchRead.from_json(reply)

    async def current_versions(
        self,
        vault: str,
        *,
        names: Sequence[str] | None = None,
        prefix: str | None = None,
        org: int | None = None,
    ) -> CurrentVersions:
        """The current version of each secret :meth:`batch_read` would return, without its value (one cheap
        request, audited once as ``secrets.versions``); a name it lacks has no version the caller may read."""
        reply = await self._batch_call("versions", "secrets.versions", vault, names, prefix, org)
        return CurrentVersions.from_json(reply)

    async def _batch_call(
        self,
        kind: str,
        operation: str,
        vault: str,
        names: Sequence[str] | None,
        prefix: str | None,
        org: int | None,
    ) -> Any:
        body: dict[str, Any] = {}
        if names:
            body["names"] = list(names)
        if prefix:
            body["prefix"] = prefix
        return await self._call(
            "POST",
            _path("/v1/orgs", self._org(org), "vaults", vault, kind),
            narrowing(operation, READ, vault=vault, body_secrets=names, body_prefix=prefix),
            body=body,
            idempotent=True,  # a read in a POST (its names in the body): retried like a GET, never "in doubt"
        )

    # -- audit --------------------------------------------------------------------

    async def audit(
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
        """One page of the org's audit events; ``hide_own`` leaves out this caller's own ``audit.*`` events."""
        filters = {
            "vault": vault,
            "secret": secret,
            "actor": actor,
            "token": token,
            "action": action,
            "outcome": outcome,
            "since": since,
            "until": until,
            "cursor": cursor,
            "limit": limit,
            "order": "newest" if newest_first else None,
            "own": "hide" if hide_own else None,
        }
        params = {k: str(v) for k, v in filters.items() if v is not None}
        reply: dict[str, Any] = await self._call(
            "GET", f"/v1/orgs/{self._org(org)}/audit", narrowing("audit.query", AUDIT), params=params
        )
        return reply

    async def audit_export(self, *, org: int | None = None) -> AsyncGenerator[str, None]:
        """The org's export file (docs/audit.md, "Export"), line by line as the store streams it."""
        bundle = await self._owner.store_bundle(narrowing("audit.export", AUDIT))
        async for line in self._http.stream_lines(
            f"{self.url}/v1/orgs/{self._org(org)}/audit/export", authorization=f"Bearer {bundle}"
        ):
            yield line

    async def audit_verify(self, *, org: int | None = None) -> dict[str, Any]:
        """The store's verification of its whole log (every chain, the checkpoints), as ``LogReport.to_json``."""
        reply: dict[str, Any] = await self._call(
            "GET", f"/v1/orgs/{self._org(org)}/audit/verify", narrowing("audit.verify", AUDIT)
        )
        return reply
