"""The store app's state: the services its handlers use, under one typed key.

Typed with the store domain's services and ports (``vault/store/interfaces.py``), not with the adapters the app
factory wires in, so a handler can use only what a port promises; :func:`vault.web.store.app.open_store` picks
the implementations.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from vault.audit.query import AuditQueries
from vault.config import Config
from vault.store.control import ControlService
from vault.store.interfaces import AuditSink, KeyDirectory, OrgDirectory
from vault.store.kv_metadata import KVService
from vault.store.rotation import RotationService
from vault.store.secrets import SecretService
from vault.store.tokens import StoreTokens
from vault.types import Clock
from vault.web.common import Readiness

__all__ = ["SERVICES_KEY", "StoreServices", "services_of"]


@dataclass(frozen=True)
class StoreServices:
    config: Config
    health: Readiness  # the database's, for /readyz and sys/health
    tokens: StoreTokens
    control: ControlService
    secrets: SecretService
    audit: AuditSink
    audit_queries: AuditQueries
    keys: KeyDirectory
    orgs: OrgDirectory  # every enrolled org's slug, for the Vault API's mounts
    clock: Clock
    kv: KVService  # the Vault API's metadata and mount configuration
    rotation: RotationService  # managed rotation's policies and steps (docs/rotation.md)


SERVICES_KEY: web.AppKey[StoreServices] = web.AppKey("store_services", StoreServices)


def services_of(request: web.Request) -> StoreServices:
    """The services of the store app serving ``request`` (also from its Vault API sub-app).

    ``request.config_dict`` would find them too, but it builds a chained view on every
    access, and every guarded request asks.
    """
    try:
        return request.app[SERVICES_KEY]
    except KeyError:  # the Vault API sub-app: its parent holds them
        return request.config_dict[SERVICES_KEY]
