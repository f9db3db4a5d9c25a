"""The Vault KV version 2 API's own operations: metadata writes, mount configuration, delete-latest.

Audited like every store operation: one ``ok`` event recorded inside the change's
transaction (a change that cannot be audited does not happen); refusals and
errors are recorded by the web layer's guard.
"""

from __future__ import annotations

from dataclasses import asdict

from vault.errors import NotFound
from vault.types import RequestContext

from .caller import Caller
from .events import audit_event
from .interfaces import AuditSink, KVRepository, SecretRepository
from .models import KVConfig, MetadataUpdate, VersionInfo, WriteRules

__all__ = ["KVService"]


class KVService:
    def __init__(self, repo: KVRepository, secrets: SecretRepository, audit: AuditSink) -> None:
        self._repo = repo
        self._secrets = secrets
        self._audit = audit

    async def config(self, ctx: RequestContext[Caller], vault: str) -> KVConfig:
        config = await self._repo.config(ctx.verified_caller.org_id, vault)
        await self._audit.record(audit_event(ctx, "ok", vault=vault))
        return config

    async def set_config(self, ctx: RequestContext[Caller], vault: str, update: KVConfig | MetadataUpdate) -> KVConfig:
        async def audited(config: KVConfig, tx: object) -> None:
            await self._audit.record_in(tx, audit_event(ctx, "ok", vault=vault, detail=asdict(config)))

        return await self._repo.set_config(ctx.verified_caller.org_id, vault, update, audited)

    async def update_metadata(
        self, ctx: RequestContext[Caller], vault: str, name: str, update: MetadataUpdate, *, may_create: bool
    ) -> bool:
        """Write the fields given (``custom_metadata`` replaces the stored object when given); True if the
        secret was created."""
        # Field names only: custom metadata values are the caller's and may say anything.
        fields = sorted(k for k, v in asdict(update).items() if v is not None)

        async def audited(created: bool, tx: object) -> None:
            await self._audit.record_in(
                tx, audit_event(ctx, "ok", vault=vault, secret=name, detail={"fields": fields, "created": created})
            )

        return await self._repo.update_metadata(
            ctx.verified_caller.org_id,
            vault,
            name,
            update,
            may_create=may_create,
            replace_custom=update.custom_metadata is not None,
            before_commit=audited,
        )

    async def delete_latest(self, ctx: RequestContext[Caller], vault: str, name: str) -> list[int]:
        async def audited(changed: list[int], tx: object) -> None:
            await self._audit.record_in(
                tx,
                audit_event(ctx, "ok", vault=vault, secret=name, detail={"requested": "current", "changed": changed}),
            )

        return await self._repo.delete_current(ctx.verified_caller.org_id, vault, name, audited)

    async def has_vault(self, org_id: int, vault: str) -> bool:
        """Whether ``vault`` exists (the Vault API tells a missing mount from a missing secret); not audited:
        only asked after a verified request failed, whose own event covers it."""
        try:
            await self._repo.config(org_id, vault)
        except NotFound:
            return False
        return True

    async def write_rules(self, ctx: RequestContext[Caller], vault: str, name: str) -> WriteRules:
        """Checked before a Vault write (the write's own event covers it)."""
        return await self._repo.write_rules(ctx.verified_caller.org_id, vault, name)

    async def unreadable_version(
        self, ctx: RequestContext[Caller], vault: str, name: str, version: int | None
    ) -> VersionInfo | None:
        """The metadata of a version a read just failed to open (deleted or destroyed), for Vault's 404
        body; ``None`` when there is no such version. The failed read's own event covers it."""
        meta = await self._secrets.metadata(ctx.verified_caller.org_id, vault, name)
        wanted = version or meta.current_version
        return next((v for v in meta.versions if v.version == wanted and v.state != "active"), None)
