"""Every org route's gate: verify the bundle, check the access, audit what was refused.

A guarded handler receives a :class:`~vault.types.RequestContext` (``[Caller]``) with a
verified caller. Whatever the handler or the gate raises is recorded as one
audit event (``denied`` for 401/403, ``error`` otherwise) before the error
middleware renders it; the event names the store token's id when the token at
least parsed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Literal

from aiohttp import web

from vault.audit.refusal import refusal_detail, refusal_outcome
from vault.errors import BadRequest, Unavailable, VaultError
from vault.macaroon import Access
from vault.names import check_org_id, check_secret_name, check_vault_name
from vault.store.caller import Caller
from vault.store.events import audit_event
from vault.types import RequestContext

from ..common import Origin, origin, required_credential
from .services import services_of

__all__ = ["Check", "GuardedHandler", "guarded", "idempotency_key", "run_guarded"]

log = logging.getLogger("cvault.store")

GuardedHandler = Callable[[web.Request, RequestContext[Caller]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """What the gate checks for one request: the route's ``operation`` and ``action`` (docs/api.md's) on
    ``org_id``, and the vault and secret the request names.

    ``extent`` is how much of the access the gate checks before the handler runs: ``"access"`` all of it
    (:meth:`Caller.check`); ``"live"`` only that the bundle is alive (:meth:`Caller.check_live`), for token
    lookups that name no vault; ``"secrets_later"`` all but the secrets, which the route names in its body and
    its service checks one by one (:meth:`Caller.check_secrets_later`). ``enrolled``: the org must have
    enrolled first. ``credentials_of`` reads the credential from the headers (the Vault-compatible API reads
    ``X-Vault-Token`` too).
    """

    org_id: int
    operation: str
    action: int
    vault: str | None = None
    secret: str | None = None
    enrolled: bool = True
    extent: Literal["access", "live", "secrets_later"] = "access"
    credentials_of: Callable[[Mapping[str, str]], str] = required_credential


_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    """The request's ``Idempotency-Key`` (1 to 255 printable ASCII characters), or ``None`` without one."""
    value = headers.get("Idempotency-Key")
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good one)")
    return value


async def record_failure(
    request: web.Request, ctx: RequestContext[Caller], exc: VaultError, vault: str | None, secret: str | None
) -> None:
    services = services_of(request)
    event = audit_event(ctx, refusal_outcome(exc), vault=vault, secret=secret, detail=refusal_detail(exc))
    try:
        committed = services.audit.submit(event)
    except Unavailable:
        committed = None
    if committed is not None:
        # Bounded: with the database frozen, the answer must not wait for it a second time.
        # An event not committed in time stays queued and commits when the database answers.
        await asyncio.wait({committed}, timeout=services.config.database_timeout)
        if committed.done() and committed.exception() is None:
            return
    # The request fails anyway; the operator sees the audit outage in the log.
    log.warning("request %s: audit event for a failed request not committed", ctx.request_id)


def _context(
    seen: Origin, org_id: int, operation: str, caller: Caller | None = None, token_id: str | None = None
) -> RequestContext[Caller]:
    return RequestContext(
        client_addr=seen.client_addr,
        request_id=seen.request_id,
        client_ip=seen.client_ip,
        org_id=org_id,
        operation=operation,
        caller=caller,
        token_id=token_id,
    )


async def run_guarded(request: web.Request, handler: GuardedHandler, check: Check) -> web.StreamResponse:
    """The gate itself, for callers that find the org, vault and secret elsewhere than the native path
    (the Vault-compatible API)."""
    services = services_of(request)
    org_id, operation, vault, secret = check.org_id, check.operation, check.vault, check.secret
    if check.enrolled:
        await services.control.require_enrolled(org_id)
    # The context is built once, after verification (this is the secret read's hot path).
    seen = origin(request)
    credentials: str | None = None
    identified: Caller | None = None
    try:
        credentials = check.credentials_of(request.headers)
        access = Access(
            now=int(services.clock()),
            action=check.action,
            org_id=org_id,
            vault=vault,
            secret=secret,
            operation=operation,
            client_ip=seen.client_ip,
        )
        # identify + check is what tokens.authenticate does; split here so that a refusal by
        # the caveats, after the token and its discharge verified, is audited with the
        # actor and lineage the discharge attested.
        identified = await services.tokens.identify(credentials, access)
        if check.extent == "access":
            identified.check(access)
        elif check.extent == "live":
            identified.check_live(access)
        else:
            identified.check_secrets_later(access)
        caller = identified
    except VaultError as exc:
        token_id = services.tokens.unverified_token_id(credentials) if credentials is not None else None
        refused = _context(seen, org_id, operation, identified, token_id)
        await record_failure(request, refused, exc, vault, secret)
        raise
    ctx = _context(seen, org_id, operation, caller)
    try:
        return await handler(request, ctx)
    except VaultError as exc:
        await record_failure(request, ctx, exc, vault, secret)
        raise
    except web.HTTPException:
        raise  # aiohttp's own replies (e.g. a body over the size cap), not a failure of the store
    except Exception as exc:
        # A bug or an unmapped error: audited as "error" too (issue 20), then the middleware's 500.
        await record_failure(request, ctx, VaultError(f"internal error ({type(exc).__name__})"), vault, secret)
        raise


def guarded(
    operation: str, action: int, *, enrolled: bool = True, secrets_later: bool = False
) -> Callable[[GuardedHandler], Callable[..., Awaitable[web.StreamResponse]]]:
    """Wrap an org route: ``operation`` and ``action`` are docs/api.md's for the route.

    ``secrets_later``: the route names its secrets in the body and its service checks each
    one (:meth:`~vault.store.caller.Caller.check_secrets_later`).
    """

    def wrap(handler: GuardedHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @wraps(handler)
        async def gate(request: web.Request) -> web.StreamResponse:
            match = request.match_info
            # A path whose org is not an org id names no org to audit under: a plain 404.
            org_id = check_org_id(match["org"])
            try:
                vault = check_vault_name(match["vault"]) if "vault" in match else None
                secret = check_secret_name(match["name"]) if "name" in match else None
            except VaultError as exc:
                await record_failure(request, _context(origin(request), org_id, operation), exc, None, None)
                raise
            check = Check(
                org_id=org_id,
                operation=operation,
                action=action,
                vault=vault,
                secret=secret,
                enrolled=enrolled,
                extent="secrets_later" if secrets_later else "access",
            )
            return await run_guarded(request, handler, check)

        return gate

    return wrap
