"""Logging in and out: passwords, session secrets, failed-login limits."""

from __future__ import annotations

import asyncio
from typing import Protocol

from vault.errors import Unauthenticated
from vault.types import Clock, Random, RequestContext, utc

from .audit import Auditor
from .interfaces import AccountRepository, SessionRepository
from .rate_limit import FailureLimiter
from .records import Session, User
from .session_secret import new_session_secret, session_digest

__all__ = ["InvalidCredentials", "PasswordHasher", "Sessions"]


MAX_PASSWORD_CHARS = 1024


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    default_message = "wrong email or password"


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


def normalize_email(email: str) -> str:
    return email.strip().lower()


class Sessions:
    def __init__(
        self,
        *,
        accounts: AccountRepository,
        sessions: SessionRepository,
        passwords: PasswordHasher,
        limiter: FailureLimiter,
        ttl: int,
        clock: Clock,
        random: Random,
        audit: Auditor,
    ) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._passwords = passwords
        self._limiter = limiter
        self._ttl = ttl
        self._clock = clock
        self._random = random
        self._audit = audit
        # Verifying against a real hash for unknown emails keeps "no such user"
        # as slow as "wrong password", so timing does not reveal who has an account.
        self._dummy_hash = passwords.hash("not a password: " + random(16).hex())

    async def hash_password(self, password: str) -> str:
        return await asyncio.to_thread(self._passwords.hash, password)

    async def login(self, email: str, password: str, ctx: RequestContext[None]) -> tuple[str, Session]:
        """A new ``(secret, session)``; :class:`InvalidCredentials` or :class:`~vault.errors.RateLimited` otherwise."""
        email = normalize_email(email)
        keys = [f"email:{email}", f"addr:{ctx.client_addr}"]
        now = self._clock()
        self._limiter.check(keys, now)
        user = await self._accounts.user_by_email(email)
        ok = await asyncio.to_thread(
            self._passwords.verify, user.password_hash if user else self._dummy_hash, password[:MAX_PASSWORD_CHARS]
        )
        if user is None or not ok or len(password) > MAX_PASSWORD_CHARS:
            self._limiter.failed(keys, now)
            await self._audit.record(
                ctx, "login", "denied", user_id=user.id if user else None, reason="wrong email or password"
            )
            raise InvalidCredentials()
        self._limiter.succeeded(keys[:1])
        return await self.start(user, ctx)

    async def password_matches(self, user: User, password: str) -> bool:
        """Whether ``password`` is ``user``'s: no session, no failure counted (``cvault bootstrap`` finishing)."""
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        return await asyncio.to_thread(self._passwords.verify, user.password_hash, password)

    async def ever_started(self, user: User) -> bool:
        """Whether ``user`` ever had a session (``cvault bootstrap``: a finished one made the first)."""
        return await self._sessions.any_for(user.id)

    async def start(self, user: User, ctx: RequestContext[None]) -> tuple[str, Session]:
        """A session for ``user`` without a password (bootstrap, and after :meth:`login`)."""
        secret, digest = new_session_secret(self._random)
        expires = utc(self._clock() + self._ttl)

        async def audited(session: Session, tx: object) -> None:
            await self._audit.record_in(tx, ctx, "login", user_id=user.id, session=session.id)

        return secret, await self._sessions.create(user.id, digest, expires, audited)

    async def authenticate(self, secret: str) -> Session:
        """The live session for ``secret``; :class:`Unauthenticated` when unknown, expired or revoked."""
        session = await self._sessions.find(session_digest(secret))
        now = utc(self._clock())
        if session is None or session.revoked_at is not None:
            raise Unauthenticated("invalid session; log in again with POST /v1/sessions")
        if session.expires_at <= now:
            raise Unauthenticated("session expired; log in again with POST /v1/sessions")
        return session

    async def logout(self, session: Session, ctx: RequestContext[None]) -> None:

        async def audited(was_live: bool, tx: object) -> None:
            # A second logout of the same session changes nothing, and says so.
            await self._audit.record_in(
                tx, ctx, "logout", user_id=session.user_id, session=session.id, already=None if was_live else True
            )

        await self._sessions.revoke(session.id, audited)
