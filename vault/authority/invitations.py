"""Invitations: membership only with the invitee's consent.

An org's owner invites an email with a role (``POST /v1/orgs/{org}/invitations``).
The reply is the same whether or not the email has an account, so inviting cannot
probe for accounts; it carries a one-time invitation code (``cvi_``, stored only as
its SHA-256) for the owner to hand to the invitee. The invitee then accepts:

* with an account: logged in as the invited email, from ``GET /v1/invitations``;
* without one: with the code, the authority first mails a verification code (``cvm_``,
  stored only as its SHA-256, valid :data:`VERIFICATION_TTL`) to the invited email; the
  code, that verification code and a new password then create the account. Whoever holds
  only the invitation code (its inviter, too) cannot create the email's account.

Asking for the verification gets the same reply whether or not the email has an account
(a registered email is mailed "log in and accept" instead of a code), so the inviter, who
holds the code, learns nothing. Nothing changes in the org until the acceptance.
Invitations expire after :data:`INVITATION_TTL`; accepting one is a single transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid

from vault.errors import BadRequest, NotFound, Unavailable
from vault.types import BeforeCommit, Clock, Random, RequestContext, utc

from .accounts import Accounts, check_email, check_password
from .audit import Auditor
from .interfaces import InvitationRepository, Mailer
from .records import Invitation
from .roles import Role
from .sessions import Sessions

__all__ = ["CODE_PREFIX", "INVITATION_TTL", "VERIFICATION_PREFIX", "VERIFICATION_TTL", "Invitations", "code_digest"]

INVITATION_TTL = 7 * 86400
VERIFICATION_TTL = 3600
CODE_PREFIX = "cvi_"
VERIFICATION_PREFIX = "cvm_"
NO_MAIL = (
    "this authority sends no mail (CVAULT_SMTP_URL is not set), so an invitation cannot create an account here: "
    "ask its operator"
)
VERIFICATION_SENT = (
    "if the invitation is pending, a message went to the invited address: it holds a verification code (cvm_...) "
    "to accept with, with your new password, within an hour, or, if that address already has an account, says to "
    "log in and accept"
)
_MAX_CODE = 64
# One answer for every way an acceptance can miss, so it tells nobody whether an email is registered.
NOT_FOUND = (
    "no pending invitation with this id and code (it may have expired or been accepted, or, with no session, the "
    "email may already have an account: then log in and accept with your session and the code); with no account "
    "yet, create it as you accept (`cvault orgs accept ID --code CODE --password-stdin`)"
)


def _check_code(code: str) -> None:
    if not code.startswith(CODE_PREFIX) or len(code) > _MAX_CODE:
        raise BadRequest("code must be the cvi_ invitation code the org's owner gave you")


def _check_verification(code: str) -> None:
    if not code.startswith(VERIFICATION_PREFIX) or len(code) > _MAX_CODE:
        raise BadRequest("verification must be the cvm_ code mailed to the invited address")


def _new_code(prefix: str, random: Random) -> str:
    return prefix + base64.urlsafe_b64encode(random(32)).rstrip(b"=").decode()


def code_digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def check_invitation_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise BadRequest("an invitation id is a UUID, as GET /v1/invitations lists them") from None


class Invitations:
    def __init__(
        self,
        *,
        repository: InvitationRepository,
        accounts: Accounts,
        sessions: Sessions,
        clock: Clock,
        random: Random,
        audit: Auditor,
        mailer: Mailer | None = None,
    ) -> None:
        self._mailer = mailer
        self._repo = repository
        self._accounts = accounts
        self._sessions = sessions
        self._clock = clock
        self._random = random
        self._audit = audit

    def _now(self) -> dt.datetime:
        return utc(self._clock())

    async def invite(
        self, owner_id: int, org_id: int, email: str, role: Role, ctx: RequestContext[None]
    ) -> tuple[Invitation, str]:
        """A new invitation and its code; the same whether or not ``email`` has an account."""
        await self._accounts.require_role(owner_id, org_id, Role.OWNER)
        email = check_email(email)
        code = _new_code(CODE_PREFIX, self._random)
        invitation_id = str(uuid.UUID(bytes=self._random(16), version=4))
        expires = self._now() + dt.timedelta(seconds=INVITATION_TTL)

        async def audited(invitation: Invitation, tx: object) -> None:
            await self._audit.record_in(
                tx, ctx, "invitation.create", org=org_id, user_id=owner_id, invitation=invitation.id, role=role.value
            )

        invitation = await self._repo.create(
            invitation_id, org_id, email, role, owner_id, code_digest(code), expires, audited
        )
        return invitation, code

    async def pending(self, user_id: int) -> list[Invitation]:
        user = await self._accounts.user(user_id)
        return await self._repo.pending_for(user.email, self._now())

    async def accept_as(self, user_id: int, invitation_id: str, code: str, ctx: RequestContext[None]) -> Invitation:
        """Accept as a logged-in user, whose email must be the invited one, with the invitation's code."""
        _check_code(code)
        user = await self._accounts.user(user_id)
        invitation, _ = await self._repo.accept(
            check_invitation_id(invitation_id),
            self._now(),
            self._audited(ctx, created=False),
            user_id=user.id,
            email=user.email,
            code_digest=code_digest(code),
        )
        return invitation

    async def send_verification(self, invitation_id: str, code: str, ctx: RequestContext[None]) -> None:
        """Mail the invited address a new verification code (or, if it has an account, "log in and accept").

        The caller learns only that the invitation and code match (:class:`NotFound` otherwise), never
        whether the email is registered: the reply, and what is written, are the same either way.
        """
        _check_code(code)
        invitation_id = check_invitation_id(invitation_id)
        if self._mailer is None:
            raise Unavailable(NO_MAIL)
        verification = _new_code(VERIFICATION_PREFIX, self._random)
        expires = self._now() + dt.timedelta(seconds=VERIFICATION_TTL)
        invitation = await self._repo.set_verification(
            invitation_id, self._now(), code_digest(code), code_digest(verification), expires
        )
        if invitation is None:
            raise NotFound(NOT_FOUND)
        registered = await self._accounts.is_registered(invitation.email)
        subject, body = _verification_mail(invitation, code, None if registered else verification)
        await self._mailer.send(invitation.email, subject, body)
        await self._audit.record(ctx, "invitation.verify", "ok", org=invitation.org_id, invitation=invitation.id)

    async def accept_with_code(
        self, invitation_id: str, code: str, verification: str, password: str, ctx: RequestContext[None]
    ) -> tuple[Invitation, int]:
        """Accept with the invitation code and the verification code mailed to the invited email, creating its
        account with ``password``."""
        _check_code(code)
        _check_verification(verification)
        invitation_id = check_invitation_id(invitation_id)
        # The codes before the password hash: an unauthenticated caller must not make the authority hash for nothing.
        if not await self._repo.code_matches(invitation_id, self._now(), code_digest(code), code_digest(verification)):
            raise NotFound(NOT_FOUND)
        password_hash = await self._sessions.hash_password(check_password(password))
        return await self._repo.accept(
            invitation_id,
            self._now(),
            self._audited(ctx, created=True),
            code_digest=code_digest(code),
            new_user_password_hash=password_hash,
            verification_digest=code_digest(verification),
        )

    def _audited(self, ctx: RequestContext[None], *, created: bool) -> BeforeCommit[tuple[Invitation, int]]:
        """The acceptance's event, in its transaction; ``account_created`` when the account was made with it."""

        async def audited(accepted: tuple[Invitation, int], tx: object) -> None:
            invitation, user_id = accepted
            await self._audit.record_in(
                tx,
                ctx,
                "invitation.accept",
                org=invitation.org_id,
                user_id=user_id,
                invitation=invitation.id,
                role=invitation.role.value,
                account_created=True if created else None,
            )

        return audited


def _verification_mail(invitation: Invitation, code: str, verification: str | None) -> tuple[str, str]:
    """The message to the invited address: the verification code, or (it has an account) how to accept."""
    subject = f"Your invitation to {invitation.slug} on cvault"
    if verification is None:
        return subject, (
            f"Someone asked to create a cvault account for {invitation.email} to accept an invitation to "
            f"{invitation.slug} ({invitation.role.value}). This address already has an account: log in and accept "
            f"with\n\n  cvault login --email {invitation.email}\n  cvault orgs accept {invitation.id} --code {code}\n\n"
            "If you did not ask, ignore this message.\n"
        )
    return subject, (
        f"To create your cvault account for {invitation.email} and join {invitation.slug} as "
        f"{invitation.role.value}, use this verification code within an hour:\n\n  {verification}\n\n"
        f"  cvault orgs accept {invitation.id} --code {code} --verification {verification} --password-stdin\n\n"
        "If you did not ask, ignore this message: without the code no account is created.\n"
    )
