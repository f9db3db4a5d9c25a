"""The authority's wired-up services, as the handlers find them on the app."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from vault.authority.accounts import Accounts
from vault.authority.audit import Auditor
from vault.authority.dischargers import LoginDischarger, OrgDischarger
from vault.authority.interfaces import AccountRepository
from vault.authority.invitations import Invitations
from vault.authority.principal import BundleVerifier
from vault.authority.revocation_feed import FeedSource, RevocationFeed
from vault.authority.sessions import Sessions
from vault.authority.ticket_keys import TicketKeys
from vault.authority.token_service import TokenService
from vault.authority.workload_discharger import WorkloadDischarger
from vault.authority.workloads import Workloads
from vault.config import Config
from vault.types import Clock
from vault.web.common import Readiness

__all__ = ["SERVICES_KEY", "AuthorityServices"]


@dataclass(frozen=True)
class AuthorityServices:
    config: Config
    health: Readiness  # the database's, for /readyz
    location: str
    login_location: str
    org_location: str
    keys: TicketKeys
    account_store: AccountRepository
    sessions: Sessions
    accounts: Accounts
    invitations: Invitations
    tokens: TokenService
    verifier: BundleVerifier
    login: LoginDischarger
    org: OrgDischarger
    revocations: FeedSource
    feed: RevocationFeed
    clock: Clock
    audit: Auditor
    workloads: Workloads
    workload: WorkloadDischarger  # the org discharger's path for a workload's JWT


SERVICES_KEY: web.AppKey[AuthorityServices] = web.AppKey("authority_services", AuthorityServices)
