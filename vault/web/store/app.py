"""The store's aiohttp application: ``create_store_app(config)``.

Resources (pool, keys, watchers, audit log, revocation feed, services) are opened by :func:`open_store`, the
app's one ``cleanup_ctx`` as :func:`vault.web.authority.app.open_authority` is the authority's, and closed in
reverse order. The store refuses to start on a
database that is not migrated, without a master key, or without the
authority's org public key (it seals every store token's ticket to it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

from aiohttp import web

from vault.audit.log import AuditLog
from vault.audit.query import AuditQueries
from vault.config import Config, require_database_url, require_master_keys
from vault.errors import ConfigError
from vault.macaroon.crypto import DEFAULT_RANDOM
from vault.storage.audit import PgAuditRepository
from vault.storage.health import DatabaseHealth
from vault.storage.key_watch import KeyWatcher
from vault.storage.keys import PgKeyRepository
from vault.storage.migrations import require_migrated
from vault.storage.pool import Pool, pool_in
from vault.storage.revocations import RevocationWatcher
from vault.storage.store_keys import StoreKeyDirectory
from vault.storage.store_kv import PgKVRepository
from vault.storage.store_mounts import OrgTable
from vault.storage.store_orgs import PgOrgRepository
from vault.storage.store_reads import BatchReader
from vault.storage.store_rotations import PgRotationRepository
from vault.storage.store_secrets import PgSecretRepository
from vault.store.authority_revocations import AuthorityRevocations
from vault.store.control import ControlService
from vault.store.kv_metadata import KVService
from vault.store.rotation import RotationService
from vault.store.secrets import SecretService, idempotency_hash_key
from vault.store.tokens import StoreTokens
from vault.types import Clock, Random

from ..common import PATH_RENDERERS_KEY, middlewares
from ..contract import add_operations
from ..metrics import Metrics, add_metrics
from ..runner import is_loopback
from ..service_routes import serve_document
from .authority_keys import follow_authority_keys
from .openapi import OPERATIONS, spec
from .revocation_follower import MAX_WAIT, RevocationFollower
from .services import SERVICES_KEY, StoreServices
from .vault_kv import VAULT_OPERATIONS, VAULT_PREFIX, render_vault_error

__all__ = ["POOL_KEY", "SERVICES_KEY", "StoreServices", "create_store_app", "open_store"]

SCHEMA = "store"
# The pool the app runs on, for what inspects its connections (tests/store/test_pool_session_state.py); handlers see
# only the services, which never hand out the pool.
POOL_KEY: web.AppKey[Pool] = web.AppKey("store_pool", Pool)


def org_location(config: Config) -> str:
    return f"{config.authority_url}/org"


def _feed_url(config: Config) -> str:
    """The revocation feed's URL; plain HTTP only to this machine (or in ``cvault dev``).

    Over plain HTTP off the machine the feed token would cross the network in clear, and anyone on the path could
    answer an empty feed that keeps the store "synced" while it misses every revocation.
    """
    url = config.revocation_feed_url or f"{config.authority_url}/v1/revocations/feed"
    parts = urlsplit(url)
    if config.revocation_feed and parts.scheme != "https" and not config.dev and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"the revocation feed URL {url} is plain HTTP to another machine: make it https:// "
            "(CVAULT_REVOCATION_FEED_URL, or CVAULT_AUTHORITY_URL it defaults from)"
        )
    return url


def _authority_key(config: Config) -> bytes:
    """The authority's org public key, once the configuration is known to be one the store can start with."""
    if config.authority_org_public_key is None:
        raise ConfigError(
            "no authority key: set CVAULT_AUTHORITY_ORG_PUBLIC_KEY to the authority's org public key "
            "(the 'org.public_key' of GET <authority>/.well-known/cvault/keys)"
        )
    if config.revocation_feed and config.revocation_feed_token is None:
        raise ConfigError(
            "no revocation feed token: set CVAULT_REVOCATION_FEED_TOKEN to a token whose SHA-256 the authority "
            "lists in CVAULT_REVOCATION_FEED_TOKEN_SHA256 (docs/revocation.md says how to make one)"
        )
    _feed_url(config)
    return config.authority_org_public_key


@asynccontextmanager
async def open_store(
    config: Config,
    *,
    pool: Pool,
    clock: Clock = time.time,
    random: Random = DEFAULT_RANDOM,
    metrics: Metrics | None = None,
) -> AsyncIterator[StoreServices]:
    """Open everything the store needs on ``pool`` (the caller's, not closed here), each resource closed as soon
    as a later one fails to open, and all of them in reverse order on the way out. Refuses an unmigrated database
    and a missing master key."""
    _authority_key(config)
    db = pool
    async with AsyncExitStack() as stack:
        await require_migrated(db, SCHEMA, sql_dir=config.sql_dir)
        key_repo = await PgKeyRepository.open(db, SCHEMA, require_master_keys(config))
        directory = await StoreKeyDirectory.open(db, key_repo)
        org_table = await OrgTable.open(db)
        # Root-key rotations and retirements, and enrolments (a new org, a changed slug), reach every node
        # through LISTEN (docs/keys.md).
        key_watcher = KeyWatcher(db, SCHEMA, interval=config.key_watch_interval)
        key_watcher.on_change(directory.reload)
        key_watcher.on_change(org_table.reload)
        await key_watcher.start()
        stack.push_async_callback(key_watcher.close)
        sealing, key_follower = follow_authority_keys(config, directory.ticket_ring, org_location(config))
        key_watcher.on_change(key_follower.resync(lambda: directory.ticket_ring))
        await key_follower.start()
        stack.push_async_callback(key_follower.close)
        watcher = RevocationWatcher(db, SCHEMA)
        await watcher.start()
        stack.push_async_callback(watcher.close)
        audit_repo = PgAuditRepository(db, SCHEMA)
        log = AuditLog(audit_repo, timeout=config.database_timeout)
        await log.start()
        stack.push_async_callback(log.close)
        authority_revocations = None
        if config.revocation_feed and config.revocation_feed_token is not None:
            authority_revocations = AuthorityRevocations(
                org_location=org_location(config), max_lag=config.revocation_feed_max_lag
            )
            follower = RevocationFollower(
                feed_url=_feed_url(config),
                token=config.revocation_feed_token,
                state=authority_revocations,
                ca_file=config.revocation_feed_ca_file,
                # A healthy feed answers well within the bound, even when nothing happens.
                wait=max(1, min(MAX_WAIT, config.revocation_feed_max_lag // 3)),
            )
            await follower.start()
            stack.push_async_callback(follower.close)
        tokens = StoreTokens(
            location=config.store_url,
            org_location=org_location(config),
            sealing=sealing,
            keys=directory,
            revocations=watcher,
            org_discharge_ttl=config.org_discharge_ttl,
            authority_revocations=authority_revocations,
            random=random,
        )
        reads = BatchReader(db)
        stack.push_async_callback(reads.close)
        secret_repo = PgSecretRepository(db, key_repo, reads)
        secrets = SecretService(
            secret_repo,
            key_repo,
            log,
            clock=clock,
            request_hash_key=idempotency_hash_key(directory.enroll_key),
            idempotency_ttl=config.idempotency_key_ttl,
        )
        await secrets.start()
        stack.push_async_callback(secrets.close)
        if metrics is not None:
            metrics.watch(audit=log, pool=db, data_keys=secrets.data_key_cache, revocation_feed=authority_revocations)
        control = ControlService(
            tokens=tokens,
            keys=directory,
            enroll_key=directory.enroll_key,
            orgs=PgOrgRepository(db, key_repo),
            secrets=secret_repo,
            revocations=watcher,
            audit=log,
            clock=clock,
        )
        yield StoreServices(
            config=config,
            health=DatabaseHealth(db),
            tokens=tokens,
            control=control,
            secrets=secrets,
            audit=log,
            audit_queries=AuditQueries(audit_repo, clock=clock),
            keys=directory,
            orgs=org_table,
            clock=clock,
            kv=KVService(PgKVRepository(db), secret_repo, log),
            rotation=RotationService(PgRotationRepository(db), secrets, log, clock=clock),
        )


def create_store_app(
    config: Config,
    *,
    pool: Pool | None = None,
    clock: Clock = time.time,
    random: Random = DEFAULT_RANDOM,
) -> web.Application:
    """The store app. Pass ``pool`` to share one (it is then not closed here)."""
    _authority_key(config)  # refused here, before the app exists, rather than when it starts
    # No aiohttp access log under any runner: it prints query strings, which can carry tokens.
    app = web.Application(
        middlewares=middlewares(config.trusted_proxies),
        client_max_size=256 * 1024,
        handler_args={"access_log": None},
    )
    metrics = add_metrics(app, config, "store")

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            db = pool or await pool_in(
                stack, require_database_url(config), max_size=config.database_pool_size, timeout=config.database_timeout
            )
            app[POOL_KEY] = db
            opening = open_store(config, pool=db, clock=clock, random=random, metrics=metrics)
            app[SERVICES_KEY] = await stack.enter_async_context(opening)
            yield

    app.cleanup_ctx.append(resources)
    add_operations(app.router, OPERATIONS)
    serve_document(app, spec(config.store_url))
    # The Vault-compatible API (docs/vault-compat.md): same guard, services and audit.
    add_operations(app.router, VAULT_OPERATIONS)
    app[PATH_RENDERERS_KEY] = ((VAULT_PREFIX + "/", render_vault_error),)
    return app
