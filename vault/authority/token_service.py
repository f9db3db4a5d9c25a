"""Permission tokens and service tokens: minting, listing, strip, revocation.

A *permission token* is ``Organization{org, mask}`` + ``ValidityWindow`` + a 3P
caveat to ``<authority>/login`` whose ticket holds ``ConfineUser{user}``: it is
worth nothing without a fresh login discharge. *Strip* turns one (with its
discharge) into a *service token*: a new token, signed with the current root
key, with the same caveats minus the login caveat and minus the authority's own
issuance ``ValidityWindow`` (every caveat the holder appended stays), recorded
with its parent. Revoking a token revokes every
token recorded below it.
"""

from __future__ import annotations

import uuid

from vault.errors import BadRequest, NotFound, Unauthorized, Unprocessable
from vault.macaroon import CONTROL, Access, Caveat, Macaroon, add_third_party, mask_to_string
from vault.macaroon.caveats import ConfineUser, MaxValidity, Organization, ThirdParty, ValidityWindow
from vault.types import Clock, IPAddress, RequestContext, utc

from .accounts import Accounts
from .audit import Auditor
from .interfaces import RevocationList, RootKeys, TokenRepository
from .principal import CARRIED, Principal
from .records import TokenKind, TokenRecord
from .roles import Role
from .ticket_keys import TicketKeys

__all__ = ["DEFAULT_TOKEN_TTL", "MAX_TOKEN_TTL", "TokenService", "check_token_id"]


DEFAULT_TOKEN_TTL = 24 * 3600
MAX_TOKEN_TTL = 90 * 24 * 3600


def check_token_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise BadRequest("a token id is a UUID like 0f8fad5b-d9cb-469f-a165-70867728950e") from None


class TokenService:
    def __init__(
        self,
        *,
        location: str,
        login_location: str,
        login_ttl: int,
        keys: TicketKeys,
        root_keys: RootKeys,
        tokens: TokenRepository,
        revocations: RevocationList,
        accounts: Accounts,
        clock: Clock,
        audit: Auditor,
    ) -> None:
        self._location = location
        self._login_location = login_location
        self._login_ttl = login_ttl
        self._keys = keys
        self._root_keys = root_keys
        self._tokens = tokens
        self._revocations = revocations
        self._accounts = accounts
        self._clock = clock
        self._audit = audit

    async def mint(
        self,
        user_id: int,
        org_id: int,
        mask: int | None,
        ttl: int | None,
        ctx: RequestContext[None],
        *,
        via: Principal | None = None,
        client_ip: IPAddress | None = None,
    ) -> tuple[Macaroon, TokenRecord]:
        """A permission token for ``user_id`` in ``org_id``, its mask never above the user's role.

        ``via`` is the caller's verified bundle when it authenticated with a
        token rather than a session: the bundle must allow ``C`` on the org (all
        of its caveats are checked, fail closed), the new mask stays within its
        mask, the new token expires no later than it, and it becomes the new
        token's parent (revoking it revokes the new one).
        """
        now = int(self._clock())
        ttl = DEFAULT_TOKEN_TTL if ttl is None else ttl
        if not 0 < ttl <= MAX_TOKEN_TTL:
            raise BadRequest(f"ttl must be between 1 and {MAX_TOKEN_TTL} seconds")
        role = await self._accounts.require_role(user_id, org_id)
        allowed = role.mask
        expires = now + ttl
        parent: str | None = None
        carried: list[Caveat] = []
        if via is not None:
            via.verified.check(Access(now, action=CONTROL, org_id=org_id, client_ip=client_ip, operation="tokens.mint"))
            allowed &= via.org_mask(org_id)
            own_windows = [c.not_after for c in via.token.unverified_caveats if isinstance(c, ValidityWindow)]
            expires = min([expires, *own_windows])
            parent = via.record.id
            # Store restrictions the mint check cannot see (an IfPresent whose else allows C
            # passes it) stay on the new token: minting never widens the bundle.
            carried = [c for c in via.verified.restrictions if isinstance(c, CARRIED)]
        mask = allowed if mask is None else mask
        if not mask:
            raise BadRequest("mask must name at least one permission")
        if mask & ~allowed:
            raise Unauthorized(
                f"you may grant at most '{mask_to_string(allowed)}' in organization {org_id} "
                f"(role {role.value}), not '{mask_to_string(mask & ~allowed)}'"
            )
        kid, key = await self._root_keys.current()
        token = Macaroon.mint(
            kid, self._location, key, [Organization(org_id, mask), ValidityWindow(now, expires), *carried]
        )
        token = add_third_party(
            token,
            self._login_location,
            self._keys.issuer_login_key,
            self._keys.issuer_public_key,
            [ConfineUser(user_id), MaxValidity(self._login_ttl)],
        )
        record = TokenRecord(
            token.token_id,
            user_id,
            org_id,
            TokenKind.PERMISSION,
            parent,
            mask,
            utc(now),
            utc(expires),
            root_key_id=int.from_bytes(kid, "big"),
        )

        async def audited(minted: TokenRecord, tx: object) -> None:
            await self._audit.record_in(
                tx,
                ctx,
                "token.mint",
                org=org_id,
                token_id=minted.id,
                lineage=(parent,) if parent else (),
                user_id=user_id,
                mask=mask_to_string(mask),
                expires=expires,
            )

        await self._tokens.record(record, audited)
        return token, record

    async def for_user(self, user_id: int) -> list[TokenRecord]:
        return await self._tokens.for_user(user_id)

    async def strip(
        self, principal: Principal, client_ip: IPAddress | None, ctx: RequestContext[None]
    ) -> tuple[Macaroon, TokenRecord]:
        """A service token from a permission token and its login discharge (see the module docstring)."""
        now = int(self._clock())
        parent = principal.record
        if principal.kind is not TokenKind.PERMISSION:
            raise BadRequest("only a permission token (with its login discharge) can be stripped")
        principal.check_here(Access(now, org_id=parent.org_id, client_ip=client_ip))
        await self._accounts.require_role(principal.user_id, parent.org_id)
        caveats = []
        # The authority minted everything before its login caveat; the holder appended
        # everything after it. Only the issuance window and the login caveat go: a window
        # the holder added stays (attenuation never widens, and neither does strip).
        issued = True
        for c in principal.token.unverified_caveats:
            if issued and isinstance(c, ValidityWindow):
                continue
            if isinstance(c, ThirdParty):
                if c.location == self._login_location and issued:
                    issued = False
                    continue
                # Its discharge key is sealed under the old chain; carrying it over would make the
                # new token undischargeable, dropping it would widen the token.
                raise Unprocessable(f"the token has a third-party caveat for {c.location}; strip cannot keep it")
            caveats.append(c)
        kid, key = await self._root_keys.current()
        token = Macaroon.mint(kid, self._location, key, caveats)
        # The holder's own windows bound the service token: `tokens list` shows the narrowest.
        ends = [c.not_after for c in caveats if isinstance(c, ValidityWindow)]
        record = TokenRecord(
            token.token_id,
            principal.user_id,
            parent.org_id,
            TokenKind.SERVICE,
            parent.id,
            principal.org_mask(parent.org_id),
            utc(now),
            utc(min(ends)) if ends else None,
            root_key_id=int.from_bytes(kid, "big"),
        )

        async def audited(stripped: TokenRecord, tx: object) -> None:
            await self._audit.record_in(
                tx,
                ctx,
                "token.strip",
                org=parent.org_id,
                token_id=stripped.id,
                lineage=(parent.id, *principal.lineage),
                user_id=principal.user_id,
            )

        await self._tokens.record(record, audited)
        return token, record

    async def revoke(self, user_id: int, token_id: str, ctx: RequestContext[None]) -> list[str]:
        """Revoke ``token_id`` and its descendants; allowed to the token's user and the org's owners."""
        record = await self._tokens.get(check_token_id(token_id))
        if record is None:
            raise NotFound(f"token {token_id} not found")
        if record.user_id != user_id:
            role = await self._accounts.require_role(user_id, record.org_id)
            if role is not Role.OWNER:
                raise Unauthorized("only the token's user or an owner of its organization may revoke it")

        async def audited(ids: list[str], tx: object) -> None:
            await self._audit.record_in(
                tx, ctx, "token.revoke", org=record.org_id, token_id=record.id, user_id=user_id, revoked=ids
            )

        ids = await self._tokens.revoke(record.id, utc(self._clock()), audited)
        self._revocations.remember(ids)
        return ids
