"""The first owner, org and session of an empty authority database (``cvault bootstrap``).

The three are made one after the other, each committed with its audit event, so a
bootstrap cut short (a crash, the database going away) can leave an owner without an
org, or both without a session. Run again with the same email, password and org, it
finishes: it takes the owner it finds (the database's only user, whose password this
is) and their org if it was made, and makes what is missing. Once the owner has had a
session the bootstrap is finished, and running it again is refused like anything else
on a database with users (a script that reruns it gets no new owner session).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vault.errors import Conflict
from vault.types import RequestContext

from .accounts import Accounts, check_email
from .interfaces import AccountRepository
from .records import Org, Session, User
from .roles import Role, check_slug
from .sessions import Sessions

__all__ = ["Bootstrapped", "bootstrap"]

_REFUSED = (
    "the authority already has users; bootstrap only runs on an empty database "
    "(or again with the same email, password and org, to finish one that was cut short)"
)


@dataclass(frozen=True)
class Bootstrapped:
    user: User
    org: Org
    session: Session
    session_secret: str = field(repr=False)


async def bootstrap(
    store: AccountRepository, accounts: Accounts, sessions: Sessions, email: str, password: str, slug: str
) -> Bootstrapped:
    """Create the owner, the org and a session (or finish a bootstrap cut short); :class:`Conflict` otherwise."""
    ctx = RequestContext(client_addr="local", request_id="bootstrap")
    user = await _unfinished_owner(store, sessions, email, password)
    if user is None:
        user = await accounts.create_user(email, password, ctx)
    org = await _owned_org(store, user, slug)
    if org is None:
        org = await accounts.create_org(user.id, slug, ctx)
    elif await sessions.ever_started(user):
        raise Conflict("bootstrap already finished: the owner and org exist; log in instead (cvault login)")
    secret, session = await sessions.start(user, ctx)
    return Bootstrapped(user, org, session, secret)


async def _unfinished_owner(store: AccountRepository, sessions: Sessions, email: str, password: str) -> User | None:
    """None on an empty database; the owner a bootstrap cut short made; :class:`Conflict` for anything else."""
    users = await store.count_users()
    if users == 0:
        return None
    user = await store.user_by_email(check_email(email))
    if users != 1 or user is None:
        raise Conflict(_REFUSED)
    if not await sessions.password_matches(user, password):
        raise Conflict("the owner of the bootstrap cut short has another password; run it again with that one")
    return user


async def _owned_org(store: AccountRepository, user: User, slug: str) -> Org | None:
    """The org a bootstrap cut short made for ``user`` (None if it made none yet); :class:`Conflict` otherwise."""
    memberships = await store.memberships(user.id)
    if not memberships:
        return None
    only = memberships[0]
    if len(memberships) != 1 or only.role is not Role.OWNER or only.slug != check_slug(slug):
        raise Conflict(_REFUSED)
    return Org(only.org_id, only.slug)
