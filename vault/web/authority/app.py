"""The authority's aiohttp application: ``create_authority_app(config)``.

Resources (pool, keys, revocation watcher, audit log, services) are opened in
``cleanup_ctx`` and closed in reverse order. The service refuses to start on a
database that is not migrated, or without a master key.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiohttp import web

from vault.audit.event import AuditEvent
from vault.audit.log import AuditLog
from vault.authority.accounts import Accounts
from vault.authority.audit import Auditor
from vault.authority.dischargers import LoginDischarger, OrgDischarger
from vault.authority.interfaces import AuthorityEvent
from vault.authority.invitations import Invitations
from vault.authority.jwks import JwksCache
from vault.authority.principal import BundleVerifier
from vault.authority.rate_limit import FailureLimiter
from vault.authority.revocation_feed import RevocationFeed
from vault.authority.sessions import Sessions
from vault.authority.ticket_keys import TicketKeys
from vault.authority.token_service import TokenService
from vault.authority.workload_discharger import IssuerBindings, WorkloadDischarger
from vault.authority.workload_jwt import JwtLimits
from vault.authority.workloads import Workloads
from vault.config import Config, require_database_url, require_master_keys
from vault.crypto.passwords import INTERACTIVE, PasswordCost, hash_password, verify_password
from vault.crypto.ticket_keys import TicketKeyRing
from vault.mail import mailer_from_config
from vault.storage.accounts import PgAccountRepository
from vault.storage.audit import PgAuditRepository
from vault.storage.authority_keys import (
    ISSUER_PURPOSE,
    LOGIN_PURPOSE,
    ORG_PURPOSE,
    RootKeyRing,
    ensure_key,
)
from vault.storage.authority_tokens import PgTokenRepository
from vault.storage.health import DatabaseHealth
from vault.storage.invitations import PgInvitationRepository
from vault.storage.key_watch import KeyWatcher
from vault.storage.keys import PgKeyRepository
from vault.storage.migrations import require_migrated
from vault.storage.pool import Pool, pool_in
from vault.storage.revocations import RevocationWatcher
from vault.storage.sessions import PgSessionRepository
from vault.storage.workloads import PgWorkloadRepository
from vault.types import Clock, Random

from ..common import MAX_BODY_BYTES, middlewares
from ..contract import add_operations
from ..metrics import Metrics, add_metrics
from ..service_routes import serve_document
from .jwks_fetch import HttpsKeySetFetcher
from .openapi import OPERATIONS, document
from .services import SERVICES_KEY, AuthorityServices

__all__ = ["SERVICES_KEY", "AuthorityServices", "create_authority_app", "open_authority"]

SCHEMA = "authority"


class Argon2Passwords:
    """:class:`vault.authority.sessions.PasswordHasher` over :mod:`vault.crypto.passwords`."""

    def __init__(self, cost: PasswordCost) -> None:
        self._cost = cost

    def hash(self, password: str) -> str:
        return hash_password(password, self._cost)

    def verify(self, password_hash: str, password: str) -> bool:
        return verify_password(password_hash, password)


class AuditAdapter:
    """:class:`vault.authority.interfaces.AuditSink` over the shared hash-chained audit log."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def record(self, event: AuthorityEvent) -> None:
        await self._log.record(_audit_event(event))

    async def record_in(self, transaction: object, event: AuthorityEvent) -> None:
        await self._log.record_in(transaction, _audit_event(event))


def _audit_event(event: AuthorityEvent) -> AuditEvent:
    return AuditEvent(
        service="authority",
        action=event.action,
        outcome=event.outcome,
        org=event.org,
        token_id=event.token_id,
        lineage=event.lineage,
        actor=event.actor,
        client_addr=event.client_addr,
        request_id=event.request_id,
        detail=event.detail,
    )


@asynccontextmanager
async def open_authority(
    config: Config,
    *,
    pool: Pool | None = None,
    clock: Clock = time.time,
    random: Random = os.urandom,
    password_cost: PasswordCost = INTERACTIVE,
    limiter: FailureLimiter | None = None,
    reconcile_interval: float | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[AuthorityServices]:
    """Open everything the authority needs (the web app and ``cvault bootstrap`` share this).

    Refuses an unmigrated database (:class:`~vault.errors.MigrationError`) and a
    missing master key (:class:`~vault.errors.ConfigError`). A ``pool`` passed
    in is not closed here.
    """
    async with AsyncExitStack() as stack:
        # Each resource is closed as soon as a later one fails to open, all in reverse order on the way out.
        db = pool or await pool_in(
            stack, require_database_url(config), max_size=config.database_pool_size, timeout=config.database_timeout
        )
        fetcher = HttpsKeySetFetcher(config.workload_jwks_ca_file)
        stack.push_async_callback(fetcher.close)
        await require_migrated(db, SCHEMA, sql_dir=config.sql_dir)
        key_repo = await PgKeyRepository.open(db, SCHEMA, require_master_keys(config))
        root_keys = await RootKeyRing.open(db, key_repo)
        # Rotations and retirements of root keys reach every node through LISTEN (docs/keys.md).
        for purpose in (LOGIN_PURPOSE, ORG_PURPOSE, ISSUER_PURPOSE):
            await ensure_key(db, key_repo, purpose)

        async def ticket_rings() -> tuple[TicketKeyRing, TicketKeyRing, TicketKeyRing]:
            return (
                await key_repo.ticket_ring(LOGIN_PURPOSE),
                await key_repo.ticket_ring(ORG_PURPOSE),
                await key_repo.ticket_ring(ISSUER_PURPOSE),
            )

        login, org, issuer = await ticket_rings()
        keys = TicketKeys(login=login, org=org, issuer=issuer)

        async def reload_ticket_keys() -> None:
            login, org, issuer = await ticket_rings()
            keys.install(login=login, org=org, issuer=issuer)

        key_watcher = KeyWatcher(db, SCHEMA, interval=config.key_watch_interval)
        key_watcher.on_change(root_keys.reload)
        key_watcher.on_change(reload_ticket_keys)
        await key_watcher.start()
        stack.push_async_callback(key_watcher.close)
        if reconcile_interval is None:
            watcher = RevocationWatcher(db, SCHEMA)
        else:
            watcher = RevocationWatcher(db, SCHEMA, reconcile_interval=reconcile_interval)
        await watcher.start()
        stack.push_async_callback(watcher.close)
        log = AuditLog(PgAuditRepository(db, SCHEMA), timeout=config.database_timeout)
        await log.start()
        stack.push_async_callback(log.close)
        if metrics is not None:
            metrics.watch(audit=log, pool=db)
        yield _services(config, db, keys, root_keys, watcher, log, clock, random, password_cost, limiter, fetcher)


def create_authority_app(config: Config, *, pool: Pool | None = None, **options: Any) -> web.Application:
    """The authority app; ``options`` are those of :func:`open_authority` (clock, random, password_cost, ...)."""
    # No aiohttp access log: it prints query strings, which can carry tokens (ours logs paths only).
    app = web.Application(
        middlewares=middlewares(config.trusted_proxies),
        client_max_size=MAX_BODY_BYTES,
        handler_args={"access_log": None},
    )
    metrics = add_metrics(app, config, "authority")

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with open_authority(config, pool=pool, metrics=metrics, **options) as services:
            app[SERVICES_KEY] = services
            yield

    async def release_feed_readers(app: web.Application) -> None:
        # Before the server waits for open requests: long polls of the feed end now.
        if SERVICES_KEY in app:
            app[SERVICES_KEY].feed.close()

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(release_feed_readers)
    add_operations(app.router, OPERATIONS)
    serve_document(app, document(config.authority_url))
    return app


def _services(
    config: Config,
    db: Pool,
    keys: TicketKeys,
    root_keys: RootKeyRing,
    watcher: RevocationWatcher,
    log: AuditLog,
    clock: Clock,
    random: Random,
    password_cost: PasswordCost,
    limiter: FailureLimiter | None,
    fetcher: HttpsKeySetFetcher,
) -> AuthorityServices:
    location = config.authority_url
    login_location, org_location = f"{location}/login", f"{location}/org"
    audit = Auditor(AuditAdapter(log))
    account_repo = PgAccountRepository(db)
    token_repo = PgTokenRepository(db)
    session_repo = PgSessionRepository(db)
    sessions = Sessions(
        accounts=account_repo,
        sessions=session_repo,
        passwords=Argon2Passwords(password_cost),
        limiter=limiter or FailureLimiter(),
        ttl=config.session_ttl,
        clock=clock,
        random=random,
        audit=audit,
    )
    accounts = Accounts(accounts=account_repo, sessions=sessions, random=random, audit=audit)
    invitations = Invitations(
        repository=PgInvitationRepository(db),
        accounts=accounts,
        sessions=sessions,
        clock=clock,
        random=random,
        audit=audit,
        mailer=mailer_from_config(config),
    )
    verifier = BundleVerifier(
        location=location,
        login_location=login_location,
        issuer_login_keys=keys.issuer_login_keys,
        root_keys=root_keys,
        tokens=token_repo,
        revocations=watcher,
        sessions=session_repo,
    )
    tokens = TokenService(
        location=location,
        login_location=login_location,
        login_ttl=config.login_discharge_ttl,
        keys=keys,
        root_keys=root_keys,
        tokens=token_repo,
        revocations=watcher,
        accounts=accounts,
        clock=clock,
        audit=audit,
    )
    login = LoginDischarger(
        location=login_location,
        keys=keys.login,
        sessions=sessions,
        ttl=config.login_discharge_ttl,
        clock=clock,
        audit=audit,
    )
    org = OrgDischarger(
        location=org_location,
        keys=keys.org,
        verifier=verifier,
        ttl=config.org_discharge_ttl,
        clock=clock,
        audit=audit,
    )
    workload_repo = PgWorkloadRepository(db)
    issuer_bindings = IssuerBindings(workload_repo)
    workloads = Workloads(
        repository=workload_repo,
        accounts=accounts,
        revocations=watcher,
        on_change=issuer_bindings.clear,
        default_audience=location,
        default_ttl=config.org_discharge_ttl,
        clock=clock,
        random=random,
        audit=audit,
    )
    workload = WorkloadDischarger(
        location=org_location,
        keys=keys.org,
        bindings=issuer_bindings,
        revocations=watcher,
        jwks=JwksCache(
            fetcher,
            max_age=config.workload_jwks_max_age,
            refetch_interval=config.workload_jwks_refetch_interval,
        ),
        limits=JwtLimits(leeway=config.workload_jwt_leeway, max_lifetime=config.workload_jwt_max_lifetime),
        max_uses=config.workload_jwt_max_uses,
        clock=clock,
        audit=audit,
    )
    return AuthorityServices(
        config=config,
        health=DatabaseHealth(db),
        location=location,
        login_location=login_location,
        org_location=org_location,
        keys=keys,
        account_store=account_repo,
        sessions=sessions,
        accounts=accounts,
        invitations=invitations,
        tokens=tokens,
        verifier=verifier,
        login=login,
        org=org,
        revocations=watcher,
        feed=RevocationFeed(watcher, config.revocation_feed_token_sha256),
        clock=clock,
        audit=audit,
        workloads=workloads,
        workload=workload,
    )
