"""Organizations and their members. Only an org's owners change its membership."""

from __future__ import annotations

from vault.errors import BadRequest, NotFound, Unauthorized
from vault.types import Random, RequestContext

from .audit import Auditor
from .interfaces import AccountRepository
from .records import Member, Membership, Org, User
from .roles import Role, check_slug
from .sessions import MAX_PASSWORD_CHARS, Sessions, normalize_email

__all__ = ["Accounts", "check_email", "check_password", "new_org_id"]


MIN_PASSWORD_CHARS = 8
# Who creates an account outside a request: the operator, on this machine (``cvault bootstrap``).
_LOCAL: RequestContext[None] = RequestContext(client_addr="local")


def new_org_id(random: Random) -> int:
    """A random id below 2**63, so it fits PostgreSQL's signed ``bigint``; never 0."""
    return (int.from_bytes(random(8), "big") >> 1) or 1


def check_email(email: object) -> str:
    if not isinstance(email, str) or len(email) > 254:
        raise BadRequest("email must be an address like someone@example.com")
    email = normalize_email(email)
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in email):
        raise BadRequest("email must be an address like someone@example.com")
    return email


def check_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise BadRequest(f"password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    return password


class Accounts:
    def __init__(self, *, accounts: AccountRepository, sessions: Sessions, random: Random, audit: Auditor) -> None:
        self._store = accounts
        self._sessions = sessions
        self._random = random
        self._audit = audit

    async def create_user(self, email: str, password: str, ctx: RequestContext[None] = _LOCAL) -> User:
        """A new account (``cvault bootstrap``; invitees' accounts are created as they accept)."""
        email, password = check_email(email), check_password(password)

        async def audited(user: User, tx: object) -> None:
            await self._audit.record_in(tx, ctx, "user.create", user_id=user.id)

        return await self._store.create_user(email, await self._sessions.hash_password(password), audited)

    async def user(self, user_id: int) -> User:
        user = await self._store.user_by_id(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def is_registered(self, email: str) -> bool:
        return await self._store.user_by_email(email) is not None

    async def memberships(self, user_id: int) -> list[Membership]:
        return await self._store.memberships(user_id)

    async def create_org(self, user_id: int, slug: str, ctx: RequestContext[None]) -> Org:
        slug = check_slug(slug)

        async def audited(org: Org, tx: object) -> None:
            await self._audit.record_in(tx, ctx, "org.create", org=org.id, user_id=user_id, slug=slug)

        return await self._store.create_org(new_org_id(self._random), slug, user_id, audited)

    async def require_role(self, user_id: int, org_id: int, *roles: Role) -> Role:
        role = await self._store.role_of(user_id, org_id)
        if role is None:
            # Same answer for "no such org" and "not yours": org ids are not for probing.
            raise NotFound(f"organization {org_id} not found, or you are not a member")
        if roles and role not in roles:
            raise Unauthorized(f"only an organization's {' or '.join(r.value for r in roles)} may do this")
        return role

    async def members(self, user_id: int, org_id: int) -> list[Member]:
        # Auditors too: an audit trail of user ids is not one a reviewer can read (docs/audit.md).
        await self.require_role(user_id, org_id, Role.OWNER, Role.AUDITOR)
        return await self._store.members(org_id)

    async def change_role(
        self, owner_id: int, org_id: int, member_id: int, role: Role, ctx: RequestContext[None]
    ) -> None:
        await self.require_role(owner_id, org_id, Role.OWNER)

        async def audited(before: Role, tx: object) -> None:
            await self._audit.record_in(
                tx,
                ctx,
                "member.change",
                org=org_id,
                user_id=owner_id,
                member=member_id,
                role=role.value,
                was=before.value,
            )

        await self._store.change_role(org_id, member_id, role, audited)

    async def remove_member(self, owner_id: int, org_id: int, member_id: int, ctx: RequestContext[None]) -> None:
        await self.require_role(owner_id, org_id, Role.OWNER)

        async def audited(before: Role, tx: object) -> None:
            await self._audit.record_in(
                tx, ctx, "member.remove", org=org_id, user_id=owner_id, member=member_id, was=before.value
            )

        await self._store.remove_member(org_id, member_id, audited)
