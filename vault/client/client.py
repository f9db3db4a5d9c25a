"""The async client: credentials, discharges and the two service clients behind one object.

::

    async with Client(store_url=..., authority_url=..., credentials=Credentials.from_text(...)) as c:
        secrets = await c.store.batch_read("prod")

Every store call is *attenuated on use*: the store token held here is narrowed
to the one operation, vault and secret the call touches and to a one-minute
validity window, and only that narrowed copy (with the org discharge, which is
bound to the unnarrowed token and therefore works for every copy) leaves the
process.

Discharges are only ever requested from the configured authority's two
locations (``<authority>/login`` with the session, ``<authority>/org`` with the
authority bundle, or a workload's JWT): a token naming another third party gets an error, never our
credentials.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from vault.errors import InvalidToken, MissingDischarge, Unauthenticated, VaultError
from vault.macaroon import Bundle, Caveat
from vault.macaroon.caveats import ValidityWindow

from .credentials import Credentials, TokenBundle, organization_of
from .discharges import Discharges
from .http import HTTP, RetryPolicy
from .store import StoreClient

if TYPE_CHECKING:
    import aiohttp

    from .authority import AuthorityClient

__all__ = ["CLOCK_SKEW", "DEFAULT_WINDOW", "Client", "TokenCache"]

DEFAULT_WINDOW = 60
"""Seconds a narrowed store token stays valid."""

CLOCK_SKEW = 5
"""A narrowed token's window opens this many seconds early, for a store whose clock is a little behind."""

AUTO_TOKEN_TTL = 3600
_AUTO_TOKEN_REUSE_MARGIN = 300


class TokenCache(Protocol):
    """Where permission tokens minted with the session are kept between runs (the CLI's session file)."""

    def get(self, org: int) -> str | None: ...

    def put(self, org: int, token: str) -> None: ...


class Client:
    def __init__(
        self,
        *,
        store_url: str,
        authority_url: str,
        credentials: Credentials | None = None,
        window: int = DEFAULT_WINDOW,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        clock: Callable[[], float] = time.time,
        token_cache: TokenCache | None = None,
        http: HTTP | None = None,
        ca_cert: str | None = None,
        discharge_margin: float = 60.0,
    ) -> None:
        if not 0 < window <= 3600:
            raise ValueError("window must be between 1 and 3600 seconds")
        self.store_url = store_url.rstrip("/")
        self.authority_url = authority_url.rstrip("/")
        self.login_location = self.authority_url + "/login"
        self.org_location = self.authority_url + "/org"
        self.credentials = credentials or Credentials()
        self.window = window
        self._clock = clock
        self._token_cache = token_cache
        self._minted: dict[int, TokenBundle] = {}
        # A store token and discharge from the store's Vault JWT login (a workload with no store token).
        self._login_token: TokenBundle | None = None
        self._login_until = 0.0
        # `http`: another transport (the CLI's BlockingHTTP); it then owns timeout and retry.
        self.http = http or HTTP(
            timeout=timeout, retry=retry or RetryPolicy(), trace_configs=trace_configs, ca_cert=ca_cert
        )
        # margin: a cached discharge is used until this many seconds before it ends
        # (infinite: never cached, as `cvault vault-token` wants a fresh one each time).
        self.discharges = Discharges(self.http, margin=discharge_margin, clock=clock)
        self.store = StoreClient(self.http, self.store_url, self)

    @functools.cached_property
    def authority(self) -> AuthorityClient:
        # Built (and its module, with its result types, imported) on first use: a workload's
        # `cvault run` talks to the authority only for a discharge, which needs neither.
        from .authority import AuthorityClient

        return AuthorityClient(self.http, self.authority_url, self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, config: Path | None = None, **kwargs: Any) -> Client:
        """A client set up exactly as ``cvault`` would be, from the ``CVAULT_*`` variables (:mod:`.environment`).

        ``kwargs`` go to the constructor (``timeout``, ``retry``, ``window``...).
        """
        from .environment import load_settings

        settings = load_settings(os.environ if env is None else env, config)
        return cls(**{**settings.client_arguments(), **kwargs})

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.discharges.close()
        await self.http.close()

    def now(self) -> int:
        return int(self._clock())

    # -- credentials --------------------------------------------------------------

    def session_header(self) -> str:
        if not self.credentials.session:
            raise Unauthenticated("not logged in: run `cvault login` (or set CVAULT_SESSION)")
        return f"Bearer {self.credentials.session}"

    def store_token(self) -> TokenBundle:
        held = self.credentials.store_token or self._login_token
        if held is None:
            if self.credentials.workload_role is not None:
                raise Unauthenticated("no store token yet: call `await client.ensure_store_token()` first")
            raise Unauthenticated("no store token: set CVAULT_STORE_TOKEN or CVAULT_STORE_TOKEN_FILE")
        if not held.token.third_party_tickets(self.org_location) and held.token.location == self.authority_url:
            raise Unauthenticated(
                "CVAULT_STORE_TOKEN holds an authority token (service or permission token); the two may be "
                "swapped: put the store token in CVAULT_STORE_TOKEN and the authority token in CVAULT_AUTH_TOKEN"
            )
        return held

    def _configured_authority_token(self) -> TokenBundle | None:
        held = self.credentials.authority_token
        # Only a store token carries a ticket for the authority's org discharger; as the
        # authority credential it would need its own discharge to get one (a cycle).
        if held is not None and held.token.third_party_tickets(self.org_location):
            raise Unauthenticated(
                "CVAULT_AUTH_TOKEN holds a store token; the two may be swapped: put the store token in "
                "CVAULT_STORE_TOKEN and the authority (service) token in CVAULT_AUTH_TOKEN"
            )
        return held

    async def ensure_store_token(self) -> TokenBundle:
        """The store token: the configured one; else, for a workload with ``workload_role``, one from the
        store's Vault JWT login, logged in again when a quarter of its discharge's life is left
        (docs/workload-identity.md: the workload holds nothing on disk but its platform's JWT)."""
        role = self.credentials.workload_role
        if self.credentials.store_token is not None or role is None:
            return self.store_token()
        if self._login_token is None or self._clock() >= self._login_until:
            identity = self.credentials.workload_identity
            if identity is None:
                raise Unauthenticated(
                    "CVAULT_WORKLOAD_ROLE needs the workload's JWT: CVAULT_OIDC_TOKEN_FILE, CVAULT_OIDC_TOKEN, "
                    "or GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL"
                )
            reply = await self.http.request(
                "POST",
                f"{self.store_url}/vault/v1/auth/jwt/login",
                body={"role": role, "jwt": await identity.token(self.http)},
                idempotent=True,  # each login mints its own token: a retried one changes nothing else
            )
            auth = reply.get("auth") if isinstance(reply, dict) else None
            token = auth.get("client_token") if isinstance(auth, dict) else None
            lease = auth.get("lease_duration") if isinstance(auth, dict) else None
            if not isinstance(token, str) or not isinstance(lease, int) or lease <= 0:
                raise InvalidToken("the store's workload login answered without a token")
            self._login_token = TokenBundle.parse(token, what="store token from the workload login")
            self._login_until = self._clock() + lease * 3 / 4
        return self._login_token

    def store_org(self) -> int:
        org = organization_of(self.store_token().token)
        if org is None:
            raise InvalidToken("the store token names no single organization")
        return org

    async def _authorization_for(self, location: str, org: int | None = None) -> str:
        if location == self.login_location:
            return self.session_header()
        if location == self.org_location:
            identity = self.credentials.workload_identity
            if identity is not None and self._configured_authority_token() is None:
                # A workload: its platform's JWT stands in for an authority token (docs/workload-identity.md).
                return f"Bearer {await identity.token(self.http)}"
            return f"Bearer {await self.authority_bundle(org)}"
        raise MissingDischarge(
            location,
            f"the token needs a discharge from {location}, which is not the configured authority "
            f"({self.authority_url}); set CVAULT_AUTHORITY_URL to the authority that issued it",
        )

    async def org_slug(self) -> str | None:
        """The store token's org's slug, best effort: from the session's memberships (None without a session)."""
        if not self.credentials.session:
            return None
        org = self.store_org()
        try:
            memberships = await self.authority.list_orgs()
        except VaultError:
            return None
        return next((m.slug for m in memberships if m.id == org), None)

    async def member_emails(self) -> dict[str, str]:
        """User id -> email of the store token's org, best effort: an owner's or auditor's session may list
        members (docs/audit.md, "Who the actors are")."""
        if not self.credentials.session:
            return {}
        try:
            members = await self.authority.list_members(self.store_org())
        except VaultError:
            return {}
        return {str(m.user_id): m.email for m in members}

    async def authority_token(self, org: int | None) -> TokenBundle:
        """The authority credential: the configured one, or a permission token minted with the session."""
        configured = self._configured_authority_token()
        if configured is not None:
            return configured
        if not self.credentials.session:
            raise Unauthenticated(
                "no authority credential: set CVAULT_AUTH_TOKEN (a service token) or run `cvault login`"
            )
        if org is None:
            raise Unauthenticated("no authority token given and no organization to mint one for")
        return await self._permission_token_for(org)

    async def _permission_token_for(self, org: int) -> TokenBundle:
        held = self._minted.get(org)
        if held is None and self._token_cache is not None:
            text = self._token_cache.get(org)
            if text:
                try:
                    held = TokenBundle.parse(text, what="cached permission token")
                except InvalidToken:
                    held = None
        if held is not None and _expires_after(held, self.now() + _AUTO_TOKEN_REUSE_MARGIN):
            self._minted[org] = held
            return held
        reply = await self.authority.create_token(org, ttl=AUTO_TOKEN_TTL)
        minted = TokenBundle.parse(reply.token, what="permission token from the authority")
        self._minted[org] = minted
        if self._token_cache is not None:
            self._token_cache.put(org, minted.encode())
        return minted

    async def authority_bundle(self, org: int | None = None, token: TokenBundle | None = None) -> str:
        """The authority credential with its login discharge (if it needs one), encoded."""
        held = token or await self.authority_token(org)
        discharges = await self.discharges.for_token(
            held.token, lambda loc: self._authorization_for(loc, org), held.discharges
        )
        return Bundle((held.token, *discharges)).encode()

    async def store_bundle(self, caveats: Sequence[Caveat], token: TokenBundle | None = None) -> str:
        """A narrowed copy of the store token (``caveats`` + a short window) with its bound discharges."""
        held = token or await self.ensure_store_token()
        org = organization_of(held.token)
        discharges = await self.discharges.for_token(
            held.token, lambda loc: self._authorization_for(loc, org), held.discharges
        )
        now = self.now()
        narrowed = held.token.attenuate([*caveats, ValidityWindow(now - CLOCK_SKEW, now + self.window)])
        return Bundle((narrowed, *discharges)).encode()


def _expires_after(held: TokenBundle, when: int) -> bool:
    ends = [c.not_after for c in held.token.unverified_caveats if isinstance(c, ValidityWindow)]
    return not ends or min(ends) > when
