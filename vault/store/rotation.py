"""Managed rotation at the store: policies, and the steps rotators report (docs/rotation.md).

The store never talks to a rotation's target. It keeps each policy and the state of the rotation in progress,
leases due rotations to rotators (one each), and checks every step a rotator reports against that state, in the
same transaction as the change the step makes (the pending version, the promotion): a rotator whose lease lapsed
changes nothing. Each step is an audit event attributed to the rotator's token.
"""

from __future__ import annotations

import re

from vault.errors import BadRequest, Conflict, Unauthorized
from vault.macaroon import CONTROL, READ, WRITE
from vault.types import Clock, RequestContext, utc

from .caller import Caller
from .connection_document import ConnectionDocument, alternate_user
from .events import access_for, audit_event
from .interfaces import AuditSink, RotationRepository
from .models import WriteOutcome
from .rotation_models import Claim, RotationPolicy, RotationStatus
from .secrets import SecretService

__all__ = ["MAX_CLAIM", "MAX_LEASE", "RotationService", "check_policy"]

MAX_CLAIM = 100  # rotations one claim may lease
MAX_LEASE = 3600
MAX_REASON = 500
_CANDIDATES = 1000  # due names looked at per claim, before the caller's caveats filter them
_HOOK = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_HOLDER = re.compile(r"[\x21-\x7e]{1,128}")


def check_policy(policy: RotationPolicy) -> RotationPolicy:
    """The policy's own rules (the target's value is checked against the secret by :meth:`RotationService.set`)."""
    if policy.target not in ("postgres", "command"):
        raise BadRequest("target must be 'postgres' or 'command'")
    if policy.strategy not in ("single", "alternating"):
        raise BadRequest("strategy must be 'single' or 'alternating'")
    if not 60 <= policy.every_seconds <= 10 * 365 * 86400:
        raise BadRequest("every must be between one minute and ten years")
    if not 16 <= policy.password_length <= 128:
        raise BadRequest("password_length must be between 16 and 128")
    if policy.target == "postgres":
        if policy.admin_secret is None or policy.hook is not None:
            raise BadRequest("a postgres rotation needs admin_secret (the secret holding the admin connection)")
    else:
        if policy.hook is None or not _HOOK.fullmatch(policy.hook) or policy.admin_secret is not None:
            raise BadRequest("a command rotation needs hook: the name of a hook the rotators run (a-z, 0-9, _ -)")
        if policy.strategy != "single":
            raise BadRequest("the alternating strategy is for postgres targets")
    return policy


def check_holder(holder: str) -> str:
    if not _HOLDER.fullmatch(holder):
        raise BadRequest("holder must be 1 to 128 printable ASCII characters")
    return holder


def _reason(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text).strip()
    return cleaned[:MAX_REASON] or "no reason given"


class RotationService:
    def __init__(self, repo: RotationRepository, secrets: SecretService, audit: AuditSink, *, clock: Clock) -> None:
        self._repo = repo
        self._secrets = secrets
        self._audit = audit
        self._clock = clock

    def _now(self) -> float:
        return self._clock()

    async def _document(self, org_id: int, vault: str, name: str, what: str) -> ConnectionDocument:
        """The connection document ``name`` holds. What it holds is the store's state, not the request's: a value
        that is none is a 409 (a well-formed policy the stored values do not fit), as the document says."""
        value = await self._secrets.open_current(org_id, vault, name)
        if value is None:
            raise Conflict(f"{what} {name!r} has no current version: write its connection document first")
        try:
            return ConnectionDocument.parse(value)
        except BadRequest as exc:
            raise Conflict(f"{what} {name!r}: {exc.message}") from None

    # -- operators ----------------------------------------------------------------------

    async def set(self, ctx: RequestContext[Caller], vault: str, name: str, policy: RotationPolicy) -> RotationStatus:
        """Create or replace the policy; a postgres target's value and admin secret must parse (docs/rotation.md)."""
        check_policy(policy)
        org = ctx.verified_caller.org_id
        connection = None
        if policy.target == "postgres":
            assert policy.admin_secret is not None
            if policy.admin_secret == name:
                # The same value for both: a conflict of the stored roles, as for two documents of one role below.
                raise Conflict("the admin secret must be another secret than the one rotated")
            # The policy makes rotators read the admin secret: only someone who may read it can name it.
            access = access_for(ctx, int(self._now()), READ, vault=vault, secret=policy.admin_secret)
            if not ctx.verified_caller.allows(access):
                raise Unauthorized(f"this token may not read the admin secret {policy.admin_secret!r}")
            doc = await self._document(org, vault, name, "secret")
            admin = await self._document(org, vault, policy.admin_secret, "admin secret")
            if admin.user in (doc.user, alternate_user(doc.user)):
                raise Conflict("the rotated role must not be the admin secret's role (nor its alternate)")
            connection = doc.pin(policy.strategy)
        now = self._now()

        async def audited(status: RotationStatus, tx: object) -> None:
            detail = {
                "target": policy.target,
                "strategy": policy.strategy,
                "every_seconds": policy.every_seconds,
                "admin_secret": policy.admin_secret,
                "hook": policy.hook,
                "next_due_at": int(status.next_due_at.timestamp()),
            }
            await self._audit.record_in(tx, audit_event(ctx, "ok", vault=vault, secret=name, detail=detail))

        due = utc(now + policy.every_seconds)
        return await self._repo.set_policy(org, vault, name, policy, due, connection, audited)

    async def show(self, ctx: RequestContext[Caller], vault: str, name: str) -> RotationStatus:
        status = await self._repo.status(ctx.verified_caller.org_id, vault, name)
        await self._audit.record(audit_event(ctx, "ok", vault=vault, secret=name))
        return status

    async def statuses(self, ctx: RequestContext[Caller], vault: str) -> list[RotationStatus]:
        """The vault's policies whose secrets the caller may read (the others are left out, as a batch read does)."""
        now = int(self._now())
        found = [
            s
            for s in await self._repo.statuses(ctx.verified_caller.org_id, vault)
            if ctx.verified_caller.allows(access_for(ctx, now, READ, vault=vault, secret=s.name))
        ]
        await self._audit.record(audit_event(ctx, "ok", vault=vault, detail={"returned": len(found)}))
        return found

    async def _update(
        self, ctx: RequestContext[Caller], vault: str, name: str, *, enabled: bool | None, due_now: bool
    ) -> RotationStatus:
        async def audited(status: RotationStatus, tx: object) -> None:
            detail = {"enabled": status.enabled, "next_due_at": int(status.next_due_at.timestamp())}
            await self._audit.record_in(tx, audit_event(ctx, "ok", vault=vault, secret=name, detail=detail))

        due = utc(self._now()) if due_now else None
        return await self._repo.update(
            ctx.verified_caller.org_id, vault, name, enabled=enabled, due=due, before_commit=audited
        )

    async def disable(self, ctx: RequestContext[Caller], vault: str, name: str) -> RotationStatus:
        return await self._update(ctx, vault, name, enabled=False, due_now=False)

    async def rotate_now(self, ctx: RequestContext[Caller], vault: str, name: str) -> RotationStatus:
        """Due now. A disabled policy is enabled again (asking for a rotation is asking for rotations), but only by
        a caller with control, as disabling it needs: a writer may hurry a rotation, not undo a ``disable``."""
        caller = ctx.verified_caller
        may_enable = caller.allows(access_for(ctx, int(self._now()), CONTROL, vault=vault, secret=name))
        if not may_enable and not (await self._repo.status(caller.org_id, vault, name)).enabled:
            raise Unauthorized(f"the rotation of {name!r} is disabled: enabling it again needs control (C)")
        # Without control, enabled stays as it is, so a `disable` racing this check is not undone either.
        return await self._update(ctx, vault, name, enabled=True if may_enable else None, due_now=True)

    # -- rotators -----------------------------------------------------------------------

    async def claim(
        self, ctx: RequestContext[Caller], vault: str, *, holder: str, limit: int, lease_seconds: int
    ) -> list[Claim]:
        """Lease due rotations of secrets the caller may write. Only a claim that leased something is audited
        (one event per rotation): rotators poll, and an empty poll changes nothing."""
        check_holder(holder)
        if not 1 <= limit <= MAX_CLAIM:
            raise BadRequest(f"limit must be between 1 and {MAX_CLAIM}")
        if not 1 <= lease_seconds <= MAX_LEASE:
            raise BadRequest(f"lease_seconds must be between 1 and {MAX_LEASE}")
        caller = ctx.verified_caller
        now = self._now()
        due = await self._repo.due(caller.org_id, vault, utc(now), _CANDIDATES)
        allowed = [n for n in due if caller.allows(access_for(ctx, int(now), WRITE, vault=vault, secret=n))]
        if not allowed:
            return []
        leased = await self._repo.claim(
            caller.org_id, vault, allowed, holder, utc(now), utc(now + lease_seconds), limit
        )
        claims = []
        for status in leased:
            connection, problem = None, None
            if status.policy.target == "postgres":
                try:
                    doc = await self._document(caller.org_id, vault, status.name, "secret")
                except BadRequest as exc:
                    problem = exc.message
                else:
                    # A writer (w, not control) may change the value: a role or server other than the one the
                    # policy was set for is not rotated, or the admin would set (and hand the writer) its password.
                    if doc.pin(status.policy.strategy) == status.connection:
                        connection = doc.public()
                    else:
                        problem = (
                            f"the value of {status.name!r} names another role, server, database or sslmode than its "
                            "rotation policy was set for: set the policy again (`cvault rotation set`) to rotate it"
                        )
            claims.append(Claim(status, connection, problem))
        if claims:
            await self._audit.record(
                *(
                    audit_event(
                        ctx,
                        "ok",
                        vault=vault,
                        secret=c.status.name,
                        version=c.status.pending_version,
                        detail={"holder": holder, "step": c.status.step, "attempt": c.status.attempt},
                    )
                    for c in claims
                )
            )
        return claims

    async def create(
        self, ctx: RequestContext[Caller], vault: str, name: str, *, holder: str, value: bytes, lease_seconds: int
    ) -> WriteOutcome:
        """Step 1: the new value as the pending version, recorded as the rotation's, in one transaction."""
        check_holder(holder)
        org = ctx.verified_caller.org_id
        now = self._now()

        async def record(outcome: WriteOutcome, tx: object) -> None:
            await self._repo.record_created(
                tx, org, vault, name, holder, utc(now), utc(now + lease_seconds), outcome.version
            )

        return await self._secrets.write(
            ctx,
            vault,
            name,
            value,
            cas=None,
            pending=True,
            max_versions=None,
            may_create=False,
            also=record,
            extra={"holder": holder},
        )

    async def advance(
        self,
        ctx: RequestContext[Caller],
        vault: str,
        name: str,
        *,
        holder: str,
        step: str,
        pending_version: int,
        lease_seconds: int,
    ) -> RotationStatus:
        """Steps 2 and 3, done at the target by the rotator: recorded for the pending version."""
        check_holder(holder)
        if step not in ("set", "test"):
            raise BadRequest("step must be 'set' or 'test'")
        now = self._now()

        async def audited(status: RotationStatus, tx: object) -> None:
            event = audit_event(
                ctx, "ok", vault=vault, secret=name, version=pending_version, detail={"holder": holder, "step": step}
            )
            await self._audit.record_in(tx, event)

        return await self._repo.advance(
            ctx.verified_caller.org_id,
            vault,
            name,
            holder,
            utc(now),
            utc(now + lease_seconds),
            step,
            pending_version,
            audited,
        )

    async def promote(
        self, ctx: RequestContext[Caller], vault: str, name: str, *, holder: str, pending_version: int
    ) -> tuple[int, int | None]:
        """Step 4: the tested pending version becomes current, and the rotation is done, in one transaction."""
        check_holder(holder)
        org = ctx.verified_caller.org_id
        now = self._now()

        async def record(result: tuple[int, int | None], tx: object) -> None:
            if result[0] != pending_version:
                raise Conflict(f"version {pending_version} of {name!r} is no longer pending")
            await self._repo.record_promoted(tx, org, vault, name, holder, utc(now), pending_version)

        return await self._secrets.promote(ctx, vault, name, also=record, extra={"holder": holder})

    async def fail(
        self, ctx: RequestContext[Caller], vault: str, name: str, *, holder: str, step: str, reason: str
    ) -> RotationStatus:
        """A step failed at the target: current is untouched; the rotation is retried after a backoff."""
        check_holder(holder)
        if step not in ("create", "set", "test", "promote"):
            raise BadRequest("step must be one of create, set, test, promote")
        reason = _reason(f"{step}: {reason}")

        async def audited(status: RotationStatus, tx: object) -> None:
            detail = {
                "holder": holder,
                "step": step,
                "reason": reason,
                "attempt": status.attempt,
                "retry_at": int(status.next_due_at.timestamp()),
            }
            await self._audit.record_in(
                tx, audit_event(ctx, "error", vault=vault, secret=name, version=status.pending_version, detail=detail)
            )

        return await self._repo.record_failure(
            ctx.verified_caller.org_id, vault, name, holder, utc(self._now()), reason, audited
        )
