"""The first owner, org and session of an empty authority database (``cvault bootstrap``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vault.errors import Conflict
from vault.types import RequestContext

from .accounts import Accounts
from .interfaces import AccountRepository
from .records import Org, Session, User
from .sessions import Sessions

__all__ = ["Bootstrapped", "bootstrap"]


@dataclass(frozen=True)
class Bootstrapped:
    user: User
    org: Org
    session: Session
    session_secret: str = field(repr=False)


async def bootstrap(
    store: AccountRepository, accounts: Accounts, sessions: Sessions, email: str, password: str, slug: str
) -> Bootstrapped:
    """Create the owner, the org and a session; :class:`Conflict` unless the database has no users."""
    if await store.has_users():
        raise Conflict("the authority already has users; bootstrap only runs on an empty database")
    ctx = RequestContext(client_addr="local", request_id="bootstrap")
    user = await accounts.create_user(email, password, ctx)
    org = await accounts.create_org(user.id, slug, ctx)
    secret, session = await sessions.start(user, ctx)
    return Bootstrapped(user, org, session, secret)
