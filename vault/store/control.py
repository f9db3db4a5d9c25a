"""Org-level operations: enrolment, minting and revoking store tokens, vaults.

Minting never widens: the new token's mask must lie within what the caller's
token and discharge both allow, and the new token carries the caller's own
scoping caveats (``Vaults``, ``Secrets``, ``ClientCIDR``, ``IfPresent``,
``Action``) on top of the requested ones. Per-call narrowing (``Operations``,
``ValidityWindow``, added by attenuate-on-use) is not copied; ask for ``ttl``
to get an expiring token. See ``docs/store.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vault.errors import NotFound, Unauthorized
from vault.macaroon import ALL, Caveat, encode_token, mask_to_string
from vault.macaroon.access import is_subset
from vault.macaroon.caveats import Action, ClientCIDR, IfPresent, Organization, Secrets, ValidityWindow, Vaults
from vault.types import Clock, RequestContext, utc

from .caller import Caller
from .events import audit_event
from .interfaces import AuditSink, KeyDirectory, OrgRepository, RevocationList, SecretRepository
from .models import RootKey, TokenRecord, VaultInfo
from .mounts import check_new_vault_name
from .tokens import StoreTokens, key_id_from_kid

__all__ = ["ControlService", "MintRequest", "MintedToken"]

_COPIED = (Vaults, Secrets, ClientCIDR, IfPresent, Action)


@dataclass(frozen=True, slots=True)
class MintRequest:
    mask: int
    vaults: Mapping[str, int] | None = None
    secrets: Mapping[str, int] | None = None
    ttl: int | None = None


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str = ""
    id: str = ""

    def __repr__(self) -> str:
        return f"MintedToken(id={self.id!r})"


def _granted_at_enrolment(caller: Caller, enroll_key: RootKey) -> int:
    """What the caller may hold in the org, leaving out a challenge's own ``Organization{org, C}``.

    The store mints every challenge with that caveat first; it limits the challenge to
    enrolling, not what enrolling may grant. Every other ``Organization`` and ``Action``
    mask (the org discharge's, any the holder appended, and all of an org token's) counts.
    """
    token = caller.verified.token
    is_challenge = key_id_from_kid(token.nonce.kid) == enroll_key.key_id
    challenge_org = token.unverified_caveats[0] if is_challenge else None
    mask = ALL
    for c in caller.verified.restrictions:
        if c is challenge_org:
            continue
        if isinstance(c, Organization):
            mask &= c.mask if c.id == caller.org_id else 0
        elif isinstance(c, Action):
            mask &= c.mask
    return mask


class ControlService:
    def __init__(
        self,
        *,
        tokens: StoreTokens,
        keys: KeyDirectory,
        enroll_key: RootKey,
        orgs: OrgRepository,
        secrets: SecretRepository,
        revocations: RevocationList,
        audit: AuditSink,
        clock: Clock,
    ) -> None:
        self._tokens = tokens
        self._keys = keys
        self._enroll_key = enroll_key
        self._orgs = orgs
        self._secrets = secrets
        self._revocations = revocations
        self._audit = audit
        self._clock = clock

    async def require_enrolled(self, org_id: int) -> RootKey:
        root = await self._keys.root_key_for(org_id)
        if root is None:
            raise NotFound(f"organization {org_id} is not enrolled at this store; enrol it first")
        return root

    # -- enrolment --------------------------------------------------------------

    def challenge(self, org_id: int) -> str:
        return encode_token(self._tokens.challenge(self._enroll_key, org_id, int(self._clock())))

    async def enroll(self, ctx: RequestContext[Caller], slug: str | None = None) -> MintedToken:
        """A fresh root store token (``rwcdCa``) for the org; the org and its root key on first use.

        The org is recorded under the slug the authority attested in the discharge; ``slug``, if
        given, must be that one (a client cannot enrol an org under another org's slug).
        """
        caller = ctx.verified_caller
        attested = caller.org_slug
        if attested is None:
            raise Unauthorized(
                "the org discharge attests no slug for this organization (an authority older than this store): "
                "upgrade the authority, then enrol again"
            )
        if slug is not None and slug != attested:
            raise Unauthorized(
                f"the authority knows organization {caller.org_id} as {attested!r}, not {slug!r}: "
                "an organization is enrolled under its own slug"
            )
        slug = attested
        granted = _granted_at_enrolment(caller, self._enroll_key)
        if not is_subset(ALL, granted):
            # Minting never widens, and neither does enrolment: the root token's mask must be
            # what the discharge (and anything the holder appended) allows, all of it.
            raise Unauthorized(
                f"enrolment mints a root token ('{mask_to_string(ALL)}'); your token and discharge allow only "
                f"'{mask_to_string(granted)}' in organization {caller.org_id}: enrol with an owner's unrestricted token"
            )
        minted: list[MintedToken] = []

        def mint(root: RootKey) -> TokenRecord:
            token = self._tokens.mint(root, caller.org_id, ALL)
            minted.append(MintedToken(encode_token(token), token.token_id))
            return TokenRecord(
                token.token_id,
                caller.org_id,
                "root",
                mask_to_string(ALL),
                actor=caller.actor,
                root_key_id=root.key_id,
            )

        async def audited(record: TokenRecord, tx: object) -> None:
            await self._audit.record_in(tx, audit_event(ctx, "ok", detail={"minted": record.id, "slug": slug}))

        _org, root = await self._orgs.enroll(caller.org_id, slug, mint, audited)
        self._keys.remember(root)
        return minted[0]

    # -- tokens -------------------------------------------------------------------

    async def mint(self, ctx: RequestContext[Caller], request: MintRequest) -> MintedToken:
        caller = ctx.verified_caller
        allowed = caller.effective_mask()
        if not is_subset(request.mask, allowed):
            raise Unauthorized(
                f"cannot mint '{mask_to_string(request.mask)}': your token and discharge allow only "
                f"'{mask_to_string(allowed)}' in organization {caller.org_id}"
            )
        root = await self.require_enrolled(caller.org_id)
        caveats: list[Caveat] = []
        if request.vaults:
            caveats.append(Vaults(tuple(sorted(request.vaults.items()))))
        if request.secrets:
            caveats.append(Secrets(tuple(sorted(request.secrets.items()))))
        # The caller's own scoping comes along, so the new token is never wider.
        caveats.extend(c for c in caller.verified.token.unverified_caveats if isinstance(c, _COPIED))
        expires_at = None
        if request.ttl is not None:
            now = int(self._clock())
            caveats.append(ValidityWindow(now, now + request.ttl))
            expires_at = utc(now + request.ttl)
        token = self._tokens.mint(root, caller.org_id, request.mask, caveats)
        record = TokenRecord(
            token.token_id,
            caller.org_id,
            "minted",
            mask_to_string(request.mask),
            vaults={k: mask_to_string(v) for k, v in request.vaults.items()} if request.vaults else None,
            secrets={k: mask_to_string(v) for k, v in request.secrets.items()} if request.secrets else None,
            parent=caller.token_id,
            actor=caller.actor,
            expires_at=expires_at,
            root_key_id=root.key_id,
        )

        async def audited(r: TokenRecord, tx: object) -> None:
            detail: dict[str, object] = {"minted": r.id, "mask": r.mask}
            if r.vaults:
                detail["vaults"] = r.vaults
            if r.secrets:
                detail["secrets"] = r.secrets
            if request.ttl is not None:
                detail["ttl"] = request.ttl
            await self._audit.record_in(tx, audit_event(ctx, "ok", detail=detail))

        await self._orgs.record_token(record, audited)
        return MintedToken(encode_token(token), token.token_id)

    async def revoke(self, ctx: RequestContext[Caller], token_id: str) -> list[str]:
        """Revoke the token and every token minted from it; every store node sees it within a second."""

        async def audited(ids: list[str], tx: object) -> None:
            await self._audit.record_in(
                tx, audit_event(ctx, "ok", detail={"revoked": token_id, "with_descendants": ids})
            )

        ids = await self._orgs.revoke_token(ctx.verified_caller.org_id, token_id, audited)
        await self._revocations.revoke(ids)
        return ids

    # -- vaults -------------------------------------------------------------------

    async def create_vault(self, ctx: RequestContext[Caller], name: str) -> VaultInfo:
        async def audited(info: VaultInfo, tx: object) -> None:
            await self._audit.record_in(tx, audit_event(ctx, "ok", vault=name))

        return await self._secrets.create_vault(ctx.verified_caller.org_id, check_new_vault_name(name), audited)

    async def list_vaults(self, ctx: RequestContext[Caller]) -> list[VaultInfo]:
        found = await self._secrets.list_vaults(ctx.verified_caller.org_id)
        await self._audit.record(audit_event(ctx, "ok", detail={"returned": len(found)}))
        return found

    async def delete_vault(self, ctx: RequestContext[Caller], name: str) -> None:
        async def audited(_name: str, tx: object) -> None:
            await self._audit.record_in(tx, audit_event(ctx, "ok", vault=name))

        await self._secrets.delete_vault(ctx.verified_caller.org_id, name, audited)
