"""What a client holds: a store token, an authority credential, a login session.

The authority credential is either a *service token* (no third-party caveat,
usable alone) or a *permission token*, whose login caveat is discharged with the
session. Nothing here is ever printed: reprs show token ids, never tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vault.errors import InvalidToken
from vault.macaroon import Bundle, Macaroon, parse_bundle
from vault.macaroon.caveats import Organization

if TYPE_CHECKING:
    from .workload_identity import IdentitySource

__all__ = ["Credentials", "TokenBundle", "organization_of"]


@dataclass(frozen=True)
class TokenBundle:
    """One permission token and the discharges that came with it (often none)."""

    token: Macaroon = field(repr=False)
    discharges: tuple[Macaroon, ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, text: str, *, what: str) -> TokenBundle:
        try:
            bundle = parse_bundle(text)
        except InvalidToken:
            raise InvalidToken(f"the {what} is truncated or corrupt; copy it again in full") from None
        tokens = bundle.permission_tokens
        if len(tokens) != 1:
            raise InvalidToken(f"the {what} must hold exactly one token (plus discharges), not {len(tokens)}")
        return cls(tokens[0], tuple(bundle.discharges))

    @property
    def token_id(self) -> str:
        return self.token.token_id

    def encode(self) -> str:
        return Bundle((self.token, *self.discharges)).encode()

    def __repr__(self) -> str:
        return f"TokenBundle(id={self.token_id}, location={self.token.location!r})"


def organization_of(token: Macaroon) -> int | None:
    """The org a token is confined to, from its (unverified) ``Organization`` caveat."""
    orgs = {c.id for c in token.unverified_caveats if isinstance(c, Organization)}
    return orgs.pop() if len(orgs) == 1 else None


@dataclass(frozen=True)
class Credentials:
    store_token: TokenBundle | None = None
    authority_token: TokenBundle | None = None
    session: str | None = field(default=None, repr=False)
    # A workload's platform-signed JWT, asked for at each org discharge (docs/workload-identity.md).
    workload_identity: IdentitySource | None = field(default=None, repr=False)
    # With no store token: log in at the store's Vault JWT login as this role ('<org slug>/<binding>').
    workload_role: str | None = None

    @classmethod
    def from_text(
        cls,
        *,
        store_token: str | None = None,
        authority_token: str | None = None,
        session: str | None = None,
        workload_identity: IdentitySource | None = None,
        workload_role: str | None = None,
    ) -> Credentials:
        return cls(
            TokenBundle.parse(store_token, what="store token") if store_token else None,
            TokenBundle.parse(authority_token, what="authority token") if authority_token else None,
            session.strip() if session else None,
            workload_identity,
            workload_role.strip() if workload_role else None,
        )
